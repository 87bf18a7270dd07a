"""JSON of the REST API -> the value types (pfs model, mounts, label history)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ..pfs import Branch, BranchMove, Commit, FileChange, FileInfo, Provenance, Repo
from .model import Mount, PendingChange, PendingChanges


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _pick(cls: type, data: dict, **converted: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    values.update({k: v for k, v in converted.items() if k in names})
    return cls(**values)


def provenance_from_json(data: dict) -> Provenance:
    return _pick(Provenance, data)


def commit_from_json(data: dict | None) -> Commit | None:
    if data is None:
        return None
    return _pick(
        Commit, data, started=_dt(data.get("started")), finished=_dt(data.get("finished")),
        provenance=tuple(provenance_from_json(p) for p in data.get("provenance") or ()),
        metadata=dict(data.get("metadata") or {}),
    )


def repo_from_json(data: dict) -> Repo:
    branches = tuple(b["name"] if isinstance(b, dict) else b for b in data.get("branches") or ())
    return _pick(Repo, data, created=_dt(data.get("created")), branches=branches)


def branch_from_json(data: dict) -> Branch:
    return _pick(Branch, data, head=commit_from_json(data.get("head")))


def move_from_json(data: dict) -> BranchMove:
    return _pick(BranchMove, data, time=_dt(data.get("time")))


def file_from_json(data: dict | None) -> FileInfo | None:
    return None if data is None else _pick(FileInfo, data)


def change_from_json(data: dict) -> FileChange:
    return _pick(FileChange, data, old=file_from_json(data.get("old")), new=file_from_json(data.get("new")))


def mount_from_json(data: dict) -> Mount:
    return _pick(Mount, data)


def changes_from_json(data: dict) -> PendingChanges:
    return _pick(
        PendingChanges, data,
        changes=tuple(_pick(PendingChange, c) for c in data.get("changes") or ()),
        unsupported=tuple(data.get("unsupported") or ()),
    )


def blame_from_json(data: dict):
    from ..labeling.history import BlameEntry

    return _pick(
        BlameEntry, data, time=_dt(data.get("time")),
        annotators=tuple(data.get("annotators") or ()), changed_by=tuple(data.get("changed_by") or ()),
        labels=tuple(data.get("labels") or ()),
        provenance=tuple(provenance_from_json(p) if isinstance(p, dict) else p
                         for p in data.get("provenance") or ()),
    )


def annotation_change_from_json(data: dict):
    from ..labeling.history import AnnotationChange

    return _pick(AnnotationChange, data, changed_by=tuple(data.get("changed_by") or ()),
                 before=tuple(data.get("before") or ()), after=tuple(data.get("after") or ()))
