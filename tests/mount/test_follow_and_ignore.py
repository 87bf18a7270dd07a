"""Nothing stale, nothing by accident: a mount follows a branch that was rolled back (keeping or
dropping its pending changes), a read-only mount follows its branch's head, Jupyter's own files and
``.pachlsignore`` rules are never pending, and a commit can take a chosen subset of the changes.
Each runs through FUSE and without it, on the embedded store and over real gRPC."""

from __future__ import annotations

import os

import pytest

from jupyterlab_pachls.mount.ignore import IgnoreRules
from jupyterlab_pachls.pfs import Conflict, InvalidArgument, InvalidPath

from .conftest import repo_state, tree_of


def write(root, rel: str, data: bytes) -> None:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def changed(manager, name: str) -> list[tuple[str, str]]:
    return [(c.path, c.change) for c in manager.changes(name).changes]


@pytest.fixture
def rolled_back(manager, images, backend):
    """``images`` mounted read-write at a second commit, edits staged on top of it, then the branch
    rolled back below it (to ``images``, the first commit)."""
    with backend.commit("images", "master", message="second") as c:
        c.put_file("/x.txt", b"x from the second commit")
        c.put_file("/README.md", b"# images, second\n")
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, "README.md", b"# mine\n")
    write(root, "mine.txt", b"my file")
    os.unlink(root / "cats/002.png")
    backend.move_branch("images", "master", images.id)
    return c.finished


def test_a_rolled_back_branch_is_said_and_followed_keeping_the_pending_changes(manager, images, backend,
                                                                                rolled_back):
    status = manager.status("images")
    assert (status.base, status.behind, status.head, status.pending) == (rolled_back.id, -1, images.id, 3)

    status = manager.follow("images", keep=True)
    assert (status.base, status.behind, status.head, status.pending) == (images.id, 0, images.id, 3)
    shown = tree_of(manager.mount_dir / "images")
    assert "/x.txt" not in shown  # the rolled-back commit's file left with it
    assert shown["/README.md"] == b"# mine\n" and shown["/mine.txt"] == b"my file"
    assert "/cats/002.png" not in shown
    assert changed(manager, "images") == [("/README.md", "modified"), ("/cats/002.png", "deleted"),
                                          ("/mine.txt", "added")]
    landed = manager.commit("images", "on top of the rollback")
    assert landed.parent == images.id
    assert repo_state(backend, "images", "master") == {
        "/README.md": b"# mine\n", "/cats/001.png": b"cat one", "/dogs/001.png": b"dog one",
        "/mine.txt": b"my file"}


def test_following_a_rolled_back_branch_can_drop_the_pending_changes(manager, images, backend, rolled_back):
    status = manager.follow("images", keep=False)
    assert (status.base, status.behind, status.pending) == (images.id, 0, 0)
    assert tree_of(manager.mount_dir / "images") == repo_state(backend, "images", images.id)
    assert changed(manager, "images") == []


def test_a_fixed_commit_mount_follows_no_branch(manager, images):
    manager.mount("images", commit=images.id)
    with pytest.raises(InvalidArgument):
        manager.follow(f"images_{images.id[:8]}")


def test_a_read_only_mount_follows_its_branch_head_on_and_back(manager, images, backend):
    manager.mount("images")
    with backend.commit("images", "master", message="more") as c:
        c.put_file("/cats/003.png", b"cat three")
    status = manager.status("images")
    assert (status.base, status.behind, status.head) == (images.id, 1, c.finished.id)
    assert manager.follow_head("images") is True
    status = manager.status("images")
    assert (status.base, status.behind) == (c.finished.id, 0)
    assert tree_of(manager.mount_dir / "images")["/cats/003.png"] == b"cat three"

    backend.move_branch("images", "master", images.id)  # rolled back: the read-only mount goes back too
    assert manager.status("images").behind == -1
    manager.follow_head("images")
    assert manager.status("images").base == images.id
    assert "/cats/003.png" not in tree_of(manager.mount_dir / "images")


def test_follow_head_leaves_read_write_and_fixed_mounts_alone(manager, images, backend):
    manager.mount("images", mode="rw")
    manager.mount("images", commit=images.id)
    with backend.commit("images", "master") as c:
        c.put_file("/new", b"n")
    assert manager.follow_head("images") is False
    assert manager.follow_head(f"images_{images.id[:8]}") is False
    assert manager.status("images").base == images.id


def test_jupyters_own_files_are_never_pending(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, ".ipynb_checkpoints/notes-checkpoint.txt", b"checkpoint")
    write(root, "notes.txt", b"notes")
    write(root, "pkg/__pycache__/m.cpython-312.pyc", b"bytecode")
    write(root, ".virtual_documents/notes.ipynb", b"{}")
    write(root, "cats/.DS_Store", b"finder")
    assert changed(manager, "images") == [("/notes.txt", "added")]
    assert manager.status("images").pending == 1
    landed = manager.commit("images", "notes")
    assert "/notes.txt" in repo_state(backend, "images", landed.id)
    assert not any("checkpoint" in p or "__pycache__" in p or "DS_Store" in p or "virtual" in p
                   for p in repo_state(backend, "images", landed.id))
    # still there in the mount, still not pending
    assert (root / ".ipynb_checkpoints/notes-checkpoint.txt").read_bytes() == b"checkpoint"
    assert manager.status("images").pending == 0


def test_a_pachlsignore_adds_rules_and_re_includes_defaults(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, "scratch.tmp", b"t")
    write(root, "pkg/__pycache__/m.pyc", b"bytecode")
    assert changed(manager, "images") == [("/scratch.tmp", "added")]
    write(root, ".pachlsignore", b"# scratch files\n*.tmp\n!__pycache__/\n")
    assert changed(manager, "images") == [("/.pachlsignore", "added"), ("/pkg/__pycache__/m.pyc", "added")]
    manager.commit("images", "rules")
    # the committed rules hold: read from the base commit now
    write(root, "other.tmp", b"t")
    write(root, "kept.txt", b"k")
    assert changed(manager, "images") == [("/kept.txt", "added")]
    os.unlink(root / ".pachlsignore")  # deleting the rules: only the defaults again
    assert changed(manager, "images") == [("/.pachlsignore", "deleted"), ("/kept.txt", "added"),
                                          ("/other.tmp", "added"), ("/scratch.tmp", "added")]


def test_a_commit_of_a_chosen_subset_leaves_the_rest_pending(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, "a.txt", b"a")
    write(root, "b.txt", b"b")
    write(root, "README.md", b"# changed\n")
    os.unlink(root / "dogs/001.png")
    landed = manager.commit("images", "a and the dog", paths=["/a.txt", "/dogs/001.png"])
    assert repo_state(backend, "images", landed.id) == {
        "/a.txt": b"a", "/README.md": b"# images\n", "/cats/001.png": b"cat one", "/cats/002.png": b"cat two"}
    assert changed(manager, "images") == [("/README.md", "modified"), ("/b.txt", "added")]
    assert manager.status("images").pending == 2
    assert tree_of(root)["/b.txt"] == b"b"


def test_a_chosen_path_that_is_not_pending_commits_nothing(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, "a.txt", b"a")
    write(root, ".ipynb_checkpoints/a-checkpoint.txt", b"a")
    for paths, error in ((["/a.txt", "/nope.txt"], InvalidArgument),
                         (["/.ipynb_checkpoints/a-checkpoint.txt"], InvalidArgument),
                         ([], InvalidArgument), (["/../etc/passwd"], InvalidPath), ("/a.txt", InvalidArgument)):
        with pytest.raises(error):
            manager.commit("images", "m", paths=paths)
    assert [c.id for c in backend.list_commits("images", "master")] == [images.id]
    assert changed(manager, "images") == [("/a.txt", "added")]


def test_ignore_rules_skip_a_line_they_cannot_parse():
    rules = IgnoreRules(lambda: b"\\\n*.log\n")  # pathspec refuses a lone backslash: the other lines hold
    assert rules.ignored(["/a.log", "/b.txt", "/x/__pycache__/y.pyc"]) == {"/a.log", "/x/__pycache__/y.pyc"}


def test_a_subset_commit_never_overwrites_a_pending_path_the_branch_changed_meanwhile(manager, images, backend):
    """The stage moves onto the new head after a subset commit: an unticked pending file that other
    commits changed meanwhile is a conflict as in a full commit (never overwritten by theirs)."""
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    write(root, "a.txt", b"a")
    write(root, "README.md", b"# mine, not chosen\n")
    with backend.commit("images", "master", message="theirs") as c:
        c.put_file("/README.md", b"# theirs\n")
    with pytest.raises(Conflict):
        manager.commit("images", "only a", paths=["/a.txt"])
    assert [c.id for c in backend.list_commits("images", "master")][0] == c.finished.id
    assert tree_of(root)["/README.md"] == b"# mine, not chosen\n"
    assert changed(manager, "images") == [("/README.md", "modified"), ("/a.txt", "added")]


def test_the_trash_of_a_delete_from_the_file_browser_is_never_pending():
    """Jupyter deletes to the trash; on a FUSE mount send2trash makes it at the mount's top."""
    rules = IgnoreRules(lambda: None)
    trashed = ["/.Trash-0/files/a.txt", "/.Trash-0/info/a.txt.trashinfo", "/.Trash/1000/files/b.txt"]
    assert rules.ignored([*trashed, "/data/.Trash-0/kept.txt", "/.Trashy.txt"]) == set(trashed)
