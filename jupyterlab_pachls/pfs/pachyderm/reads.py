"""Reading a cluster: commits and histories, directory pages, file metadata and bytes, diffs.
Files are read from finished commits only (an open commit is ``Conflict``)."""

from __future__ import annotations

import functools
import io
import tarfile
from collections.abc import Iterator

from pachyderm_sdk.api import pfs

from ..address import normalize_path
from ..backend import DEFAULT_PAGE, check_history_limit, check_page, check_range, walk_tree
from ..errors import InvalidArgument, NotFound
from ..model import Commit, FileChange, FileInfo, FilePage
from ..wire import commit_msg, file_msg, repo_msg
from .channel import Channel
from .messages import branch_named, is_set, parent_id, repo_key, to_commit, to_file_info
from .refs import Refs


#: Characters that make a path a glob for pachd.
GLOB_MAGIC = set("*?[")
#: Bytes per chunk of a file read out of a GetFileTAR stream.
CHUNK = 1 << 20


class _Chunks(io.RawIOBase):
    """A readable stream over the chunks of a gRPC stream (what ``tarfile`` reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


class Reads:
    def __init__(self, channel: Channel, refs: Refs) -> None:
        self.channel = channel
        self.refs = refs

    # -- commits -----------------------------------------------------------------------------------
    def inspect_commit(self, repo: str, ref: str) -> Commit:
        key, info = self.refs.resolve(repo, ref)
        return to_commit(info, key, branch_named(ref))

    def list_commits(self, repo: str, ref: str, *, limit: int = 50, before: str | None = None) -> list[Commit]:
        check_history_limit(limit)
        key, info = self.refs.resolve(repo, ref, allow_empty=True)
        if before is not None:
            _, cursor = self.refs.resolve(key, before)
            start = parent_id(cursor)
        else:
            start = info.commit.id if info is not None else None
        if start is None:
            return []
        head_of = branch_named(ref) if before is None else None  # only the first is the branch's head
        return [to_commit(i, key, head_of if n == 0 else None) for n, i in enumerate(self.channel.stream(
            "ListCommit", self.channel.pfs.list_commit, repo=repo_msg(key), to=commit_msg(key, start),
            number=limit, all=True))]

    # -- files -------------------------------------------------------------------------------------
    def list_dir(self, repo: str, ref: str, path: str = "/", *, limit: int = DEFAULT_PAGE,
                 after: str | None = None) -> FilePage:
        path = check_page(path, limit, after)
        key, info = self.refs.finished(repo, ref)
        if info is None:
            if path == "/":
                return FilePage(items=(), next=None)
            raise NotFound(f"{path} not found: the branch has no commits", path=path)
        cid = info.commit.id
        if path != "/":
            found = self.inspect_file(key, cid, path)
            if not found.is_dir:
                raise InvalidArgument(f"{path} is a file, not a directory", path=path)
        kwargs = {"file": file_msg(key, cid, path), "number": limit + 1}
        if after:
            kwargs["pagination_marker"] = file_msg(key, cid, after)
        items = [to_file_info(i, cid) for i in self.channel.stream("ListFile", self.channel.pfs.list_file, **kwargs)]
        more = len(items) > limit
        items = items[:limit]
        return FilePage(items=tuple(items), next=items[-1].path if more else None)

    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo:
        path = normalize_path(path)
        key, info = self.refs.finished(repo, ref)
        if info is None:
            if path == "/":
                return FileInfo(path="/", type="dir", size=0, committed=None)
            raise NotFound(f"{path} not found in {key}@{ref}", path=path)
        cid = info.commit.id
        found = self.channel.rpc("InspectFile", self.channel.pfs.inspect_file, file=file_msg(key, cid, path))
        return to_file_info(found, cid)

    def read_file(self, repo: str, ref: str, path: str, *, offset: int = 0,
                  length: int | None = None) -> Iterator[bytes]:
        check_range(offset, length)
        info = self.inspect_file(repo, ref, path)
        if info.is_dir:
            raise InvalidArgument(f"{path} is a directory", path=path)
        return self._read(repo_key(repo), info, offset, length)

    def _read(self, key: str, info: FileInfo, offset: int, length: int | None) -> Iterator[bytes]:
        if length == 0 or offset >= info.size:
            return
        chunks = self.channel.get_file(pfs.GetFileRequest(file=file_msg(key, info.committed, info.path), offset=offset))
        remaining = length
        try:
            for chunk in chunks:
                if remaining is not None:
                    chunk = chunk[:remaining]
                    remaining -= len(chunk)
                if chunk:
                    yield chunk
                if remaining is not None and remaining <= 0:
                    break
        finally:
            chunks.close()

    def read_tree(self, repo: str, ref: str, path: str = "/") -> Iterator[tuple[FileInfo, Iterator[bytes] | None]]:
        """``Backend.read_tree`` as ONE ``GetFileTAR`` (a round trip per file would cost seconds per
        thousand files), read as it arrives. Directories come without a size (a tar entry has none)."""
        top = self.inspect_file(repo, ref, path)
        if top.committed is None:  # an empty branch
            return
        cid = top.committed
        stream = self.channel.get_file(pfs.GetFileRequest(file=file_msg(repo_key(repo), cid, top.path)), tar=True)
        try:
            with tarfile.open(fileobj=io.BufferedReader(_Chunks(stream)), mode="r|") as tar:
                for member in tar:
                    entry = "/" + member.name.strip("/")
                    if member.isdir() and entry != "/":
                        yield FileInfo(path=entry + "/", type="dir", size=0, committed=cid), None
                    elif member.isfile():
                        yield (FileInfo(path=entry, type="file", size=member.size, committed=cid),
                               iter(functools.partial(tar.extractfile(member).read, CHUNK), b""))
        finally:
            stream.close()

    def diff(self, repo: str, old_ref: str | None, new_ref: str, path: str = "/") -> list[FileChange]:
        path = normalize_path(path)
        key, new = self.refs.finished(repo, new_ref)
        old = None
        if old_ref is not None:
            _, old = self.refs.finished(key, old_ref)
        if new is None or old is None:
            changes = []
            if new is not None:
                changes = [FileChange(i.path, "added", None, i) for i in self._files(key, new.commit.id, path)]
            elif old is not None:
                changes = [FileChange(i.path, "deleted", i, None) for i in self._files(key, old.commit.id, path)]
            return sorted(changes, key=lambda c: c.path)
        if old.commit.id == new.commit.id:
            return []
        changes = []
        for d in self.channel.stream("DiffFile", self.channel.pfs.diff_file,
                                     new_file=file_msg(key, new.commit.id, path),
                                     old_file=file_msg(key, old.commit.id, path)):
            before = to_file_info(d.old_file, old.commit.id) if is_set(d.old_file) and d.old_file.file.path else None
            after = to_file_info(d.new_file, new.commit.id) if is_set(d.new_file) and d.new_file.file.path else None
            before = before if before is not None and not before.is_dir else None
            after = after if after is not None and not after.is_dir else None
            if before is None and after is None:
                continue
            if before is not None and after is not None and before.hash == after.hash and before.size == after.size:
                continue
            kind = "added" if before is None else "deleted" if after is None else "modified"
            changes.append(FileChange(path=(after or before).path, change=kind, old=before, new=after))
        return sorted(changes, key=lambda c: c.path)

    def _files(self, key: str, commit_id: str, path: str) -> list[FileInfo]:
        """Every file (no directories) at or below ``path``."""
        try:
            start = self.inspect_file(key, commit_id, path)
        except NotFound:
            return []
        if not start.is_dir:
            return [start]
        return [i for i in walk_tree(self.list_dir, key, commit_id, path) if not i.is_dir]
