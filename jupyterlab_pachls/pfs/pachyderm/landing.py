"""The commit protocol on pachd: open commits are staged on a private branch, and *land* on their
branch when they finish, so readers of a branch never see an open commit and a commit lands on the
branch head at finish time (see the package docstring)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import grpc
from pachyderm_sdk.api import pfs

from ..address import normalize_path
from ..backend import Content
from ..errors import Conflict, InvalidArgument, NotFound, PfsError, Unavailable
from ..model import Commit, Provenance
from ..wire import branch_msg, commit_msg, file_msg
from .channel import Channel
from .messages import (
    STAGING_PREFIX, branch_named, decode_description, encode_description, is_finished, is_set, is_staging, parent_id, repo_key, staging_of, to_commit,
)
from .orphans import STAGING_UNKNOWN, Orphans
from .refs import Refs

UPLOAD_CHUNK = 2 << 20  # bytes per ModifyFile message: small enough to keep memory flat
LAND_TIMEOUT = 120.0


class BranchLocks:
    """One landing or branch move at a time per branch, within this process.

    A branch's lock lives only while someone holds or waits for it, so a long-running server
    that has landed on many branches (deleted ones included) keeps no lock for each.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], list] = {}  # (repo key, branch) -> [lock, holders and waiters]
        self._guard = threading.Lock()

    @contextmanager
    def __call__(self, key: str, branch: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault((key, branch), [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[(key, branch)]


def _chunks(content: Content) -> Iterator[bytes]:
    if isinstance(content, (bytes, bytearray, memoryview)):
        view = memoryview(content)
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield bytes(view[start:start + UPLOAD_CHUNK])
        return
    if isinstance(content, os.PathLike):
        with open(content, "rb") as source:
            while chunk := source.read(UPLOAD_CHUNK):
                yield chunk
        return
    while chunk := content.read(UPLOAD_CHUNK):
        if isinstance(chunk, str):
            raise InvalidArgument("file content must be binary, not text")
        yield chunk


def _check_content(content: object) -> None:
    if not (isinstance(content, (bytes, bytearray, memoryview, os.PathLike)) or hasattr(content, "read")):
        raise InvalidArgument(f"file content must be bytes, a binary file or a path, not {type(content).__name__}")


class StagedCommits:
    def __init__(self, channel: Channel, refs: Refs, locks: BranchLocks) -> None:
        self.channel = channel
        self.refs = refs
        self.locks = locks
        self.orphans = Orphans(channel, refs)

    # -- staging -----------------------------------------------------------------------------------
    def start(self, key: str, branch: str, *, message: str, author: str, provenance: Iterable[Provenance],
              metadata: dict[str, str]) -> Commit:
        """Open a commit on a new staging branch, its parent the head of ``branch`` now (checked args)."""
        self.orphans.clean()
        resolved = []
        for item in provenance:
            if not isinstance(item, Provenance):
                raise InvalidArgument("provenance items must be Provenance(repo, commit)")
            pkey, info = self.refs.resolve(item.repo, item.commit)
            resolved.append([item.repo, info.commit.id, item.branch or branch_named(item.commit)
                             or to_commit(info, pkey).branch])
        try:
            head = self.refs.head(key, branch)
        except NotFound:
            # Left to the landing commit to create: pachd gives a branch made by CreateBranch without
            # a head an empty AUTO commit, which would become the parent of this first commit.
            head = None
        staging = STAGING_PREFIX + uuid.uuid4().hex
        # pachd answers with Commit.branch cleared: the staging branch is known from here on.
        meta = {"branch": branch, "author": author, "provenance": resolved, "metadata": metadata,
                "staging": staging}
        kwargs = {"branch": branch_msg(key, staging), "description": encode_description(message, meta)}
        if head is not None:
            kwargs["parent"] = commit_msg(key, head.commit.id)
        try:
            opened = self.channel.rpc("StartCommit", self.channel.pfs.start_commit, **kwargs)
            return to_commit(self.refs.inspect(key, opened.id), key)
        except Unavailable:
            # the commit may have been opened with the reply lost: drop it once the cluster answers
            self.orphans.add(key, "", staging)
            raise

    def _staged(self, commit: Commit) -> tuple[str, pfs.CommitInfo, str]:
        """(repo key, info, staging branch) of an open commit; NotFound / Conflict otherwise."""
        if not isinstance(commit, Commit):
            raise InvalidArgument("expected a Commit returned by start_commit")
        key = repo_key(commit.repo)
        info = self.refs.inspect(key, commit.id)
        staging = staging_of(info)
        if not is_staging(staging):
            if is_finished(info):
                raise Conflict(f"commit {commit.id} is already finished; start a new commit", commit=commit.id)
            raise InvalidArgument(f"commit {commit.id} was not opened by start_commit", commit=commit.id)
        if is_finished(info):
            try:
                self.channel.rpc("InspectBranch", self.channel.pfs.inspect_branch, branch=branch_msg(key, staging))
            except NotFound:
                raise Conflict(f"commit {commit.id} is already finished; start a new commit",
                               commit=commit.id) from None
        return key, info, staging

    def _modify(self, key: str, commit_id: str, branch: str | None, ops: Iterator[pfs.ModifyFileRequest]) -> None:
        """One ModifyFile stream; an exception raised while producing requests is re-raised as itself."""
        failure: list[BaseException] = []

        def requests():
            yield pfs.ModifyFileRequest(set_commit=commit_msg(key, commit_id, branch))
            try:
                yield from ops
            except BaseException as exc:
                failure.append(exc)
                raise

        try:
            self.channel.modify_file(requests())
        except PfsError:
            if failure:
                raise failure[0] from None
            raise
        if failure:
            raise failure[0]

    def put_files(self, commit: Commit, items: Iterable[tuple[str, Content]]) -> int:
        key, _info, staging = self._staged(commit)
        if isinstance(items, (list, tuple)):  # a sequence is checked whole before anything is sent
            for path, content in items:
                normalize_path(path, allow_root=False)
                _check_content(content)
        count = 0

        def ops():
            nonlocal count
            for path, content in items:
                path = normalize_path(path, allow_root=False)
                _check_content(content)
                yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path))
                yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=b""))
                for chunk in _chunks(content):
                    yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=chunk))
                count += 1

        self._modify(key, commit.id, staging, ops())
        return count

    def delete_file(self, commit: Commit, path: str) -> None:
        key, _info, staging = self._staged(commit)
        path = normalize_path(path)
        paths = [path] if path == "/" else [path, path + "/"]
        self._modify(key, commit.id, staging, iter([pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=p))
                                                    for p in paths]))

    def abort(self, commit: Commit) -> None:
        try:
            key, info, staging = self._staged(commit)
        except Unavailable:
            # Cleaned up by the next commit once the cluster answers; the branch never showed it.
            if isinstance(commit, Commit):
                self.orphans.add(repo_key(commit.repo), commit.id, STAGING_UNKNOWN)
            raise
        try:
            if not is_finished(info):
                self.channel.rpc("DropCommitSet", self.channel.pfs.drop_commit_set,
                                 commit_set=pfs.CommitSet(id=commit.id))
            self.channel.rpc("DeleteBranch", self.channel.pfs.delete_branch, branch=branch_msg(key, staging),
                             force=True)
        except Unavailable:
            self.orphans.add(key, commit.id, staging)
            raise

    # -- landing -----------------------------------------------------------------------------------
    def finish(self, commit: Commit, *, expected_parent: str | None = None) -> Commit:
        """Land the staged commit on its branch's head now (a compare-and-set with ``expected_parent``)."""
        self.orphans.clean()
        key, staged, staging = self._staged(commit)
        message, meta = decode_description(staged.description)
        meta = dict(meta or {})
        meta.pop("staging", None)  # the landed commit is on the branch itself
        target = meta.get("branch") or commit.branch
        meta["started"] = staged.started.isoformat() if staged.started else None
        meta["staged"] = commit.id
        with self.locks(key, target):
            if expected_parent is not None:
                # Checked before a landing commit exists too: subscribers of the branch (SubscribeCommit)
                # would see a landing commit that is then dropped.
                try:
                    current = self.refs.head(key, target)
                except NotFound:
                    current = None
                head = current.commit.id if current is not None else None
                if head != expected_parent:
                    raise Conflict(
                        f"branch {target} moved to {head} (expected {expected_parent}); the commit stays open",
                        branch=target, head=head, expected=expected_parent)
            self.orphans.drop_landings(key, target)
            try:
                landing = self._start_landing(key, target, encode_description(message, meta))
            except Unavailable:
                # The landing may have started with its reply lost: left open, it would hold the branch
                # for LAND_TIMEOUT. Found and dropped by its staged id once the cluster answers.
                self.orphans.add_landing(key, target, commit.id)
                raise
            try:
                parent = parent_id(self.refs.inspect(key, landing))
                if expected_parent is not None and parent != expected_parent:
                    raise Conflict(
                        f"branch {target} moved to {parent} (expected {expected_parent}); the commit stays open",
                        branch=target, head=parent, expected=expected_parent)
                if not is_finished(staged):
                    self.channel.rpc("FinishCommit", self.channel.pfs.finish_commit, commit=commit_msg(key, commit.id))
                    self.refs.wait_finished(key, commit.id)
                self._modify(key, landing, target, self._replay(key, staged, commit.id))
                self.channel.rpc("FinishCommit", self.channel.pfs.finish_commit, commit=commit_msg(key, landing))
                landed = self.refs.wait_finished(key, landing)
            except BaseException:
                try:
                    self._drop_landing(key, landing)
                except Unavailable:
                    self.orphans.add(key, landing, None)
                except PfsError:
                    pass
                raise
        try:
            self.channel.rpc("DeleteBranch", self.channel.pfs.delete_branch, branch=branch_msg(key, staging),
                             force=True)
        except Unavailable:
            self.orphans.add(key, commit.id, staging)  # landed; only the staging branch is left
        return to_commit(landed, key)

    def _drop_landing(self, key: str, landing: str) -> None:
        """Drop a landing commit that did not finish (one that finished landed: it stays)."""
        if not is_finished(self.refs.inspect(key, landing)):
            self.channel.rpc("DropCommitSet", self.channel.pfs.drop_commit_set, commit_set=pfs.CommitSet(id=landing))

    def _start_landing(self, key: str, target: str, description: str) -> str:
        """Start the landing commit on ``target``; waits while another landing holds the branch."""
        deadline = time.monotonic() + LAND_TIMEOUT
        delay = 0.01
        while True:
            self.channel.ready()
            try:
                return self.channel.pfs.start_commit(branch=branch_msg(key, target), description=description).id
            except grpc.RpcError as exc:
                if "has not been finished" not in (exc.details() or ""):
                    raise self.channel.error(exc, "StartCommit") from None
                if time.monotonic() > deadline:
                    if self._drop_stale_landing(key, target):
                        deadline = time.monotonic() + LAND_TIMEOUT
                        continue
                    raise self.channel.error(exc, "StartCommit") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _drop_stale_landing(self, key: str, target: str) -> bool:
        """After waiting LAND_TIMEOUT for the branch: drop the unfinished landing commit at its head if it
        is one of ours (a client that died mid-landing left it; it was never visible to readers)."""
        info = self.channel.rpc("InspectBranch", self.channel.pfs.inspect_branch, branch=branch_msg(key, target))
        if not is_set(info.head) or not info.head.id:
            return False
        head = self.refs.inspect(key, info.head.id)
        _, meta = decode_description(head.description)
        if is_finished(head) or not meta or "staged" not in meta:
            return False
        self.channel.rpc("DropCommitSet", self.channel.pfs.drop_commit_set,
                         commit_set=pfs.CommitSet(id=head.commit.id))
        return True

    def _replay(self, key: str, staged: pfs.CommitInfo, staged_id: str) -> Iterator[pfs.ModifyFileRequest]:
        """The staged commit's changes against its own parent, as deletions then server-side copies."""
        base = parent_id(staged)
        request = {"new_file": file_msg(key, staged_id, "/")}
        if base is not None:
            request["old_file"] = file_msg(key, base, "/")
        copies, deletes = [], []
        for change in self.channel.stream("DiffFile", self.channel.pfs.diff_file, **request):
            if is_set(change.new_file) and change.new_file.file.path:
                if change.new_file.file_type != pfs.FileType.DIR:
                    copies.append(change.new_file.file.path)
            elif is_set(change.old_file) and change.old_file.file_type != pfs.FileType.DIR:
                deletes.append(change.old_file.file.path)
        vanished: dict[str, bool] = {}

        def gone(directory: str) -> bool:
            if directory not in vanished:
                try:
                    self.channel.rpc("InspectFile", self.channel.pfs.inspect_file,
                                     file=file_msg(key, staged_id, directory))
                    vanished[directory] = False
                except NotFound:
                    vanished[directory] = True
            return vanished[directory]

        removed: set[str] = set()
        for path in sorted(deletes):
            top = None
            parts = path.strip("/").split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/" + "/".join(parts[:depth])
                if gone(directory):
                    top = directory
                    break
            target = top or path
            if target in removed or any(target.startswith(r + "/") for r in removed):
                continue
            removed.add(target)
            yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=target))
            if top:
                yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=top + "/"))
        for path in copies:
            yield pfs.ModifyFileRequest(copy_file=pfs.CopyFile(dst=path, src=file_msg(key, staged_id, path)))
