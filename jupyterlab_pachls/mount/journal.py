"""The commit journal of a read-write mount, and the recovery from one a stopped process left behind.

A commit writes ``stage/<name>/commit.json`` (the base, the message, the author, then the opened
commit's id) before it opens the commit and removes it only once the mount's stage and base follow
the landed commit. A manager that finds one (the previous process died mid-commit) settles it before
showing the mount: if the commit landed on the branch, the stage is moved onto it (what landed is no
longer pending; nothing else changes); if not, the open commit is aborted and the stage is left as it
was. Once a commit has landed, the journal names it and the table's base is it; if the stage cannot
follow right then (the backend gone), the mount is in error until a refresh (or the next start)
moves the stage onto the landed commit.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..atomic_write import write_json
from ..pfs.backend import Backend
from ..pfs.errors import NotFound, PfsError
from ..pfs.model import Commit
from .model import BEHIND_LIMIT, MountRecord
from .overlay import Overlay
from .plain import DirectoryWorkspace
from .tree import CommitTree, ContentCache

log = logging.getLogger(__name__)
JOURNAL = "commit.json"


def branch_head(backend: Backend, record: MountRecord) -> str | None:
    """The id of the head of the mount's branch; None when the branch has no commit (or, for a mount
    made before it, does not exist yet)."""
    try:
        head = backend.inspect_branch(record.repo, record.branch).head
    except NotFound:
        if record.base is not None:
            raise
        return None
    return head.id if head else None


class CommitJournal:
    """The journal of one read-write mount, kept in its stage directory."""

    def __init__(self, backend: Backend, cache: ContentCache, record: MountRecord, stage_dir: Path) -> None:
        self.backend = backend
        self.cache = cache
        self.record = record
        self.stage_dir = stage_dir
        self.path = stage_dir / JOURNAL

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, note: dict) -> None:
        write_json(self.path, note)

    def drop(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _tree(self, base: str | None) -> CommitTree:
        return CommitTree(self.backend, self.record.repo, base, self.cache)

    # -- did it land? --------------------------------------------------------------------------
    def _find_landed(self, note: dict) -> Commit | None:
        """The journal's commit if it is on the branch after the mount's base, else None."""
        record = self.record
        try:
            head = branch_head(self.backend, record)
        except NotFound:
            return None
        if head is None or head == record.base:
            return None
        before = None
        for _ in range(BEHIND_LIMIT // 100):
            page = self.backend.list_commits(record.repo, head, limit=100, before=before)
            for commit in page:
                if commit.id == record.base:
                    return None
                if commit.id == note.get("commit") or (
                        note.get("started") and commit.message == note.get("message")
                        and commit.author == note.get("author")
                        and commit.started is not None and commit.started.isoformat() == note["started"]):
                    return commit  # the id, or (message, author, start) where landing makes a new id
            if len(page) < 100:
                return None
            before = page[-1].id
        return None

    def landed_anyway(self, note: dict) -> Commit | None:
        """The journal's commit if it is on the branch after all; None if not, or if nobody can tell."""
        try:
            return self._find_landed(note)
        except PfsError:
            return None

    def _abort_opened(self, note: dict) -> bool:
        """Abort the journal's commit if it is still open (its process is gone). False when it had
        finished: it is the mount's base already (the process died just after recording it)."""
        record = self.record
        if note.get("commit"):
            try:
                opened = self.backend.inspect_commit(record.repo, note["commit"])
            except NotFound:
                return True  # aborted already
            if not opened.is_open:
                if opened.id == record.base:
                    return False
                # finished but never landed (Pachyderm: a staged commit on its private branch):
                # aborting it drops what it left behind
                try:
                    self.backend.abort_commit(opened)
                except PfsError:
                    pass
                return True
            candidates = [opened]
        else:  # died between writing the journal and opening the commit: find it, if it was opened
            lister = getattr(self.backend, "open_commits", None)
            candidates = [c for c in (lister(record.repo, record.branch) if lister else [])
                          if c.message == note.get("message") and c.author == note.get("author")
                          and c.started is not None and c.started.timestamp() >= note.get("time", 0) - 1]
        for commit in candidates:
            try:
                self.backend.abort_commit(commit)
            except PfsError:
                log.warning("could not abort the open commit %s of mount %s", commit.id, record.name)
        return True

    # -- following a landed commit -------------------------------------------------------------
    def catch_up(self, stage: Overlay | DirectoryWorkspace, note: dict) -> CommitTree:
        """Move a stage made against ``note["base"]`` onto the landed commit ``note["landed"]``: what
        landed is no longer pending, everything else stays pending. Safe to run again after a failure."""
        tree = self._tree(note["landed"])
        if isinstance(stage, DirectoryWorkspace):
            stage.reindex(tree)
            parent = note.get("parent")
            if parent is not None and parent != note.get("base"):  # landed on top of other commits
                stage.apply(tree, self.backend.diff(self.record.repo, note.get("base"), parent))
        else:
            stage.rebase(tree)
        return tree

    def settle(self, target: Path) -> CommitTree | None:
        """A previous process died during a commit of this mount, or a commit landed and the mount could
        not follow it. Landed: the stage follows it, the record's base becomes it and its tree is
        returned (the caller saves the table, then drops the journal). Not landed: the open commit is
        aborted, the stage is kept, None."""
        record = self.record
        note = json.loads(self.path.read_text())
        if note.get("landed"):  # it landed, and the journal says so
            landed_id, parent = note["landed"], note.get("parent")
        else:
            found = self._find_landed(note)
            landed_id, parent = (found.id, found.parent) if found is not None else (None, None)
            note.update(base=record.base, landed=landed_id, parent=parent)
        if landed_id is None:
            if self._abort_opened(note):
                log.warning("mount %s: the commit in progress when the server stopped did not land; "
                            "its changes are still pending", record.name)
            return None
        old_tree = self._tree(note.get("base"))
        if (self.stage_dir / "upper").is_dir():
            overlay = Overlay(self.stage_dir, old_tree)
            try:
                tree = self.catch_up(overlay, note)
            finally:
                overlay.close()
        elif (self.stage_dir / "index.json").exists() and target.is_dir() and not target.is_symlink():
            workspace = DirectoryWorkspace(target, self.stage_dir, old_tree)
            try:
                workspace.open()
                tree = self.catch_up(workspace, note)
            finally:
                workspace.close()
        else:
            tree = self._tree(landed_id)
        moved = record.base != landed_id
        record.base = landed_id
        log.warning("mount %s: commit %s landed %s; the mount now follows it", record.name, landed_id,
                    "before the server stopped" if moved else "but the mount had not caught up with it")
        return tree
