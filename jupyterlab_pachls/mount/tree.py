"""Read access to one commit of a repo: paged directory listings cached per directory, and the
local file that holds a file's bytes.

For the embedded store the local file is the store's own blob (``local_file`` / ``blob_path``);
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
    recently used go first. Removing one never breaks a reader: an open file or a read-only view's
    hard link keeps its bytes; a later read downloads it again. Recency lives in memory, rebuilt
    from the files' modification times on first use (so after a restart the oldest downloads go
    first)."""

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
        were downloaded here before), else None."""
        if info.content_sha256:
            return info.content_sha256
        if not info.hash:
            return None
        try:
            digest, size = self._id_file(backend, info).read_text().split()
        except (OSError, ValueError):
            return None
        if int(size) != info.size or not self.path(digest).exists():
            return None
        return digest

    def sha256(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> str:
        """The sha256 of ``info``'s bytes, downloading them into the cache if needed."""
        known = self.known_sha256(backend, info)
        if known is not None:
            return known
        return self._download(backend, repo, commit, info)[0]

    def fetch(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> Path:
        known = self.known_sha256(backend, info)
        if known is not None and self.path(known).exists():
            self._keep(known)
            return self.path(known)
        return self._download(backend, repo, commit, info)[1]

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

    def _download(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> tuple[str, Path]:
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

    def _download_once(self, backend: Backend, repo: str, commit: str, info: FileInfo) -> tuple[str, Path]:
        known = self.known_sha256(backend, info)
        if known is not None and self.path(known).exists():  # another reader downloaded it meanwhile
            self._keep(known)
            return known, self.path(known)
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
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        if info.hash and info.content_sha256 is None:
            self._remember(backend, info, got)
        self._keep(got, size)
        return got, final

    def _remember(self, backend: Backend, info: FileInfo, digest: str) -> None:
        target = self._id_file(backend, info)
        target.parent.mkdir(exist_ok=True)
        tmp = self.root / "tmp" / uuid.uuid4().hex
        tmp.write_text(f"{digest} {info.size}")
        os.replace(tmp, target)


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
        self._blob_path = getattr(backend, "blob_path", None)
        self._local_file = getattr(backend, "local_file", None)

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
    def local_path(self, path: str, info: FileInfo | None = None) -> Path:
        """A local file holding the committed bytes of ``path`` (never to be written to)."""
        info = info or self.lookup(path)
        if info is None or info.is_dir:
            raise NotFound(f"{path} is not a file of {self.repo}@{self.commit}", path=path)
        if self._blob_path is not None and info.hash:
            return self._blob_path(info.hash)
        if self._local_file is not None:
            return self._local_file(self.repo, self.commit, path)[0]
        return self.cache.fetch(self.backend, self.repo, self.commit, info)

    def content_hash(self, path: str, info: FileInfo | None = None) -> str | None:
        """The sha256 of the committed bytes of ``path`` (None if it is not a file), whatever kind of
        hash the store keeps: read from the store when it is a sha256, else from the content cache
        (downloading the file once if it was never read here)."""
        info = info or self.lookup(path)
        if info is None or info.is_dir:
            return None
        if info.content_sha256:
            return info.content_sha256
        if self._local_file is not None:
            return file_hash(self._local_file(self.repo, self.commit, path)[0])
        return self.cache.sha256(self.backend, self.repo, self.commit, info)
