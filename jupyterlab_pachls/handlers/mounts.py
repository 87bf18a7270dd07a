"""Routes of mounts: list, mount, status, unmount, refresh, follow, staged changes, commit, discard."""

from __future__ import annotations

import asyncio
import logging

import tornado.web

from ..pfs import InvalidArgument, is_commit_id, parse_ref
from .args import absolute_path_arg, branch_arg, check_fields, commit_id_arg, mount_name_arg, provenance_arg, ref_arg, repo_arg, string_field
from .base import PachlsHandler, json_errors

log = logging.getLogger(__name__)

def mount_json(status) -> dict:
    """A mount's status as the API shows it: a base that is no longer in the branch's history (the
    branch was rolled back below it) is ``diverged``, not a negative ``behind``."""
    shown = status.to_json()
    shown["diverged"] = shown.get("behind", 0) < 0
    shown["behind"] = max(0, shown.get("behind", 0))
    return shown


def follow_moved_heads(handler: PachlsHandler, statuses) -> None:
    """Read-only mounts of a branch whose head moved (on, or back) follow it: a refresh each, on the
    long pool, not waited for (the listing answers now; the next poll shows the new base)."""
    for status in statuses:
        if status.mode != "ro" or status.commit is not None or status.state != "mounted" \
                or status.head is None or status.head == status.base:
            continue

        async def follow(name: str = status.name) -> None:
            try:
                await handler.call_long(handler.mounts.follow_head, name)
            except Exception as exc:  # busy, unmounted meanwhile, the backend gone: the next poll asks again
                log.info("mount %s did not follow its branch yet: %s", name, getattr(exc, "message", exc))

        asyncio.ensure_future(follow())


async def mounts_listing(handler: PachlsHandler) -> dict:
    """The ``GET /mounts`` answer: every mount's status (a short call), sorted by name. Read-only
    mounts of a branch whose head moved start following it."""
    mounts = handler.mounts
    found = await handler.call(mounts.list)
    follow_moved_heads(handler, found)
    return {
        "mount_dir": str(mounts.mount_dir),
        "fuse": bool(mounts.use_fuse),
        "fuse_reason": mounts.fuse_reason,
        "mounts": [mount_json(m) for m in sorted(found, key=lambda m: m.name)],
    }


class MountsHandler(PachlsHandler):
    """``GET /pachls/api/mounts``: every mount; ``POST``: mount a repo."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.send_json(await mounts_listing(self))

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        check_fields(body, ("repo",), ("branch", "commit", "ref", "mode", "name"))
        repo = repo_arg(string_field(body, "repo", required=True, allow_empty=False))
        mode = body.get("mode", "ro")
        if mode not in ("ro", "rw"):
            raise InvalidArgument("'mode' must be 'ro' or 'rw'", field="mode")
        branch = body.get("branch")
        commit = body.get("commit")
        if "ref" in body:
            if branch is not None or commit is not None:
                raise InvalidArgument("give 'ref', or 'branch' and/or 'commit', not both", field="ref")
            ref = ref_arg(body["ref"], "ref")
            name_part, ancestors = parse_ref(ref)
            if ancestors:
                raise InvalidArgument("mount a branch or a commit id, not branch^N", field="ref")
            if is_commit_id(name_part):
                commit = name_part
            else:
                branch = name_part
        if branch is not None:
            branch = branch_arg(branch)
        commit = commit_id_arg(commit, "commit")
        name = body.get("name")
        if name is not None:
            name = mount_name_arg(name)
        mounts = self.mounts
        status = await self.call_long(mounts.mount, repo, branch, commit=commit, mode=mode, name=name)
        self.send_json(mount_json(status), status=201)


class MountHandler(PachlsHandler):
    """``GET /pachls/api/mounts/{name}``: status; ``DELETE``: unmount."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, name: str) -> None:
        name = mount_name_arg(name)
        status = await self.call(self.mounts.status, name)
        self.send_json(mount_json(status))

    @tornado.web.authenticated
    @json_errors
    async def delete(self, name: str) -> None:
        name = mount_name_arg(name)
        discard = self.bool_query("discard")
        await self.call_long(self.mounts.unmount, name, discard=discard)
        self.send_empty()


class MountActionHandler(PachlsHandler):
    """``POST /pachls/api/mounts/{name}/<action>`` with no fields: do it, answer the mount's status."""

    def act(self, mounts, name: str):
        """The action, a long operation; returns the mount's status after it."""
        raise NotImplementedError

    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        check_fields(self.json_body())
        status = await self.call_long(self.act, self.mounts, name)
        self.send_json(mount_json(status))


def overwrite_field(body: dict) -> bool | list[str]:
    """``overwrite``: whether moving a read-write mount may replace local files its ignore rules keep
    out of commits (without it, 409 ``would_overwrite`` names them and nothing changes): true, or the
    paths a refusal named (any other file found in the way since is refused again)."""
    overwrite = body.get("overwrite", False)
    if isinstance(overwrite, bool):
        return overwrite
    if not isinstance(overwrite, list) or not all(isinstance(p, str) for p in overwrite):
        raise InvalidArgument("'overwrite' must be true, false or a list of repo paths", field="overwrite")
    return [absolute_path_arg(p, "overwrite[]") for p in overwrite]


class MountRefreshHandler(PachlsHandler):
    """``POST /pachls/api/mounts/{name}/refresh`` {overwrite}: move a branch mount to the branch head."""

    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        body = self.json_body()
        check_fields(body, (), ("overwrite",))
        status = await self.call_long(self.mounts.refresh, name, overwrite=overwrite_field(body))
        self.send_json(mount_json(status))


class MountFollowHandler(PachlsHandler):
    """``POST /pachls/api/mounts/{name}/follow`` {pending: keep|drop, overwrite}: move a branch mount to
    its branch's head wherever it went (a rollback included), keeping or dropping the staged changes."""

    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        body = self.json_body()
        check_fields(body, (), ("pending", "overwrite"))
        pending = body.get("pending", "keep")
        if pending not in ("keep", "drop"):
            raise InvalidArgument("'pending' must be 'keep' or 'drop'", field="pending")
        status = await self.call_long(self.mounts.follow, name, keep=pending == "keep",
                                      overwrite=overwrite_field(body))
        self.send_json(mount_json(status))


class MountDiscardHandler(MountActionHandler):
    """``POST /pachls/api/mounts/{name}/discard``: drop the staged changes."""

    def act(self, mounts, name: str):
        mounts.discard(name)
        return mounts.status(name)


class MountChangesHandler(PachlsHandler):
    """``GET /pachls/api/mounts/{name}/changes``: the staged changes of a read-write mount."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, name: str) -> None:
        name = mount_name_arg(name)
        await self.send_result(self.mounts.changes, name)


class MountCommitHandler(PachlsHandler):
    """``POST /pachls/api/mounts/{name}/commit`` {message, provenance, paths}: one commit of the staged
    changes (with ``paths``, of those only; the others stay pending)."""

    @tornado.web.authenticated
    @json_errors
    async def post(self, name: str) -> None:
        name = mount_name_arg(name)
        body = self.json_body()
        check_fields(body, ("message",), ("provenance", "paths"))
        message = string_field(body, "message", required=True, allow_empty=False)
        if not message.strip():
            raise InvalidArgument("Field 'message' must not be blank.", field="message")
        provenance = provenance_arg(body.get("provenance"))
        paths = body.get("paths")
        if paths is not None:
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise InvalidArgument("Field 'paths' must be a list of repo paths", field="paths")
            paths = [absolute_path_arg(p, "paths[]") for p in paths]
        mounts = self.mounts

        def run():
            commit = mounts.commit(name, message, author=self.user_name, provenance=provenance, paths=paths)
            return commit, mounts.status(name)

        commit, status = await self.call_long(run)
        self.send_json({"commit": commit.to_json(), "mount": mount_json(status)}, status=201)
