"""``%pachls follow NAME [--keep|--drop] [--overwrite]`` and ``%%pachls commit NAME -m MSG --path P``, in a
real IPython shell over the Python client of a real Jupyter server (the panel's mounts)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyterlab_pachls.magics import HelpShown, UsageError, mount_paths, parse


@pytest.fixture(autouse=True)
def no_fuse(monkeypatch):
    """The mount logic is tested with and without FUSE in tests/mount; one way here."""
    monkeypatch.setenv("PACHLS_NO_FUSE", "1")


@pytest.fixture
def client(api, jp_http_port, jp_base_url, jp_auth_header):
    # ``api`` starts the server listening (pytest-jupyter's http_server_client)
    from jupyterlab_pachls.client.http import ServerClient

    token = jp_auth_header["Authorization"].split()[-1]
    opened = ServerClient(f"http://127.0.0.1:{jp_http_port}{jp_base_url}", token)
    yield opened
    opened.close()


@pytest.fixture
def backend(pachls_state):
    backend = pachls_state.backend
    backend.create_repo("notes")
    with backend.commit("notes", "master", message="first") as first:
        first.put_file("/a.txt", b"a")
    return backend


def test_the_new_options_parse_and_have_help(capsys):
    args = parse("follow notes --drop --overwrite")
    assert (args.name, args.keep, args.overwrite) == ("notes", False, True)
    assert parse("follow notes").keep is True
    assert parse("commit notes -m m --path /a.txt --path b.txt").paths == ["/a.txt", "b.txt"]
    # from the mount's top, as a notebook beside it spells it too
    assert mount_paths(["/a.txt", "b.txt", "./c/d.txt"]) == ["/a.txt", "/b.txt", "/c/d.txt"]
    with pytest.raises(UsageError, match="not allowed with argument"):
        parse("follow notes --keep --drop")
    with pytest.raises(HelpShown):
        parse("follow notes --help")
    said = capsys.readouterr().out
    assert "--overwrite" in said and "--drop" in said


async def test_a_cell_commits_only_the_chosen_paths_and_follow_moves_the_mount(shell, backend, jp_root_dir, capsys):
    root = Path(jp_root_dir) / "pfs" / "notes"
    run = asyncio.to_thread
    await run(shell.run_line_magic, "pachls", "mount notes@master --rw")
    cell = f"open({str(root / 'x.txt')!r}, 'w').write('x')\nopen({str(root / 'y.txt')!r}, 'w').write('y')"
    await run(shell.run_cell_magic, "pachls", "commit notes -m 'x only' --path x.txt", cell)
    out = capsys.readouterr()
    assert "Committed mount 'notes' to notes@master" in out.out, out
    head = backend.inspect_branch("notes", "master").head
    assert head.message == "x only"
    assert sorted(c.path for c in backend.diff("notes", head.parent, head.id)) == ["/x.txt"]
    assert list((await run(shell.run_line_magic, "pachls", "diff notes"))["path"]) == ["/y.txt"]

    await run(shell.run_line_magic, "pachls", "commit notes -m 'not pending' --path /nope.txt")
    assert "not pending" in capsys.readouterr().err
    assert backend.inspect_branch("notes", "master").head.id == head.id

    # the branch writes a path where the mount holds an ignored local file (a checkpoint)
    await run((root / ".ipynb_checkpoints").mkdir)
    await run((root / ".ipynb_checkpoints" / "x-checkpoint.txt").write_bytes, b"mine")
    with backend.commit("notes", "master", message="theirs") as theirs:
        theirs.put_file("/.ipynb_checkpoints/x-checkpoint.txt", b"theirs")
    backend.move_branch("notes", "master", head.parent)  # rolled back below the mount: said in the table
    table = await run(shell.run_line_magic, "pachls", "mounts")
    assert (list(table["behind"]), list(table["diverged"])) == ([0], [True])
    backend.move_branch("notes", "master", theirs.finished.id)
    await run(shell.run_line_magic, "pachls", "follow notes")
    err = capsys.readouterr().err
    assert err.startswith("%pachls follow: the branch changed 1 ignored local file(s) of mount 'notes' "
                          "(/.ipynb_checkpoints/x-checkpoint.txt); nothing changed") and "--overwrite" in err, err
    assert err.count("\n") == 1
    assert (root / ".ipynb_checkpoints" / "x-checkpoint.txt").read_bytes() == b"mine"
    mount = await run(shell.run_line_magic, "pachls", "follow notes --drop --overwrite")
    assert (mount.base, mount.pending) == (theirs.finished.id, 0)
    assert f"Mount 'notes' follows notes@master at {theirs.finished.id}" in capsys.readouterr().out
    assert not (root / "y.txt").exists() and (root / "x.txt").read_bytes() == b"x"
    assert (root / ".ipynb_checkpoints" / "x-checkpoint.txt").read_bytes() == b"theirs"
