"""Several writers committing to one branch at once through the REST API, and the checks after.

Used by ``tests/test_concurrency.py`` (a real Jupyter server from pytest-jupyter) and by
``stress/concurrent_writers.py`` (a ``jupyter server`` subprocess): both hand in ``fetch``, an
async ``fetch(method, path, body=None, params=None) -> (status, decoded JSON or None)`` where
``path`` is relative to the server's base URL (``pachls/api/mounts``, ``api/contents/...``).

Each writer does what a user of the panel does: it mounts ``repo@master`` read-write under its
own name, writes files into the mount folder through Jupyter's contents API (the file browser's
route), and presses Commit (``POST /mounts/{name}/commit``). A refused commit must be 409
``conflict`` naming the clashing paths (only paths this writer staged, and only paths that
commits landed since the mount's base really changed); the writer then does what the commit
dialog leaves it to do: sees its changes are still staged, refreshes (refused while they clash),
discards, refreshes, waits a moment, writes its change again and commits again. Optimistic
concurrency has no fairness: without the wait, one writer can lose the race for a shared file
dozens of times in a row.

Writer ``w``'s ``i``-th change writes ``/w{w}/{i:03d}.txt`` (its own) and, with ``shared > 0``,
``/shared/{i % shared}.txt`` (every writer's): the contents say who wrote them in which round.

``verify`` then reads the branch back through the API: every landed commit is in the history
exactly once, nothing else is, each commit changed exactly the files it was given, with the bytes
it was given, and the final tree is the union of the landed changes applied in history order.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

Fetch = Callable[..., Awaitable[tuple[int, Any]]]

SEED_MESSAGE = "seed"
MAX_ATTEMPTS = 200  # a bound, not a target: the most attempts one change needed is printed


@dataclass
class Landed:
    writer: int
    index: int
    commit: str
    files: dict[str, str]
    attempts: int = 1


@dataclass
class Refused:
    writer: int
    index: int
    paths: list[str]
    base: str | None
    head: str | None


@dataclass
class Outcome:
    repo: str
    seed: str = ""
    landed: list[Landed] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    wall: float = 0.0

    def summary(self) -> str:
        most = max((x.attempts for x in self.landed), default=0)
        return (f"landed={len(self.landed)} conflicts={len(self.refused)} most_attempts={most} "
                f"wall_s={self.wall:.1f} commits_per_s={len(self.landed) / max(self.wall, 1e-9):.1f}")


async def api(fetch: Fetch, method: str, route: str, body: Any = None, params: dict | None = None):
    return await fetch(method, "pachls/api/" + route, body=body, params=params)


def jp_fetch_adapter(jp_fetch) -> Fetch:
    """``fetch`` over pytest-jupyter's ``jp_fetch`` (``raw=True``: the body's bytes, not JSON)."""

    async def fetch(method: str, path: str, body: Any = None, params: dict | None = None, raw: bool = False):
        kwargs: dict = {"method": method, "raise_error": False, "request_timeout": 120}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        if params:
            kwargs["params"] = params
        response = await jp_fetch(*path.split("/"), **kwargs)
        if raw:
            return response.code, response.body
        return response.code, (json.loads(response.body) if response.body else None)

    return fetch


async def write_file(fetch: Fetch, mount_dir: str, mount: str, path: str, text: str) -> None:
    status, body = await fetch("PUT", f"api/contents/{mount_dir}/{mount}{path}",
                               body={"type": "file", "format": "text", "content": text})
    assert status in (200, 201), (status, body)


async def make_dir(fetch: Fetch, mount_dir: str, mount: str, path: str) -> None:
    status, body = await fetch("PUT", f"api/contents/{mount_dir}/{mount}{path}", body={"type": "directory"})
    assert status in (200, 201), (status, body)


def change(writer: int, index: int, shared: int, attempt: int = 0) -> dict[str, str]:
    files = {f"/w{writer}/{index:03d}.txt": f"writer {writer} change {index} attempt {attempt}\n"}
    if shared:
        files[f"/shared/{index % shared}.txt"] = f"writer {writer} change {index} attempt {attempt} (shared)\n"
    return files


async def seed(fetch: Fetch, repo: str, writers: int, shared: int, mount_dir: str = "pfs") -> str:
    """Create ``repo`` with one commit holding ``/shared/*.txt`` and a folder per writer."""
    status, body = await api(fetch, "POST", "repos", {"name": repo})
    assert status == 201, body
    status, body = await api(fetch, "POST", "mounts", {"repo": repo, "mode": "rw", "name": "seed"})
    assert status == 201, body
    for w in range(writers):
        await make_dir(fetch, mount_dir, "seed", f"/w{w}")
        await write_file(fetch, mount_dir, "seed", f"/w{w}/README.txt", f"writer {w}\n")
    if shared:
        await make_dir(fetch, mount_dir, "seed", "/shared")
        for k in range(shared):
            await write_file(fetch, mount_dir, "seed", f"/shared/{k}.txt", "seed\n")
    status, body = await api(fetch, "POST", "mounts/seed/commit", {"message": SEED_MESSAGE})
    assert status == 201, body
    commit = body["commit"]["id"]
    status, body = await api(fetch, "DELETE", "mounts/seed")
    assert status == 204, body
    return commit


async def writer(fetch: Fetch, outcome: Outcome, w: int, commits: int, shared: int,
                 mount_dir: str = "pfs") -> None:
    name = f"w{w}"
    repo = outcome.repo
    status, body = await api(fetch, "POST", "mounts", {"repo": repo, "branch": "master", "mode": "rw", "name": name})
    assert status == 201, body
    for i in range(commits):
        for attempt in range(MAX_ATTEMPTS):
            files = change(w, i, shared, attempt)
            for path, text in files.items():
                await write_file(fetch, mount_dir, name, path, text)
            status, body = await api(fetch, "POST", f"mounts/{name}/commit", {"message": f"{name} change {i}"})
            if status == 201:
                commit = body["commit"]
                assert body["mount"]["pending"] == 0 and body["mount"]["base"] == commit["id"], body
                outcome.landed.append(Landed(w, i, commit["id"], files, attempt + 1))
                await asyncio.sleep(random.uniform(0, 0.005))  # a moment before the next change
                break
            # refused: a conflict that names the clashing paths, each one a shared path this writer staged
            assert status == 409 and body["error"] == "conflict", (name, i, status, body)
            paths = body["details"].get("paths")
            assert paths, f"a refused commit must name its conflicting paths: {body}"
            assert set(paths) <= {p for p in files if p.startswith("/shared/")}, (files, body)
            outcome.refused.append(Refused(w, i, list(paths), body["details"].get("base"),
                                           body["details"].get("head")))
            # nothing is lost: the change is still staged in the mount
            status, staged = await api(fetch, "GET", f"mounts/{name}/changes")
            assert status == 200 and {c["path"] for c in staged["changes"]} == set(files), staged
            # refreshing keeps refusing while the clashing change is staged; discard, refresh, write again
            status, body = await api(fetch, "POST", f"mounts/{name}/refresh")
            assert status == 409 and body["error"] == "conflict" and body["details"].get("paths"), body
            status, body = await api(fetch, "POST", f"mounts/{name}/discard")
            assert status == 200 and body["pending"] == 0, body
            status, body = await api(fetch, "POST", f"mounts/{name}/refresh")
            assert status == 200, body
            # as a person would: wait a moment before trying again (without it, a writer that keeps
            # losing the race for a shared file can be starved for a long time)
            await asyncio.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
        else:
            raise AssertionError(f"{name} change {i} did not land in {MAX_ATTEMPTS} attempts")
    status, body = await api(fetch, "DELETE", f"mounts/{name}")
    assert status == 204, body


async def run(fetch: Fetch, repo: str, *, writers: int, commits: int, shared: int,
              mount_dir: str = "pfs") -> Outcome:
    """Seed ``repo``, then run ``writers`` writers of ``commits`` commits each at once."""
    outcome = Outcome(repo)
    outcome.seed = await seed(fetch, repo, writers, shared, mount_dir)
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(writer(fetch, outcome, w, commits, shared, mount_dir)) for w in range(writers)]
    try:
        await asyncio.gather(*tasks)
    finally:  # one writer failed: stop the others before anyone looks at (or cleans up) the mounts
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    outcome.wall = time.perf_counter() - start
    return outcome


async def history(fetch: Fetch, repo: str, branch: str = "master") -> list[dict]:
    """Every commit of the branch, newest first, through the paged history route."""
    out: list[dict] = []
    params: dict = {"limit": "1000"}
    while True:
        status, body = await api(fetch, "GET", f"repos/{repo}/branches/{branch}/commits", params=params)
        assert status == 200, body
        out.extend(body["commits"])
        if body["next"] is None:
            return out
        params = {"limit": "1000", "before": body["next"]}


async def read(fetch: Fetch, repo: str, ref: str, path: str) -> str:
    status, body = await fetch("GET", f"pachls/api/repos/{repo}/commits/{ref}/file", params={"path": path},
                               raw=True)
    assert status == 200, (ref, path, status, body)
    return body.decode()


async def diff_paths(fetch: Fetch, repo: str, to: str, frm: str | None = None) -> dict[str, str]:
    params = {"to": to} if frm is None else {"to": to, "from": frm}
    status, body = await api(fetch, "GET", f"repos/{repo}/diff", params=params)
    assert status == 200, body
    return {c["path"]: c["change"] for c in body["changes"]}


async def verify(fetch: Fetch, outcome: Outcome, *, writers: int, commits: int, check_refusals: bool = True) -> None:
    repo = outcome.repo
    # every change landed once
    assert sorted((x.writer, x.index) for x in outcome.landed) == [
        (w, i) for w in range(writers) for i in range(commits)]
    log = await history(fetch, repo)
    ids = [c["id"] for c in log]
    landed = {x.commit: x for x in outcome.landed}
    assert len(set(ids)) == len(ids), "a commit appears twice in the history"
    assert ids[-1] == outcome.seed and set(ids[:-1]) == set(landed), (
        f"history has {len(ids) - 1} commits after the seed, {len(landed)} landed; "
        f"missing {sorted(set(landed) - set(ids))[:5]}, unexpected {sorted(set(ids[:-1]) - set(landed))[:5]}")
    for newer, older in zip(log, log[1:]):
        assert newer["parent"] == older["id"], "the history is not one chain"
    # each commit changed exactly its files, with its bytes
    for item in outcome.landed:
        changed = await diff_paths(fetch, repo, item.commit)
        assert set(changed) == set(item.files), (item, changed)
        for path, text in item.files.items():
            assert await read(fetch, repo, item.commit, path) == text, (item, path)
    # the head is the union of the landed changes, applied in history order
    expected: dict[str, str] = {}
    for commit in reversed(log[:-1]):
        expected.update(landed[commit["id"]].files)
    assert set(await diff_paths(fetch, repo, "master", outcome.seed)) == set(expected)
    for path, text in expected.items():
        assert await read(fetch, repo, "master", path) == text, path
    if check_refusals:
        # each refusal named paths that the commits landed since the mount's base really changed
        for refusal in outcome.refused:
            assert refusal.base and refusal.head, refusal
            theirs = await diff_paths(fetch, repo, refusal.head, refusal.base)
            assert set(refusal.paths) <= set(theirs), (refusal, theirs)
