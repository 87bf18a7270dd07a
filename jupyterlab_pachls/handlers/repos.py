"""Routes of the versioned data: repos, branches (history, long poll, head moves), commits, files, diffs."""

from __future__ import annotations

import asyncio
import mimetypes
import urllib.parse

import tornado.iostream
import tornado.web

from ..listing import branches_json, repo_json
from ..pfs import Backend, Conflict, InvalidArgument, NotFound, is_commit_id, normalize_path
from ..pfs.archive import FORMATS as ARCHIVE_TYPES
from ..pfs.archive import archive_entries, archive_format, plan_archive, stream_archive
from ..pfs.file_history import file_history
from ..pfs.follow import MAX_POLL_INTERVAL, POLL_INTERVAL, BranchFollower
from .args import branch_arg, check_fields, commit_id_arg, ref_arg, repo_arg, string_field
from .base import PachlsHandler, json_errors


async def repos_listing(handler: PachlsHandler, backend: Backend) -> tuple[bytes, str]:
    """(body, ETag) of the ``GET /repos`` answer of ``backend`` (the caller's, taken once), kept while
    the store is unchanged (a short call)."""
    return await handler.call(handler.state.repos_listing(backend).load)


class ReposHandler(PachlsHandler):
    """``GET /pachls/api/repos``: every repo with its branches (two backend calls); ``POST``: create.

    The body is kept while the store's change token (``LocalBackend.change_token``) is
    unchanged, and carries an ETag: ``If-None-Match`` answers 304 when nothing changed.
    """

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        body, etag = await repos_listing(self, self.backend)
        self.send_with_etag(etag, lambda: body)

    def compute_etag(self) -> None:
        return None  # set from the kept listing (send_with_etag)

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        name = string_field(body, "name", required=True, allow_empty=False)
        check_fields(body, ("name",), ("description",))
        description = string_field(body, "description", default="")
        repo_arg(name)
        repo = await self.call(self.backend.create_repo, name, description=description)
        self.send_json(repo_json(repo, []), status=201)


class RepoHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}``: one repo with its branches; ``DELETE``: delete it."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str) -> None:
        repo = repo_arg(repo)
        backend = self.backend

        def load():
            return backend.inspect_repo(repo), backend.list_branches(repo)

        found, branches = await self.call(load)
        self.send_json(repo_json(found, branches))

    @tornado.web.authenticated
    @json_errors
    async def delete(self, repo: str) -> None:
        repo = repo_arg(repo)
        backend = self.backend
        mounts = self.state.mounts
        if mounts is not None:
            using = [m.name for m in await self.call(mounts.list) if m.repo == repo]
            if using:
                raise Conflict(f"repo {repo} is mounted ({', '.join(using)}); unmount it first",
                               repo=repo, mounts=using)
        await self.call_long(backend.delete_repo, repo)  # on a cluster it also lands a commit in pachls-meta
        self.send_empty()


# -- branches ----------------------------------------------------------------------------------
class BranchesHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches``; ``POST``: create a branch (optional head)."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str) -> None:
        repo = repo_arg(repo)
        backend = self.backend

        def load():
            backend.inspect_repo(repo)  # 404 for an unknown repo, not an empty list
            return backend.list_branches(repo)

        branches = await self.call(load)
        self.send_json({"branches": branches_json(branches)})

    @tornado.web.authenticated
    @json_errors
    async def post(self, repo: str) -> None:
        repo = repo_arg(repo)
        body = self.json_body()
        check_fields(body, ("name",), ("head",))
        name = branch_arg(string_field(body, "name", required=True, allow_empty=False))
        head = body.get("head")
        if head is not None:
            head = ref_arg(head, "head")
        await self.send_result(self.backend.create_branch, repo, name, head, status=201)


class BranchHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}``: the branch and its head."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        await self.send_result(self.backend.inspect_branch, repo, branch)


class CommitsHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}/commits?limit=&before=&path=``: paged history;
    with ``path``, only the commits that added, modified or deleted that file."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        limit = self.int_query("limit", 50, 1, 1000)
        before = self.query("before")
        if before is not None and not is_commit_id(before):
            raise InvalidArgument("'before' must be the 'next' cursor of a previous page (a commit id)",
                                  parameter="before")
        path = self.query("path")
        if path is not None:
            path = self.path_query("path")
        backend = self.backend

        def load():
            backend.inspect_branch(repo, branch)  # 404 for an unknown branch
            if path is not None:
                return file_history(backend, repo, branch, path, limit=limit, before=before)
            commits = backend.list_commits(repo, branch, limit=limit + 1, before=before)
            more = len(commits) > limit
            return commits[:limit], commits[limit - 1].id if more else None

        commits, cursor = await self.call(load)
        self.send_json({"commits": [c.to_json() for c in commits], "next": cursor})


class BranchWaitHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}/wait?after=&timeout=``: long poll for the commits
    that land on the branch after ``after`` (a commit id; empty: from the branch's first commit; absent:
    from its head now), oldest first, waiting up to ``timeout`` seconds for one. Pass the answer's
    ``after`` back to continue (see ``pfs/follow.py``)."""

    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        after = self.query("after")
        if after and not is_commit_id(after):
            raise InvalidArgument("'after' must be a commit id (or empty: from the branch's first commit)",
                                  parameter="after")
        timeout = self.int_query("timeout", 30, 0, 300)
        follower = await self.call(BranchFollower, self.backend, repo, branch, after)
        deadline = asyncio.get_running_loop().time() + timeout
        interval = POLL_INTERVAL
        while True:
            commits = await self.call(follower.poll)
            if commits or self.closed or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(min(interval, max(0.0, deadline - asyncio.get_running_loop().time())))
            interval = min(interval * 1.5, MAX_POLL_INTERVAL)
        self.send_json({"commits": [c.to_json() for c in commits], "after": follower.cursor})


class BranchHeadHandler(PachlsHandler):
    """``PUT /pachls/api/repos/{repo}/branches/{branch}/head``: move the head (rollback)."""

    @tornado.web.authenticated
    @json_errors
    async def put(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        body = self.json_body()
        check_fields(body, ("commit",), ("expected_head", "reason"))
        to = ref_arg(body.get("commit"), "commit")
        expected = commit_id_arg(body.get("expected_head"), "expected_head")
        reason = string_field(body, "reason", default="rollback", allow_empty=False)
        # on a cluster a move is recorded by a commit in pachls-meta: it lands, so it is long
        await self.send_long_result(self.backend.move_branch, repo, branch, to,
                                    expected_head=expected, author=self.user_name, reason=reason)


#: how much of a branch's history, and of each line a move left, is read to find the commits it left
MOVES_SHOWN, HISTORY_READ, LEFT_READ = 20, 1000, 100


def commits_left(backend: Backend, repo: str, branch: str, moves) -> list:
    """Commits that recorded head moves took out of the branch's history (a rollback's undone commits),
    newest first: each move's old and new head and their parents down to where they meet the branch's
    history (the newest ``MOVES_SHOWN`` moves, ``LEFT_READ`` commits of each line at most)."""
    on_branch = {c.id for c in backend.list_commits(repo, branch, limit=HISTORY_READ)}
    left: dict[str, object] = {}
    for move in moves[:MOVES_SHOWN]:
        for start in (move.old_head, move.new_head):
            if start is None or start in on_branch or start in left:
                continue
            try:
                line = backend.list_commits(repo, start, limit=LEFT_READ)
            except NotFound:  # squashed or deleted since
                continue
            for commit in line:
                if commit.id in on_branch or commit.id in left:
                    break
                left[commit.id] = commit
    return sorted(left.values(), key=lambda c: c.finished or c.started, reverse=True)


class BranchMovesHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/branches/{branch}/moves``: recorded head moves, newest first, and
    the commits they took out of the branch's history (``left``), so a history can show them in place
    and move the branch back onto them."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, branch: str) -> None:
        repo, branch = repo_arg(repo), branch_arg(branch)
        backend = self.backend

        def load():
            backend.inspect_branch(repo, branch)
            moves = backend.branch_moves(repo, branch)
            return moves, commits_left(backend, repo, branch, moves)

        moves, left = await self.call(load)
        self.send_json({"moves": [m.to_json() for m in moves], "left": [c.to_json() for c in left]})


# -- commits and files ----------------------------------------------------------------------------
class CommitHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}``: inspect a commit."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        await self.send_result(self.backend.inspect_commit, repo, ref)


class FilesHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}/files?path=&limit=&after=``: one directory page."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        path = self.path_query("path")
        limit = self.int_query("limit", 400, 1, 10_000)
        after = self.query("after")
        if after is not None:
            normalize_path(after)  # a cursor is a path; refuse anything else
        page = await self.call(self.backend.list_dir, repo, ref, path, limit=limit, after=after)
        body = page.to_json()
        body["path"] = path
        self.send_json(body)


def content_disposition(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1] or "download"
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


class FileHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}/file?path=``: download one file, streamed."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        path = self.path_query("path", required=True)
        if path == "/":
            raise InvalidArgument("path must name a file, not the repo root", path=path)
        backend = self.backend

        def open_file():
            info = backend.inspect_file(repo, ref, path)
            if info.is_dir:
                raise InvalidArgument(f"{path} is a directory; list it with .../files?path=", path=path)
            # Read from the commit the info came from, so size and bytes always agree.
            return info, backend.read_file(repo, info.committed or ref, path)

        info, chunks = await self.call(open_file)
        ctype, encoding = mimetypes.guess_type(path, strict=False)
        if not ctype or encoding:
            ctype = "application/octet-stream"
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Length", str(info.size))
        self.set_header("Content-Disposition", content_disposition(path))
        self.set_header("X-Content-Type-Options", "nosniff")
        if info.hash:
            self.set_header("ETag", f'"{info.hash}"')
        done = object()
        try:
            while True:
                chunk = await self.call(next, chunks, done)
                if chunk is done:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        self.finish()


class ArchiveHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/commits/{ref}/archive?path=&format=tar|zip``: ``path`` (default the
    whole repo) and everything below it at the commit ``ref`` names, one archive streamed as it is read
    (``pfs/archive.py``). A failure once the first bytes left cuts the connection, so the client sees a
    broken download, never a shorter archive that looks whole."""

    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str, ref: str) -> None:
        repo, ref = repo_arg(repo), ref_arg(ref)
        path = self.path_query("path")
        fmt = self.query("format")
        fmt = archive_format("tar" if fmt is None else fmt)  # given but empty is refused, not the default
        backend = self.backend
        archive = await self.call(plan_archive, backend, repo, ref, path)
        chunks = stream_archive(fmt, archive_entries(backend, archive), archive.commit.finished.timestamp())
        self.set_header("Content-Type", ARCHIVE_TYPES[fmt])
        self.set_header("Content-Disposition", content_disposition(archive.filename(fmt)))
        self.set_header("X-Pachls-Commit", archive.commit.id)
        done = object()
        try:
            while not self.closed:
                try:
                    chunk = await self.call(next, chunks, done)
                except Exception:
                    if not self._headers_written:
                        raise
                    self.log.exception("archive of %s@%s:%s failed mid-stream", repo, archive.commit.id, path)
                    self.request.connection.close()  # cut: a finished chunked answer would look whole
                    return
                if chunk is done:
                    break
                self.write(chunk)
                await self.flush()
        except tornado.iostream.StreamClosedError:
            return  # the client went away
        finally:
            await self.call(chunks.close)  # closes the file being read, in a worker (it may touch the store)
        if not self.closed:
            self.finish()


class DiffHandler(PachlsHandler):
    """``GET /pachls/api/repos/{repo}/diff?from=&to=&path=``: changes between two commits."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, repo: str) -> None:
        repo = repo_arg(repo)
        to = self.query("to")
        if to is None:
            raise InvalidArgument("query parameter 'to' (a ref) is required", parameter="to")
        to = ref_arg(to, "to")
        old = self.query("from")
        if old is not None:
            old = ref_arg(old, "from")
        path = self.path_query("path")
        backend = self.backend

        def load():
            new_commit = backend.inspect_commit(repo, to)
            old_id = backend.inspect_commit(repo, old).id if old is not None else new_commit.parent
            return old_id, new_commit.id, backend.diff(repo, old_id, new_commit.id, path)

        old_id, new_id, changes = await self.call(load)
        self.send_json({
            "from": old_id,
            "to": new_id,
            "path": path,
            "changes": [c.to_json() for c in sorted(changes, key=lambda c: c.path)],
        })

