"""Label files: one canonical JSON document per data file, mirroring its path.

The label of ``images@<commit>:/cats/001.png`` is ``/cats/001.png.json`` in the
labels repo. The document is built from Label Studio's API (not its export
storage, whose files carry volatile fields and are named by annotation id)
with a whitelist of fields, sorted keys and a fixed layout, so an unchanged
annotation always gives identical bytes and never a spurious diff.
"""

from __future__ import annotations

import json
from typing import Any

from ..pfs.address import normalize_path

SCHEMA = "pachls.label/1"
SUFFIX = ".json"
ANNOTATION_FIELDS = ("created_at", "updated_at", "lead_time", "was_cancelled", "ground_truth")


def label_path(data_path: str) -> str:
    """``/cats/001.png`` -> ``/cats/001.png.json``."""
    return normalize_path(data_path, allow_root=False) + SUFFIX


def data_path(label_file: str) -> str:
    """``/cats/001.png.json`` -> ``/cats/001.png``."""
    path = normalize_path(label_file, allow_root=False)
    return path[: -len(SUFFIX)] if path.endswith(SUFFIX) else path


def annotator_name(completed_by: Any, users: dict[int, str]) -> str:
    """Label Studio gives an annotator as a user id or a user object; we record the email."""
    if isinstance(completed_by, dict):
        return completed_by.get("email") or users.get(completed_by.get("id"), str(completed_by.get("id")))
    return users.get(completed_by, str(completed_by))


def canonical_annotation(annotation: dict, users: dict[int, str]) -> dict:
    doc = {"id": annotation["id"], "annotator": annotator_name(annotation.get("completed_by"), users),
           "result": annotation.get("result") or []}
    for field in ANNOTATION_FIELDS:
        if annotation.get(field) is not None:
            doc[field] = annotation[field]
    return doc


def label_document(*, repo: str, commit: str, path: str, task: dict, users: dict[int, str]) -> dict:
    """The label document of one data file from its Label Studio task (with ``annotations``)."""
    annotations = sorted(
        (canonical_annotation(a, users) for a in task.get("annotations") or []), key=lambda a: a["id"]
    )
    return {
        "schema": SCHEMA,
        "data": {"repo": repo, "commit": commit, "path": normalize_path(path, allow_root=False)},
        "task": {"id": task["id"]},
        "annotations": annotations,
    }


def encode(document: dict) -> bytes:
    return (json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


def decode(raw: bytes) -> dict:
    return json.loads(raw.decode())


def label_values(annotation: dict) -> list[str]:
    """The human-readable values of an annotation: chosen classes, region labels, typed text."""
    values: list[str] = []
    for item in annotation.get("result") or []:
        value = item.get("value") or {}
        for key, found in value.items():
            if key in ("choices", "text", "taxonomy") or key.endswith("labels"):
                for v in found if isinstance(found, list) else [found]:
                    values.append(v if isinstance(v, str) else json.dumps(v))
            elif key == "rating":
                values.append(f"rating {found}")
    return sorted(set(values))
