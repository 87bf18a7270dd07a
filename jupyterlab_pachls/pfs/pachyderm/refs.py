"""Refs to commits as readers see them: a branch, a commit id or ``branch^N`` resolved to pachd's
``CommitInfo``. A landing commit in progress at a branch head is invisible: readers see its parent."""

from __future__ import annotations

from pachyderm_sdk.api import pfs

from ..address import is_commit_id, parse_ref
from ..errors import Conflict, InvalidArgument, NotFound
from ..wire import branch_msg, commit_msg, repo_msg
from .channel import Channel
from .messages import head_id, is_finished, parent_id, repo_key


class Refs:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def inspect(self, key: str, commit_id: str, wait=None) -> pfs.CommitInfo:
        kwargs = {"commit": commit_msg(key, commit_id)}
        if wait is not None:
            kwargs["wait"] = wait
        return self.channel.rpc("InspectCommit", self.channel.pfs.inspect_commit, **kwargs)

    def wait_finished(self, key: str, commit_id: str) -> pfs.CommitInfo:
        info = self.inspect(key, commit_id, wait=pfs.CommitState.FINISHED)
        if info.error:
            raise Conflict(f"commit {commit_id} failed: {info.error}", commit=commit_id, error=info.error)
        return info

    def head(self, key: str, branch: str) -> pfs.CommitInfo | None:
        """The finished head of ``branch`` (None if it has none); NotFound if there is no such branch."""
        info = self.channel.rpc("InspectBranch", self.channel.pfs.inspect_branch, branch=branch_msg(key, branch))
        return self.shown(key, head_id(info))

    def shown(self, key: str, head: str | None) -> pfs.CommitInfo | None:
        """What readers see at a branch whose head is the commit ``head`` (None: an empty branch): that
        commit once finished; while it is a landing in progress, its parent."""
        if head is None:
            return None
        info = self.inspect(key, head)
        if not is_finished(info):
            parent = parent_id(info)
            if parent is None:
                return None
            info = self.inspect(key, parent)
        return info

    def resolve(self, repo: str, ref: str, *, allow_empty: bool = False) -> tuple[str, pfs.CommitInfo | None]:
        """(repo key, the commit ``ref`` names); with ``allow_empty`` an empty branch gives None."""
        key = repo_key(repo)
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a branch name or commit id is required", ref=repr(ref))
        name, ancestors = parse_ref(ref)
        if is_commit_id(name):
            info = self.inspect(key, name)
        else:
            info = self.head(key, name)
            if info is None:
                if allow_empty and not ancestors:
                    return key, None
                raise NotFound(f"branch {name} of repo {key} has no commits", repo=key, branch=name)
        if ancestors:
            chain = list(self.channel.stream("ListCommit", self.channel.pfs.list_commit, repo=repo_msg(key),
                                             to=commit_msg(key, info.commit.id), number=ancestors + 1, all=True))
            if len(chain) <= ancestors:
                raise NotFound(f"{ref} goes back {ancestors} commits but the history has only {len(chain) - 1}",
                               ref=ref)
            info = chain[ancestors]
        return key, info

    def finished(self, repo: str, ref: str) -> tuple[str, pfs.CommitInfo | None]:
        """``resolve`` for reading files: Conflict while the commit is still open."""
        key, info = self.resolve(repo, ref, allow_empty=True)
        if info is not None and not is_finished(info):
            raise Conflict(f"commit {info.commit.id} is still open; its files can be read once it is finished",
                           commit=info.commit.id)
        return key, info
