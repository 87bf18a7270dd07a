"""Read access to one commit of a repo: paged directory listings cached per directory, and the
local file that holds a file's bytes.

For the embedded store the local file is the store's own (``open_blob``: its blob file, or a small
content's bytes from its database);
for any other backend the content is fetched once, on first use, into a content-addressed cache
(``<state_dir>/cache/ab/cdef...``, keyed by the sha256 of the bytes, computed here while
downloading) and served from disk afterwards. A store whose ``FileInfo.hash`` is not a sha256 of
the bytes (pachd's hash is ``opaque``) has its hashes mapped to the sha256 of what was downloaded
(``cache/ids/``, per store address), so the file is fetched once, and the stages compare local bytes
with committed ones by sha256 whatever the store's hash is.
Nothing here ever walks a whole tree on its own: a directory is listed (page by page) the first
time somebody looks into it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from cachetools import LRUCache

from ..pfs.backend import Backend
from ..pfs.errors import InvalidArgument, NotFound, Unavailable
from ..pfs.model import FileInfo

PAGE = 10_000
MAX_CACHED_ENTRIES = 2_000_000  # directory entries kept in memory per tree
CONTENT_CACHE_ENV = "PACHLS_CONTENT_CACHE_BYTES"
CONTENT_CACHE_BYTES = 4 << 30  # downloaded file contents kept on disk, by default
FICLONE = getattr(fcntl, "FICLONE", 0x40049409)  # Linux's reflink ioctl (named in fcntl from Python 3.12)
# FICLONE's answers where the two files cannot share blocks (ext4, tmpfs, across filesystems, ...)
NO_REFLINK = (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.EBADF, errno.EPERM)


def content_cache_bytes() -> int:
    """The size limit of the content cache: ``$PACHLS_CONTENT_CACHE_BYTES`` if set, else 4 GiB."""
    text = os.environ.get(CONTENT_CACHE_ENV, "").strip()
    if not text:
        return CONTENT_CACHE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidArgument(f"{CONTENT_CACHE_ENV} must be a positive number of bytes, not {text!r}")
    return value


def file_hash(path: str | os.PathLike) -> str:
    """The sha256 of a local file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def copy_out(source_fd: int, target: str, mode: int) -> None:
    """Make ``target`` a new file of its own (``mode``) with the bytes of ``source_fd``: a reflink
    (FICLONE: the blocks shared copy-on-write, at once, on btrfs, XFS, ...) where the filesystem can,
    else a copy in the kernel (``copy_file_range``). Never a hard link: writing to ``target``, even
    after a ``chmod``, cannot change the source."""
    try:
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # a temporary name left by an interrupted copy
        os.unlink(target)
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.ioctl(out, FICLONE, source_fd)
        except OSError as exc:
            if exc.errno not in NO_REFLINK:
                raise
            _copy_bytes(source_fd, out)
        os.fchmod(out, mode)
    except BaseException:
        os.close(out)
        os.unlink(target)
        raise
    os.close(out)


def _copy_bytes(source_fd: int, out: int) -> None:
    offset = 0
    try:
        while copied := os.copy_file_range(source_fd, out, 1 << 30, offset, offset):
            offset += copied
        return
    except OSError as exc:  # no copy_file_range between these two (older kernels, some filesystems)
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
            raise
    while chunk := os.pread(source_fd, 1 << 20, offset):
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view):]
        offset += len(chunk)


class _FilesLRU(LRUCache):
    """Cached files by digest, valued by their size, least recently used first: what cachetools
    evicts (``popitem``) is removed from disk too."""

    def __init__(self, max_bytes: int, remove) -> None:
        # A file larger than the whole limit counts as the limit: it is kept until the next one comes.
        super().__init__(max_bytes, getsizeof=lambda size: min(size, max_bytes))
        self._remove = remove

    def popitem(self):
        digest, size = super().popitem()
        self._remove(digest)
        return digest, size


class ContentCache:
    """Files under ``root`` (``ab/cdef...``) named by the sha256 of their bytes, written once, verified
    while downloading: against the store's hash when it is a sha256, else against the size the store
    gave (an opaque hash cannot be checked), the sha256 then recorded for that opaque hash.

    At most ``max_bytes`` of files are kept (``$PACHLS_CONTENT_CACHE_BYTES``, else 4 GiB): the least
    recently used go first, at any moment (another reader's download): readers therefore get an open
    descriptor (``open``), never a path to open later, and an open file keeps its bytes after its
    removal; a later read downloads it again. The sha256 learned for an opaque hash outlives the
    file (hashing never downloads a file again). Recency lives in memory, rebuilt from the files'
    modification times on first use (so after a restart the oldest downloads go first)."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        (self.root / "ids").mkdir(exist_ok=True)
        self.max_bytes = content_cache_bytes() if max_bytes is None else max_bytes
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 1:
            raise InvalidArgument(f"the content cache size must be a positive number of bytes, not {max_bytes!r}")
        # One lock per key being downloaded right now (two readers of one file download it once),
        # dropped when its last user is done: [lock, users]
        self._downloads: dict[str, list] = {}
        self._guard = threading.Lock()  # the two maps
        self._files: _FilesLRU | None = None  # built on first use (a scan of the cache directory)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def _id_file(self, backend: Backend, info: FileInfo) -> Path:
        # Opaque hashes are only comparable within one store: scoped by its kind and address.
        scoped = hashlib.sha256(f"{backend.kind}\0{backend.address}\0{info.hash}".encode()).hexdigest()
        return self.root / "ids" / scoped[:2] / scoped[2:]

    def known_sha256(self, backend: Backend, info: FileInfo) -> str | None:
        """The sha256 of ``info``'s bytes if known without reading them (the store says so, or they
        were downloaded here before, even if removed since), else None."""
        if info.content_sha256:
            return info.content_sha256
        if not info.hash:
            return None
        try:
            digest, size = self._id_file(backend, info).read_text().split()
        except (OSError, ValueError):
            return None
        return digest if int(size) == info.size else None

    def sha256(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> str:
        """The sha256 of ``info``'s bytes, downloading them into the cache if never seen here."""
        known = self.known_sha256(backend, info)
        if known is not None:
            return known
        digest, fd = self._open(backend, repo, commit, info)
        os.close(fd)
        return digest

    def open(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> int:
        """A read-only descriptor (the caller closes it) of ``info``'s bytes, downloaded if needed."""
        return self._open(backend, repo, commit, info)[1]

    def fetch(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> Path:
        """The cached file of ``info``'s bytes, downloaded if needed. It may be removed at any moment:
        readers use ``open``."""
        digest, fd = self._open(backend, repo, commit, info)
        os.close(fd)
        return self.path(digest)

    def _open_cached(self, digest: str | None) -> int | None:
        if digest is None:
            return None
        try:
            fd = os.open(self.path(digest), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # never downloaded, or removed since
            return None
        try:
            self._keep(digest)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> tuple[str, int]:
        known = self.known_sha256(backend, info)
        fd = self._open_cached(known)
        if fd is not None:
            return known, fd
        return self._download(backend, repo, commit, info)

    # -- the size limit ------------------------------------------------------------------
    def _index(self) -> _FilesLRU:
        """The cached files, least recently used first (call with ``_guard`` held)."""
        if self._files is None:
            found = []
            for top in os.scandir(self.root):
                if len(top.name) == 2 and top.is_dir(follow_symlinks=False):
                    for entry in os.scandir(top.path):
                        st = entry.stat(follow_symlinks=False)
                        found.append((st.st_mtime_ns, top.name + entry.name, st.st_size))
            self._files = _FilesLRU(self.max_bytes, self._remove)
            for _mtime, digest, size in sorted(found):
                self._files[digest] = size
        return self._files

    def _remove(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def _keep(self, digest: str, size: int | None = None) -> None:
        """Mark ``digest`` as just used (``size``: just downloaded); may remove the least recently used."""
        with self._guard:
            files = self._index()
            if size is None and digest in files:
                files[digest] = files[digest]  # setting it again makes it the most recently used
                return
            try:
                files[digest] = size if size is not None else self.path(digest).stat().st_size
            except FileNotFoundError:
                pass

    def cached_bytes(self) -> int:
        """Bytes of file contents kept now (what the size limit counts)."""
        with self._guard:
            return self._index().currsize

    def _download(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> tuple[str, int]:
        key = info.hash or f"{repo}@{commit}:{info.path}"
        with self._guard:
            entry = self._downloads.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                return self._download_once(backend, repo, commit, info)
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._downloads[key]

    def _download_once(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> tuple[str, int]:
        known = self.known_sha256(backend, info)
        fd = self._open_cached(known)  # another reader downloaded it meanwhile
        if fd is not None:
            return known, fd
        tmp = self.root / "tmp" / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                for chunk in backend.read_file(repo, commit, info.path):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            got = digest.hexdigest()
            if (info.content_sha256 is not None and got != info.content_sha256) or size != info.size:
                raise Unavailable(f"content of {info.path} does not match what the store reported "
                                  f"({size} bytes read, {info.size} expected)", path=info.path)
            final = self.path(got)
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)  # opened before it can be evicted
            try:
                os.replace(tmp, final)
            except BaseException:
                os.close(fd)
                raise
        finally:
            tmp.unlink(missing_ok=True)
        try:
            if info.hash and info.content_sha256 is None:
                self._remember(backend, info, got)
            self._keep(got, size)
        except BaseException:  # the disk full, say: the caller never sees the descriptor
            os.close(fd)
            raise
        return got, fd

    def _remember(self, backend: Backend, info: FileInfo, digest: str) -> None:
        target = self._id_file(backend, info)
        target.parent.mkdir(exist_ok=True)
        tmp = self.root / "tmp" / uuid.uuid4().hex
        try:
            tmp.write_text(f"{digest} {info.size}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


class CommitTree:
    """One commit of one repo (``commit`` None: an empty branch), read lazily."""

    def __init__(self, backend: Backend, repo: str, commit: str | None, cache: ContentCache) -> None:
        self.backend = backend
        self.repo = repo
        self.commit = commit
        self.cache = cache
        self._dirs: OrderedDict[str, dict[str, FileInfo] | None] = OrderedDict()
        self._entries = 0
        self._lock = threading.RLock()
        self._open_blob = getattr(backend, "open_blob", None)

    # -- listings ------------------------------------------------------------------
    def listdir(self, directory: str) -> dict[str, FileInfo] | None:
        """Children of ``directory`` (``/`` or ``/a/b``) by name, or None if it is not a directory."""
        with self._lock:
            if directory in self._dirs:
                self._dirs.move_to_end(directory)
                return self._dirs[directory]
        entries = self._fetch_dir(directory)
        with self._lock:
            self._dirs[directory] = entries
            self._entries += len(entries or ())
            while self._entries > MAX_CACHED_ENTRIES and len(self._dirs) > 1:
                _, dropped = self._dirs.popitem(last=False)
                self._entries -= len(dropped or ())
        return entries

    def _fetch_dir(self, directory: str) -> dict[str, FileInfo] | None:
        if self.commit is None:
            return {} if directory == "/" else None
        if directory != "/":
            parent, name = directory.rsplit("/", 1)
            info = self.lookup_child(parent or "/", name)
            if info is None or not info.is_dir:
                return None
        entries: dict[str, FileInfo] = {}
        after = None
        while True:
            try:
                page = self.backend.list_dir(self.repo, self.commit, directory, limit=PAGE, after=after)
            except (NotFound, InvalidArgument):
                return None
            for info in page.items:
                entries[info.path.rstrip("/").rsplit("/", 1)[1]] = info
            if page.next is None:
                return entries
            after = page.next

    def lookup_child(self, directory: str, name: str) -> FileInfo | None:
        entries = self.listdir(directory)
        return None if entries is None else entries.get(name)

    def lookup(self, path: str) -> FileInfo | None:
        """FileInfo of ``path`` (``/`` gives a synthetic root), or None."""
        if path == "/":
            return FileInfo(path="/", type="dir", size=0, committed=self.commit)
        parent, name = path.rsplit("/", 1)
        return self.lookup_child(parent or "/", name)

    def walk_files(self, directory: str = "/"):
        """Every file below ``directory``, as (path, FileInfo)."""
        stack = [directory]
        while stack:
            current = stack.pop()
            for name, info in (self.listdir(current) or {}).items():
                child = ("" if current == "/" else current) + "/" + name
                if info.is_dir:
                    stack.append(child)
                else:
                    yield child, info

    # -- contents --------------------------------------------------------------------
    def open_file(self, path: str, info: FileInfo | None = None) -> int:
        """A read-only descriptor (the caller closes it) of the committed bytes of ``path``: the
        store's own (``open_blob``), or the content cache's copy. Never to be written through."""
        info = info or self.lookup(path)
        if info is None or info.is_dir:
            raise NotFound(f"{path} is not a file of {self.repo}@{self.commit}", path=path)
        if self._open_blob is not None and info.hash:
            return self._open_blob(info.hash)
        return self.cache.open(self.backend, self.repo, self.commit, info)

    def copy_to(self, path: str, target: str, *, info: FileInfo | None = None, mode: int = 0o644) -> None:
        """Write the committed bytes of ``path`` into the new file ``target`` (see ``copy_out``: the
        store's files are never shared with it)."""
        source = self.open_file(path, info)
        try:
            copy_out(source, target, mode)
        finally:
            os.close(source)

    def content_hash(self, path: str, info: FileInfo | None = None) -> str | None:
        """The sha256 of the committed bytes of ``path`` (None if it is not a file), whatever kind of
        hash the store keeps: read from the store when it is a sha256, else from the content cache
        (downloading the file once if it was never read here)."""
        info = info or self.lookup(path)
        if info is None or info.is_dir:
            return None
        if info.content_sha256:
            return info.content_sha256
        return self.cache.sha256(self.backend, self.repo, self.commit, info)
