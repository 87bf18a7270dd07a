"""Nothing lost on refresh or follow: a read-write mount's local files that its ignore rules keep out of
every commit (a Jupyter checkpoint, a ``.pachlsignore``d file) are never replaced by the branch's
version unasked. Where the branch changed their path, refresh, follow and commit refuse with
``WouldOverwrite`` naming them and change nothing; ``overwrite=True`` takes the branch's version.
Each runs through FUSE and without it, on the embedded store and over real gRPC."""

from __future__ import annotations

import pytest

from jupyterlab_pachls.pfs.errors import Conflict, WouldOverwrite

from .conftest import repo_state, tree_of
from .test_follow_and_ignore import changed, write

CHECKPOINT = "/.ipynb_checkpoints/notes-checkpoint.txt"


@pytest.fixture
def ignored_locally(manager, images, backend):
    """``images`` mounted read-write with three local files its rules ignore (a checkpoint, a
    ``.pachlsignore``d ``/data.csv``, a scratch file) and one pending change; then a commit on the
    branch writes the checkpoint's and the csv's paths (an import does that: it knows no ignore rules)."""
    with backend.commit("images", "master", message="rules") as c:
        c.put_file("/.pachlsignore", b"*.csv\n*.tmp\n")
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, CHECKPOINT[1:], b"my checkpoint")
    write(root, "data.csv", b"my local table")
    write(root, "scratch.tmp", b"scratch")
    write(root, "mine.txt", b"mine")
    assert changed(manager, "images") == [("/mine.txt", "added")]
    with backend.commit("images", "master", message="theirs") as theirs:
        theirs.put_file(CHECKPOINT, b"their checkpoint")
        theirs.put_file("/data.csv", b"their table")
        theirs.put_file("/cats/003.png", b"cat three")
    return c.finished, theirs.finished


def test_a_refresh_names_the_ignored_files_it_would_overwrite_and_changes_nothing(manager, ignored_locally):
    base, head = ignored_locally
    root = manager.mount_dir / "images"
    with pytest.raises(WouldOverwrite) as refused:
        manager.refresh("images")
    assert isinstance(refused.value, Conflict)  # a conflict of its own kind: callers catching Conflict still do
    assert refused.value.details["paths"] == [CHECKPOINT, "/data.csv"]
    assert refused.value.details["count"] == 2
    assert "/.ipynb_checkpoints/notes-checkpoint.txt" in refused.value.message
    assert manager.status("images").base == base.id
    shown = tree_of(root)
    assert (shown[CHECKPOINT], shown["/data.csv"]) == (b"my checkpoint", b"my local table")
    assert "/cats/003.png" not in shown

    status = manager.refresh("images", overwrite=True)
    assert (status.base, status.pending) == (head.id, 1)
    shown = tree_of(root)
    assert (shown[CHECKPOINT], shown["/data.csv"], shown["/cats/003.png"]) == (
        b"their checkpoint", b"their table", b"cat three")
    assert (shown["/scratch.tmp"], shown["/mine.txt"]) == (b"scratch", b"mine")  # not in the way: kept
    assert changed(manager, "images") == [("/mine.txt", "added")]


def test_overwrite_of_the_paths_shown_refuses_a_file_put_in_the_way_since(manager, backend, ignored_locally):
    """Overwrite agreed to for the files a refusal named allows those only: when the branch moved
    meanwhile and changed another ignored file's path, that one is named and nothing changes."""
    base, head = ignored_locally
    root = manager.mount_dir / "images"
    with pytest.raises(WouldOverwrite) as refused:
        manager.refresh("images")
    shown = refused.value.details["paths"]
    with backend.commit("images", "master", message="theirs again") as again:
        again.put_file("/scratch.tmp", b"their scratch")
    with pytest.raises(WouldOverwrite) as refused:
        manager.refresh("images", overwrite=shown)
    assert refused.value.details["paths"] == [CHECKPOINT, "/data.csv", "/scratch.tmp"]
    assert manager.status("images").base == base.id
    assert (tree_of(root)["/data.csv"], tree_of(root)["/scratch.tmp"]) == (b"my local table", b"scratch")
    status = manager.refresh("images", overwrite=refused.value.details["paths"])
    assert status.base == again.finished.id
    assert (tree_of(root)["/data.csv"], tree_of(root)["/scratch.tmp"]) == (b"their table", b"their scratch")


def test_following_a_rollback_asks_before_overwriting_and_dropping_keeps_ignored_files(manager, images, backend,
                                                                                       ignored_locally):
    base, head = ignored_locally
    root = manager.mount_dir / "images"
    manager.refresh("images", overwrite=True)
    write(root, "data.csv", b"my table again")
    write(root, CHECKPOINT[1:], b"my checkpoint again")
    backend.move_branch("images", "master", base.id)  # rolled back: their csv and checkpoint leave
    for keep in (True, False):
        with pytest.raises(WouldOverwrite) as refused:
            manager.follow("images", keep=keep)
        assert refused.value.details["paths"] == [CHECKPOINT, "/data.csv"]
        assert manager.status("images").base == head.id
        assert tree_of(root)["/data.csv"] == b"my table again"
        assert changed(manager, "images") == [("/mine.txt", "added")]

    status = manager.follow("images", keep=False, overwrite=True)
    assert (status.base, status.pending) == (base.id, 0)
    shown = tree_of(root)
    assert CHECKPOINT not in shown and "/data.csv" not in shown  # the branch no longer has them
    assert shown["/scratch.tmp"] == b"scratch"  # ignored, in nobody's way: dropping the pending changes keeps it
    assert "/mine.txt" not in shown
    assert tree_of(root) == {**repo_state(backend, "images", base.id), "/scratch.tmp": b"scratch"}


def test_a_commit_landing_on_their_version_of_an_ignored_file_is_refused(manager, backend, ignored_locally):
    _base, head = ignored_locally
    with pytest.raises(WouldOverwrite) as refused:
        manager.commit("images", "mine")
    assert refused.value.details["paths"] == [CHECKPOINT, "/data.csv"]
    assert [c.id for c in backend.list_commits("images", "master")][0] == head.id  # nothing landed
    assert changed(manager, "images") == [("/mine.txt", "added")]
    assert tree_of(manager.mount_dir / "images")["/data.csv"] == b"my local table"


def test_a_refresh_asks_the_backend_for_the_branch_changes_once(manager, backend, ignored_locally, monkeypatch):
    """The conflict check, the ignored-files check and the move share one diff (over gRPC each is a
    walk of two commits on the server)."""
    asked = []
    diff = backend.diff
    monkeypatch.setattr(backend, "diff", lambda *args, **kwargs: asked.append(args) or diff(*args, **kwargs))
    manager.refresh("images", overwrite=True)
    assert len(asked) == 1


def test_discard_leaves_a_deleted_ignored_folder_deleted(manager, backend):
    """Discard drops pending changes only: an ignored folder deleted here stays deleted (FUSE kept the
    whiteouts of ignored files but dropped the folder's own, ``__pycache__/`` matching folders only)."""
    import shutil

    backend.create_repo("code")
    with backend.commit("code", "master", message="first") as c:
        c.put_file("/m.py", b"x = 1\n")
        c.put_file("/__pycache__/m.cpython-312.pyc", b"compiled")
    manager.mount("code", mode="rw")
    root = manager.mount_dir / "code"
    shutil.rmtree(root / "__pycache__")
    write(root, "m.py", b"x = 2\n")
    assert changed(manager, "code") == [("/m.py", "modified")]
    manager.discard("code")
    assert tree_of(root) == {"/m.py": b"x = 1\n"}
    assert not (root / "__pycache__").exists()
