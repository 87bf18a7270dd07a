"""Behaviour every Backend must have. Runs unchanged on each param of the ``backend`` fixture."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import threading

import pytest

from jupyterlab_pachls.pfs import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidName,
    InvalidPath,
    NotFound,
    PfsError,
    Provenance,
    open_backend,
)


def counted(backend, n_files: int) -> int:
    """``Commit.n_files`` as the store reports it: pachd does not count files (0)."""
    return n_files if backend.kind == "local" else 0


def files_at(backend, repo, ref, path="/"):
    """{path: bytes} of every file below ``path``."""
    return {i.path: backend.get_file(repo, ref, i.path) for i in backend.walk(repo, ref, path) if not i.is_dir}


@pytest.fixture
def images(backend):
    backend.create_repo("images", description="demo images")
    with backend.commit("images", "master", message="first", author="ana") as c:
        c.put_file("/cats/001.png", b"cat-1")
        c.put_file("/cats/002.png", b"cat-2")
        c.put_file("/dogs/001.png", b"dog-1")
        c.put_file("/README.md", b"# images\n")
    return c.finished


# -- repos ---------------------------------------------------------------------------------
def test_create_list_inspect_delete_repo(backend):
    repo = backend.create_repo("images", description="pets")
    assert (repo.name, repo.description) == ("images", "pets")
    backend.create_repo("labels")
    assert [r.name for r in backend.list_repos()] == ["images", "labels"]
    assert backend.inspect_repo("images").description == "pets"
    backend.delete_repo("labels")
    assert [r.name for r in backend.list_repos()] == ["images"]
    with pytest.raises(NotFound):
        backend.inspect_repo("labels")


def test_repo_lists_its_branches(images, backend):
    backend.create_branch("images", "dev", head="master")
    assert backend.inspect_repo("images").branches == ("dev", "master")


def test_repo_errors(backend):
    backend.create_repo("images")
    with pytest.raises(AlreadyExists):
        backend.create_repo("images")
    for bad in ["", "my repo", "../etc", "a" * 64, "imäges", "a:b"]:
        with pytest.raises(InvalidName):
            backend.create_repo(bad)
    for call in (backend.inspect_repo, backend.delete_repo, backend.list_branches):
        with pytest.raises(NotFound):
            call("nope")
    assert [r.name for r in backend.list_repos()] == ["images"]


def test_projects_keep_repos_apart(backend):
    backend.create_repo("images")
    try:
        backend.create_repo("team/images")
    except NotFound:
        pytest.skip("this cluster has no project 'team'")
    with backend.commit("team/images", "master") as c:
        c.put_file("/x", b"team")
    assert files_at(backend, "team/images", "master") == {"/x": b"team"}
    assert backend.list_branches("images") == []


# -- branches ------------------------------------------------------------------------------
def test_branches(images, backend):
    dev = backend.create_branch("images", "dev", head="master")
    assert dev.head.id == images.id
    empty = backend.create_branch("images", "empty")
    assert empty.name == "empty"
    assert backend.list_dir("images", "empty").items == ()
    with pytest.raises(AlreadyExists):
        backend.create_branch("images", "dev")
    with pytest.raises(InvalidName):
        backend.create_branch("images", "bad name")
    with pytest.raises(NotFound):
        backend.create_branch("images", "x", head="nope")
    with pytest.raises(NotFound):
        backend.inspect_branch("images", "nope")
    backend.delete_branch("images", "dev")
    assert {b.name for b in backend.list_branches("images")} == {"master", "empty"}
    assert backend.inspect_commit("images", images.id).id == images.id  # commits outlive branches


def test_branch_created_without_a_head(backend):
    """The embedded store: no head until the first commit. pachd: an empty, finished AUTO commit, the
    parent of the branch's first commit. Either way history, diff and rollback agree with it."""
    backend.create_repo("labels")
    empty = backend.create_branch("labels", "round-1")
    auto = empty.head
    if auto is not None:
        assert (auto.origin, auto.parent, auto.branch, auto.is_open) == ("AUTO", None, "round-1", False)
        assert backend.list_dir("labels", auto.id).items == ()
    with backend.commit("labels", "round-1", message="first") as c:
        c.put_file("/a.json", b"{}")
    first = c.finished
    assert (first.parent, first.branch, first.origin) == (auto.id if auto else None, "round-1", "USER")
    history = backend.list_commits("labels", "round-1")
    assert [h.id for h in history] == [first.id] + ([auto.id] if auto else [])
    assert [(d.path, d.change) for d in backend.diff("labels", first.parent, first.id)] == [("/a.json", "added")]
    if auto is not None:  # back to the empty commit: a rollback like any other
        assert backend.move_branch("labels", "round-1", auto.id).head.id == auto.id
        assert backend.list_dir("labels", "round-1").items == ()
        assert backend.branch_moves("labels", "round-1")[0].new_head == auto.id


def test_commits_know_their_branch(images, backend):
    """pachd names no branch in the commits it returns; the backend keeps track of it."""
    opened = backend.start_commit("images", "master", message="second")
    assert opened.branch == "master"
    backend.put_file(opened, "/x.txt", b"x")
    landed = backend.finish_commit(opened)
    assert landed.branch == "master"
    assert backend.inspect_commit("images", landed.id).branch == "master"
    assert backend.inspect_commit("images", "master").branch == "master"
    assert [(c.id, c.branch) for c in backend.list_commits("images", "master")] == \
        [(landed.id, "master"), (images.id, "master")]
    backend.create_branch("images", "dev", head="master")
    assert backend.inspect_branch("images", "dev").head.id == landed.id


def test_list_branches_of_every_repo_in_one_call(images, backend):
    backend.create_repo("labels")
    with backend.commit("labels", "master") as c:
        c.put_file("/a.json", b"{}")
    backend.create_branch("labels", "round-2", head="master")
    found = {(b.repo, b.name): b.head.id for b in backend.list_branches()}
    assert found == {
        ("images", "master"): images.id,
        ("labels", "master"): c.finished.id,
        ("labels", "round-2"): c.finished.id,
    }


# -- commits -------------------------------------------------------------------------------
def test_commit_is_one_snapshot_with_metadata(images, backend):
    assert images.message == "first" and images.author == "ana"
    assert images.finished is not None and images.parent is None
    assert (images.n_files, images.size_bytes) == (counted(backend, 4), 5 + 5 + 5 + 9)
    assert files_at(backend, "images", "master") == {
        "/README.md": b"# images\n",
        "/cats/001.png": b"cat-1",
        "/cats/002.png": b"cat-2",
        "/dogs/001.png": b"dog-1",
    }
    head = backend.inspect_branch("images", "master").head
    assert head.id == images.id and head.branch == "master"


def test_provenance_and_metadata_round_trip(images, backend):
    backend.create_repo("labels")
    with backend.commit(
        "labels", "master", message="round 1", author="bo",
        provenance=[Provenance("images", "master")], metadata={"annotators": "ana,bo"},
    ) as c:
        c.put_file("/cats/001.png.json", b'{"label": "cat"}')
    got = backend.inspect_commit("labels", c.finished.id)
    assert got.provenance == (Provenance("images", images.id, "master"),)
    assert got.metadata == {"annotators": "ana,bo"}
    assert (got.message, got.author) == ("round 1", "bo")
    with pytest.raises(NotFound):
        backend.start_commit("labels", "master", provenance=[Provenance("nope", "master")])


def test_open_commit_lands_only_when_finished(images, backend):
    opened = backend.start_commit("images", "master", message="wip")
    backend.put_file(opened, "/cats/003.png", b"cat-3")
    assert backend.inspect_commit("images", opened.id).is_open
    assert "/cats/003.png" not in files_at(backend, "images", "master")
    done = backend.finish_commit(opened)
    assert not done.is_open and done.parent == images.id
    assert backend.get_file("images", "master", "/cats/003.png") == b"cat-3"
    with pytest.raises(Conflict):
        backend.finish_commit(opened)
    with pytest.raises(Conflict):
        backend.put_file(opened, "/late.png", b"x")


def test_abort_leaves_nothing(images, backend):
    opened = backend.start_commit("images", "master")
    backend.put_file(opened, "/cats/003.png", b"cat-3")
    backend.abort_commit(opened)
    assert backend.inspect_branch("images", "master").head.id == images.id
    assert "/cats/003.png" not in files_at(backend, "images", "master")
    with pytest.raises(NotFound):
        backend.inspect_commit("images", opened.id)


def test_error_inside_commit_block_aborts(images, backend):
    with pytest.raises(RuntimeError):
        with backend.commit("images", "master") as c:
            c.put_file("/cats/003.png", b"cat-3")
            raise RuntimeError("labeler closed the tab")
    assert backend.inspect_branch("images", "master").head.id == images.id
    assert len(backend.list_commits("images", "master")) == 1


def test_commit_creates_missing_branch(backend):
    backend.create_repo("labels")
    with backend.commit("labels", "round-1") as c:
        c.put_file("/a.json", b"1")
    assert backend.inspect_branch("labels", "round-1").head.id == c.finished.id


def test_commit_errors(images, backend):
    with pytest.raises(NotFound):
        backend.start_commit("nope", "master")
    with pytest.raises(InvalidName):
        backend.start_commit("images", "bad branch")
    with pytest.raises(NotFound):
        backend.inspect_commit("images", "0123456789abcdef0123456789abcdef")
    with pytest.raises(NotFound):
        backend.inspect_commit("images", "nope")
    with pytest.raises(InvalidArgument):
        backend.inspect_commit("images", "master^x")


@pytest.mark.parametrize("bad", ["../escape", "/a/../../b", "a//b", "/a/./b", "a\0b", "", "/", "x" * 300])
def test_bad_paths_are_refused_and_nothing_is_written(images, backend, bad):
    opened = backend.start_commit("images", "master")
    with pytest.raises(InvalidPath):
        backend.put_files(opened, [("/fine.png", b"ok"), (bad, b"evil")])
    backend.put_file(opened, "/cats/004.png", b"cat-4")
    done = backend.finish_commit(opened)
    changed = {c.path for c in backend.diff("images", images.id, done.id)}
    assert changed == {"/cats/004.png"}
    with pytest.raises(InvalidPath):
        with backend.commit("images", "master") as c:
            c.put_files(iter([("/fine.png", b"ok"), (bad, b"evil")]))
    assert backend.inspect_branch("images", "master").head.id == done.id


def test_paths_are_normalised(images, backend):
    with backend.commit("images", "master") as c:
        c.put_file("birds/001.png", b"bird")
        c.put_file("/birds/002.png/", b"bird-2")
    assert set(files_at(backend, "images", "master", "/birds")) == {"/birds/001.png", "/birds/002.png"}
    assert backend.get_file("images", "master", "birds/001.png") == b"bird"


def test_file_and_directory_of_one_name_clash(images, backend):
    for path in ("/cats", "/README.md/inner.png"):
        opened = backend.start_commit("images", "master")
        backend.put_file(opened, path, b"x")
        with pytest.raises(PfsError):
            backend.finish_commit(opened)
        backend.abort_commit(opened)
    assert backend.inspect_branch("images", "master").head.id == images.id


def test_content_from_bytes_file_object_and_local_path(backend, tmp_path):
    backend.create_repo("r")
    local = tmp_path / "local.bin"
    local.write_bytes(b"from disk")
    with backend.commit("r", "master") as c:
        c.put_file("/bytes", b"raw")
        c.put_file("/stream", io.BytesIO(b"streamed" * 1000))
        c.put_file("/path", local)
        c.put_file("/empty", b"")
    assert files_at(backend, "r", "master") == {
        "/bytes": b"raw", "/stream": b"streamed" * 1000, "/path": b"from disk", "/empty": b"",
    }


def test_overwrite_and_delete(images, backend):
    with backend.commit("images", "master") as c:
        c.put_file("/cats/001.png", b"cat-1 v2")
        c.delete_file("/dogs")
        c.delete_file("/cats/002.png")
        c.delete_file("/not/there.png")  # deleting nothing is not an error
    assert files_at(backend, "images", "master") == {"/README.md": b"# images\n", "/cats/001.png": b"cat-1 v2"}
    assert [i.path for i in backend.list_dir("images", "master").items] == ["/README.md", "/cats/"]
    head = backend.inspect_branch("images", "master").head
    assert (head.n_files, head.size_bytes) == (counted(backend, 2), 9 + 8)
    # the old commit is untouched
    assert files_at(backend, "images", images.id)["/dogs/001.png"] == b"dog-1"


def test_last_write_in_a_commit_wins(images, backend):
    with backend.commit("images", "master") as c:
        c.put_file("/cats/009.png", b"a")
        c.put_file("/cats/009.png", b"b")
        c.delete_file("/cats")
        c.put_file("/cats/010.png", b"c")
    assert files_at(backend, "images", "master", "/cats") == {"/cats/010.png": b"c"}


def test_history_paging_and_ancestry(images, backend):
    ids = [images.id]
    for i in range(5):
        with backend.commit("images", "master", message=f"m{i}") as c:
            c.put_file(f"/n/{i}", str(i).encode())
        ids.append(c.finished.id)
    newest_first = ids[::-1]
    assert [c.id for c in backend.list_commits("images", "master")] == newest_first
    page1 = backend.list_commits("images", "master", limit=4)
    page2 = backend.list_commits("images", "master", limit=4, before=page1[-1].id)
    assert [c.id for c in page1 + page2] == newest_first
    assert backend.inspect_commit("images", "master^2").id == ids[-3]
    assert backend.inspect_commit("images", "master^^").id == ids[-3]
    assert backend.inspect_commit("images", "master^5").id == images.id
    with pytest.raises(NotFound):
        backend.inspect_commit("images", "master^6")
    assert backend.get_file("images", "master^1", "/n/3") == b"3"
    with pytest.raises(NotFound):
        backend.get_file("images", "master^1", "/n/4")
    with pytest.raises(InvalidArgument):
        backend.list_commits("images", "master", limit=0)


# -- files ---------------------------------------------------------------------------------
def test_directory_listing_is_paged_and_ordered(backend):
    backend.create_repo("big")
    names = [f"/d/{i:04d}.json" for i in range(1000)]
    with backend.commit("big", "master") as c:
        c.put_files((n, n.encode()) for n in names)
        c.put_file("/d/sub/x", b"x")
    seen, after = [], None
    while True:
        page = backend.list_dir("big", "master", "/d", limit=150, after=after)
        assert len(page.items) <= 150
        seen += [i.path for i in page.items]
        if page.next is None:
            break
        after = page.next
    assert seen == sorted(names + ["/d/sub/"])
    root = backend.list_dir("big", "master")
    assert [(i.path, i.type, i.size) for i in root.items] == [("/d/", "dir", sum(len(n) for n in names) + 1)]


def test_listing_errors(images, backend):
    with pytest.raises(NotFound):
        backend.list_dir("images", "master", "/birds")
    with pytest.raises(InvalidArgument):
        backend.list_dir("images", "master", "/README.md")
    with pytest.raises(InvalidPath):
        backend.list_dir("images", "master", "/../..")
    with pytest.raises(InvalidArgument):
        backend.list_dir("images", "master", limit=0)
    with pytest.raises(NotFound):
        backend.list_dir("images", "nope")


def test_file_info(images, backend):
    info = backend.inspect_file("images", "master", "/cats/001.png")
    assert (info.path, info.type, info.size, info.committed) == ("/cats/001.png", "file", 5, images.id)
    assert info.hash
    # the hash identifies the content within the store; only a sha256 kind is the bytes' sha256
    assert info.hash_kind in ("sha256", "opaque")
    digest = hashlib.sha256(b"cat-1").hexdigest()
    if info.hash_kind == "sha256":
        assert info.hash == info.content_sha256 == digest
    else:
        assert info.content_sha256 is None and info.hash != digest
    directory = backend.inspect_file("images", "master", "/cats")
    assert (directory.path, directory.type, directory.size) == ("/cats/", "dir", 10)
    with pytest.raises(NotFound):
        backend.inspect_file("images", "master", "/cats/999.png")


def test_walk_and_glob(images, backend):
    assert sorted(i.path for i in backend.walk("images", "master")) == [
        "/README.md", "/cats/", "/cats/001.png", "/cats/002.png", "/dogs/", "/dogs/001.png",
    ]
    assert [i.path for i in backend.glob("images", "master", "/cats/*.png")] == ["/cats/001.png", "/cats/002.png"]
    assert sorted(i.path for i in backend.glob("images", "master", "/*")) == ["/README.md", "/cats/", "/dogs/"]
    assert sorted(i.path for i in backend.glob("images", "master", "/**/001.png")) == [
        "/cats/001.png", "/dogs/001.png",
    ]
    assert [i.path for i in backend.glob("images", "master", "/README.md")] == ["/README.md"]
    assert list(backend.glob("images", "master", "/birds/*")) == []


def test_read_with_offset_and_length(backend):
    backend.create_repo("r")
    blob = bytes(range(256)) * 12_000  # ~3 MB: several chunks
    with backend.commit("r", "master") as c:
        c.put_file("/big.bin", blob)
    chunks = list(backend.read_file("r", "master", "/big.bin"))
    assert b"".join(chunks) == blob
    assert b"".join(backend.read_file("r", "master", "/big.bin", offset=1_000_000, length=70_000)) == blob[
        1_000_000:1_070_000
    ]
    assert b"".join(backend.read_file("r", "master", "/big.bin", offset=len(blob))) == b""
    with pytest.raises(NotFound):
        b"".join(backend.read_file("r", "master", "/nope"))
    with pytest.raises(InvalidArgument):
        b"".join(backend.read_file("r", "master", "/big.bin", offset=-1))


# -- diff ----------------------------------------------------------------------------------
def test_diff(images, backend):
    with backend.commit("images", "master") as c:
        c.put_file("/cats/001.png", b"cat-1 v2")
        c.put_file("/cats/002.png", b"cat-2")  # same bytes: not a change
        c.put_file("/birds/001.png", b"bird")
        c.delete_file("/dogs/001.png")
    changes = {(d.path, d.change) for d in backend.diff("images", images.id, c.finished.id)}
    assert changes == {("/cats/001.png", "modified"), ("/birds/001.png", "added"), ("/dogs/001.png", "deleted")}
    only_cats = backend.diff("images", images.id, "master", path="/cats")
    assert [(d.path, d.old.size, d.new.size) for d in only_cats] == [("/cats/001.png", 5, 8)]
    from_nothing = {d.path for d in backend.diff("images", None, images.id)}
    assert from_nothing == {"/README.md", "/cats/001.png", "/cats/002.png", "/dogs/001.png"}
    assert backend.diff("images", "master", "master") == []
    reverse = {(d.path, d.change) for d in backend.diff("images", c.finished.id, images.id)}
    assert reverse == {("/cats/001.png", "modified"), ("/birds/001.png", "deleted"), ("/dogs/001.png", "added")}


# -- moving heads: rollback ----------------------------------------------------------------
def test_rollback_moves_head_and_keeps_history(images, backend):
    with backend.commit("images", "master", message="bad labels") as bad:
        bad.put_file("/cats/001.png", b"broken")
    backend.move_branch("images", "master", images.id, author="ana", reason="rollback")
    assert backend.get_file("images", "master", "/cats/001.png") == b"cat-1"
    assert backend.get_file("images", bad.finished.id, "/cats/001.png") == b"broken"  # nothing destroyed
    moves = backend.branch_moves("images", "master")
    assert [(m.old_head, m.new_head, m.author) for m in moves] == [(bad.finished.id, images.id, "ana")]
    # committing after a rollback forks from the older commit
    with backend.commit("images", "master", message="fixed") as fixed:
        fixed.put_file("/cats/003.png", b"cat-3")
    assert fixed.finished.parent == images.id
    assert [c.id for c in backend.list_commits("images", "master")] == [fixed.finished.id, images.id]
    assert files_at(backend, "images", "master", "/cats") == {
        "/cats/001.png": b"cat-1", "/cats/002.png": b"cat-2", "/cats/003.png": b"cat-3",
    }
    diff = {(d.path, d.change) for d in backend.diff("images", bad.finished.id, "master")}
    assert diff == {("/cats/001.png", "modified"), ("/cats/003.png", "added")}
    # and forward again
    backend.move_branch("images", "master", bad.finished.id, reason="redo")
    assert backend.get_file("images", "master", "/cats/001.png") == b"broken"


def test_move_branch_compare_and_set(images, backend):
    with backend.commit("images", "master") as c:
        c.put_file("/x", b"x")
    with pytest.raises(Conflict):
        backend.move_branch("images", "master", images.id, expected_head=images.id)
    assert backend.inspect_branch("images", "master").head.id == c.finished.id
    backend.move_branch("images", "master", images.id, expected_head=c.finished.id)
    assert backend.inspect_branch("images", "master").head.id == images.id
    with pytest.raises(NotFound):
        backend.move_branch("images", "nope", images.id)
    with pytest.raises(NotFound):
        backend.move_branch("images", "master", "0123456789abcdef0123456789abcdef")


def test_finish_compare_and_set_keeps_the_commit_open(images, backend):
    mine = backend.start_commit("images", "master")
    backend.put_file(mine, "/mine", b"1")
    with backend.commit("images", "master") as theirs:
        theirs.put_file("/theirs", b"2")
    with pytest.raises(Conflict):
        backend.finish_commit(mine, expected_parent=images.id)
    assert backend.inspect_commit("images", mine.id).is_open
    landed = backend.finish_commit(mine, expected_parent=theirs.finished.id)
    assert landed.parent == theirs.finished.id
    assert set(files_at(backend, "images", "master")) >= {"/mine", "/theirs"}


# -- concurrency ---------------------------------------------------------------------------
def test_concurrent_writers_threads_lose_nothing(images, backend):
    errors = []

    def writer(n):
        try:
            for i in range(8):
                with backend.commit("images", "master", message=f"w{n}-{i}") as c:
                    c.put_file(f"/w{n}/{i}.txt", f"{n}-{i}".encode())
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    files = files_at(backend, "images", "master")
    for n in range(6):
        for i in range(8):
            assert files[f"/w{n}/{i}.txt"] == f"{n}-{i}".encode()
    history = backend.list_commits("images", "master", limit=100)
    assert len(history) == 1 + 6 * 8
    assert all(history[k].parent == history[k + 1].id for k in range(len(history) - 1))


def _process_writer(spec, n, count):
    backend = open_backend(spec)
    try:
        for i in range(count):
            with backend.commit("images", "master", message=f"p{n}-{i}") as c:
                c.put_file(f"/p{n}/{i}.txt", f"{n}-{i}".encode())
    finally:
        backend.close()


def test_concurrent_writers_processes_lose_nothing(images, backend, backend_spec):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(backend_spec, n, 6)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    files = files_at(backend, "images", "master")
    assert {f"/p{n}/{i}.txt" for n in range(3) for i in range(6)} <= set(files)
    assert len(backend.list_commits("images", "master", limit=100)) == 1 + 18
