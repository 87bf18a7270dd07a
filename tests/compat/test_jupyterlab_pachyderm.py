"""Pachyderm's own JupyterLab extension (``jupyterlab-pachyderm`` 2.12.2) against ``jupyter pachls serve``.

A user who already has Pachyderm's extension points it at our server (``PACHD_ADDRESS``, or its
configuration screen) and expects what a pachd gives them: a healthy cluster, the repos and
branches to pick from, a mounted branch or commit to explore (nested folders, long folders read
page by page, the commit's time on every file) and downloads of files and folders.

Everything runs for real: ``jupyter pachls serve`` over a fresh store in its own process, filled
with the real ``pachyderm_sdk`` over gRPC; a Jupyter server from the scratch environment
``.venv-compat`` (``scripts/compat-env.sh``) with ``jupyterlab-pachyderm`` loaded; and this module
calling that extension's REST routes (``/pachyderm/v2/...``) the way its frontend does, with the
server's token. The two extensions never share a Python environment.

What the extension does with each answer, and what pachd 2.12 answers (the reference):
- ``/health`` calls ``auth_v2.API/WhoAmI``; a pachd without auth answers UNIMPLEMENTED "the auth
  service is not activated", which the extension reports as ``HEALTHY_NO_AUTH``.
- ``/repos`` is ``ListRepo`` (the branches come inside each ``RepoInfo``).
- ``/explore/mount`` is ``InspectCommit`` of the commit URI; ``/pfs/...`` is ``InspectCommit``,
  ``InspectFile``, ``ListFile`` (``number`` and ``pagination_marker``) and ``GetFile``.
  Times shown are ``FileInfo.committed``: pachd sets it to the finishing time of the commit read.
- ``/download/explore/...`` is ``InspectFile`` then ``GetFile`` (a file) or ``GetFileTAR`` (a
  folder); pachd's tar names every entry by its full path in the repo, which the extension
  extracts under a local folder named after the one downloaded.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPAT_VENV = REPO_ROOT / ".venv-compat"
COMPAT_JUPYTER = COMPAT_VENV / "bin" / "jupyter-server"
API = "pachyderm/v2"

# The extension's frontend asks for directory listings 1000 entries at a time and asks for the
# next page while a page comes back full; a folder of MANY files takes two pages.
PAGE = 1000
MANY = 1234
BINARY = bytes(range(256)) * 4


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Served:
    """``jupyter pachls serve`` and what was put in its store."""

    address: str
    client: object
    started_at: datetime
    old_commit: str = ""
    head_commit: str = ""
    many: list[str] = field(default_factory=list)

    @property
    def host_port(self) -> str:
        """The address as the extension shows it (pachyderm_sdk drops the scheme)."""
        return self.address.removeprefix("grpc://")

    def finishing(self, repo: str, commit_id: str) -> datetime:
        from pachyderm_sdk.api import pfs

        info = self.client.pfs.inspect_commit(commit=pfs.Commit.from_uri(f"{repo}@{commit_id}"))
        return info.finishing


def fill(client) -> dict:
    """Repos, branches (one made without a head), nested folders, a long folder and an older commit."""
    from pachyderm_sdk.api import pfs

    client.pfs.create_repo(repo=pfs.Repo.from_uri("images"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("images@master")) as first:
        first.put_file_from_bytes(path="/readme.txt", data=b"first version\n")
        first.put_file_from_bytes(path="/data/a.txt", data=b"alpha\n")
    old_commit = first.id

    many = [f"f{i:04d}.txt" for i in range(MANY)]
    with client.pfs.commit(branch=pfs.Branch.from_uri("images@master")) as second:
        second.put_file_from_bytes(path="/readme.txt", data=b"second version\n")
        second.put_file_from_bytes(path="/data/nested/deep/leaf.txt", data=b"leaf\n")
        second.put_file_from_bytes(path="/data/nested/image.bin", data=BINARY)

        # One ModifyFile stream for the long folder, as a bulk upload would send it.
        def operations():
            yield pfs.ModifyFileRequest(set_commit=pfs.Commit.from_uri(f"images@{second.id}"))
            for name in many:
                yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=f"/many/{name}", raw=name.encode()))

        client.pfs.modify_file(operations())
    head_commit = second.id

    client.pfs.create_branch(branch=pfs.Branch.from_uri("images@dev"), head=pfs.Commit.from_uri(f"images@{old_commit}"))
    client.pfs.create_branch(branch=pfs.Branch.from_uri("images@empty"))

    client.pfs.create_project(project=pfs.Project(name="team"))
    client.pfs.create_repo(repo=pfs.Repo.from_uri("team/labels"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("team/labels@master")) as labels:
        labels.put_file_from_bytes(path="/labels.json", data=b"[]\n")
    return {"old_commit": old_commit, "head_commit": head_commit, "many": many}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from pachyderm_sdk import Client

    store = tmp_path_factory.mktemp("served") / "store"
    # `jupyter pachls serve`, exactly as a user starts it (the `jupyter` command finds
    # `jupyter-pachls` beside this interpreter).
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "pachls", "serve", "--port", "0", "--store", str(store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"grpc://([\d.]+):(\d+)", line)
        if not match:
            stop(proc)
            pytest.fail(f"jupyter pachls serve did not start:\n{line}{proc.stdout.read()}", pytrace=False)
        address = f"grpc://{match.group(1)}:{match.group(2)}"
        started_at = datetime.now(timezone.utc)
        client = Client.from_pachd_address(address)
        facts = fill(client)
        yield Served(address=address, client=client, started_at=started_at, **facts)
    finally:
        stop(proc)


@dataclass
class Lab:
    """A Jupyter server from ``.venv-compat`` with ``jupyterlab-pachyderm``, and its REST API."""

    url: str
    token: str
    root: Path
    log: Path

    def call(self, method: str, route: str, body: dict | None = None, **params) -> tuple[int, object, str]:
        """(HTTP status, decoded JSON or None, reason) of one call to the extension's route."""
        url = f"{self.url}/{API}/{route}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else (b"" if method == "PUT" else None)
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                text = response.read().decode()
                return response.status, (json.loads(text) if text else None), response.reason
        except urllib.error.HTTPError as error:
            return error.code, None, f"{error.reason} {error.read().decode(errors='replace')[:2000]}"

    def ok(self, method: str, route: str, body: dict | None = None, **params) -> object:
        status, answer, reason = self.call(method, route, body, **params)
        assert status == 200, f"{method} {route} {params or ''} -> {status}: {reason}\n{self.log_tail()}"
        return answer

    def mount(self, commit_uri: str) -> None:
        self.ok("PUT", "explore/mount", {"commit_uri": commit_uri})

    def listing(self, path: str, **params) -> list[dict]:
        model = self.ok("GET", f"pfs/{path}", **params)
        assert model["type"] == "directory", model
        return model["content"]

    def log_tail(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines()
                 if "JupyterEventsVersionWarning" not in line and "validate_schema(_schema)" not in line]
        return "extension server log (tail):\n" + "\n".join(lines)[-2000:]


@pytest.fixture(scope="module")
def compat_jupyter() -> Path:
    if not COMPAT_JUPYTER.exists():
        pytest.fail(f"{COMPAT_JUPYTER} is missing: create the scratch environment with "
                    f"`scripts/compat-env.sh` (scripts/install.sh --ui-tests runs it)", pytrace=False)
    return COMPAT_JUPYTER


@pytest.fixture(scope="module")
def lab(compat_jupyter, served, tmp_path_factory):
    home = tmp_path_factory.mktemp("compat-home")
    root = home / "work"
    root.mkdir()
    token = secrets.token_hex(16)
    port = free_port()
    # Nothing of this checkout or its venv leaks in: the scratch venv's own interpreter, paths and
    # a private HOME (the extension writes its Pachyderm config and caches under it).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PACH", "PYTHON", "VIRTUAL_ENV"))}
    env.update({
        "HOME": str(home),
        "PATH": f"{COMPAT_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PACHD_ADDRESS": served.address,
        "PACH_CONFIG": str(home / "pachyderm" / "config.json"),
        "PFS_MOUNT_DIR": str(home / "pfs"),  # its datum views link there (default /pfs)
        "JUPYTER_CONFIG_DIR": str(home / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(home / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "jupyter" / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    })
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(compat_jupyter), "--no-browser", "--allow-root", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
        )
    server = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"the Jupyter server of .venv-compat exited\n{server.log_tail()}"
            try:
                status, _, _ = server.call("GET", "config")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"the Jupyter server of .venv-compat did not answer\n{server.log_tail()}"
            time.sleep(0.3)
        assert "Registered Pachyderm extension" in log.read_text(errors="replace"), server.log_tail()
        yield server
    finally:
        stop(proc)


def shown_time(model: dict) -> datetime:
    return datetime.fromisoformat(model["last_modified"].replace("Z", "+00:00"))


def names(content: list[dict]) -> list[str]:
    return [entry["name"] for entry in content]


# -- connecting --------------------------------------------------------------------------------------


def test_health_reports_a_cluster_without_auth(lab, served):
    """Set up from PACHD_ADDRESS, the extension reports a healthy cluster (not the configuration screen)."""
    assert lab.ok("GET", "config") == {"pachd_address": served.host_port}
    assert lab.ok("GET", "health") == {"status": "HEALTHY_NO_AUTH"}


def test_configuration_screen_accepts_the_address(lab, served):
    """Typing the address in the extension's configuration screen connects (it checks health first)."""
    answer = lab.ok("PUT", "config", {"pachd_address": served.address})
    assert answer == {"pachd_address": served.host_port}
    assert lab.ok("GET", "health") == {"status": "HEALTHY_NO_AUTH"}


# -- picking what to explore ---------------------------------------------------------------------------


def test_repos_and_their_branches_are_listed(lab):
    repos = lab.ok("GET", "repos")
    assert sorted(repos) == ["default/images", "team/labels"]
    images = repos["default/images"]
    assert (images["name"], images["project"]) == ("images", "default")
    assert sorted(b["name"] for b in images["branches"]) == ["dev", "empty", "master"]
    assert {b["uri"] for b in images["branches"]} == {"default/images@dev", "default/images@empty", "default/images@master"}
    assert [b["name"] for b in repos["team/labels"]["branches"]] == ["master"]


# -- exploring -----------------------------------------------------------------------------------------


def test_explore_a_branch_shows_its_head_with_nested_folders(lab, served):
    lab.mount("default/images@master")
    top = lab.listing("")
    assert names(top) == ["images"]

    root = lab.listing("images")
    assert sorted(names(root)) == ["data", "many", "readme.txt"]
    kinds = {entry["name"]: entry["type"] for entry in root}
    assert kinds == {"data": "directory", "many": "directory", "readme.txt": "file"}

    assert sorted(names(lab.listing("images/data"))) == ["a.txt", "nested"]
    nested = lab.listing("images/data/nested")
    assert sorted(names(nested)) == ["deep", "image.bin"]
    assert [e["path"] for e in lab.listing("images/data/nested/deep")] == ["/images/data/nested/deep/leaf.txt"]

    readme = lab.ok("GET", "pfs/images/readme.txt")
    assert (readme["type"], readme["format"], readme["content"]) == ("file", "text", "second version\n")
    image = lab.ok("GET", "pfs/images/data/nested/image.bin")
    assert image["format"] == "base64"


def test_file_times_are_the_commits_time(lab, served):
    """Every entry shows when its commit finished (pachd's FileInfo.committed), never 1970."""
    lab.mount("default/images@master")
    finished = served.finishing("images", served.head_commit)
    assert finished > served.started_at - timedelta(minutes=5), finished
    for path in ("images", "images/data", "images/data/nested"):
        for entry in lab.listing(path):
            assert shown_time(entry) == finished, (path, entry)
    assert shown_time(lab.ok("GET", "pfs/images/readme.txt", content=0)) == finished
    # The mounted branch's own folder shows when its head commit started.
    (branch_folder,) = lab.listing("")
    assert shown_time(branch_folder) > served.started_at - timedelta(minutes=5), branch_folder


def test_explore_an_older_commit_of_a_branch(lab, served):
    """The frontend's commit picker mounts `<repo>@<branch>=<commit>`: the files as they were then."""
    lab.mount(f"default/images@master={served.old_commit}")
    assert sorted(names(lab.listing("images"))) == ["data", "readme.txt"]
    assert lab.ok("GET", "pfs/images/readme.txt")["content"] == "first version\n"
    assert names(lab.listing("images/data")) == ["a.txt"]
    finished = served.finishing("images", served.old_commit)
    assert {shown_time(e) for e in lab.listing("images")} == {finished}


def test_explore_a_commit_by_id_alone(lab, served):
    lab.mount(f"images@{served.old_commit}")
    assert lab.ok("GET", "pfs/images/readme.txt")["content"] == "first version\n"


def test_explore_another_branch_and_another_project(lab):
    lab.mount("default/images@dev")
    assert names(lab.listing("")) == ["images_dev"]
    assert lab.ok("GET", "pfs/images_dev/readme.txt")["content"] == "first version\n"

    lab.mount("team/labels@master")
    assert names(lab.listing("")) == ["team_labels"]
    assert lab.ok("GET", "pfs/team_labels/labels.json")["content"] == "[]\n"


def test_explore_a_branch_created_without_a_head(lab, served):
    """pachd gives a branch made without a head an empty commit, so it can be mounted like any other."""
    lab.mount("default/images@empty")
    (folder,) = lab.listing("")
    assert folder["name"] == "images_empty"
    assert shown_time(folder) > served.started_at - timedelta(minutes=5), folder


def test_mounting_what_does_not_exist_is_refused(lab):
    status, _, reason = lab.call("PUT", "explore/mount", {"commit_uri": "default/images@no-such-branch"})
    assert status == 400, reason
    status, _, reason = lab.call("PUT", "explore/mount", {"commit_uri": "default/nothing@master"})
    assert status == 400, reason


def test_a_long_folder_is_read_page_by_page(lab, served):
    """As the frontend does: 1000 entries a page, the next page after the last entry's file URI."""
    lab.mount("default/images@master")
    first = lab.listing("images/many", number=PAGE)
    assert len(first) == PAGE
    second = lab.listing("images/many", number=PAGE, pagination_marker=first[-1]["file_uri"])
    assert len(second) == MANY - PAGE
    assert names(first) + names(second) == served.many
    assert lab.ok("GET", f"pfs/images/many/{served.many[-1]}")["content"] == served.many[-1]


# -- downloading ---------------------------------------------------------------------------------------


def test_download_a_file(lab):
    lab.mount("default/images@master")
    lab.ok("PUT", "download/explore/images/data/nested/image.bin")
    assert (lab.root / "image.bin").read_bytes() == BINARY
    # A second download would overwrite it: the extension refuses.
    status, _, reason = lab.call("PUT", "download/explore/images/data/nested/image.bin")
    assert status == 400 and "already exists" in reason, (status, reason)


def test_download_a_folder(lab):
    lab.mount("default/images@master")
    lab.ok("PUT", "download/explore/images/data/nested")
    local = lab.root / "nested"
    # pachd's tar names entries by their full path in the repo; the extension extracts it under the
    # downloaded folder's name.
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert files == ["data/nested/deep/leaf.txt", "data/nested/image.bin"]
    assert (local / "data/nested/image.bin").read_bytes() == BINARY
    assert (local / "data/nested/deep/leaf.txt").read_text() == "leaf\n"


def test_download_a_whole_commit(lab):
    lab.mount(f"default/images@dev")
    lab.ok("PUT", "download/explore/images_dev")
    local = lab.root / "images"
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert files == ["data/a.txt", "readme.txt"]
    assert (local / "readme.txt").read_text() == "first version\n"
