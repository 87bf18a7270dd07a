"""The no-FUSE presentation (no /dev/fuse, no CAP_SYS_ADMIN, or ``PACHLS_NO_FUSE=1``).

Read-only mounts: ``<mount_dir>/<name>`` is a symlink to a directory of files built under
``<mount_dir>/.pachls-views/<name>/``. Each file is a file of its own, never a hard link to the
store's blob (the embedded store's blob files, or the mount server's content cache for other
backends): the owner of a hard link could ``chmod +w`` it and edit the store's bytes in place, and
with them every commit sharing that blob. A view's file is a reflink of the blob where the
filesystem has them (FICLONE: btrfs, XFS, ...; instant, the blocks shared copy-on-write, so a write
through the view copies the block it changes and the blob keeps its bytes), else a copy made in the
kernel (``copy_file_range``; on ext4 that is a full copy, about as fast as the disk writes: see
docs/performance.md). So whoever writes to a view, root included, changes that view's file only,
never a committed file. The files are read-only (0444) and so are the view's directories (0555), so
a write without a ``chmod`` fails (EACCES where a FUSE mount answers EROFS; root ignores mode bits).
A refresh builds the new commit's view in a fresh directory and switches the symlink with one
atomic rename. The inode, size, mtime and ctime of every entry of a view are recorded beside it
when it is built (a write, ``chmod``, creation, removal or rename changes one). A refresh to a new
commit copies only the files the diff between the two commits names; every other file is
hard-linked from the shown view when its recorded stat is untouched (a link between two views'
own files, never one to the store; the old view is removed right after). A refresh that stays on
the same commit (the head did not move, or a pinned commit) and a server start keep the view only
while it is untouched. Otherwise the view is built again, so a view edited by hand is replaced by
the commit's content at the next refresh or start.

Read-write mounts: ``<mount_dir>/<name>`` is a real directory holding copies of the base commit's
files (made the same way). Changes are found by a scan against an index of the base (path -> size,
mtime, sha256 of the bytes, computed here: the store's own hash may not be one): size and mtime
first, the hash only when they differ. Symlinks, hard links (a file with more than
one link may be a file from outside) and special files are never followed nor committed: they are
reported as ``unsupported`` and a commit refuses while any exist.

The count of pending changes that a mount's status shows is kept from the last scan while the
watch reports nothing below the directory, and for at most ``RESCAN_AGE`` (30 s). Every directory
the scan reads is watched (inotify) first, so a write, truncation, creation, removal, rename or
mode change made through a path inside the directory is seen and the next count scans again. Some
changes raise no event there: a write through a hard link made outside the directory (the event
goes to the directory of the path used), a write through a shared memory map, a change made by
another host on a network filesystem. Those are counted at the next scan, within ``RESCAN_AGE``.
On NFS, SMB/CIFS, FUSE and 9p (``statfs``), where inotify is unavailable, or past its watch limit,
every count scans. Commits, discards and the list of changes always scan.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import stat
import threading
import time
import uuid
from pathlib import Path

from ..atomic_write import write_json
from ..pfs.address import normalize_path
from ..pfs.errors import InvalidPath, PfsError, Unavailable
from .model import Change
from .overlay import HashCache, racy
from .tree import CommitTree

VIEWS = ".pachls-views"
VIEW_FILE_MODE = 0o444  # a read-only view's files
VIEW_INDEX = ".built.json"  # beside a view directory: what it was built for and the stat of each entry
WORK_FILE_MODE = 0o644  # a read-write mount's files


def _materialize(tree: CommitTree, target: str, *, read_only: bool, reuse=lambda path, local: False) -> dict[str, list]:
    """Write every file of ``tree`` below ``target`` (files of their own, or what ``reuse`` put
    there); return the index of what was written (path -> size, mtime, sha256) for a read-write
    mount, nothing for a read-only view."""
    os.makedirs(target, exist_ok=True)
    index: dict[str, list] = {}
    stack = ["/"]
    while stack:
        directory = stack.pop()
        local_dir = target + ("" if directory == "/" else directory)
        for name, info in (tree.listdir(directory) or {}).items():
            path = ("" if directory == "/" else directory) + "/" + name
            local = local_dir + "/" + name
            if info.is_dir:
                os.mkdir(local)
                stack.append(path)
            elif not reuse(path, local):
                tree.copy_to(path, local, info=info, mode=VIEW_FILE_MODE if read_only else WORK_FILE_MODE)
                if not read_only:
                    st = os.stat(local)
                    index[path] = [st.st_size, st.st_mtime_ns, tree.content_hash(path, info)]
    return index


def _view_stats(root: str) -> dict[str, list[int]]:
    """Relative path -> [inode, size, mtime_ns, ctime_ns] of every entry below ``root`` and of root."""
    def of(local: str) -> list[int]:
        st = os.lstat(local)
        return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    stats = {".": of(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            local = os.path.join(dirpath, name)
            stats[os.path.relpath(local, root)] = of(local)
    return stats


def _chmod_tree(root: str, dir_mode: int) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, dir_mode)


def remove_tree(root: str) -> None:
    if os.path.isdir(root) and not os.path.islink(root):
        _chmod_tree(root, 0o755)
        shutil.rmtree(root, ignore_errors=True)


_IN_CHANGES = (0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800)  # modify, attrib,
# close_write, moved_from/to, create, delete, delete_self, move_self
_IN_ONLYDIR, _IN_DONT_FOLLOW = 0x01000000, 0x02000000
# filesystems whose changes made elsewhere (another host, a FUSE daemon) raise no inotify event here:
# NFS, SMB, CIFS, SMB2, FUSE, 9p
_UNWATCHABLE = {0x6969, 0x517B, 0xFF534D42, 0xFE534D42, 0x65735546, 0x01021997}
RESCAN_AGE = 30.0  # seconds a count may be kept without a scan, whatever the watch says (see the module doc)


def _filesystem_magic(path: str) -> int | None:
    """``statfs``'s f_type of the filesystem holding ``path`` (its first field on Linux), or None."""
    buf = ctypes.create_string_buffer(256)  # larger than struct statfs
    if ctypes.CDLL(None, use_errno=True).statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF


class TreeWatch:
    """Whether anything below a directory tree may have changed since ``changed()`` was last asked,
    by inotify on every directory given to ``watch``. Without inotify (or past its limits) it always
    answers True."""

    def __init__(self, root: str) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd: int | None = None
        if _filesystem_magic(root) in _UNWATCHABLE:
            return  # a network or FUSE filesystem: scan every time
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            self.fd = None  # too many inotify instances for this user: scan every time

    def watch(self, directory: str) -> None:
        """Report changes directly inside ``directory`` from now on (call before reading it)."""
        if self.fd is not None and self._libc.inotify_add_watch(
                self.fd, os.fsencode(directory), _IN_CHANGES | _IN_ONLYDIR | _IN_DONT_FOLLOW) < 0:
            if ctypes.get_errno() not in (errno.ENOENT, errno.ENOTDIR):  # ENOSPC: the watch limit
                self.close()

    def changed(self) -> bool:
        """Whether any change was reported since the last call (True when not watching)."""
        if self.fd is None:
            return True
        seen = False
        while True:
            try:
                seen = bool(os.read(self.fd, 1 << 16)) or seen
            except BlockingIOError:
                return seen

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LinkView:
    """A read-only mount without FUSE: a symlink switched between view directories."""

    def __init__(self, mount_dir: Path, name: str) -> None:
        self.mount_dir = Path(mount_dir)
        self.name = name
        self.link = self.mount_dir / name
        self.views = self.mount_dir / VIEWS / name

    def show(self, tree: CommitTree, *, keep_untouched: bool = False, changed: set[str] | None = None) -> None:
        """Build ``tree``'s view and switch the link to it; with ``keep_untouched``, keep the view the
        link shows when it was built for this commit and nothing in it changed since. ``changed``: the
        paths that differ between the shown view's commit and ``tree`` (a diff); the shown view's other
        files are hard-linked into the new view when untouched since it was built, not copied."""
        if keep_untouched and self._untouched(tree.commit):
            return
        self.views.mkdir(parents=True, exist_ok=True)
        view_name = f"{(tree.commit or 'empty')[:12]}-{uuid.uuid4().hex[:8]}"
        view = self.views / view_name
        try:
            _materialize(tree, str(view), read_only=True, reuse=self._reuser(changed))
            _chmod_tree(str(view), 0o555)
            tmp_link = self.mount_dir / f".{self.name}.{uuid.uuid4().hex[:8]}.tmp"
            os.symlink(os.path.relpath(view, self.mount_dir), tmp_link)
            if self.link.exists() and not self.link.is_symlink():
                if self.link.is_dir() and not any(self.link.iterdir()):
                    self.link.rmdir()  # an empty mount point left behind by FUSE
            os.replace(tmp_link, self.link)  # the atomic switch
        except BaseException:
            remove_tree(str(view))
            (self.views / (view_name + VIEW_INDEX)).unlink(missing_ok=True)
            raise
        for old in self.views.iterdir():
            if old.name.endswith(VIEW_INDEX):
                old.unlink()
            elif old.name != view_name:
                remove_tree(str(old))
        # after the old views are gone: removing a link to a reused file changes its ctime
        write_json(self.views / (view_name + VIEW_INDEX), {"commit": tree.commit, "stats": _view_stats(str(view))})

    def _reuser(self, changed: set[str] | None):
        """``reuse(path, local)`` for ``_materialize``: hard-links the shown view's file of an unchanged
        path when it is untouched since that view was built (never a link to the store)."""
        if changed is None:
            return lambda path, local: False
        try:
            shown = Path(os.path.realpath(self.link))
            built = json.loads((self.views / (shown.name + VIEW_INDEX)).read_text())["stats"]
        except (OSError, ValueError, KeyError, TypeError):
            return lambda path, local: False
        if shown.parent != Path(os.path.realpath(self.views)):
            return lambda path, local: False

        def reuse(path: str, local: str) -> bool:
            source = str(shown) + path
            if path in changed or built.get(path[1:]) is None:
                return False
            st = os.lstat(source) if os.path.lexists(source) else None
            if st is None or not stat.S_ISREG(st.st_mode) or \
                    [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns] != built[path[1:]]:
                return False
            os.link(source, local)
            return True

        return reuse

    def _untouched(self, commit: str | None) -> bool:
        """Whether the link shows a view built for ``commit`` whose every entry has the inode, size,
        mtime and ctime it had when built (a write, chmod, rename, creation or removal changes one)."""
        try:
            view = Path(os.path.realpath(self.link))
            if view.parent != Path(os.path.realpath(self.views)):
                return False
            built = json.loads((self.views / (view.name + VIEW_INDEX)).read_text())
            return built["commit"] == commit and built["stats"] == _view_stats(str(view))
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def remove(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        remove_tree(str(self.views))


class DirectoryWorkspace:
    """A read-write mount without FUSE: a real directory, scanned for changes."""

    def __init__(self, root: Path, state: Path, tree: CommitTree) -> None:
        self.root = Path(root)
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.index_file = self.state / "index.json"
        self.tree = tree
        self.lock = threading.RLock()
        self.hashes = HashCache()
        self.index: dict[str, list] = {}
        self.unsupported: list[str] = []
        self.watch: TreeWatch | None = None  # opened by the first pending_count (an inotify instance)
        self._counted: int | None = None  # changes found by the last scan, while nothing changed since
        self._scanned_at = 0.0  # time.monotonic() when the last scan started
        self._scan_started_ns = 0  # time.time_ns() when the last scan started (the file clock's time)
        self.ignore = None  # ignore.IgnoreRules: paths never pending (set by the mount manager)

    # -- setup -----------------------------------------------------------------------
    def open(self) -> None:
        """Use the directory left by a previous run, or build it from the base commit."""
        with self.lock:
            if self.root.is_dir() and not self.root.is_symlink() and self.index_file.exists():
                self.index = json.loads(self.index_file.read_text())
                return
            if self.root.is_symlink():
                self.root.unlink()
            if self.root.exists() and any(self.root.iterdir()):
                raise PfsError(f"{self.root} exists and is not empty; refusing to overwrite it", path=str(self.root))
            build = self.root.parent / VIEWS / f"{self.root.name}.new-{uuid.uuid4().hex[:8]}"
            build.parent.mkdir(parents=True, exist_ok=True)
            try:
                index = _materialize(self.tree, str(build), read_only=False)
                if self.root.exists():
                    self.root.rmdir()
                os.replace(build, self.root)
            except BaseException:
                remove_tree(str(build))
                raise
            self.index = index
            self._save()

    def _save(self) -> None:
        self._counted = None  # counted against the old index
        write_json(self.index_file, self.index)

    # -- the scan ----------------------------------------------------------------------
    def _scan(self):
        """(repo path, local path, stat) of every regular file; odd entries go to ``unsupported``."""
        self.unsupported = []
        base = str(self.root)
        if self.root.is_symlink() or not self.root.is_dir():
            raise Unavailable(f"{self.root} is no longer the mount's directory (replaced or removed)",
                              path=base)
        stack = [base]
        while stack:
            current = stack.pop()
            if self.watch is not None:
                self.watch.watch(current)  # before reading it: a change from here on is reported
            try:
                it = os.scandir(current)
            except (FileNotFoundError, NotADirectoryError):
                if current == base:
                    raise
                continue  # a directory removed (or replaced) while the scan ran
            with it:
                for entry in it:
                    path = entry.path[len(base):]
                    try:
                        normalize_path(path)
                    except InvalidPath:
                        self.unsupported.append(path)
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed between listing and stat (an editor's or Jupyter's temporary file)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
                    elif stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                        yield path, entry.path, st
                    else:
                        self.unsupported.append(path)

    def pending_count(self) -> int:
        """How many changes ``changes()`` finds, scanning only if something may have changed below
        the directory since the last scan (see the module doc)."""
        with self.lock:
            if self.watch is None:
                self.watch = TreeWatch(str(self.root))
                self._counted = None  # the scan below watches what it reads
            if self.watch.changed() or self._counted is None or time.monotonic() - self._scanned_at > RESCAN_AGE:
                self.changes()
            return self._counted

    def changes(self) -> list[Change]:
        return self.changes_and_ignored()[0]

    def changes_and_ignored(self) -> tuple[list[Change], list[Change]]:
        """The pending changes, and the changes the ignore rules leave out (never pending, never
        committed: a refresh must not replace them unasked)."""
        with self.lock:
            if self.watch is not None:
                self.watch.changed()  # what happened before this scan; what happens during it stays reported
            self._counted = None
            self._scanned_at = time.monotonic()
            self._scan_started_ns = time.time_ns()
            result: list[Change] = []
            seen: set[str] = set()
            self.scanned: dict[str, tuple] = {}
            for path, local, st in self._scan():
                seen.add(path)
                known = self.index.get(path)
                if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
                    continue
                if known is None:  # added whatever its bytes: hashed after a commit, and only if the store keeps no sha256
                    self.scanned[path] = (st.st_size, st.st_mtime_ns, None)
                    result.append(Change(path, "added", st.st_size, None, Path(local)))
                    continue
                try:
                    digest = self.hashes.get(local, st)
                except FileNotFoundError:  # gone since the scan saw it
                    seen.discard(path)
                    continue
                self.scanned[path] = (st.st_size, st.st_mtime_ns, digest)
                if known and known[2] == digest:
                    continue
                result.append(Change(path, "modified" if known else "added", st.st_size,
                                     known[0] if known else None, Path(local)))
            for path, known in self.index.items():
                if path not in seen:
                    result.append(Change(path, "deleted", 0, known[0], None))
            ignored: list[Change] = []
            if self.ignore is not None:
                kept = self.ignore.keep(result)
                if len(kept) != len(result):
                    kept_paths = {c.path for c in kept}
                    ignored = [c for c in result if c.path not in kept_paths]
                    result = kept
                self.unsupported = self.ignore.keep(self.unsupported, path=lambda p: p)
            result.sort(key=lambda c: c.path)
            ignored.sort(key=lambda c: c.path)
            self.unsupported.sort()
            self._counted = len(result)
            return result, ignored

    # -- after a commit / refresh ----------------------------------------------------------
    def after_commit(self, tree: CommitTree, changes: list[Change]) -> None:
        with self.lock:
            for change in changes:
                if change.change == "deleted":
                    self.index.pop(change.path, None)
                    continue
                info = tree.lookup(change.path)
                size, mtime_ns, digest = self.scanned.get(change.path, (change.size, 0, None))
                # what landed, where the store says; else what was scanned and sent (not downloaded back)
                committed = info.content_sha256 if info is not None else None
                # changed within a tick of the scan: the stat may stay the same through a rewrite after the
                # commit read the file, so the local bytes vouch for nothing and the next scan hashes it
                recent = racy(mtime_ns, self._scan_started_ns)
                if committed is None and digest is None and info is not None:
                    committed = (None if recent else self._unchanged_hash(change.path, size, mtime_ns)) \
                        or tree.content_hash(change.path, info)
                self.index[change.path] = [size, 0 if recent else mtime_ns, committed or digest]
            self.tree = tree
            self._save()

    def _unchanged_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The sha256 of the local file at ``path`` if it still has the scanned size and mtime (so the
        bytes that were sent), else None."""
        local = str(self.root) + path
        try:
            st = os.lstat(local)
            if stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
                return self.hashes.get(local, st)
        except FileNotFoundError:
            pass
        return None

    def reindex(self, tree: CommitTree) -> None:
        """Take ``tree`` as the base (a commit that landed while no process recorded it): files on
        disk with its content are unchanged, anything else is a change against it."""
        with self.lock:
            index: dict[str, list] = {}
            for path, info in tree.walk_files("/"):
                local = str(self.root) + path
                try:
                    st = os.lstat(local)
                except OSError:
                    st = None
                committed = info.content_sha256
                if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == info.size:
                    committed = tree.content_hash(path, info)
                    if self.hashes.get(local, st) == committed:
                        index[path] = [st.st_size, st.st_mtime_ns, committed]
                        continue
                index[path] = [info.size, 0, committed]
            self.index = index
            self.tree = tree
            self._save()

    def apply(self, tree: CommitTree, their_changes) -> None:
        """Bring other writers' changes (a diff base -> new head, none touching our stage) in."""
        with self.lock:
            for fc in their_changes:
                local = str(self.root) + fc.path
                if fc.change == "deleted":
                    try:
                        os.unlink(local)
                    except FileNotFoundError:
                        pass
                    self.index.pop(fc.path, None)
                else:
                    os.makedirs(os.path.dirname(local), exist_ok=True)
                    tmp = local + ".pachls-copy"
                    tree.copy_to(fc.path, tmp, info=fc.new, mode=WORK_FILE_MODE)
                    os.replace(tmp, local)
                    st = os.stat(local)
                    self.index[fc.path] = [st.st_size, st.st_mtime_ns, tree.content_hash(fc.path, fc.new)]
            self.tree = tree
            self._save()

    def discard(self) -> None:
        with self.lock:
            changes = self.changes()
            for path in self.unsupported:
                target = str(self.root) + path
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            for change in changes:
                local = str(self.root) + change.path
                if change.change == "added":
                    os.unlink(local)
                    continue
                os.makedirs(os.path.dirname(local), exist_ok=True)
                tmp = local + ".pachls-copy"
                self.tree.copy_to(change.path, tmp, mode=WORK_FILE_MODE)
                os.replace(tmp, local)
                st = os.stat(local)
                self.index[change.path][:2] = [st.st_size, st.st_mtime_ns]
            # directories that hold nothing from the base and nothing else
            for dirpath, dirnames, filenames in os.walk(str(self.root), topdown=False):
                path = dirpath[len(str(self.root)):]
                if path and not os.listdir(dirpath) and self.tree.lookup(path) is None:
                    os.rmdir(dirpath)
            self._save()

    def remove(self) -> None:
        self.close()
        remove_tree(str(self.root))
        shutil.rmtree(self.state, ignore_errors=True)

    def close(self) -> None:
        with self.lock:
            if self.watch is not None:
                self.watch.close()
                self.watch = None
