"""The persistent staging area of a read-write FUSE mount.

A read-write mount shows ``base commit + stage``. The stage lives under
``<state_dir>/stage/<name>/``:

- ``upper/``: every file written, created, renamed or truncated, as a plain file at its repo path
  (copy-on-write: the first write to a committed file copies it here first). Directories made
  with ``mkdir`` live here too; empty directories are shown but never committed (a Pachyderm
  commit has no empty directories).
- ``whiteouts.sqlite``: deleted paths. A whiteout on a directory hides everything the base commit
  has below it (files written below it afterwards are still shown, from ``upper/``).

The final state of a path is the upper file if there is one, else the base file unless a whiteout
hides it. ``changes()`` compares that final state with the base commit, file by file, so writing a
file back to its committed content is no change, and a file written then deleted is none either.
Both parts are on disk, so a new process finds the stage exactly as it was left.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
from pathlib import Path

from ..pfs.address import normalize_path
from .model import Change
from .tree import CommitTree


def file_hash(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """sha256 of local files, reused while (size, mtime_ns, inode) stay the same."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int, int], str]] = {}

    def get(self, path: str, st: os.stat_result | None = None) -> str:
        st = st or os.stat(path)
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        known = self._known.get(path)
        if known and known[0] == key:
            return known[1]
        digest = file_hash(path)
        self._known[path] = (key, digest)
        return digest


class Overlay:
    def __init__(self, root: Path, tree: CommitTree) -> None:
        self.root = Path(root)
        self.upper = self.root / "upper"
        self.upper.mkdir(parents=True, exist_ok=True)
        self.tree = tree
        self.lock = threading.RLock()
        self.open_for_write: dict[str, int] = {}  # repo path -> open write handles
        self.hashes = HashCache()
        self._db = sqlite3.connect(self.root / "whiteouts.sqlite", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS whiteouts (path TEXT PRIMARY KEY) WITHOUT ROWID")
        self.whiteouts: set[str] = {p for (p,) in self._db.execute("SELECT path FROM whiteouts")}

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- paths -----------------------------------------------------------------------
    def upper_path(self, path: str) -> str:
        return str(self.upper) + ("" if path == "/" else path)

    def hidden(self, path: str) -> bool:
        if not self.whiteouts:
            return False
        node = path
        while True:
            if node in self.whiteouts:
                return True
            if node in ("/", ""):
                return False
            node = node.rsplit("/", 1)[0] or "/"

    def base_info(self, path: str):
        """The base commit's entry at ``path`` if the stage does not hide it."""
        if self.hidden(path):
            return None
        return self.tree.lookup(path)

    def add_whiteout(self, path: str) -> None:
        if path not in self.whiteouts:
            self._db.execute("INSERT OR IGNORE INTO whiteouts VALUES (?)", (path,))
            self.whiteouts.add(path)

    def drop_whiteouts(self, paths) -> None:
        paths = [p for p in paths if p in self.whiteouts]
        if paths:
            self._db.executemany("DELETE FROM whiteouts WHERE path=?", [(p,) for p in paths])
            self.whiteouts.difference_update(paths)

    # -- the merged view -----------------------------------------------------------------
    def upper_files(self):
        """(repo path, local path, stat) of every regular file in ``upper/``."""
        base = str(self.upper)
        for dirpath, dirnames, filenames in os.walk(base):
            for name in filenames:
                local = os.path.join(dirpath, name)
                st = os.lstat(local)
                if not os.path.isfile(local) or os.path.islink(local):
                    continue
                yield local[len(base):], local, st

    def changes(self) -> list[Change]:
        with self.lock:
            result: dict[str, Change] = {}
            in_upper: set[str] = set()
            for path, local, st in self.upper_files():
                in_upper.add(path)
                old = self.tree.lookup(path)
                old = None if old is None or old.is_dir else old
                if old is not None and old.size == st.st_size and old.hash == self.hashes.get(local, st):
                    continue
                result[path] = Change(path, "modified" if old else "added", st.st_size,
                                      old.size if old else None, Path(local))
            for white in sorted(self.whiteouts):
                info = self.tree.lookup(white)
                if info is None:
                    continue
                victims = self.tree.walk_files(white) if info.is_dir else [(white, info)]
                for path, old in victims:
                    if path not in in_upper:
                        result[path] = Change(path, "deleted", 0, old.size, None)
            return [result[p] for p in sorted(result)]

    # -- after a commit / refresh -----------------------------------------------------------
    def prune(self) -> None:
        """Drop staged entries that equal the base: upper files with the base's content (unless open
        for writing) and whiteouts that hide nothing."""
        with self.lock:
            for path, local, st in list(self.upper_files()):
                if path in self.open_for_write:
                    continue
                old = self.tree.lookup(path)
                if old is not None and not old.is_dir and old.size == st.st_size \
                        and old.hash == self.hashes.get(local, st):
                    os.unlink(local)
            self._remove_empty_upper_dirs()
            self.drop_whiteouts([w for w in list(self.whiteouts) if self.tree.lookup(w) is None])

    def _remove_empty_upper_dirs(self) -> None:
        """Directories in upper that the base also has and that hold nothing staged."""
        base = str(self.upper)
        for dirpath, _dirnames, _filenames in sorted(os.walk(base, topdown=False), key=lambda t: -len(t[0])):
            if dirpath == base:
                continue
            path = dirpath[len(base):]
            info = self.tree.lookup(path)
            if info is not None and info.is_dir and not self.hidden(path):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass

    def rebase(self, tree: CommitTree) -> None:
        with self.lock:
            self.prune()
            self._narrow_directory_whiteouts(tree)
            self.tree = tree
            self.prune()

    def _narrow_directory_whiteouts(self, tree: CommitTree) -> None:
        """A whiteout on a directory (removed or renamed here) hides everything below it, also files
        that other commits added there since: shown as deleted, the next commit would delete them.
        Where ``tree`` has such files, hide only the files the old base had below the directory."""
        for white in sorted(self.whiteouts):
            before, after = self.tree.lookup(white), tree.lookup(white)
            if after is None or not after.is_dir:
                continue
            old_files = {p for p, _ in self.tree.walk_files(white)} if before is not None and before.is_dir else set()
            if any(p not in old_files for p, _ in tree.walk_files(white)):
                self.drop_whiteouts([white])
                for path in old_files:
                    self.add_whiteout(path)

    def discard(self) -> None:
        with self.lock:
            for child in self.upper.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            self._db.execute("DELETE FROM whiteouts")
            self.whiteouts.clear()
            self.open_for_write.clear()


def check_path(path: str) -> str:
    """A FUSE path, checked like any repo path (no '..', control characters, overlong names)."""
    return normalize_path(path)
