"""Questions answered from label history: who labeled this, what changed between rounds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ..pfs.backend import Backend
from ..pfs.errors import NotFound
from ..pfs.file_history import content_key
from ..pfs.model import _Json
from .labelfile import authors, content, data_path, decode, label_path, label_values, same_labels


@dataclass(frozen=True)
class BlameEntry(_Json):
    """One label commit that changed the label of a data file."""

    commit: str
    time: datetime | None
    author: str
    message: str
    change: str  # added, modified, deleted
    annotators: tuple[str, ...]  # who created the annotations the label holds after this commit
    labels: tuple[str, ...]
    data_commit: str | None
    provenance: tuple = field(default=())
    changed_by: tuple[str, ...] = ()  # who made the annotation changes this commit records


@dataclass(frozen=True)
class AnnotationChange(_Json):
    path: str  # the data file
    annotation: int
    change: str  # added, modified, deleted
    annotator: str  # who created the annotation
    before: tuple[str, ...]
    after: tuple[str, ...]
    changed_by: tuple[str, ...] = ()  # who changed it (Label Studio records no one for a deletion)


def _document(backend: Backend, repo: str, ref: str, path: str) -> dict | None:
    try:
        return decode(backend.get_file(repo, ref, path))
    except NotFound:
        return None


def _annotations(document: dict | None) -> dict:
    return {a["id"]: a for a in (document or {}).get("annotations", [])}


def _changers(before: dict, after: dict) -> set[str]:
    """Who made the annotations of ``after`` that are new or changed since ``before`` (id -> annotation)."""
    return {authors(a)[1] for i, a in after.items()
            if authors(a)[1] and (i not in before or content(before[i]) != content(a))}


def session_of_data(sessions: Iterable, repo: str, commit: str | None):
    """The labeling session that holds the labels of files shown by a mount of ``repo`` at ``commit``:
    the newest session labeling that very commit, else the newest labeling that repo (its labels
    branch is where a file's labels are, whichever commit of the data a mount shows); None if none.

    Any mount of the data counts, not only the session's own data mount.
    """
    of_repo = [s for s in sessions if s.data_repo == repo]
    same_commit = [s for s in of_repo if commit and s.data_commit == commit]
    candidates = same_commit or of_repo
    return max(candidates, key=lambda s: s.created) if candidates else None


def blame(backend: Backend, repo: str, ref: str, path: str, *, limit: int = 1000) -> list[BlameEntry]:
    """Every commit in the history of ``ref`` that changed the label of ``path``, newest first.

    ``path`` may name the data file (``/cats/001.png``) or its label file (``/cats/001.png.json``).
    The walk compares the store's hash of the file in each commit and its parent (equal hashes
    within one store mean equal content); only the commits that changed it are read, and a commit that
    rewrote the file with the same annotations (see ``same_labels``) is no change of its label.
    """
    target = label_path(data_path(path))
    entries: list[BlameEntry] = []
    before = None
    scanned = 0
    # newest first, a commit's parent is the next commit looked at: what was read of the parent (its
    # content key, its document if read) is kept for that turn, so no commit's file is read twice
    parent_seen: dict[str, tuple[tuple[str, str] | None, dict | None]] = {}
    while scanned < limit:
        page = backend.list_commits(repo, ref, limit=min(100, limit - scanned), before=before)
        if not page:
            break
        for commit in page:
            scanned += 1
            seen = parent_seen.pop(commit.id, None)
            mine = seen[0] if seen else content_key(backend, repo, commit.id, target)
            parents = content_key(backend, repo, commit.parent, target)
            parent_seen = {commit.parent: (parents, None)} if commit.parent else {}
            if mine == parents:
                continue
            document = ((seen[1] if seen and seen[1] is not None else _document(backend, repo, commit.id, target))
                        if mine else None)
            previous = _document(backend, repo, commit.parent, target) if parents else None
            if commit.parent:
                parent_seen = {commit.parent: (parents, previous)}
            if document is not None and previous is not None and same_labels(previous, document):
                continue  # rewritten with the same annotations (an old file's task id dropped): no label change
            annotations = _annotations(document)
            entries.append(BlameEntry(
                commit=commit.id, time=commit.finished, author=commit.author, message=commit.message,
                change="added" if parents is None else ("deleted" if mine is None else "modified"),
                annotators=tuple(sorted({authors(a)[0] for a in annotations.values() if authors(a)[0]})),
                changed_by=tuple(sorted(_changers(_annotations(previous), annotations))),
                labels=tuple(sorted({v for a in annotations.values() for v in label_values(a)})),
                data_commit=(document or {}).get("data", {}).get("commit"),
                provenance=commit.provenance,
            ))
        before = page[-1].id
    return entries


def diff_labels(backend: Backend, repo: str, old_ref: str | None, new_ref: str) -> list[AnnotationChange]:
    """Annotation-level changes between two label commits: which items changed label, from what to what, by whom."""
    changes: list[AnnotationChange] = []
    for file_change in backend.diff(repo, old_ref, new_ref):
        if not file_change.path.endswith(".json"):
            continue
        old = _document(backend, repo, old_ref, file_change.path) if file_change.old else None
        new = _document(backend, repo, new_ref, file_change.path) if file_change.new else None
        before = {a["id"]: a for a in (old or {}).get("annotations", [])}
        after = {a["id"]: a for a in (new or {}).get("annotations", [])}
        for annotation_id in sorted(set(before) | set(after)):
            a, b = before.get(annotation_id), after.get(annotation_id)
            if a == b:
                continue
            kind = "added" if a is None else ("deleted" if b is None else "modified")
            changes.append(AnnotationChange(
                path=data_path(file_change.path), annotation=annotation_id, change=kind,
                annotator=authors(b or a)[0],
                changed_by=tuple(sorted(_changers({annotation_id: a} if a else {}, {annotation_id: b} if b else {}))),
                before=tuple(label_values(a)) if a else (), after=tuple(label_values(b)) if b else (),
            ))
    return changes
