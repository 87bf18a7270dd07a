from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil

import pytest

from jupyterlab_pachls.pfs import AlreadyExists, Conflict, InvalidArgument, InvalidName, NotFound, ParseError

from .conftest import repo_state, tree_of


def test_read_only_mount_reads_files(manager, images, presentation):
    status = manager.mount("images", mode="ro")
    assert status.name == "images" and status.presentation == presentation
    assert (status.mode, status.state, status.base, status.branch) == ("ro", "mounted", images.id, "master")
    root = manager.mount_dir / "images"
    assert sorted(os.listdir(root)) == ["README.md", "cats", "dogs"]
    assert sorted(os.listdir(root / "cats")) == ["001.png", "002.png"]
    assert (root / "cats/002.png").read_bytes() == b"cat two"
    assert (root / "cats/001.png").stat().st_size == 7
    assert tree_of(root) == {"/README.md": b"# images\n", "/cats/001.png": b"cat one",
                             "/cats/002.png": b"cat two", "/dogs/001.png": b"dog one"}
    assert [s.name for s in manager.list()] == ["images"]
    assert status.to_json()["mode"] == "ro"


def test_read_only_mount_refuses_writes(manager, images, backend, presentation):
    manager.mount("images", mode="ro")
    root = manager.mount_dir / "images"
    if presentation == "fuse":
        for attempt in (lambda: open(root / "cats/001.png", "wb"), lambda: open(root / "new.txt", "w"),
                        lambda: os.mkdir(root / "d"), lambda: os.unlink(root / "README.md"),
                        lambda: os.rename(root / "README.md", root / "R.md")):
            with pytest.raises(OSError) as info:
                attempt()
            assert info.value.errno == errno.EROFS
    else:  # files of their own (see test_views_protect_store), read-only (root ignores mode bits, others do not)
        view = os.path.realpath(root)
        assert os.path.islink(root) and view != str(root)
        assert oct(os.stat(view).st_mode & 0o777) == "0o555"
        assert oct(os.stat(os.path.join(view, "cats/001.png")).st_mode & 0o777) == "0o444"
        if os.geteuid() != 0:
            with pytest.raises(PermissionError):
                open(root / "new.txt", "w")
            with pytest.raises(PermissionError):
                open(root / "cats/001.png", "wb")
    assert repo_state(backend, "images", "master")["/cats/001.png"] == b"cat one"


def test_reads_come_from_local_blob_or_content_cache(manager, images, backend, backend_spec, presentation):
    """Embedded store: the store's own contents (a small one from its database); other backends: the
    content cache (named by the sha256 of the bytes, whatever the store's hash is), filled on first read."""
    manager.mount("images", mode="ro")
    root = manager.mount_dir / "images"
    cache = manager.state_dir / "cache"
    digest = hashlib.sha256(b"cat one").hexdigest()
    cached = cache / digest[:2] / digest[2:]
    if presentation == "fuse" or backend_spec["kind"] == "local":
        assert not cached.exists()  # nothing fetched at mount time
    assert (root / "cats/001.png").read_bytes() == b"cat one"
    if backend_spec["kind"] == "local":
        assert not list(cache.glob("??/*"))  # read from the store, never copied into the cache
    else:
        assert cached.read_bytes() == b"cat one"
    if backend_spec["kind"] != "local":
        fetched = sorted(p.parent.name + p.name for p in cache.glob("??/*"))
        if presentation == "fuse":  # lazily: only what was read
            assert fetched == [digest]
        else:  # the no-FUSE view links every file of the commit
            assert fetched == sorted({hashlib.sha256(backend.get_file("images", "master", i.path)).hexdigest()
                                      for i in backend.walk("images", "master") if not i.is_dir})
    if presentation == "no-fuse" and backend_spec["kind"] != "local":  # a file of its own (a chmod would open it)
        assert os.stat(root / "cats/001.png").st_ino != os.stat(cached).st_ino


def test_mount_a_commit_and_a_branch(manager, images, backend):
    with backend.commit("images", "dev") as c:
        c.put_file("/dev.txt", b"dev")
    s1 = manager.mount("images@dev")
    s2 = manager.mount(f"images@{images.id}")
    assert s1.name == "images_dev" and s2.name == f"images_{images.id[:8]}"
    assert s2.commit == images.id and s2.base == images.id
    assert tree_of(manager.mount_dir / "images_dev") == {"/dev.txt": b"dev"}
    assert "/cats/001.png" in tree_of(manager.mount_dir / s2.name)
    s3 = manager.mount("images", mode="ro", name="explicit")
    assert s3.name == "explicit" and (manager.mount_dir / "explicit" / "README.md").exists()
    assert len(manager.list()) == 3


def test_name_clash_and_bad_names(manager, images, backend):
    manager.mount("images")
    with pytest.raises(AlreadyExists):
        manager.mount("images")
    with pytest.raises(AlreadyExists):
        manager.mount("images", mode="rw")
    for bad in ("../x", ".hidden", "a/b", "", "x\x00y", "a" * 300, ".pachls-views"):
        with pytest.raises(InvalidName):
            manager.mount("images", name=bad)
    for bad in ("../images", "images@../x", "im ages", "images@master:/../x"):
        with pytest.raises((ParseError, InvalidArgument)):
            manager.mount(bad)
    with pytest.raises(NotFound):
        manager.mount("nope")
    with pytest.raises(NotFound):
        manager.mount("images@nobranch")
    with pytest.raises(InvalidArgument):
        manager.mount("images", mode="rx")
    (manager.mount_dir / "occupied").mkdir()
    (manager.mount_dir / "occupied" / "f").write_text("x")
    with pytest.raises(AlreadyExists):
        manager.mount("images", name="occupied")
    assert (manager.mount_dir / "occupied" / "f").read_text() == "x"
    assert manager.names() == ["images"]
    with pytest.raises(NotFound):
        manager.status("nope")


def test_read_write_mount_stages_and_commits_one_commit(manager, images, backend):
    status = manager.mount("images", mode="rw")
    assert status.mode == "rw" and status.pending == 0
    root = manager.mount_dir / "images"
    (root / "cats/003.png").write_bytes(b"cat three")                # add
    (root / "cats/001.png").write_bytes(b"cat one, relabeled")       # modify (copy-on-write)
    os.unlink(root / "dogs/001.png")                                 # delete
    os.rename(root / "README.md", root / "INDEX.md")                  # rename = delete + add
    os.mkdir(root / "birds")
    (root / "birds/a.png").write_bytes(b"bird")
    os.mkdir(root / "empty")
    with open(root / "cats/002.png", "ab") as f:                      # append
        f.write(b"!")
    # the store is untouched until the commit
    assert repo_state(backend, "images", "master")["/cats/001.png"] == b"cat one"
    changes = manager.changes("images")
    assert [(c.path, c.change) for c in changes.changes] == [
        ("/INDEX.md", "added"), ("/README.md", "deleted"), ("/birds/a.png", "added"),
        ("/cats/001.png", "modified"), ("/cats/002.png", "modified"), ("/cats/003.png", "added"),
        ("/dogs/001.png", "deleted")]
    sizes = {c.path: (c.size, c.old_size) for c in changes.changes}
    assert sizes["/cats/001.png"] == (18, 7) and sizes["/dogs/001.png"] == (0, 7) and sizes["/INDEX.md"] == (9, None)
    assert json.loads(json.dumps(changes.to_json()))["counts"] == {"added": 3, "modified": 2, "deleted": 2}
    assert manager.status("images").pending == 7
    before = backend.list_commits("images", "master")
    landed = manager.commit("images", "relabel", "ann@example.com")
    after = backend.list_commits("images", "master")
    assert len(after) == len(before) + 1 and after[0].id == landed.id and landed.parent == images.id
    assert (landed.message, landed.author) == ("relabel", "ann@example.com")
    expected = {"/INDEX.md": b"# images\n", "/birds/a.png": b"bird", "/cats/001.png": b"cat one, relabeled",
                "/cats/002.png": b"cat two!", "/cats/003.png": b"cat three"}
    assert repo_state(backend, "images", "master") == expected
    assert tree_of(root) == expected
    status = manager.status("images")
    assert (status.base, status.pending, status.behind, status.state) == (landed.id, 0, 0, "mounted")
    assert manager.changes("images").changes == ()
    with pytest.raises(InvalidArgument, match="nothing to commit"):
        manager.commit("images", "again")


def test_label_studio_like_writes_end_as_one_commit(manager, backend):
    backend.create_repo("labels")
    manager.mount("labels", mode="rw")
    root = manager.mount_dir / "labels"
    final = {}
    for i in range(300):
        path = f"/cats/{i:03d}.png.json"
        os.makedirs(root / "cats", exist_ok=True)
        doc = {"task": i, "annotations": [{"result": "cat", "annotator": "ann"}]}
        (root / path[1:]).write_text(json.dumps(doc))
        final[path] = json.dumps(doc).encode()
    for i in range(0, 300, 3):  # rewritten, through a temp file and a rename, as editors do
        path = f"/cats/{i:03d}.png.json"
        doc = {"task": i, "annotations": [{"result": "dog", "annotator": "bob"}]}
        tmp = root / f"cats/.{i:03d}.tmp"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, root / path[1:])
        final[path] = json.dumps(doc).encode()
    for i in range(0, 300, 7):
        os.unlink(root / f"cats/{i:03d}.png.json")
        final.pop(f"/cats/{i:03d}.png.json")
    assert manager.status("labels").pending == len(final)
    landed = manager.commit("labels", "labels round 1", "ann")
    history = backend.list_commits("labels", "master")
    assert [c.id for c in history if c.origin == "USER"] == [landed.id]
    assert repo_state(backend, "labels", "master") == final
    assert tree_of(root) == final
    # the next round: one more commit holding exactly the change
    (root / "cats/001.png.json").write_text("{}")
    second = manager.commit("labels", "round 2", "ann")
    assert [c.path for c in backend.diff("labels", landed.id, second.id)] == ["/cats/001.png.json"]


def test_noop_edits_are_not_changes(manager, images):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"cat one")  # same content
    (root / "tmp.txt").write_bytes(b"x")
    os.unlink(root / "tmp.txt")
    assert manager.changes("images").changes == ()
    with pytest.raises(InvalidArgument, match="nothing to commit"):
        manager.commit("images", "nothing")


def test_discard(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"changed")
    (root / "new/x.txt").parent.mkdir()
    (root / "new/x.txt").write_bytes(b"new")
    os.unlink(root / "README.md")
    assert manager.discard("images") == 3
    assert manager.changes("images").changes == ()
    assert tree_of(root) == repo_state(backend, "images", "master")
    assert len(backend.list_commits("images", "master")) == 1


def test_delete_and_rename_directories(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    shutil.rmtree(root / "dogs")
    os.rename(root / "cats", root / "felines")
    assert sorted(os.listdir(root)) == ["README.md", "felines"]
    assert (root / "felines/001.png").read_bytes() == b"cat one"
    with pytest.raises(OSError):
        os.rmdir(root / "felines")  # not empty
    manager.commit("images", "reorganise")
    assert repo_state(backend, "images", "master") == {
        "/README.md": b"# images\n", "/felines/001.png": b"cat one", "/felines/002.png": b"cat two"}


def test_conflicting_commit_keeps_the_stage(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"mine")
    (root / "cats/009.png").write_bytes(b"mine too")
    with backend.commit("images", "master", message="someone else") as c:
        c.put_file("/cats/001.png", b"theirs")
    theirs = c.finished
    assert manager.status("images").behind == 1
    with pytest.raises(Conflict) as info:
        manager.commit("images", "mine")
    assert info.value.details["paths"] == ["/cats/001.png"]
    assert backend.inspect_branch("images", "master").head.id == theirs.id
    assert [c.path for c in manager.changes("images").changes] == ["/cats/001.png", "/cats/009.png"]
    assert (root / "cats/001.png").read_bytes() == b"mine"
    with pytest.raises(Conflict):
        manager.refresh("images")
    assert manager.status("images").base == images.id
    # resolving by taking theirs: discard, refresh, write again
    manager.discard("images")
    manager.refresh("images")
    assert (root / "cats/001.png").read_bytes() == b"theirs"


def test_commit_on_top_of_a_moved_branch(manager, images, backend):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"mine")
    with backend.commit("images", "master", message="someone else") as c:
        c.put_file("/dogs/002.png", b"theirs")
    landed = manager.commit("images", "mine")
    assert landed.parent == c.finished.id
    expected = {"/README.md": b"# images\n", "/cats/001.png": b"mine", "/cats/002.png": b"cat two",
                "/dogs/001.png": b"dog one", "/dogs/002.png": b"theirs"}
    assert repo_state(backend, "images", "master") == expected
    assert tree_of(root) == expected
    assert manager.status("images").base == landed.id


def test_refresh(manager, images, backend):
    manager.mount("images", mode="ro")
    manager.mount("images", mode="rw", name="work")
    with backend.commit("images", "master") as c:
        c.put_file("/cats/004.png", b"cat four")
    assert manager.status("images").behind == 1
    assert not (manager.mount_dir / "images/cats/004.png").exists()
    status = manager.refresh("images")
    assert (status.base, status.behind) == (c.finished.id, 0)
    assert (manager.mount_dir / "images/cats/004.png").read_bytes() == b"cat four"
    (manager.mount_dir / "work/mine.txt").write_bytes(b"mine")
    status = manager.refresh("work")  # nothing overlaps: rebased, stage kept
    assert status.base == c.finished.id and status.pending == 1
    assert (manager.mount_dir / "work/cats/004.png").read_bytes() == b"cat four"
    assert [c.path for c in manager.changes("work").changes] == ["/mine.txt"]


def test_unmount_is_clean_and_refuses_to_drop_changes(manager, images, backend):
    manager.mount("images", mode="ro")
    manager.mount("images", mode="rw", name="work")
    (manager.mount_dir / "work/x.txt").write_bytes(b"x")
    with pytest.raises(Conflict):
        manager.unmount("work")
    manager.unmount("images")
    assert not os.path.lexists(manager.mount_dir / "images")
    manager.unmount("work", discard=True)
    assert not os.path.lexists(manager.mount_dir / "work")
    assert manager.list() == []
    with pytest.raises(NotFound):
        manager.unmount("work")


def test_restart_brings_mounts_and_stage_back(make_manager, images, backend):
    first = make_manager()
    first.mount("images", mode="rw")
    first.mount("images", mode="ro", name="view")
    root = first.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"staged")
    os.unlink(root / "README.md")
    first.close()
    second = make_manager()
    assert [(s.name, s.state) for s in second.list()] == [("images", "mounted"), ("view", "mounted")]
    assert [(c.path, c.change) for c in second.changes("images").changes] == [
        ("/README.md", "deleted"), ("/cats/001.png", "modified")]
    assert (root / "cats/001.png").read_bytes() == b"staged"
    assert (second.mount_dir / "view/README.md").exists()
    second.commit("images", "after restart")
    assert repo_state(backend, "images", "master")["/cats/001.png"] == b"staged"


def test_paths_stay_inside_the_mount(manager, images, backend, tmp_path, presentation):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    if presentation == "fuse":
        with pytest.raises(OSError) as info:
            os.symlink(secret, root / "link")
        assert info.value.errno == errno.EPERM
        with pytest.raises(OSError):
            os.link(root / "README.md", root / "hard")
    else:
        os.symlink(secret, root / "link")
        os.symlink(tmp_path, root / "dirlink")
        os.link(secret, root / "hard")
        assert manager.changes("images").unsupported == ("/dirlink", "/hard", "/link")
        with pytest.raises(InvalidArgument, match="symlinks"):
            manager.commit("images", "leak")
        for name in ("link", "dirlink", "hard"):
            os.unlink(root / name)
    (root / "ok.txt").write_bytes(b"ok")
    manager.commit("images", "fine")
    assert b"secret" not in b"".join(repo_state(backend, "images", "master").values())


def test_fuse_stage_carried_over_when_fuse_is_gone(backend, images, dirs, presentation, monkeypatch):
    """Staged under FUSE, restarted where FUSE is not available: the stage comes back as a directory."""
    from jupyterlab_pachls.mount import MountManager

    if presentation != "fuse":
        pytest.skip("starts from a FUSE mount")
    first = MountManager(backend, dirs[0], dirs[1], fuse=True)
    first.mount("images", mode="rw")
    root = first.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"staged")
    os.unlink(root / "dogs/001.png")
    os.mkdir(root / "later")
    first.close()
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    second = MountManager(backend, dirs[0], dirs[1])
    try:
        status = second.status("images")
        assert (status.presentation, status.state, status.pending) == ("no-fuse", "mounted", 2)
        assert (root / "cats/001.png").read_bytes() == b"staged" and (root / "later").is_dir()
        assert [(c.path, c.change) for c in second.changes("images").changes] == [
            ("/cats/001.png", "modified"), ("/dogs/001.png", "deleted")]
        second.commit("images", "carried over")
        assert repo_state(backend, "images", "master") == {
            "/README.md": b"# images\n", "/cats/001.png": b"staged", "/cats/002.png": b"cat two"}
    finally:
        second.close()


def test_bad_names_inside_a_mount(manager, images, presentation):
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    if presentation == "fuse":
        with pytest.raises(OSError) as info:
            (root / "bad\nname").write_bytes(b"x")
        assert info.value.errno == errno.EINVAL
    else:
        (root / "bad\nname").write_bytes(b"x")
        assert manager.changes("images").unsupported == ("/bad\nname",)
        with pytest.raises(InvalidArgument):
            manager.commit("images", "bad")


def test_unmount_while_files_are_open(manager, images, presentation):
    manager.mount("images", mode="ro")
    manager.mount("images", mode="rw", name="work")
    held = [open(manager.mount_dir / "images/cats/001.png", "rb"),
            open(manager.mount_dir / "work/cats/002.png", "rb")]
    cwd = os.getcwd()
    os.chdir(manager.mount_dir / "images/cats")
    try:
        manager.unmount("images")
        manager.unmount("work")
    finally:
        os.chdir(cwd)
        for f in held:
            try:
                f.close()
            except OSError:
                pass
    assert manager.list() == []
    assert not os.path.lexists(manager.mount_dir / "images")


def test_behind_after_a_rollback(manager, images, backend):
    with backend.commit("images", "master") as c:
        c.put_file("/x", b"x")
    manager.mount("images")
    assert manager.status("images").behind == 0
    backend.move_branch("images", "master", images.id)  # roll back below the mount's base
    assert manager.status("images").behind == -1
    manager.refresh("images")
    assert (manager.status("images").base, manager.status("images").behind) == (images.id, 0)
    assert not (manager.mount_dir / "images/x").exists()


def test_choosing_the_presentation(backend, images, dirs, monkeypatch):
    from jupyterlab_pachls.mount import MountManager
    from jupyterlab_pachls.mount import fusefs
    from jupyterlab_pachls.pfs import Unavailable

    monkeypatch.delenv("PACHLS_NO_FUSE", raising=False)
    with MountManager(backend, dirs[0], dirs[1], fuse=False) as manager:
        assert manager.mount("images").presentation == "no-fuse"
        manager.unmount("images")
    if not fusefs.fuse_available()[0]:
        return
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")
    with pytest.raises(Unavailable):
        MountManager(backend, dirs[0], dirs[1], fuse=True)
    monkeypatch.delenv("PACHLS_NO_FUSE")

    def broken(self, timeout=20.0):
        raise OSError(errno.EPERM, "mount refused")

    monkeypatch.setattr(fusefs.FuseMount, "start", broken)
    with MountManager(backend, dirs[0], dirs[1]) as manager:  # automatic: falls back
        status = manager.mount("images", mode="rw")
        assert (status.presentation, status.state) == ("no-fuse", "mounted")
        assert "FUSE mount failed" in status.message
        assert (manager.mount_dir / "images/cats/001.png").read_bytes() == b"cat one"
        manager.unmount("images")
    with MountManager(backend, dirs[0], dirs[1], fuse=True) as manager:  # required: an error
        with pytest.raises(Unavailable):
            manager.mount("images")
        assert manager.list() == [] and not os.path.lexists(manager.mount_dir / "images")


@pytest.mark.parametrize("theirs, conflict", [("/dogs/002.png", False), ("/cats/001.png", True)])
def test_branch_moving_during_the_commit(manager, images, backend, monkeypatch, theirs, conflict):
    """The head moves between the conflict check and the landing: the compare-and-set fails, the
    manager checks again and lands on top, or refuses and keeps the stage."""
    manager.mount("images", mode="rw")
    root = manager.mount_dir / "images"
    (root / "cats/001.png").write_bytes(b"mine")
    original = type(backend).finish_commit
    raced = []

    def racing(self, commit, **kwargs):
        if not raced and commit.message == "mine":
            raced.append(True)
            other = self.start_commit("images", "master", message="racer")
            self.put_file(other, theirs, b"theirs")
            original(self, other)
        return original(self, commit, **kwargs)

    monkeypatch.setattr(type(backend), "finish_commit", racing)
    if conflict:
        with pytest.raises(Conflict) as info:
            manager.commit("images", "mine")
        assert info.value.details["paths"] == ["/cats/001.png"]
        assert [c.message for c in backend.list_commits("images", "master")][:2] == ["racer", "first"]
        assert [c.path for c in manager.changes("images").changes] == ["/cats/001.png"]
    else:
        landed = manager.commit("images", "mine")
        assert [c.message for c in backend.list_commits("images", "master")][:3] == ["mine", "racer", "first"]
        assert repo_state(backend, "images", landed.id)["/dogs/002.png"] == b"theirs"
        assert repo_state(backend, "images", landed.id)["/cats/001.png"] == b"mine"
        assert (root / "dogs/002.png").read_bytes() == b"theirs"


def test_files_of_other_pachyderm_clients_hash_as_pachd_does(manager, backend, backend_spec, presentation):
    """pachd's FileInfo.hash is not a hash of the bytes: reads are checked, and staged files compared,
    by the sha256 the mount server computes itself. The files come from a plain pachyderm_sdk client."""
    if backend_spec["kind"] != "pachyderm":
        pytest.skip("files written by another Pachyderm client")
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    client = Client.from_pachd_address(backend_spec["pachd_address"])
    client.pfs.create_repo(repo=pfs.Repo(name="shared"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("shared@master")) as c:
        c.put_file_from_bytes("/a.txt", b"alpha")
        c.put_file_from_bytes("/d/b.txt", b"beta")
    info = backend.inspect_file("shared", "master", "/a.txt")
    assert (info.hash_kind, info.content_sha256) == ("opaque", None)
    assert info.hash and info.hash != hashlib.sha256(b"alpha").hexdigest()

    manager.mount("shared", mode="ro", name="shared_ro")
    assert tree_of(manager.mount_dir / "shared_ro") == {"/a.txt": b"alpha", "/d/b.txt": b"beta"}
    manager.mount("shared", mode="rw", name="shared_rw")
    root = manager.mount_dir / "shared_rw"
    (root / "a.txt").write_bytes(b"alpha")  # the committed bytes again: no change
    (root / "d/b.txt").write_bytes(b"BETA")  # as many bytes, other ones: a change
    assert [(c.path, c.change) for c in manager.changes("shared_rw").changes] == [("/d/b.txt", "modified")]
    landed = manager.commit("shared_rw", "one change")
    assert client.pfs.pfs_file(pfs.File.from_uri(f"shared@{landed.id}:/d/b.txt")).read() == b"BETA"
    assert manager.changes("shared_rw").changes == ()
    assert manager.status("shared_ro").behind == 1
    manager.refresh("shared_ro")
    assert tree_of(manager.mount_dir / "shared_ro") == {"/a.txt": b"alpha", "/d/b.txt": b"BETA"}


def test_branch_created_without_a_head(manager, images, backend):
    """pachd gives such a branch an empty AUTO commit (the embedded store: no head). A read-write mount of
    it commits on top of that commit; the mount counts what lands after it."""
    empty = backend.create_branch("images", "round-1")
    base = empty.head.id if empty.head else None
    if empty.head is not None:
        assert (empty.head.origin, empty.head.parent, empty.head.branch) == ("AUTO", None, "round-1")
    status = manager.mount("images@round-1", mode="rw")
    assert (status.base, status.behind, tree_of(manager.mount_dir / status.name)) == (base, 0, {})
    (manager.mount_dir / status.name / "a.json").write_bytes(b"{}")
    first = manager.commit(status.name, "first labels")
    assert (first.parent, first.branch) == (base, "round-1")
    assert [c.id for c in backend.list_commits("images", "round-1")] == [first.id] + ([base] if base else [])
    with backend.commit("images", "round-1", message="theirs") as c:
        c.put_file("/b.json", b"[]")
    assert manager.status(status.name).behind == 1
    manager.refresh(status.name)
    assert tree_of(manager.mount_dir / status.name) == {"/a.json": b"{}", "/b.json": b"[]"}


def test_mount_made_before_the_branch_had_commits_counts_all_of_them(manager, images, backend):
    status = manager.mount("images@later", mode="rw")
    assert (status.base, status.behind) == (None, 0)
    for n in range(2):
        with backend.commit("images", "later") as c:
            c.put_file(f"/{n}.txt", b"n")
    assert manager.status(status.name).behind == 2
