"""``FileInfo.hash`` as served: opaque, like pachd's, never the content's sha256.

pachd's file hash is a hash over the hashes of the file's chunk references, and a directory's
hash is a BLAKE2b-256 over its direct children's hashes in path order
(``src/server/pfs/server/source.go``); neither is a digest of the bytes a client can recompute.
Here:

- a file's hash is a keyed BLAKE2b-256 over (the content's sha256, its size): the same content
  gives the same hash in every commit, repo and restart, and nothing about it is the sha256 a
  client could compare with its own;
- a directory's hash is an (unkeyed) BLAKE2b-256 over its direct children's hashes in path
  order, as pachd computes it. It needs the whole subtree, so it is computed on demand and kept
  per directory *version* (the store's id of the commit that last changed something below it):
  a new commit re-hashes only the directories it changed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from ..backend import Backend
from ..model import FileInfo

#: Key of the file hash: fixed, so hashes stay the same across restarts and stores.
FILE_HASH_KEY = b"pachls-file-hash-v1"
#: Directory hashes kept in memory.
DIR_CACHE = 50_000
PAGE = 1000


def file_hash(sha256_hex: str, size: int) -> bytes:
    """The served hash of a file whose content has this sha256 and size."""
    digest = hashlib.blake2b(key=FILE_HASH_KEY, digest_size=32)
    digest.update(bytes.fromhex(sha256_hex))
    digest.update(int(size).to_bytes(8, "big"))
    return digest.digest()


class Hasher:
    """Served hashes of files and directories of one backend's finished commits."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._dirs: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _version(self, repo: str, commit_id: str, path: str) -> str | None:
        versioned = getattr(self.backend, "dir_version", None)
        return versioned(repo, commit_id, path) if versioned is not None else None

    def of(self, repo: str, commit_id: str, info: FileInfo) -> bytes:
        if not info.is_dir:
            return file_hash(info.hash, info.size) if info.hash else b""
        return self._dir(repo, commit_id, info.path.rstrip("/") or "/")

    def _dir(self, repo: str, commit_id: str, path: str) -> bytes:
        # Keyed by the directory's version when the store knows it: a commit then only hashes the
        # directories it changed, the others are those of earlier commits.
        version = self._version(repo, commit_id, path)
        key = (repo, version or commit_id, path)
        with self._lock:
            cached = self._dirs.get(key)
            if cached is not None:
                self._dirs.move_to_end(key)
                return cached
        digest = hashlib.blake2b(digest_size=32)
        after = None
        while True:
            page = self.backend.list_dir(repo, commit_id, path, limit=PAGE, after=after)
            for child in page.items:
                digest.update(self.of(repo, commit_id, child))
            if page.next is None:
                break
            after = page.next
        value = digest.digest()
        with self._lock:
            self._dirs[key] = value
            while len(self._dirs) > DIR_CACHE:
                self._dirs.popitem(last=False)
        return value


__all__ = ["FILE_HASH_KEY", "Hasher", "file_hash"]
