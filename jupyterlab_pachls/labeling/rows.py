"""Labels as rows: one per (data file, annotation), tied to exact data and label commits."""

from __future__ import annotations

import json

from ..pfs.backend import Backend
from ..pfs.errors import NotFound
from .labelfile import SUFFIX, authors, label_values


def label_rows(backend: Backend, repo: str, ref: str, *, data: str | None = None, path: str = "/") -> list[dict]:
    """Every annotation in the label files of ``repo@ref`` below ``path``.

    ``data`` (a repo name) keeps only labels made on that data repo. Each row has the data
    file, repo and commit, the label commit, the annotation id, who created it (``created_by``,
    also as ``annotator``) and who last changed it (``updated_by``), label values, times and the
    raw Label Studio result.
    """
    label_commit = backend.inspect_commit(repo, ref)
    rows = []
    for info in backend.walk(repo, label_commit.id, path):
        if info.is_dir or not info.path.endswith(SUFFIX):
            continue
        try:
            document = json.loads(backend.get_file(repo, label_commit.id, info.path))
        except (NotFound, ValueError):
            continue
        source = document.get("data") or {}
        if data is not None and source.get("repo") != data:
            continue
        for annotation in document.get("annotations", []):
            created_by, updated_by = authors(annotation)
            rows.append({
                "data_path": source.get("path"),
                "data_repo": source.get("repo"),
                "data_commit": source.get("commit"),
                "label_path": info.path,
                "label_repo": repo,
                "label_commit": label_commit.id,
                "annotation": annotation.get("id"),
                "annotator": created_by,
                "created_by": created_by,
                "updated_by": updated_by,
                "labels": label_values(annotation),
                "created_at": annotation.get("created_at"),
                "updated_at": annotation.get("updated_at"),
                "lead_time": annotation.get("lead_time"),
                "was_cancelled": annotation.get("was_cancelled", False),
                "result": annotation.get("result", []),
            })
    rows.sort(key=lambda r: (r["data_path"] or "", r["annotation"] or 0))
    return rows
