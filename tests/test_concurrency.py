"""Concurrent writers and readers on a real Jupyter server with the extension on the embedded store.

* Writers: several read-write mounts of one branch, files written through Jupyter's contents API,
  commits through ``POST /mounts/{name}/commit``, all at once (see ``concurrent_writers.py``). No
  lost update, exactly the landed commits in the history, every refusal a 409 ``conflict`` naming
  its paths, and a refused writer commits again after discard + refresh. Writers on disjoint
  paths all land without a single conflict. With FUSE and without.
* Readers: ``GET /repos`` (what the panel polls) while commits land always answers a listing at
  least as new as the last commit that had landed before the request was sent.

The long variant (4 writers x 50 commits and more) is ``stress/concurrent_writers.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

import concurrent_writers as cw
from jupyterlab_pachls.mount import fuse_status
from jupyterlab_pachls.listing import ReposListing

WRITERS = 4
SHARED_COMMITS = 20  # per writer, on paths every writer also writes
DISJOINT_COMMITS = 12  # per writer, on its own paths only


@pytest.fixture
def fetch(jp_fetch):
    return cw.jp_fetch_adapter(jp_fetch)


def test_discarded_file_is_gone_from_a_fuse_mount_at_once(tmp_path):
    """Right after a discard (or a refresh bringing in a deletion) a dropped file is gone from a
    read-write FUSE mount: a kernel-cached entry made it stat as a file that opens with ENOENT,
    and Jupyter's contents API answered 500 when the user saved it again."""
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.pfs import LocalBackend

    available, why = fuse_status()
    if not available:
        pytest.skip(f"FUSE is not available here: {why}")
    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    with backend.commit("r", "master", message="one file") as c:
        c.put_file("/kept.txt", b"kept")
    mounts = MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=True)
    try:
        root = Path(mounts.mount("r", "master", mode="rw", name="w").mountpoint)
        staged = root / "staged.txt"
        staged.write_bytes(b"staged")
        assert staged.is_file()
        assert mounts.discard("w") == 1
        assert sorted(os.listdir(root)) == ["kept.txt"]
        assert not staged.exists(), "a discarded file still stats as present (kernel cache)"
        # a deletion brought in by a refresh is visible at once too
        assert (root / "kept.txt").is_file()
        with backend.commit("r", "master", message="delete") as c:
            c.delete_file("/kept.txt")
        mounts.refresh("w")
        assert not (root / "kept.txt").exists(), "a file deleted by a refresh still stats as present"
    finally:
        mounts.close()
        backend.close()


def test_no_fuse_scan_while_files_come_and_go(tmp_path):
    """Scanning a no-FUSE mount while files are saved the way Jupyter saves them (a temporary
    ``.~name`` replaced into place): entries vanishing mid-scan made GET /mounts answer 500."""
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.pfs import LocalBackend

    backend = LocalBackend(tmp_path / "store")
    backend.create_repo("r")
    mounts = MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=False)
    stop = threading.Event()
    try:
        root = Path(mounts.mount("r", "master", mode="rw", name="w").mountpoint)
        (root / "kept.txt").write_bytes(b"kept")

        def save_like_jupyter():  # write a temporary copy, then replace: what atomic writing does
            n = 0
            while not stop.is_set():
                tmp = root / f".~file{n % 4}.txt"
                tmp.write_bytes(b"x" * 10)
                os.replace(tmp, root / f"file{n % 4}.txt")
                n += 1

        saver = threading.Thread(target=save_like_jupyter)
        saver.start()
        errors = []
        try:
            for _ in range(3000):
                try:
                    mounts.status("w")
                except OSError as exc:
                    errors.append(exc)
                    break
        finally:
            stop.set()
            saver.join()
        assert errors == [], f"a scan failed while files were saved: {errors[0]!r}"
        assert {c.path for c in mounts.changes("w").changes} == {"/kept.txt"} | {f"/file{i}.txt" for i in range(4)}
    finally:
        stop.set()
        mounts.close()
        backend.close()


def test_concurrent_mount_table_saves(tmp_path):
    """Mounts made, committed and unmounted from several threads at once (the server's worker
    threads do this when several panels act together): none fails, and the mount table on disk
    ends up listing exactly the live mounts."""
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.pfs import LocalBackend

    backend = LocalBackend(tmp_path / "store")
    mounts = MountManager(backend, tmp_path / "pfs", tmp_path / "state", fuse=False)
    try:
        for t in range(8):
            backend.create_repo(f"r{t}")
            with backend.commit(f"r{t}", "master", message="one file") as c:
                c.put_file("/a.txt", b"a")
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def churn(t: int) -> None:
            barrier.wait()
            try:
                for n in range(15):
                    mounts.mount(f"r{t}", "master", mode="ro", name=f"m{t}")
                    mounts.unmount(f"m{t}")
                mounts.mount(f"r{t}", "master", mode="ro", name=f"m{t}")
            except BaseException as exc:  # noqa: BLE001  (collected and reported below)
                errors.append(exc)

        threads = [threading.Thread(target=churn, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"{len(errors)} of 8 threads failed: {errors[:3]!r}"
        on_disk = json.loads((tmp_path / "state" / "mounts.json").read_text())
        assert sorted(row["name"] for row in on_disk) == sorted(m.name for m in mounts.list())
    finally:
        mounts.close()
        backend.close()


async def test_writers_on_shared_paths_lose_nothing(fetch, presentation):
    outcome = await cw.run(fetch, "shared", writers=WRITERS, commits=SHARED_COMMITS, shared=1)
    print(f"\n{WRITERS} writers x {SHARED_COMMITS} commits, one path shared ({presentation}): {outcome.summary()}")
    await cw.verify(fetch, outcome, writers=WRITERS, commits=SHARED_COMMITS)
    # every writer writes /shared/0.txt in every change: writers that staged it against an older
    # base than the head must have been refused (and then landed on retry)
    assert outcome.refused, "4 writers rewriting one file at once and not a single conflict"


async def test_writers_on_disjoint_paths_all_land(fetch, presentation):
    outcome = await cw.run(fetch, "disjoint", writers=WRITERS, commits=DISJOINT_COMMITS, shared=0)
    print(f"\n{WRITERS} writers x {DISJOINT_COMMITS} commits, disjoint paths ({presentation}): {outcome.summary()}")
    assert outcome.refused == [], f"spurious conflicts: {outcome.refused}"
    await cw.verify(fetch, outcome, writers=WRITERS, commits=DISJOINT_COMMITS)


async def test_a_refused_writer_keeps_its_change_and_commits_after_refresh(fetch):
    """The conflict path, step by step: B staged a path A committed meanwhile."""
    seed = await cw.seed(fetch, "two", writers=2, shared=1)
    for name in ("a", "b"):
        status, body = await cw.api(fetch, "POST", "mounts", {"repo": "two", "mode": "rw", "name": name})
        assert status == 201 and body["base"] == seed, body
    await cw.write_file(fetch, "pfs", "a", "/shared/0.txt", "from a\n")
    await cw.write_file(fetch, "pfs", "b", "/shared/0.txt", "from b\n")
    await cw.write_file(fetch, "pfs", "b", "/w1/mine.txt", "only b\n")
    status, body = await cw.api(fetch, "POST", "mounts/a/commit", {"message": "a"})
    assert status == 201, body
    landed_a = body["commit"]["id"]

    status, body = await cw.api(fetch, "POST", "mounts/b/commit", {"message": "b"})
    assert status == 409 and body["error"] == "conflict", body
    assert body["details"]["paths"] == ["/shared/0.txt"]  # only the clashing path, not /w1/mine.txt
    assert (body["details"]["base"], body["details"]["head"]) == (seed, landed_a)
    log = await cw.history(fetch, "two")
    assert [c["id"] for c in log] == [landed_a, seed]  # nothing of b landed
    status, body = await cw.api(fetch, "GET", "mounts/b/changes")
    assert {c["path"] for c in body["changes"]} == {"/shared/0.txt", "/w1/mine.txt"}
    status, body = await cw.api(fetch, "POST", "mounts/b/refresh")
    assert status == 409 and body["details"]["paths"] == ["/shared/0.txt"], body
    assert (await cw.api(fetch, "GET", "mounts/b"))[1]["base"] == seed  # refused refresh changed nothing

    # discard, refresh: b sees a's file; write again, commit: lands on top of a
    status, body = await cw.api(fetch, "POST", "mounts/b/discard")
    assert status == 200 and body["pending"] == 0
    status, body = await cw.api(fetch, "POST", "mounts/b/refresh")
    assert status == 200 and body["base"] == landed_a and body["behind"] == 0, body
    status, body = await fetch("GET", "api/contents/pfs/b/shared/0.txt")
    assert status == 200 and body["content"] == "from a\n"
    await cw.write_file(fetch, "pfs", "b", "/shared/0.txt", "from b, after a\n")
    await cw.write_file(fetch, "pfs", "b", "/w1/mine.txt", "only b\n")
    status, body = await cw.api(fetch, "POST", "mounts/b/commit", {"message": "b again"})
    assert status == 201 and body["commit"]["parent"] == landed_a, body
    assert await cw.read(fetch, "two", "master", "/shared/0.txt") == "from b, after a\n"
    assert await cw.read(fetch, "two", "master", "/w1/mine.txt") == "only b\n"


# -- readers while commits land -------------------------------------------------------------------
async def test_repos_listing_is_never_older_than_a_landed_commit(fetch, jp_fetch, pachls_state):
    """Panel clients poll ``GET /repos`` (with ``If-None-Match``) while another thread commits: each
    answer shows each branch at the head it had when the request was sent, or a newer one."""
    backend = pachls_state.backend
    repos = [f"r{i}" for i in range(6)]
    for name in repos:
        backend.create_repo(name)
    heads: dict[str, list[str]] = {name: [] for name in repos}  # landed heads, oldest first
    stop = threading.Event()

    def commit_forever():
        n = 0
        while not stop.is_set():
            name = repos[n % len(repos)]
            with backend.commit(name, "master", message=f"c{n}") as c:
                c.put_file(f"/f{n}.txt", str(n).encode())
            heads[name].append(c.finished.id)
            n += 1

    async def poller(k: int) -> tuple[int, int]:
        etag, kept, fresh, not_modified = None, None, 0, 0
        for _ in range(25):
            before = {name: len(h) for name, h in heads.items()}  # what had landed when we ask
            headers = {"If-None-Match": etag} if etag else {}
            response = await jp_fetch("pachls", "api", "repos", headers=headers, raise_error=False)
            if response.code == 304:
                not_modified += 1
                listing = kept
            else:
                assert response.code == 200
                fresh += 1
                etag, kept = response.headers["ETag"], json.loads(response.body)
                listing = kept
            shown = {r["name"]: (r["branches"][0]["head"] or {}).get("id") if r["branches"] else None
                     for r in listing["repos"]}
            for name, count in before.items():
                if count:
                    # heads only grow: a head recorded before the last one we saw is older than
                    # what had landed; one not recorded yet landed after (the writer records late)
                    older = heads[name][:count - 1]
                    assert shown[name] is not None and shown[name] not in older, (
                        f"client {k}: {name}@master shown at an older head than one landed before the request")
            await asyncio.sleep(0)
        return fresh, not_modified

    writer = threading.Thread(target=commit_forever)
    writer.start()
    try:
        counts = await asyncio.gather(*(poller(k) for k in range(8)))
    finally:
        stop.set()
        writer.join()
    fresh = sum(c[0] for c in counts)
    print(f"\n8 pollers x 25 GET /repos during {sum(map(len, heads.values()))} commits: "
          f"{fresh} fresh, {sum(c[1] for c in counts)} not modified")
    assert sum(map(len, heads.values())) > 0


def test_listing_rebuilds_are_single_flight_and_consistent(tmp_path):
    """Many threads loading the listing at once: each gets a body at least as new as the change
    token it read first, body and ETag always belong together, and concurrent loads after one
    change share one rebuild instead of each listing the store again."""
    from jupyterlab_pachls.pfs import LocalBackend

    backend = LocalBackend(tmp_path / "store")
    try:
        for i in range(20):
            backend.create_repo(f"r{i:02d}")
        calls = {"n": 0}
        real = backend.list_branches
        gate = threading.Event()

        def counted(*args, **kwargs):
            calls["n"] += 1
            gate.wait(5)  # hold the first rebuild so that the other loads arrive while it runs
            return real(*args, **kwargs)

        backend.list_branches = counted
        listing = ReposListing(backend)
        results: list[tuple[bytes, str]] = []

        def load():
            results.append(listing.load())

        barrier = threading.Barrier(13)

        def load_together():
            barrier.wait()
            load()

        threads = [threading.Thread(target=load_together) for _ in range(12)]
        for t in threads:
            t.start()
        barrier.wait()
        time.sleep(0.3)  # let all 12 reach the listing while the first rebuild is held
        gate.set()
        for t in threads:
            t.join()
        assert len({etag for _, etag in results}) == 1 and len({body for body, _ in results}) == 1
        assert calls["n"] == 1, f"{calls['n']} rebuilds for 12 concurrent loads of one unchanged store"
        with backend.commit("r00", "master", message="x") as c:
            c.put_file("/x", b"x")
        body, etag = listing.load()
        assert c.finished.id.encode() in body and calls["n"] == 2
        # ETag and body always match
        assert etag == '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    finally:
        backend.close()


def test_listing_reuses_unchanged_repos_and_matches_a_fresh_one(tmp_path):
    """The rebuild reuses the JSON of repos that did not change: after every kind of change the
    kept listing equals one built from scratch."""
    from jupyterlab_pachls.pfs import LocalBackend

    backend = LocalBackend(tmp_path / "store")
    try:
        for i in range(5):
            backend.create_repo(f"r{i}", description=f"repo {i}")
            with backend.commit(f"r{i}", "master", message="init") as c:
                c.put_file("/a", b"a")
        listing = ReposListing(backend)

        def same() -> dict:
            kept = json.loads(listing.load()[0])
            assert kept == json.loads(ReposListing(backend).load()[0])
            return kept

        same()
        changes = [
            lambda: backend.commit("r1", "master", message="more"),
            lambda: backend.create_branch("r2", "dev", head="master"),
            lambda: backend.delete_branch("r2", "dev"),
            lambda: backend.create_repo("r9", description="new"),
            lambda: backend.delete_repo("r0"),
            lambda: backend.create_branch("r3", "empty"),
        ]
        for change in changes:
            made = change()
            if hasattr(made, "__enter__"):
                with made as c:
                    c.put_file("/b", b"b")
            same()
        shown = {r["name"]: {b["name"]: (b["head"] or {}).get("id") for b in r["branches"]}
                 for r in same()["repos"]}
        assert "r0" not in shown and shown["r9"] == {} and shown["r3"]["empty"] is None
        assert shown["r1"]["master"] == backend.inspect_branch("r1", "master").head.id
        assert listing.rebuilds == 1 + len(changes)  # one per change; the last load kept the body
    finally:
        backend.close()


async def test_one_mount_committed_twice_at_once(fetch):
    """Commit pressed twice (two tabs, a double click): one commit lands with everything staged,
    the other press finds nothing left (400 invalid_argument), never a second or partial commit."""
    seed = await cw.seed(fetch, "twice", writers=1, shared=0)
    status, body = await cw.api(fetch, "POST", "mounts", {"repo": "twice", "mode": "rw", "name": "m"})
    assert status == 201, body
    for k in range(20):
        await cw.write_file(fetch, "pfs", "m", f"/w0/{k:02d}.txt", f"file {k}\n")
    results = await asyncio.gather(*(cw.api(fetch, "POST", "mounts/m/commit", {"message": f"press {p}"})
                                     for p in range(2)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 400], results
    refused = next(body for status, body in results if status == 400)
    assert refused["error"] == "invalid_argument" and "nothing to commit" in refused["message"], refused
    landed = next(body for status, body in results if status == 201)["commit"]
    log = await cw.history(fetch, "twice")
    assert [c["id"] for c in log] == [landed["id"], seed]
    assert set(await cw.diff_paths(fetch, "twice", landed["id"])) == {f"/w0/{k:02d}.txt" for k in range(20)}
