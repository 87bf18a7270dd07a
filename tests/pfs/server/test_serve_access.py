"""Who may use ``jupyter pachls serve``: a host other than loopback is refused unless a token guards
it or ``--unauthenticated-public`` says the open store is meant; with a token every call carries it
in the ``authn-token`` metadata and is answered as pachd 2.12 with auth on answers
(src/internal/middleware/auth/, src/server/auth/server/api_server.go, src/auth/auth.go).
The CLI runs as users start it (its own process); the token checks go through real gRPC with the
real ``pachyderm_sdk`` client."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import auth, pfs

from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.pachyderm import PachydermBackend
from jupyterlab_pachls.pfs.server import make_server
from jupyterlab_pachls.pfs.server.cli import AUTH_TOKEN_ENV, is_loopback, main

TOKEN = "5f0c2a9e81d64b7fa3e1c07d9b2846ee"
NOT_SIGNED_IN = (grpc.StatusCode.UNAUTHENTICATED, "no authentication token (try logging in)")
BAD_TOKEN = (grpc.StatusCode.UNAUTHENTICATED,
             "provided auth token is corrupted or has expired (try logging in again)")


def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as failed:
        result = call()
        if hasattr(result, "__next__"):
            list(result)
    return failed.value.code(), failed.value.details()


def serve_command(store, *args: str) -> list[str]:
    return [sys.executable, "-m", "jupyterlab_pachls.pfs.server", "serve", "--port", "0", "--store", str(store),
            *args]


class Serving:
    """``jupyter pachls serve`` in its own process: its port once it serves, its whole output once stopped."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.first_line = self.process.stdout.readline()
        match = re.search(r"grpc://\S+:(\d+) ", self.first_line)
        if match is None:
            out, err = self.stop()
            pytest.fail(f"jupyter pachls serve did not start:\n{self.first_line}{out}{err}", pytrace=False)
        self.port = int(match.group(1))

    def stop(self) -> tuple[str, str]:
        """SIGTERM, then (stdout after the first line, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.communicate(timeout=60)


# -- the host ------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LocalHost"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.7", "10.0.0.1", "example.com", "localhost.example.com"])
def test_hosts_that_others_can_reach(host):
    assert not is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_public_host_without_token_or_flag_is_refused_with_status_2(tmp_path, host):
    store = tmp_path / "store"
    done = subprocess.run(serve_command(store, "--host", host), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"--host {host} is not a loopback address" in done.stderr
    assert "--unauthenticated-public" in done.stderr and "--auth-token-file" in done.stderr
    assert "serving" not in done.stdout
    assert not store.exists()  # refused before the store is opened


def test_with_the_flag_a_public_host_serves_everyone_and_warns(tmp_path):
    serving = Serving(serve_command(tmp_path / "store", "--host", "0.0.0.0", "--unauthenticated-public"))
    try:
        assert "(no authentication)" in serving.first_line
        client = Client("127.0.0.1", serving.port)  # no token needed: the store is open
        client.pfs.create_repo(repo=pfs.Repo(name="images"))
        assert [r.repo.name for r in client.pfs.list_repo()] == ["images"]
    finally:
        _out, err = serving.stop()
    assert serving.process.returncode == 0
    warning = [line for line in err.splitlines() if " WARNING " in line]
    assert len(warning) == 1 and "NO authentication" in warning[0] and "0.0.0.0" in warning[0]


def test_a_token_makes_a_public_host_acceptable_and_is_never_logged(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # a file's trailing newline is not part of the token
    serving = Serving(serve_command(tmp_path / "store", "--host", "0.0.0.0", "--auth-token-file", str(token_file),
                                    "--log-level", "DEBUG"))
    try:
        assert "(clients must send the auth token)" in serving.first_line
        with_token = Client("127.0.0.1", serving.port, auth_token=TOKEN)
        with_token.pfs.create_repo(repo=pfs.Repo(name="images"))
        assert [r.repo.name for r in with_token.pfs.list_repo()] == ["images"]
        assert status_of(lambda: Client("127.0.0.1", serving.port).pfs.list_repo()) == NOT_SIGNED_IN
        wrong = Client("127.0.0.1", serving.port, auth_token=TOKEN[:-1] + "0")
        assert status_of(lambda: wrong.pfs.inspect_repo(repo=pfs.Repo(name="images"))) == BAD_TOKEN
    finally:
        out, err = serving.stop()
    log = serving.first_line + out + err
    assert "/pfs_v2.API/ListRepo OK " in log and "/pfs_v2.API/ListRepo UNAUTHENTICATED " in log
    assert "/pfs_v2.API/InspectRepo UNAUTHENTICATED " in log
    assert "without encryption" in err  # the one warning left for a public host with a token
    assert TOKEN not in log and TOKEN[:8] not in log


def test_the_token_can_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(AUTH_TOKEN_ENV, TOKEN)  # the child process inherits it
    serving = Serving(serve_command(tmp_path / "store"))
    try:
        assert status_of(lambda: Client("127.0.0.1", serving.port).pfs.list_repo()) == NOT_SIGNED_IN
        assert list(Client("127.0.0.1", serving.port, auth_token=TOKEN).pfs.list_repo()) == []
    finally:
        serving.stop()


@pytest.mark.parametrize(("content", "problem"), [
    ("qz7x", "shorter than 16 characters"),
    ("qz7x0123 qz7x0123 qz7x", "printable ASCII without spaces"),
    ("   \n", "shorter than 16 characters"),
])
def test_an_unusable_token_is_refused_without_showing_it(tmp_path, capsys, content, problem):
    token_file = tmp_path / "token"
    token_file.write_text(content)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0", "--store", str(tmp_path / "store"), "--auth-token-file", str(token_file)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert problem in err and "qz7x" not in err


def test_a_missing_token_file_or_two_tokens_are_refused(tmp_path, capsys, monkeypatch):
    store = str(tmp_path / "store")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0", "--store", store, "--auth-token-file", str(tmp_path / "nope")])
    assert exited.value.code == 2 and "cannot read the auth token file" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv(AUTH_TOKEN_ENV, TOKEN)
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "0", "--store", store, "--auth-token-file", str(token_file)])
    assert exited.value.code == 2 and "given twice" in capsys.readouterr().err


# -- the token, call by call ---------------------------------------------------------------------
@pytest.fixture
def guarded(tmp_path):
    """A store served with a token; its port."""
    store = LocalBackend(tmp_path / "store")
    server, port = make_server(store, "127.0.0.1:0", auth_token=TOKEN)
    try:
        yield port
    finally:
        server.stop(grace=None).wait()
        store.close()


def test_the_sdk_client_with_the_token_can_do_everything(guarded):
    client = Client("127.0.0.1", guarded, auth_token=TOKEN)
    master = pfs.Branch.from_uri("images@master")
    client.pfs.create_repo(repo=master.repo)
    with client.pfs.commit(branch=master) as commit:  # unary, client-streaming (ModifyFile)
        commit.put_file_from_bytes(path="/cats/001.png", data=b"png")
    info = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    files = [f.file.path for f in client.pfs.list_file(file=pfs.File(commit=info.commit, path="/cats"))]
    assert files == ["/cats/001.png"]
    assert client.pfs.pfs_file(file=pfs.File(commit=info.commit, path="/cats/001.png")).read() == b"png"
    with client.transaction.transaction():  # the pach-transaction header rides with the token
        client.pfs.create_branch(branch=pfs.Branch.from_uri("images@dev"), head=info.commit)
    assert sorted(b.branch.name for b in client.pfs.list_branch(repo=master.repo)) == ["dev", "master"]
    # auth is on, and the token's holder is pachd's root user
    assert client.auth.who_am_i().username == "pach:root"
    granted = client.auth.authorize(resource=auth.Resource(type=auth.ResourceType.CLUSTER),
                                    permissions=[auth.Permission.REPO_READ, auth.Permission.REPO_WRITE])
    assert granted.authorized and granted.principal == "pach:root"
    assert set(granted.satisfied) == {auth.Permission.REPO_READ, auth.Permission.REPO_WRITE}
    assert status_of(client.auth.activate) == (grpc.StatusCode.UNIMPLEMENTED, "the auth service is already activated")
    code, message = status_of(client.auth.get_configuration)
    assert code == grpc.StatusCode.UNIMPLEMENTED and "one token" in message


def test_the_extensions_own_pachyderm_backend_works_with_the_token(guarded):
    backend = PachydermBackend(pachd_address=f"grpc://127.0.0.1:{guarded}", auth_token=TOKEN)
    try:
        backend.create_repo("images")
        assert "images" in [r.name for r in backend.list_repos()]
    finally:
        backend.close()


@pytest.mark.parametrize(("token", "answer"), [(None, NOT_SIGNED_IN), (TOKEN.upper(), BAD_TOKEN),
                                               (TOKEN + "x", BAD_TOKEN), ("", BAD_TOKEN)])
def test_without_the_right_token_every_kind_of_call_gets_pachds_answer(guarded, token, answer):
    owner = Client("127.0.0.1", guarded, auth_token=TOKEN)
    master = pfs.Branch.from_uri("images@master")
    owner.pfs.create_repo(repo=master.repo)
    open_commit = owner.pfs.start_commit(branch=master)
    other = Client("127.0.0.1", guarded, auth_token=token)
    assert status_of(lambda: other.pfs.inspect_repo(repo=master.repo)) == answer  # unary
    assert status_of(other.pfs.list_repo) == answer  # server streaming
    assert status_of(lambda: other.pfs.put_file_from_bytes(commit=open_commit, path="/x", data=b"1")) == answer
    assert status_of(lambda: other.pfs.get_file_tar(file=pfs.File(commit=open_commit, path="/"))) == answer
    assert status_of(lambda: other.pfs.create_repo(repo=pfs.Repo(name="theirs"))) == answer
    assert status_of(lambda: other.transaction.start_transaction()) == answer
    # jupyterlab-pachyderm reads UNAUTHENTICATED from WhoAmI as "logged out"
    assert status_of(other.auth.who_am_i) == answer
    # nothing they sent was done
    owner.pfs.finish_commit(commit=open_commit)
    assert [r.repo.name for r in owner.pfs.list_repo()] == ["images"]
    finished = owner.pfs.inspect_commit(commit=open_commit, wait=pfs.CommitState.FINISHED)
    assert list(owner.pfs.list_file(file=pfs.File(commit=finished.commit, path="/"))) == []


def test_what_pachd_answers_before_login_needs_no_token(guarded):
    anyone = Client("127.0.0.1", guarded)
    assert (anyone.get_version().major, anyone.get_version().minor) == (2, 12)
    assert anyone.admin.inspect_cluster().id
    assert status_of(anyone.auth.activate) == (grpc.StatusCode.UNIMPLEMENTED, "the auth service is already activated")
    code, _message = status_of(anyone.auth.get_oidc_login)
    assert code == grpc.StatusCode.UNIMPLEMENTED  # no OIDC here; the token is the only way in


def test_a_call_carrying_two_tokens_is_refused_as_pachd_does(guarded):
    with grpc.insecure_channel(f"127.0.0.1:{guarded}") as channel:
        list_repo = channel.unary_stream("/pfs_v2.API/ListRepo", request_serializer=bytes,
                                         response_deserializer=pfs.RepoInfo().parse)
        twice = (("authn-token", TOKEN), ("authn-token", TOKEN))
        assert status_of(lambda: list_repo(pfs.ListRepoRequest(), metadata=twice)) == (
            grpc.StatusCode.UNKNOWN, "multiple authentication token keys found in context")
        assert list(list_repo(pfs.ListRepoRequest(), metadata=(("authn-token", TOKEN),))) == []


def test_an_empty_token_is_a_clear_error(tmp_path):
    store = LocalBackend(tmp_path / "store")
    try:
        with pytest.raises(ValueError, match="auth_token is empty"):
            make_server(store, "127.0.0.1:0", auth_token="")
    finally:
        store.close()
