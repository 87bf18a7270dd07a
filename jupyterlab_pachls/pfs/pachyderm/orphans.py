"""What failed calls left on the cluster while it was gone, cleaned up once it answers again.

An orphan is ``(repo key, commit id, staging branch)``: an open staged commit with its staging
branch, a staging branch whose commit id was never read (id ''), a staged commit whose staging
branch was not read (``STAGING_UNKNOWN``), or an unfinished landing commit (staging None), which
would block its branch. A landing commit that did finish (its reply was lost) is a landed commit
and is kept. A landing whose StartCommit reply was lost has no known id: it is found as the
unfinished head of its branch whose description names the staged commit it was landing.
"""

from __future__ import annotations

from pachyderm_sdk.api import pfs

from ..errors import NotFound, PfsError, Unavailable
from ..wire import branch_msg
from .channel import Channel
from .messages import STAGING_PREFIX, decode_description, is_finished, is_set, is_staging, staging_of
from .refs import Refs

#: In place of a staging branch not known when the call failed (no staging branch is the bare prefix).
STAGING_UNKNOWN = STAGING_PREFIX


class Orphans:
    def __init__(self, channel: Channel, refs: Refs) -> None:
        self.channel = channel
        self.refs = refs
        self._left: set[tuple[str, str, str | None]] = set()
        self._landings: set[tuple[str, str, str]] = set()  # (repo key, branch, staged commit id)

    def add(self, key: str, commit_id: str, staging: str | None) -> None:
        self._left.add((key, commit_id, staging))

    def add_landing(self, key: str, branch: str, staged: str) -> None:
        """A landing of ``staged`` on ``branch`` that may have started (its reply was lost)."""
        self._landings.add((key, branch, staged))

    def drop_landings(self, key: str, branch: str) -> None:
        """Drop an open landing on ``key@branch`` that a lost StartCommit reply left (``add_landing``).
        Called under the branch's landing lock, so no landing of this process is in progress there;
        Unavailable (still gone) keeps the record for the next try."""
        rpc, api = self.channel.rpc, self.channel.pfs
        for landing in [entry for entry in list(self._landings) if entry[:2] == (key, branch)]:
            staged = landing[2]
            try:
                info = rpc("InspectBranch", api.inspect_branch, branch=branch_msg(key, branch))
                if is_set(info.head) and info.head.id:
                    head = self.refs.inspect(key, info.head.id)
                    _, meta = decode_description(head.description)
                    if not is_finished(head) and meta and meta.get("staged") == staged:
                        rpc("DropCommitSet", api.drop_commit_set, commit_set=pfs.CommitSet(id=head.commit.id))
            except Unavailable:
                raise
            except PfsError:
                pass
            self._landings.discard(landing)

    def clean(self) -> None:
        """Drop every orphan the cluster still has; stop at the first sign that it is still gone."""
        rpc, api = self.channel.rpc, self.channel.pfs
        for orphan in sorted(list(self._left), key=str):
            key, commit_id, staging = orphan
            try:
                if not commit_id:  # only the staging branch is known
                    try:
                        branch = rpc("InspectBranch", api.inspect_branch, branch=branch_msg(key, staging))
                    except NotFound:
                        self._left.discard((key, commit_id, staging))
                        continue
                    if is_set(branch.head) and branch.head.id:
                        commit_id = branch.head.id
                    else:
                        rpc("DeleteBranch", api.delete_branch, branch=branch_msg(key, staging), force=True)
                        self._left.discard((key, "", staging))
                        continue
                try:
                    info = self.refs.inspect(key, commit_id)
                except NotFound:
                    self._left.discard((key, commit_id, staging))
                    continue
                if staging == STAGING_UNKNOWN:
                    branch = staging_of(info)
                    staging = branch if is_staging(branch) else None
                    if staging is None:
                        self._left.discard((key, commit_id, STAGING_UNKNOWN))
                        continue
                if not is_finished(info):
                    rpc("DropCommitSet", api.drop_commit_set, commit_set=pfs.CommitSet(id=commit_id))
                if staging:
                    rpc("DeleteBranch", api.delete_branch, branch=branch_msg(key, staging), force=True)
            except Unavailable:
                return  # still gone: try again next time
            except PfsError:
                pass
            # this one, and others naming the same commit or staging branch (None names no branch)
            for done in [o for o in list(self._left)
                         if o == orphan or (commit_id and o[1] == commit_id) or (staging and o[2] == staging)]:
                self._left.discard(done)
