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

import errno
import os
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from pathlib import Path

from ..pfs.address import normalize_path
from ..pfs.errors import InvalidPath, Unavailable
from .model import Change
from .tree import CommitTree, file_hash


#: seconds a pending count waits for the overlay before answering the count found last time
COUNT_WAIT = 1.0
#: beside the stages (``stage/``; no mount name starts with a dot): an ``upper/`` set aside whole after
#: a commit landed everything in it, removed in the background (and by the next process if it stopped)
SET_ASIDE = ".landed-"


#: a file whose mtime is this close (ns) to now may be rewritten within the same timestamp tick (1-10 ms on
#: coarse clocks, a second or two on some file systems) keeping its size and mtime: its stat cannot vouch
#: for its bytes yet (git's "racily clean" entries)
RACY_NS = 2_000_000_000


def racy(st_mtime_ns: int, since_ns: int) -> bool:
    """Whether a file with this mtime may change without its stat showing it after ``since_ns``."""
    return st_mtime_ns >= since_ns - RACY_NS


def _stat_key(st: os.stat_result) -> tuple[int, int, int]:
    """What changes when a file's bytes are rewritten in place or it is replaced."""
    return st.st_size, st.st_mtime_ns, st.st_ino


class HashCache:
    """sha256 of local files, reused while (size, mtime_ns, inode) stay the same."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int, int], str]] = {}

    def get(self, path: str, st: os.stat_result | None = None) -> str:
        st = st or os.stat(path)
        key = _stat_key(st)
        known = self._known.get(path)
        if known and known[0] == key:
            return known[1]
        started = time.time_ns()
        digest = file_hash(path)
        if not racy(st.st_mtime_ns, started):
            self._known[path] = (key, digest)
        return digest


class Overlay:
    def __init__(self, root: Path, tree: CommitTree) -> None:
        self.root = Path(root)
        self.upper = self.root / "upper"
        self.upper.mkdir(parents=True, exist_ok=True)
        self.removing: threading.Thread | None = None  # removing an upper/ set aside by a commit
        for left in self.root.parent.glob(SET_ASIDE + "*"):  # by a process that stopped before it was done
            _remove_in_background(left)
        self.tree = tree
        self.lock = threading.RLock()
        self.open_for_write: dict[str, int] = {}  # repo path -> open write handles
        self.hashes = HashCache()
        self._counted = 0  # what the last pending_count found
        self.scanned: dict[str, tuple[int, int, int]] = {}  # repo path -> _stat_key, by the last changes()
        # called (under the lock) after the merged view changed without the kernel seeing it: a FUSE
        # mount that lets the kernel cache entries drops them
        self.on_change = None
        self.ignore = None  # ignore.IgnoreRules: paths never pending (set by the mount manager)
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

    def same_as_base(self, path: str, old, local: str, st: os.stat_result) -> bool:
        """Whether the local file holds the base commit's bytes of ``path`` (sizes first; then the
        sha256 of both: the store's own hash may not be one)."""
        if old.size != st.st_size:
            return False
        return self.tree.content_hash(path, old) == self.hashes.get(local, st)

    # -- the merged view -----------------------------------------------------------------
    def upper_files(self):
        """(repo path, local path, lstat) of every regular file in ``upper/``: one ``lstat`` per file
        (the directory listing already says which entries are directories)."""
        base = str(self.upper)
        stack = [base]
        while stack:
            try:
                listing = os.scandir(stack.pop())
            except (FileNotFoundError, NotADirectoryError):
                continue
            with listing:
                for entry in listing:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        yield entry.path[len(base):], entry.path, st

    def pending_count(self) -> int:
        """How many changes ``changes()`` finds (the staged files and whiteouts only are looked at).
        While another operation holds the overlay for long (a copy-up of a big file, say), the count
        found last time: a status waits at most ``COUNT_WAIT`` for it (FUSE calls hold it briefly)."""
        if not self.lock.acquire(timeout=COUNT_WAIT):
            return self._counted
        try:
            self._counted = len(self.changes())
            return self._counted
        finally:
            self.lock.release()

    def changes(self) -> list[Change]:
        return self.changes_and_ignored()[0]

    def changes_and_ignored(self) -> tuple[list[Change], list[Change]]:
        """The pending changes, and the changes the ignore rules leave out (never pending, never
        committed: a rebase must not hide or drop them unasked)."""
        with self.lock:
            result: dict[str, Change] = {}
            in_upper: set[str] = set()
            self.scanned = {}
            for path, local, st in self.upper_files():
                in_upper.add(path)
                self.scanned[path] = _stat_key(st)
                old = self.tree.lookup(path)
                old = None if old is None or old.is_dir else old
                if old is not None and self.same_as_base(path, old, local, st):
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
            found = [result[p] for p in sorted(result)]
            left_out = set() if self.ignore is None else self.ignore.ignored(result)
            if not left_out:
                return found, []
            return [c for c in found if c.path not in left_out], [c for c in found if c.path in left_out]

    def drop_staged(self, paths) -> None:
        """Remove the staged files at ``paths`` from ``upper/``: the base's version shows again there
        (what an overwrite asked for moves the stage onto a commit that changed them)."""
        with self.lock:
            try:
                for path in paths:
                    try:
                        os.unlink(self.upper_path(path))
                    except FileNotFoundError:
                        pass
            finally:
                self._changed()

    # -- after a commit / refresh -----------------------------------------------------------
    def prune(self, landed: dict[str, tuple[int, int, int]] | None = None) -> None:
        """Drop staged entries that equal the base: upper files with the base's content (unless open
        for writing) and whiteouts that hide nothing. ``landed``: repo path -> ``_stat_key`` of files
        the base is known to hold the bytes of while their stat is unchanged (just committed from
        here): those are not read again."""
        with self.lock:
            for path, local, st in list(self.upper_files()):
                if path in self.open_for_write:
                    continue
                old = self.tree.lookup(path)
                if old is None or old.is_dir:
                    continue
                if (landed is not None and landed.get(path) == _stat_key(st) and old.size == st.st_size) \
                        or self.same_as_base(path, old, local, st):
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

    def after_commit(self, tree: CommitTree, changes: list[Change]) -> None:
        """``tree`` is the commit that just landed ``changes`` (found by the last ``changes()``, the
        overlay held since): the stage is rebased onto it, and the staged copies of what landed are
        dropped without reading them again (their bytes are the commit's, unless written since the
        scan: then the stat differs and they are compared as any file)."""
        with self.lock:
            landed = {c.path: self.scanned[c.path] for c in changes
                      if c.change != "deleted" and c.path in self.scanned}
            if not self.whiteouts and not self.open_for_write and self._holds_only(landed, tree):
                # everything staged landed: one rename instead of removing the files one by one while the
                # commit waits (on a busy disk each removal costs about as much as writing the file)
                aside = self.root.parent / f"{SET_ASIDE}{uuid.uuid4().hex[:12]}"
                os.rename(self.upper, aside)
                self.upper.mkdir()
                self.removing = _remove_in_background(aside)
            self.rebase(tree, landed)

    def _holds_only(self, landed: dict[str, tuple[int, int, int]], tree: CommitTree) -> bool:
        """Whether ``upper/`` holds only files of ``landed`` (stat unchanged) in directories ``tree`` has.
        Reads ``tree``'s top directory in any case: a stage follows a commit only once the store answers
        for it (else the mount says it could not follow, as when the copies are compared one by one)."""
        tree.listdir("/")
        for dirpath, dirnames, filenames in os.walk(self.upper):
            path = dirpath[len(str(self.upper)):]
            if path:
                info = tree.lookup(path)
                if info is None or not info.is_dir:
                    return False  # an empty directory made here: shown, never committed
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if landed.get(f"{path}/{name}") != _stat_key(st):
                    return False
            if any(os.path.islink(os.path.join(dirpath, name)) for name in dirnames):
                return False
        return True

    def rebase(self, tree: CommitTree, landed: dict[str, tuple[int, int, int]] | None = None) -> None:
        with self.lock:
            try:
                self.prune()
                self._narrow_directory_whiteouts(tree)
                self.tree = tree
                self.prune(landed)
            finally:
                self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

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

    # -- many files at once, without the kernel ------------------------------------------------
    def stage_files(self, files: dict[str, bytes | None]) -> None:
        """Write (bytes) and delete (None) files of the merged view straight into the stage: new bytes
        into ``upper/`` (one rename each), deletions as whiteouts; all of them or none (see
        ``StagedFiles``). Paths are checked repo paths; a directory of the merged view at a path, or a
        file where a path needs a directory, is refused (InvalidPath). A file still open for writing
        through the mount keeps its handle on the replaced bytes (as after a rename over it)."""
        with self.lock:
            for path, data in files.items():
                self._check_merged(path, writing=data is not None)
            saved = set(self.whiteouts)

            def after(path: str, data: bytes | None) -> None:
                if data is not None:
                    self.drop_whiteouts([path])
                elif self.base_info(path) is not None:
                    self.add_whiteout(path)

            committed = False

            def done() -> None:  # the whiteouts land before the replaced files are dropped
                nonlocal committed
                self._db.execute("COMMIT")
                committed = True

            self._db.execute("BEGIN")
            try:
                stage_into(self.upper, files, after=after, done=done)
            except BaseException:
                if not committed:
                    self._db.execute("ROLLBACK")
                    self.whiteouts = saved
                raise
            finally:
                self._changed()

    def _check_merged(self, path: str, *, writing: bool) -> None:
        if not os.path.lexists(self.upper_path(path)):
            info = self.base_info(path)
            if info is not None and info.is_dir:
                raise InvalidPath(f"{path} is a directory; only files are staged", path=path)
        if not writing:
            return
        node = path.rsplit("/", 1)[0]
        while node:
            if not os.path.lexists(self.upper_path(node)):
                info = self.base_info(node)
                if info is not None and not info.is_dir:
                    raise InvalidPath(f"{node} is a file, so {path} cannot be written", path=path)
            node = node.rsplit("/", 1)[0]

    def discard(self) -> None:
        """Drop every pending change. What the ignore rules leave out is no pending change and stays
        (a checkpoint, a scratch file), as in a mount without FUSE."""
        with self.lock:
            try:
                files = {path: local for path, local, _st in self.upper_files()}
                kept = set() if self.ignore is None else self.ignore.ignored(files)
                for dirpath, dirnames, filenames in os.walk(self.upper, topdown=False):
                    for name in filenames:
                        local = os.path.join(dirpath, name)
                        if local[len(str(self.upper)):] not in kept:
                            os.unlink(local)
                    for name in dirnames:
                        local = os.path.join(dirpath, name)
                        if os.path.islink(local):
                            os.unlink(local)
                        elif not os.listdir(local):  # holds nothing kept
                            os.rmdir(local)
                # a folder's whiteout is asked as a folder ("name/"): `__pycache__/` matches folders only
                asked = {w: w + "/" if (info := self.tree.lookup(w)) is not None and info.is_dir else w
                         for w in self.whiteouts}
                white_kept = set() if self.ignore is None else self.ignore.ignored(asked.values())
                self.drop_whiteouts([w for w, as_asked in asked.items() if as_asked not in white_kept])
                self.open_for_write = {p: n for p, n in self.open_for_write.items() if p in kept}
            finally:
                self._changed()


def _remove_in_background(path: Path) -> threading.Thread:
    thread = threading.Thread(target=shutil.rmtree, args=(path,), kwargs={"ignore_errors": True},
                              name="pachls-remove-landed", daemon=True)
    thread.start()
    return thread


def check_path(path: str) -> str:
    """A FUSE path, checked like any repo path (no '..', control characters, overlong names)."""
    return normalize_path(path)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class StagedFiles:
    """Write and delete many files below a real directory ``root`` as one step, all or nothing.

    Every path is reached through directory descriptors opened with ``O_NOFOLLOW`` from ``root``
    down, so a symlink (or a file) planted anywhere on the way is refused (InvalidPath), never
    followed; a symlink, directory or special file at a target is refused too. ``prepare`` writes every
    new file's bytes to a temporary file in its directory (creating missing directories); ``apply``
    puts them in place with one rename each (a reader sees the old bytes or the new, never part) and
    moves deleted files aside; ``finish`` drops what was set aside; ``abort`` (on any failure) puts
    everything back as it was: nothing is half-staged.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = str(root)
        self.token = uuid.uuid4().hex[:12]
        self._fds: dict[str, int] = {}
        self._made: list[tuple[int, str]] = []  # directories made: (parent fd, name)
        self._temps: dict[str, tuple[int, str]] = {}  # repo path -> (dir fd, temporary name)
        self._aside: list[tuple[int, str]] = []  # old entries set aside: (dir fd, name)
        self._undo: list = []
        self._count = 0

    # -- directories --------------------------------------------------------------------
    def _dir(self, path: str, create: bool) -> int | None:
        """A descriptor of the directory at repo path ``path``; None if missing (and not ``create``)."""
        fd = self._fds.get(path)
        if fd is not None:
            return fd
        if path == "/":
            try:
                fd = os.open(self.root, _DIR_FLAGS)
            except OSError as exc:
                raise Unavailable(f"{self.root} is no longer a directory of the mount", path=self.root) from exc
        else:
            parent, name = path.rsplit("/", 1)
            pfd = self._dir(parent or "/", create)
            if pfd is None:
                return None
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(name, 0o755, dir_fd=pfd)
                self._made.append((pfd, name))
                fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidPath(f"{path} is a symlink or a file, not a directory: nothing below it is "
                                      "written; remove it and try again", path=path) from None
                raise
        self._fds[path] = fd
        return fd

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        parent, name = path.rsplit("/", 1)
        return parent or "/", name

    def entry(self, path: str) -> os.stat_result | None:
        """lstat of ``path`` (None if it or a directory above it is missing); refused on the way as above."""
        parent, name = self._split(path)
        fd = self._dir(parent, False)
        if fd is None:
            return None
        try:
            return os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return None

    def check(self, path: str) -> os.stat_result | None:
        """Refuse a target that is not a regular file (or absent); return its lstat."""
        st = self.entry(path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) \
                else "a special file"
            raise InvalidPath(f"{path} is {kind}; only regular files are staged: remove it and try again",
                              path=path)
        return st

    # -- the two steps -----------------------------------------------------------------
    def prepare(self, path: str, data: bytes) -> None:
        parent, _name = self._split(path)
        fd = self._dir(parent, True)
        self._count += 1
        tmp = f".pachls-stage-{self.token}-{self._count}"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        self._temps[path] = (fd, tmp)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view):]
        finally:
            os.close(out)

    def _set_aside(self, fd: int, name: str, *, keep: bool) -> None:
        """Keep the entry ``name`` aside (a hard link when ``keep``, else moved) so abort can bring it back."""
        self._count += 1
        aside = f".pachls-old-{self.token}-{self._count}"
        if keep:
            try:
                os.link(name, aside, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                self._aside.append((fd, aside))
                self._undo.append(lambda: os.replace(aside, name, src_dir_fd=fd, dst_dir_fd=fd))
                return
            except OSError:
                pass  # no hard links here: move it (the caller's lock keeps readers of the mount out)
        os.rename(name, aside, src_dir_fd=fd, dst_dir_fd=fd)
        self._aside.append((fd, aside))
        self._undo.append(lambda: os.replace(aside, name, src_dir_fd=fd, dst_dir_fd=fd))

    def put(self, path: str) -> None:
        """Put the prepared bytes of ``path`` in place."""
        fd, tmp = self._temps[path]
        _parent, name = self._split(path)
        if self.entry(path) is not None:
            self._set_aside(fd, name, keep=True)
        else:
            self._undo.append(lambda: os.unlink(name, dir_fd=fd))
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        del self._temps[path]

    def remove(self, path: str) -> bool:
        """Remove the file at ``path`` (set aside until ``finish``); False if there is none."""
        if self.entry(path) is None:
            return False
        parent, name = self._split(path)
        self._set_aside(self._dir(parent, False), name, keep=False)
        return True

    def finish(self) -> None:
        _unlink_quietly(self._aside)
        self._aside.clear()
        self._undo.clear()
        self._close()

    def abort(self) -> None:
        for undo in reversed(self._undo):
            try:
                undo()
            except OSError:
                pass
        self._undo.clear()
        _unlink_quietly(self._temps.values())
        self._temps.clear()
        _unlink_quietly(self._aside)
        self._aside.clear()
        for pfd, name in reversed(self._made):
            try:
                os.rmdir(name, dir_fd=pfd)
            except OSError:
                pass
        self._made.clear()
        self._close()

    def _close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _unlink_quietly(entries) -> None:
    """Unlink each (directory fd, name); one already gone (or not removable) is left as it is."""
    for fd, name in entries:
        try:
            os.unlink(name, dir_fd=fd)
        except OSError:
            pass


def stage_into(root: str | os.PathLike, files: dict[str, bytes | None], *, after=None, done=None) -> None:
    """Write (bytes) and delete (None) ``files`` (checked repo paths) below the real directory ``root``
    with ``StagedFiles``: all of them or, on any failure, none. ``after(path, data)`` runs for each path
    put in place, ``done()`` once all are, before the files they replaced are dropped: a failure there
    still puts everything back."""
    writer = StagedFiles(root)
    try:
        for path in files:
            writer.check(path)
        for path, data in files.items():
            if data is not None:
                writer.prepare(path, data)
        for path, data in files.items():
            if data is None:
                writer.remove(path)
            else:
                writer.put(path)
            if after is not None:
                after(path, data)
        if done is not None:
            done()
    except BaseException:
        writer.abort()
        raise
    writer.finish()
