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
#: Fields kept from Label Studio besides the id, the authors and the result.
ANNOTATION_FIELDS = ("created_at", "updated_at", "lead_time", "was_cancelled", "ground_truth")
#: What an annotation says (as opposed to who said it, and when): what makes it "changed".
CONTENT_FIELDS = ("result", "lead_time", "was_cancelled", "ground_truth")


def label_path(data_path: str) -> str:
    """``/cats/001.png`` -> ``/cats/001.png.json``."""
    return normalize_path(data_path, allow_root=False) + SUFFIX


def data_path(label_file: str) -> str:
    """``/cats/001.png.json`` -> ``/cats/001.png``."""
    path = normalize_path(label_file, allow_root=False)
    return path[: -len(SUFFIX)] if path.endswith(SUFFIX) else path


def user_email(user: Any, users: dict[int, str]) -> str | None:
    """Label Studio gives a user as an id or a user object; we record the email."""
    if user is None:
        return None
    if isinstance(user, dict):
        return user.get("email") or users.get(user.get("id"), str(user.get("id")))
    return users.get(user, str(user))


def authors(annotation: dict) -> tuple[str | None, str | None]:
    """(who created, who last changed) an annotation of a label file; old files name only ``annotator``."""
    created = annotation.get("created_by") or annotation.get("annotator")
    return created, annotation.get("updated_by") or created


def content(annotation: dict) -> dict:
    return {field: annotation.get(field) or None for field in CONTENT_FIELDS}


def canonical_annotation(annotation: dict, users: dict[int, str], restored: dict | None = None) -> dict:
    """The label file's form of a Label Studio annotation.

    ``restored`` is the committed form of the annotation a resync recreated as this one (Label Studio
    gives it a new id and its own times): unchanged since, it is written back exactly as committed,
    so a resync of what is committed changes nothing; changed since, it keeps its id, creator and
    creation time, and names the one who changed it."""
    created_by = user_email(annotation.get("completed_by"), users)
    updated_by = user_email(annotation.get("updated_by"), users) or created_by
    doc = {"id": annotation["id"], "created_by": created_by, "updated_by": updated_by,
           "result": annotation.get("result") or []}
    for field in ANNOTATION_FIELDS:
        if annotation.get(field) is not None:
            doc[field] = annotation[field]
    if restored is not None:
        if content(doc) == content(restored):
            return dict(restored)
        original_creator, _ = authors(restored)
        doc.update(id=restored["id"], created_by=original_creator)
        if restored.get("created_at") is not None:
            doc["created_at"] = restored["created_at"]
    return doc


def label_document(*, repo: str, commit: str, path: str, task: dict, users: dict[int, str],
                   restored: dict | None = None) -> dict:
    """The label document of one data file from its Label Studio task (with ``annotations``).

    It names no Label Studio task: a task's id is the project's, and one label file is loaded into
    the projects of many sessions.

    ``restored``: Label Studio annotation id -> the committed annotation a resync recreated it from."""
    restored = restored or {}
    annotations = sorted(
        (canonical_annotation(a, users, restored.get(str(a["id"]))) for a in task.get("annotations") or []),
        key=lambda a: a["id"],
    )
    return {
        "schema": SCHEMA,
        "data": {"repo": repo, "commit": commit, "path": normalize_path(path, allow_root=False)},
        "annotations": annotations,
    }


def same_labels(old: dict, new: dict) -> bool:
    """Whether two label documents of one data file say the same: equal annotations (content, authors,
    times). What else they hold is not a label change: the data commit a session was pinned to, and
    the Label Studio task id older files carry (it differs per project)."""
    return old.get("annotations", []) == new.get("annotations", [])


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
