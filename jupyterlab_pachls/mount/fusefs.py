"""FUSE presentation of a mount, through ``mfusepy`` (libfuse 3 when installed, else 2).

Each mount runs ``fuse_main`` in its own thread of the server process, single-threaded
(``-s``), in the foreground. Options, as measured (see DESIGN.md):

- read-only mounts show one fixed commit (a refresh remounts), so the kernel may cache
  everything: ``kernel_cache``, day-long attr/entry/negative timeouts, mount flag ``ro`` (the
  kernel itself answers EROFS to writes). ``open`` answers ENOSYS once: the kernel
  then stops sending them at all and keeps file pages and directory listings cached
  (FOPEN_KEEP_CACHE, the kernel's no-open default); ``opendir`` asks for the listing to be
  cached (``cache_readdir``). Reads that do reach the
  daemon are served with ``pread`` from the blob file of the embedded store, or from the local
  content cache for other backends.
- read-write mounts show ``base + stage`` (see ``overlay.py``), whose names, sizes and contents
  change without the kernel seeing a write (a discard, a refresh, files staged by the server).
  Entries (names found, and names found missing) and attributes are cached for
  ``RW_ENTRY_TIMEOUT`` only where the kernel can be told to drop every entry at once
  (``FUSE_NOTIFY_INC_EPOCH``, FUSE protocol 7.44, Linux 6.16; a path looked up again brings fresh
  attributes, file pages are dropped at each open): the overlay calls ``on_change``
  after each change made behind the kernel, under its lock, so no cached entry outlives one. A copy
  into the mount then costs 4 round trips to the daemon per new file instead of 6 (the name checked
  missing, create, write, release; the directories on the way and the copy's fstat are answered by
  the kernel). A descriptor opened before such a change keeps the attributes it knew until they
  expire (``RW_ENTRY_TIMEOUT``, 1 s). Older kernels and libfuse 2 cache nothing (timeouts 0), as a
  cached entry would make a dropped file still stat as present (then open with ENOENT).

Symlinks, hard links and device files cannot be created in a mount (EPERM): a commit only ever
reads regular files that live in the staging area.
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import logging
import os
import re
import shutil
import stat
import struct
import subprocess
import threading
import time
from collections import OrderedDict
from ctypes.util import find_library

from ..pfs.errors import PfsError
from .overlay import Overlay, check_path
from .tree import CommitTree


def _import_mfusepy():
    """mfusepy loads libfuse once, when imported, choosing it by FUSE_LIBRARY_PATH or FUSE_LIBRARY_NAME
    and else libfuse 2 first. Unless the environment names one, ask for libfuse 3 (bigger reads, readdir
    cache) for that import only: the process environment, which subprocesses inherit, stays as it was."""
    if "FUSE_LIBRARY_PATH" in os.environ or "FUSE_LIBRARY_NAME" in os.environ or not find_library("fuse3"):
        return importlib.import_module("mfusepy")
    os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
    try:
        return importlib.import_module("mfusepy")
    finally:
        del os.environ["FUSE_LIBRARY_NAME"]


mfusepy = _import_mfusepy()
FUSE, FuseOSError, Operations = mfusepy.FUSE, mfusepy.FuseOSError, mfusepy.Operations

log = logging.getLogger(__name__)
FSNAME_PREFIX = "pachls:"
LONG = 86400
#: Seconds an unmount command (``fusermount``, ``umount``, ``mount -t fusectl``) may take. A hung one (a
#: FUSE server that stopped answering) is killed and the next fallback is used: lazy unmount, then
#: aborting the connection. Unmounts run while the mount manager holds its locks, so none may hang.
UNMOUNT_TIMEOUT = 5.0
MAX_OPEN_BLOBS = 64
MAX_LISTINGS = 256
# seconds a read-write mount's entries and attributes may be cached where entries can be dropped at once:
# enough for a burst of writes, short for a descriptor opened before a change behind the kernel (its
# fstat, and reads past the size it knew, use the cached attributes until they expire)
RW_ENTRY_TIMEOUT = 1.0
# fuse_out_header {len, error = notify code, unique = 0} of FUSE_NOTIFY_INC_EPOCH (8), which has no body
INC_EPOCH = struct.pack("<IiQ", 16, 8, 0)
INC_EPOCH_MINOR = 44  # the FUSE protocol minor version that brought it


def _session_fd() -> int | None:
    """The /dev/fuse descriptor of the mount whose callback is running (libfuse 3), or None."""
    lib = mfusepy._libfuse
    get_session, session_fd = getattr(lib, "fuse_get_session", None), getattr(lib, "fuse_session_fd", None)
    if get_session is None or session_fd is None:
        return None
    get_session.restype, get_session.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    session_fd.restype, session_fd.argtypes = ctypes.c_int, [ctypes.c_void_p]
    fuse = lib.fuse_get_context().contents.fuse
    session = get_session(fuse) if fuse else None
    fd = session_fd(session) if session else -1
    return fd if fd >= 0 else None


def fuse_major() -> int:
    return mfusepy.fuse_version_major


def _dir_attrs(mtime_ns: int, writable: bool) -> dict:
    return {"st_mode": stat.S_IFDIR | (0o755 if writable else 0o555), "st_nlink": 2, "st_size": 4096,
            "st_uid": os.getuid(), "st_gid": os.getgid(),
            "st_mtime": mtime_ns, "st_ctime": mtime_ns, "st_atime": mtime_ns}


def _file_attrs(size: int, mtime_ns: int, writable: bool) -> dict:
    return {"st_mode": stat.S_IFREG | (0o644 if writable else 0o444), "st_nlink": 1, "st_size": size,
            "st_blocks": (size + 511) // 512, "st_blksize": 1 << 20,
            "st_uid": os.getuid(), "st_gid": os.getgid(),
            "st_mtime": mtime_ns, "st_ctime": mtime_ns, "st_atime": mtime_ns}


def _stat_attrs(st: os.stat_result) -> dict:
    return {key: getattr(st, key) for key in ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid", "st_blocks")} | {
        "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns, "st_atime": st.st_atime_ns, "st_blksize": 1 << 20}


def _copy_whole(tree, path: str, info, target: str) -> None:
    """Copy a base file into the upper layer, writable (base blobs are read-only), under a temporary
    name then renamed: the target is never seen half-copied."""
    tmp = target + ".pachls-copy"
    tree.copy_to(path, tmp, info=info, mode=0o644)
    os.replace(tmp, target)


def _fail(code: int):
    raise FuseOSError(code)


class _Base(Operations):
    use_ns = True

    def __init__(self, tree: CommitTree) -> None:
        self.tree = tree
        self.ready = threading.Event()
        self.mtime_ns = time.time_ns()

    def init_with_config(self, conn, config):
        if conn is not None and hasattr(conn, "max_readahead"):
            conn.max_readahead = 1 << 20  # capped by the kernel's own limit
        self.ready.set()

    def statfs(self, path):
        return {"f_bsize": 1 << 20, "f_frsize": 4096, "f_blocks": 0, "f_bfree": 0, "f_bavail": 0,
                "f_files": 0, "f_ffree": 0, "f_namemax": 255}


class ReadOnlyOps(_Base):
    """One commit, read-only."""

    def __init__(self, tree: CommitTree) -> None:
        super().__init__(tree)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._listings: OrderedDict[str, list] = OrderedDict()

    def getattr(self, path, fh=None):
        info = self.tree.lookup(path)
        if info is None:
            _fail(errno.ENOENT)
        if info.is_dir:
            return _dir_attrs(self.mtime_ns, False)
        return _file_attrs(info.size, self.mtime_ns, False)

    cache_dirs = True  # a mounted commit never changes: the kernel may keep listings

    def opendir(self, path):
        return 0

    def readdir(self, path, fh):
        return [(name.decode("utf-8", "surrogateescape"), stat.S_IFDIR if is_dir else stat.S_IFREG, 0)
                for name, is_dir in self.readdir_raw(path)]

    def readdir_raw(self, path):
        """[(encoded name, is_dir)] of a directory, built once: a commit never changes."""
        cached = self._listings.get(path)
        if cached is not None:
            self._listings.move_to_end(path)
            return cached
        entries = self.tree.listdir(path)
        if entries is None:
            _fail(errno.ENOTDIR if self.tree.lookup(path) else errno.ENOENT)
        cached = [(b".", True), (b"..", True)]
        cached.extend((name.encode("utf-8", "surrogateescape"), info.is_dir) for name, info in entries.items())
        self._listings[path] = cached
        while len(self._listings) > MAX_LISTINGS:
            self._listings.popitem(last=False)
        return cached

    def open(self, path, flags):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC):
            _fail(errno.EROFS)
        _fail(errno.ENOSYS)  # see the module docstring: no more open/release round trips

    def _fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        try:
            fd = self.tree.open_file(path)
        except PfsError:
            _fail(errno.ENOENT)
        self._fds[path] = fd
        while len(self._fds) > MAX_OPEN_BLOBS:
            os.close(self._fds.popitem(last=False)[1])
        return fd

    def read(self, path, size, offset, fh):
        return os.pread(self._fd(path), size, offset)

    def destroy(self, path):
        while self._fds:
            os.close(self._fds.popitem()[1])

    # Everything that would change the tree: the kernel already refuses (mount flag ro).
    def _rofs(self, *args, **kwargs):
        _fail(errno.EROFS)

    mkdir = rmdir = unlink = rename = create = write = truncate = chmod = chown = utimens = _rofs
    symlink = link = mknod = setxattr = removexattr = _rofs


class ReadWriteOps(_Base):
    """``base + stage``: writes go to the overlay's upper directory, deletions become whiteouts."""

    def __init__(self, overlay: Overlay) -> None:
        super().__init__(overlay.tree)
        self.ov = overlay
        self._handles: dict[int, str | None] = {}  # fd -> repo path when open for writing
        self._device: int | None = None  # /dev/fuse, while entries are cached (see the module docstring)

    def init_with_config(self, conn, config):
        if config is not None and conn is not None and conn.proto_minor >= INC_EPOCH_MINOR:
            self._device = _session_fd()
            if self._forget_entries():
                config.entry_timeout = config.negative_timeout = config.attr_timeout = RW_ENTRY_TIMEOUT
                self.ov.on_change = self._forget_entries
            else:
                self._device = None
        super().init_with_config(conn, config)

    @property
    def caches_entries(self) -> bool:
        """Whether the kernel caches this mount's entries and attributes (see the module docstring)."""
        return self._device is not None

    def _forget_entries(self) -> bool:
        """Make every entry the kernel cached for this mount stale (called under the overlay's lock)."""
        if self._device is None:
            return False
        try:
            return os.write(self._device, INC_EPOCH) == len(INC_EPOCH)
        except OSError as exc:  # unmounting; or a kernel that refuses it (then checked at init: nothing cached)
            log.debug("could not make the kernel's cached entries stale (they expire in %s s): %s", RW_ENTRY_TIMEOUT, exc)
            return False

    # -- lookups ---------------------------------------------------------------------
    def _upper_stat(self, path: str):
        try:
            return os.lstat(self.ov.upper_path(path))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None

    def _kind(self, path: str):
        """("upper", stat) / ("base", FileInfo) / None, for the merged view."""
        st = self._upper_stat(path)
        if st is not None:
            return "upper", st
        info = self.ov.base_info(path)
        if info is not None:
            return "base", info
        return None

    def _is_dir(self, found) -> bool:
        kind, value = found
        return stat.S_ISDIR(value.st_mode) if kind == "upper" else value.is_dir

    def _existing(self, path: str):
        """``_kind`` of an entry that must exist (ENOENT if it does not)."""
        found = self._kind(path)
        if found is None:
            _fail(errno.ENOENT)
        return found

    def _require_dir(self, path: str) -> None:
        if not self._is_dir(self._existing(path)):
            _fail(errno.ENOTDIR)

    def _check_parent(self, path: str) -> None:
        self._require_dir(path.rsplit("/", 1)[0] or "/")

    @staticmethod
    def _checked(path: str) -> str:
        try:
            return check_path(path)
        except PfsError:
            _fail(errno.EINVAL)

    def _children(self, path: str) -> dict[str, bool]:
        """Names in the merged directory -> is_dir."""
        names: dict[str, bool] = {}
        if not self.ov.hidden(path):
            for name, info in (self.ov.tree.listdir(path) or {}).items():
                child = ("" if path == "/" else path) + "/" + name
                if child not in self.ov.whiteouts:
                    names[name] = info.is_dir
        upper = self.ov.upper_path(path)
        try:
            with os.scandir(upper) as it:
                for entry in it:
                    names[entry.name] = entry.is_dir(follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return names

    def _copy_up(self, path: str) -> str:
        up = self.ov.upper_path(path)
        if os.path.lexists(up):
            return up
        info = self.ov.base_info(path)
        if info is None:
            _fail(errno.ENOENT)
        if info.is_dir:
            _fail(errno.EISDIR)
        os.makedirs(os.path.dirname(up), exist_ok=True)
        _copy_whole(self.ov.tree, path, info, up)
        return up

    # -- reading -----------------------------------------------------------------------
    def getattr(self, path, fh=None):
        if fh is not None and self._handles.get(fh) is not None:
            # a file open for writing is its upper file (renames move the handle with it): asked right
            # after each create and by every fstat, answered without resolving the path
            return _stat_attrs(os.fstat(fh))
        with self.ov.lock:
            kind, value = self._existing(path)
            if kind == "upper":
                return _stat_attrs(value)
            if value.is_dir:
                return _dir_attrs(self.mtime_ns, True)
            return _file_attrs(value.size, self.mtime_ns, True)

    def readdir(self, path, fh):
        with self.ov.lock:
            self._require_dir(path)
            out = [(".", stat.S_IFDIR, 0), ("..", stat.S_IFDIR, 0)]
            out.extend((n, stat.S_IFDIR if d else stat.S_IFREG, 0) for n, d in sorted(self._children(path).items()))
            return out

    def open(self, path, flags):
        with self.ov.lock:
            writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_TRUNC)
            if writing:
                up = self._copy_up(path)
                fd = os.open(up, os.O_RDWR | os.O_CLOEXEC | (flags & os.O_TRUNC))
                self._track(fd, path)
                return fd
            kind, value = self._existing(path)
            if kind == "upper":
                fd = os.open(self.ov.upper_path(path), os.O_RDONLY | os.O_CLOEXEC)
            else:
                fd = self.ov.tree.open_file(path, value)
            self._handles[fd] = None
            return fd

    def _track(self, fd: int, path: str) -> None:
        self._handles[fd] = path
        self.ov.open_for_write[path] = self.ov.open_for_write.get(path, 0) + 1

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        with self.ov.lock:
            written = self._handles.pop(fh, None)
            os.close(fh)
            if written is not None:
                left = self.ov.open_for_write.get(written, 1) - 1
                if left > 0:
                    self.ov.open_for_write[written] = left
                else:
                    self.ov.open_for_write.pop(written, None)

    def destroy(self, path):
        with self.ov.lock:  # before libfuse closes /dev/fuse: its number may be reused
            self.ov.on_change = None
            self._device = None
        for fd in list(self._handles):
            try:
                os.close(fd)
            except OSError:
                pass
        self._handles.clear()

    # -- writing -----------------------------------------------------------------------
    def create(self, path, mode, flags=0):
        with self.ov.lock:
            path = self._checked(path)
            self._check_parent(path)
            found = self._kind(path)
            if found is not None and self._is_dir(found):
                _fail(errno.EISDIR)
            up = self.ov.upper_path(path)
            flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
            try:
                fd = os.open(up, flags, 0o644)
            except FileNotFoundError:  # the directory is the base commit's only, so far
                os.makedirs(os.path.dirname(up), exist_ok=True)
                fd = os.open(up, flags, 0o644)
            self._track(fd, path)
            return fd

    def write(self, path, data, offset, fh):
        with self.ov.lock:  # a commit reading the stage waits for no writer and is waited for
            return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        with self.ov.lock:
            os.truncate(self._copy_up(path), length)

    def fsync(self, path, datasync, fh):
        os.fsync(fh)

    def mkdir(self, path, mode):
        with self.ov.lock:
            path = self._checked(path)
            if self._kind(path) is not None:
                _fail(errno.EEXIST)
            self._check_parent(path)
            os.makedirs(self.ov.upper_path(path))

    def unlink(self, path):
        with self.ov.lock:
            found = self._existing(path)
            if self._is_dir(found):
                _fail(errno.EISDIR)
            up = self.ov.upper_path(path)
            if found[0] == "upper":
                os.unlink(up)
            if self.ov.base_info(path) is not None:
                self.ov.add_whiteout(path)

    def rmdir(self, path):
        with self.ov.lock:
            if path == "/":
                _fail(errno.EBUSY)
            self._require_dir(path)
            if self._children(path):
                _fail(errno.ENOTEMPTY)
            up = self.ov.upper_path(path)
            if os.path.isdir(up):
                os.rmdir(up)
            base = self.ov.base_info(path)
            if base is not None:
                self.ov.add_whiteout(path)

    def rename(self, old, new):
        with self.ov.lock:
            new = self._checked(new)
            if old == new:
                return
            found = self._existing(old)
            self._check_parent(new)
            target = self._kind(new)
            if self._is_dir(found):
                if new.startswith(old + "/"):
                    _fail(errno.EINVAL)
                if target is not None:
                    if not self._is_dir(target):
                        _fail(errno.ENOTDIR)
                    if self._children(new):
                        _fail(errno.ENOTEMPTY)
                    self.rmdir(new)
                self._move_tree(old, new)
            else:
                if target is not None and self._is_dir(target):
                    _fail(errno.EISDIR)
                self._move_file(old, new)

    def _move_file(self, old: str, new: str) -> None:
        up_old, up_new = self.ov.upper_path(old), self.ov.upper_path(new)
        os.makedirs(os.path.dirname(up_new), exist_ok=True)
        if os.path.lexists(up_old):
            os.replace(up_old, up_new)
        else:
            _copy_whole(self.ov.tree, old, self.ov.base_info(old), up_new)
        if self.ov.base_info(old) is not None:
            self.ov.add_whiteout(old)
        for fd, path in self._handles.items():
            if path == old:
                self._handles[fd] = new
                self.ov.open_for_write[new] = self.ov.open_for_write.pop(old, 1)

    def _move_tree(self, old: str, new: str) -> None:
        os.makedirs(self.ov.upper_path(new), exist_ok=True)
        for name, is_dir in self._children(old).items():
            src, dst = f"{old}/{name}", f"{new}/{name}"
            if is_dir:
                self._move_tree(src, dst)
            else:
                self._move_file(src, dst)
        up_old = self.ov.upper_path(old)
        if os.path.isdir(up_old):
            shutil.rmtree(up_old)
        if self.ov.base_info(old) is not None:
            self.ov.add_whiteout(old)

    def chmod(self, path, mode):
        with self.ov.lock:
            self._existing(path)
            up = self.ov.upper_path(path)
            if os.path.lexists(up):
                os.chmod(up, stat.S_IMODE(mode))

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        with self.ov.lock:
            self._existing(path)
            up = self.ov.upper_path(path)
            if os.path.lexists(up):
                os.utime(up, ns=times) if times else os.utime(up)

    def _unsupported(self, *args, **kwargs):
        _fail(errno.EPERM)

    symlink = link = mknod = _unsupported


class _FUSE(FUSE):
    """``mfusepy.FUSE`` with two shortcuts for read-only mounts: ``opendir`` asks the kernel to cache a
    listing (libfuse versions that pass the flag on honour it), and ``readdir`` feeds libfuse from a
    pre-encoded listing (``readdir_raw``) in a tight loop; and ``create`` calls the operation at once."""

    def _readdir(self, path, buf, filler, offset, fip):
        raw = getattr(self.operations, "readdir_raw", None)
        if raw is None or path is None:
            return super()._readdir(path, buf, filler, offset, fip)
        entries = raw(path.decode(self.encoding, self.errors))
        as_dir, as_file = mfusepy.c_stat(), mfusepy.c_stat()
        as_dir.st_mode, as_file.st_mode = stat.S_IFDIR, stat.S_IFREG
        if fuse_major() >= 3:
            for name, is_dir in entries:
                if filler(buf, name, as_dir if is_dir else as_file, 0, 0):
                    break
        else:
            for name, is_dir in entries:
                if filler(buf, name, as_dir if is_dir else as_file, 0):
                    break
        return 0

    def create(self, path, mode, fip):
        # mfusepy's own create inspects the operation's signature on every call
        fip.contents.fh = self.operations.create(path.decode(self.encoding, self.errors), mode, fip.contents.flags)
        return 0

    def opendir(self, path, fip):
        fip.contents.fh = self.operations.opendir(path.decode(self.encoding, self.errors))
        if getattr(self.operations, "cache_dirs", False) and hasattr(fip.contents, "cache_readdir"):
            fip.contents.cache_readdir = 1
            fip.contents.keep_cache = 1
        return 0


class FuseMount:
    """One running FUSE mount (a thread in ``fuse_main``)."""

    def __init__(self, ops: _Base, mountpoint: str, *, readonly: bool, label: str) -> None:
        self.ops = ops
        self.mountpoint = mountpoint
        self.error: BaseException | None = None
        self.done = threading.Event()
        options = {"fsname": FSNAME_PREFIX + label, "foreground": True, "nothreads": True}
        if readonly:
            options.update(ro=True, kernel_cache=True, attr_timeout=LONG, entry_timeout=LONG,
                           negative_timeout=LONG)
        else:
            options.update(attr_timeout=0, entry_timeout=0, negative_timeout=0)
        if fuse_major() < 3:
            options.update(big_writes=True, max_readahead=1 << 20)
        self.options = options
        self.thread = threading.Thread(target=self._run, name=f"pachls-fuse-{label}", daemon=True)

    def _run(self) -> None:
        try:
            _FUSE(self.ops, self.mountpoint, **self.options)
        except BaseException as exc:  # reported by start()/status
            self.error = exc
        finally:
            self.done.set()

    def start(self, timeout: float = 20.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.ops.ready.is_set():
            if self.done.is_set():
                raise OSError(errno.EIO, f"FUSE mount at {self.mountpoint} failed: {self.error or 'fuse_main returned'}")
            if time.monotonic() > deadline:
                self.stop()
                raise OSError(errno.ETIMEDOUT, f"FUSE mount at {self.mountpoint} did not come up")
            self.ops.ready.wait(0.02)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Unmount; if the mount is busy, detach it lazily and end the connection so that the
        serving thread returns (processes still using the old mount get ENOTCONN)."""
        if not self.thread.is_alive():
            return
        device = mount_device(self.mountpoint)  # from mountinfo: a stat would wait on a hung FUSE server
        if not unmount(self.mountpoint, lazy=False):
            unmount(self.mountpoint, lazy=True)
        self.thread.join(2.0)
        if self.thread.is_alive() and device is not None:
            abort_connection(device)
        self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("FUSE thread for %s still running after unmount", self.mountpoint)
        if is_mountpoint(self.mountpoint):
            log.warning("%s is still mounted after unmount: its FUSE connection was ended; "
                        "`fusermount3 -u -z %s` removes it", self.mountpoint, self.mountpoint)


def abort_connection(device: int) -> bool:
    """End a FUSE connection through the fusectl filesystem (mounted on demand, as root)."""
    control = "/sys/fs/fuse/connections"
    if not os.path.isdir(control):
        return False
    if not os.listdir(control) and os.geteuid() == 0:
        run_bounded(["mount", "-t", "fusectl", "none", control])
    try:
        with open(f"{control}/{os.minor(device)}/abort", "w") as abort:
            abort.write("1")
        return True
    except OSError:
        return False


def run_bounded(command: list[str]) -> int | None:
    """The exit status of ``command``, or None when it cannot run or did not end within
    ``UNMOUNT_TIMEOUT`` (then it is killed, and reaped in the background: a command stuck in the
    kernel may outlive the kill)."""
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    except OSError as exc:
        log.warning("cannot run %s: %s", command[0], exc)
        return None
    try:
        return process.wait(UNMOUNT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        threading.Thread(target=process.wait, name="pachls-reap", daemon=True).start()
        log.warning("%s did not end within %g s; killed it", " ".join(command), UNMOUNT_TIMEOUT)
        return None


def _fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


def unmount(mountpoint: str, *, lazy: bool) -> bool:
    """Unmount a FUSE mount point; True if it is gone. Each command is bounded (``run_bounded``)."""
    tool = _fusermount()
    commands = []
    if tool:
        commands.append([tool, "-u", *(["-z"] if lazy else []), "-q", mountpoint])
    if shutil.which("umount"):
        commands.append(["umount", *(["-l"] if lazy else []), mountpoint])
    for command in commands:
        if run_bounded(command) == 0 or not is_mountpoint(mountpoint):
            return True
    return not is_mountpoint(mountpoint)


def _mountinfo() -> list[tuple[str, str, str, str]]:
    """(mount point, source, fstype, ``major:minor``) of every mount, from /proc/self/mountinfo."""
    found = []
    try:
        with open("/proc/self/mountinfo", "rb") as info:
            for line in info:
                left, _, right = line.partition(b" - ")
                fields = left.split()
                fstype, source = (right.split() + [b"", b""])[:2]
                found.append((unescape_mountinfo(fields[4]), unescape_mountinfo(source),
                              fstype.decode("ascii", "replace"), fields[2].decode("ascii", "replace")))
    except OSError:
        pass
    return found


def fuse_mounts() -> list[tuple[str, str]]:
    """(mount point, fsname) of every FUSE mount, from /proc/self/mountinfo."""
    return [(point, source) for point, source, fstype, _ in _mountinfo() if fstype.startswith("fuse")]


def mountinfo_path(path: str) -> str:
    """``path`` as /proc/self/mountinfo writes it: the parent resolved (symlinks followed), the last
    component kept, so the mount itself is never looked up (a hung one would hang the lookup)."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def mount_device(path: str) -> int | None:
    """The device number of the FUSE mount at ``path`` (None: not one), without touching the mount."""
    path = mountinfo_path(path)
    for point, _, fstype, device in _mountinfo():
        if point == path and fstype.startswith("fuse"):
            major, _, minor = device.partition(":")
            return os.makedev(int(major), int(minor))
    return None


_MOUNTINFO_ESCAPE = re.compile(rb"\\([0-7]{3})")


def unescape_mountinfo(field: bytes) -> str:
    """A mountinfo field as text: the kernel writes space, tab, newline and backslash as octal escapes
    (``\\040``, ``\\011``, ``\\012``, ``\\134``) and every other byte as it is, so the escapes are
    decoded on bytes and the result as UTF-8 (bytes that are not UTF-8 kept by surrogateescape)."""
    raw = _MOUNTINFO_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), field)
    return raw.decode("utf-8", "surrogateescape")


def is_mountpoint(path: str) -> bool:
    path = mountinfo_path(path)
    return any(point == path for point, _ in fuse_mounts())


def fuse_available() -> tuple[bool, str]:
    """Whether a FUSE mount can be made here, and why not."""
    if os.environ.get("PACHLS_NO_FUSE", "").strip() not in ("", "0", "false", "no"):
        return False, "PACHLS_NO_FUSE is set"
    if not os.path.exists("/dev/fuse"):
        return False, "/dev/fuse does not exist"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "/dev/fuse is not readable and writable"
    if os.geteuid() != 0 and not _fusermount():
        return False, "not root and no fusermount helper"
    return True, ""
