"""What a commit's files look like to a reader: a finished commit as the store keeps it, an open
commit as pachd shows it — its parent's files with what it staged so far applied.

pachd serves an open commit's files as they stand (ListFile, GetFile, ... on ``repo@branch``
while a commit is open). The store lands a commit's staged changes only when it finishes, so
``OpenView`` builds the open commit's tree in memory: the parent's files, minus the directories
and files deleted, plus the files written. It costs one walk of the parent per request; open
commits are short-lived and read rarely.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator

from ..address import normalize_path, parent_dir
from ..backend import check_page
from ..errors import InvalidArgument, NotFound
from ..globbing import glob_plan
from ..model import Commit, FileInfo, FilePage
from .hashing import Hasher, file_hash


class StoreView:
    """A finished commit, read straight from the store."""

    def __init__(self, backend, hasher: Hasher, commit: Commit) -> None:
        self.backend, self.hasher, self.commit = backend, hasher, commit

    def inspect_file(self, path: str) -> FileInfo:
        return self.backend.inspect_file(self.commit.repo, self.commit.id, path)

    def list_dir(self, path: str, *, limit: int, after: str | None = None) -> FilePage:
        return self.backend.list_dir(self.commit.repo, self.commit.id, path, limit=limit, after=after)

    def read_file(self, path: str, *, offset: int = 0) -> Iterator[bytes]:
        return self.backend.read_file(self.commit.repo, self.commit.id, path, offset=offset)

    def glob(self, pattern: str) -> Iterator[FileInfo]:
        return self.backend.glob(self.commit.repo, self.commit.id, pattern)

    def hash(self, info: FileInfo) -> bytes:
        return self.hasher.of(self.commit.repo, self.commit.id, info)


class OpenView:
    """An open commit: its parent's files with the commit's staged changes applied."""

    def __init__(self, backend, commit: Commit) -> None:
        self.backend, self.commit = backend, commit
        files: dict[str, tuple[str, int]] = {}
        if commit.parent:
            for info in backend.walk(commit.repo, commit.parent, "/"):
                if not info.is_dir:
                    files[info.path] = (info.hash, info.size)
        puts, deletes, tree_deletes = backend.staged_changes(commit)
        for prefix in tree_deletes:
            for path in [p for p in files if prefix == "/" or p.startswith(prefix)]:
                del files[path]
        for path in deletes:
            files.pop(path, None)
        for path, blob, size in puts:
            files[path] = (blob, size)
        self.files = files
        self.dirs: dict[str, int] = {}  # "/a/" -> bytes below it
        for path, (_blob, size) in files.items():
            node = path
            while node != "/":
                node = parent_dir(node)
                self.dirs[node] = self.dirs.get(node, 0) + size
        if files:
            self.dirs.setdefault("/", 0)
        self.entries = sorted(list(files) + [d for d in self.dirs if d != "/"])
        self._hashes: dict[str, bytes] = {}

    def _info(self, path: str) -> FileInfo:
        if path.endswith("/"):
            return FileInfo(path=path, type="dir", size=self.dirs.get(path, 0), committed=self.commit.id)
        blob, size = self.files[path]
        return FileInfo(path=path, type="file", size=size, hash=blob, committed=self.commit.id)

    def inspect_file(self, path: str) -> FileInfo:
        path = normalize_path(path)
        if path == "/":
            return FileInfo(path="/", type="dir", size=self.dirs.get("/", 0), committed=self.commit.id)
        if path in self.files:
            return self._info(path)
        if path + "/" in self.dirs:
            return self._info(path + "/")
        raise NotFound(f"{path} not found in {self.commit.repo}@{self.commit.id}", path=path)

    def _children(self, directory: str) -> list[str]:
        start = bisect.bisect_left(self.entries, directory if directory != "/" else "")
        result = []
        for path in self.entries[start:]:
            if not path.startswith(directory):
                break
            rest = path[len(directory):]
            if rest and "/" not in rest.rstrip("/"):
                result.append(path)
        return result

    def list_dir(self, path: str, *, limit: int, after: str | None = None) -> FilePage:
        path = check_page(path, limit, after)
        directory = "/" if path == "/" else path + "/"
        if directory != "/" and directory not in self.dirs:
            if path in self.files:
                raise InvalidArgument(f"{path} is a file, not a directory", path=path)
            raise NotFound(f"directory {path} not found in {self.commit.repo}@{self.commit.id}", path=path)
        children = [p for p in self._children(directory) if after is None or p > after]
        page = children[:limit]
        return FilePage(items=tuple(self._info(p) for p in page),
                        next=page[-1] if len(children) > limit else None)

    def read_file(self, path: str, *, offset: int = 0) -> Iterator[bytes]:
        info = self.inspect_file(path)
        if info.is_dir:
            raise InvalidArgument(f"{path} is a directory", path=path)
        return self.backend.read_blob(info.hash, offset)

    def glob(self, pattern: str) -> Iterator[FileInfo]:
        _base, _depth, matches = glob_plan(pattern)
        for path in self.entries:
            if matches(path):
                yield self._info(path)

    def hash(self, info: FileInfo) -> bytes:
        if not info.is_dir:
            return file_hash(info.hash, info.size) if info.hash else b""
        directory = info.path if info.path.endswith("/") else info.path + "/"
        cached = self._hashes.get(directory)
        if cached is None:
            digest = hashlib.blake2b(digest_size=32)
            for child in self._children(directory):
                digest.update(self.hash(self._info(child)))
            cached = self._hashes[directory] = digest.digest()
        return cached


__all__ = ["OpenView", "StoreView"]
