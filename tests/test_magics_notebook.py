"""Notebooks run headlessly (nbclient, a real ipykernel) against a real ``jupyter server``.

One server per module: a subprocess on 127.0.0.1 with a token, a temporary store
(the demo repos ``images`` and ``labels``) and its own Jupyter runtime directory. Each
kernel gets that runtime directory and the server's root as its working directory, and
nothing else: ``%pachls`` has to find the server through the runtime files on its own.
The test process then checks through the same REST API the panel uses that it sees what
the notebook did (shared mounts and commits).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from jupyterlab_pachls.client import ServerClient
from jupyterlab_pachls.pfs import Commit, FileInfo, NotFound, ParseError, Repo, Unavailable

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``jupyter server`` subprocess with jupyterlab-pachls."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.store = base / "store"
        self.runtime = base / "runtime"
        self.home = base / "home"
        for d in (self.root, self.runtime, self.home):
            d.mkdir(parents=True)
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("JUPYTER", "PACHLS", "JPY_", "PACHD"))
        }
        self.env.update({
            "HOME": str(self.home),
            "JUPYTER_RUNTIME_DIR": str(self.runtime),
            "JUPYTER_DATA_DIR": str(base / "data"),
            "JUPYTER_CONFIG_DIR": str(base / "config"),
            "PYTHONUNBUFFERED": "1",
        })
        self.process: subprocess.Popen | None = None
        self.log = base / "server.log"

    def start(self) -> None:
        subprocess.run([sys.executable, "-m", "jupyterlab_pachls.demo", str(self.store)],
                       check=True, capture_output=True, timeout=120, env=self.env)
        self.seed_label_rounds()
        env = dict(self.env, PACHLS_STORE=str(self.store))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
                 "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                 "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                 f"--ServerApp.root_dir={self.root}",
                 "--ServerApp.jpserver_extensions={'jupyterlab_pachls': True}",
                 # who writes history (commits and rollbacks need a name and an email)
                 "--PachlsConfig.user_name=Ann Labeler", "--PachlsConfig.user_email=ann@example.com"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.root),
            )
        deadline = time.monotonic() + 90
        client = ServerClient(self.url, self.token)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log.read_text()[-4000:]}")
            runtime_files = list(self.runtime.glob("jpserver-*.json"))
            if runtime_files:
                try:
                    client.probe(2)
                    return
                except Exception:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server did not answer:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.2)

    def seed_label_rounds(self) -> None:
        """Repo ``truth``: three label rounds on the demo images (before the server opens the store)."""
        from jupyterlab_pachls.labeling.labelfile import encode, label_document
        from jupyterlab_pachls.pfs import LocalBackend, Provenance

        backend = LocalBackend(str(self.store))
        try:
            data = backend.inspect_commit("images", "master").id
            backend.create_repo("truth")

            def doc(path: str, choice: str, annotation: int, annotator: int) -> bytes:
                task = {"id": annotation, "annotations": [{
                    "id": annotation, "completed_by": annotator, "lead_time": 4.0,
                    "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                                "value": {"choices": [choice]}}]}]}
                return encode(label_document(repo="images", commit=data, path=path, task=task,
                                             users={1: "ann@example.com", 2: "bob@example.com"}))

            for message, author, files in [
                ("round 1", "ann", [("/cats/001.png", "Cat", 1, 1), ("/cats/002.png", "Dog", 2, 1)]),
                ("round 2", "bob", [("/cats/002.png", "Cat", 2, 2)]),
                ("round 3", "ann", [("/dogs/001.png", "Dog", 3, 1)]),
            ]:
                with backend.commit("truth", "master", message=message, author=author,
                                    provenance=[Provenance("images", data)]) as c:
                    for path, choice, annotation, annotator in files:
                        c.put_file(path + ".json", doc(path, choice, annotation, annotator))
            self.data_commit = data
        finally:
            backend.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def api(self, method: str, path: str, body: object = None):
        """(status, JSON) of ``/pachls/api/<path>``, as the panel would call it."""
        data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
        req = urllib.request.Request(self.url + "pachls/api/" + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")

    def kernel_env(self) -> dict:
        """What a kernel gets: the runtime dir (to find the server) and nothing naming the store or URL."""
        return dict(self.env)

    def run_notebook(self, cells: list[str], name: str = "notebook") -> list[dict]:
        """Execute the cells in a new kernel (cwd: the server root); outputs of each cell."""
        nb = new_notebook(cells=[new_code_cell(src) for src in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        client = NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(self.root)}})
        try:
            client.execute(env=self.kernel_env())
        finally:
            nbformat.write(nb, str(self.base / f"{name}.ipynb"))  # kept for reading after a failure
        return [cell.outputs for cell in nb.cells]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("pachls-nb"))
    srv.start()
    yield srv
    srv.stop()
    if srv.process is not None and srv.process.returncode not in (0, -15):
        print(srv.log.read_text()[-4000:])


def stream(outputs: list[dict], name: str) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == name)


def result(outputs: list[dict]) -> dict:
    found = [o for o in outputs if o.get("output_type") == "execute_result"]
    assert len(found) == 1, outputs
    return found[0]["data"]


def no_errors(outputs: list[dict]) -> None:
    assert not [o for o in outputs if o.get("output_type") == "error"], outputs
    assert "Traceback" not in json.dumps(outputs)


def one_error_line(outputs: list[dict]) -> str:
    """The cell printed exactly one line, on stderr, and nothing else."""
    no_errors(outputs)
    assert stream(outputs, "stdout") == "", outputs
    err = stream(outputs, "stderr")
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    return lines[0]


# -- the Python API against the real server (from the test process) ------------------------
def test_server_client_typed_values(server):
    client = ServerClient(server.url, server.token)
    repos = {r.name: r for r in client.repos()}
    assert set(repos) == {"images", "labels", "truth"}
    assert isinstance(repos["images"], Repo) and repos["images"].branches == ("master",)
    (commit,) = client.log("images@master")
    assert isinstance(commit, Commit) and commit.n_files == 12 and commit.finished is not None
    files = client.ls("images@master:/cats")
    assert [f.path for f in files] == [f"/cats/00{i}.png" for i in range(1, 7)]
    assert all(isinstance(f, FileInfo) and f.committed == commit.id for f in files)
    # paging underneath: pages of 4 give the same listing
    assert client.ls("images@master:/cats", limit=4) == files[:4]
    page = client.list_dir("images@master:/cats", limit=4)
    assert len(page.items) == 4 and page.next == "/cats/004.png"
    with client.open(f"images@{commit.id}:/cats/001.png") as f:
        data = f.read()
    assert data.startswith(b"\x89PNG") and len(data) == files[0].size
    changes = client.diff("images@master")
    assert len(changes) == 12 and {c.change for c in changes} == {"added"}
    assert client.inspect_commit("images@master") == commit


def test_server_client_errors_are_typed(server):
    client = ServerClient(server.url, server.token)
    with pytest.raises(NotFound, match="nosuch"):
        client.log("nosuch@master")
    with pytest.raises(ParseError, match="position"):
        client.ls("images@@master:/")
    with pytest.raises(NotFound):
        client.open("images@master:/cats/nope.png")
    refused = ServerClient(server.url, "wrong-token")
    with pytest.raises(Unavailable, match=r"refused the request \(403 Forbidden\); check its token"):
        refused.repos()


# -- notebooks ------------------------------------------------------------------------------
LABEL_CELL = '''
import os
from jupyterlab_pachls.labeling.labelfile import encode, label_document
data_commit = pachls.inspect_commit("images@master").id
def write_label(path, choice, annotator_id):
    task = {"id": abs(hash(path)) % 1000, "annotations": [{
        "id": annotator_id * 100 + len(path), "completed_by": annotator_id,
        "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                    "value": {"choices": [choice]}}],
        "created_at": "2026-01-01T00:00:00Z", "lead_time": 2.5}]}
    doc = label_document(repo="images", commit=data_commit, path=path, task=task,
                         users={1: "ann@example.com", 2: "bob@example.com"})
    target = os.path.join(mnt.mountpoint, path.lstrip("/") + ".json")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(encode(doc))
'''


def test_notebook_history_blame_labels_rollback(server):
    outputs = server.run_notebook([
        "%load_ext jupyterlab_pachls",
        "%pachls status",
        "%pachls repos",
        "log = %pachls log truth@master\nprint(list(log['message']), list(log['author']))",
        "df = %pachls labels truth@master --data images@master\n"
        "print(df[['data_path', 'annotator', 'labels']].to_json(orient='records'))\n"
        "print(set(df['data_commit']), set(df['label_commit']) == {log['commit'][0]})",
        "old = %pachls labels truth@master^2\nprint(old[['data_path', 'labels']].to_json(orient='records'))",
        "%pachls blame truth@master:/cats/002.png",
        "%pachls diff truth@master^2 truth@master^1 --labels",
        "%pachls diff truth@master",
        "%pachls ls truth@master:/cats",
        "%pachls branches truth",
        "from jupyterlab_pachls import connect\n"
        "pachls = connect()\n"
        "print(pachls.mode, pachls.read('images@master:/cats/001.png')[:4])",
        "%pachls rollback truth@master master^1",
        "%pachls log truth@master",
    ], name="history")
    for cell in outputs:
        no_errors(cell)
    (_, status, repos, log, labels, old, blame, label_diff, diff, ls, branches, api, rollback, after) = outputs
    assert f"Jupyter server at {server.url}" in stream(status, "stdout")
    html = result(repos)["text/html"]
    assert "<table" in html and all(name in html for name in ("images", "labels", "truth"))
    assert stream(log, "stdout").strip() == "['round 3', 'round 2', 'round 1'] ['ann', 'bob', 'ann']"
    first, second = stream(labels, "stdout").splitlines()
    assert json.loads(first) == [
        {"data_path": "/cats/001.png", "annotator": "ann@example.com", "labels": ["Cat"]},
        {"data_path": "/cats/002.png", "annotator": "bob@example.com", "labels": ["Cat"]},
        {"data_path": "/dogs/001.png", "annotator": "ann@example.com", "labels": ["Dog"]},
    ]
    assert second == f"{{'{server.data_commit}'}} True"
    assert json.loads(stream(old, "stdout")) == [
        {"data_path": "/cats/001.png", "labels": ["Cat"]}, {"data_path": "/cats/002.png", "labels": ["Dog"]}]
    blame_text = result(blame)["text/plain"]
    assert "round 2" in blame_text and "round 1" in blame_text and "bob@example.com" in blame_text
    assert "<table" in result(blame)["text/html"]
    assert "/cats/002.png" in result(label_diff)["text/plain"] and "modified" in result(label_diff)["text/plain"]
    assert "/dogs/001.png.json" in result(diff)["text/plain"] and "added" in result(diff)["text/plain"]
    assert "/cats/" not in result(diff)["text/plain"]
    assert "/cats/001.png.json" in result(ls)["text/plain"]
    assert "round 3" in result(branches)["text/plain"]
    assert stream(api, "stdout").strip() == "server b'\\x89PNG'"
    assert "truth@master now points at" in stream(rollback, "stdout")
    assert "round 3" not in result(after)["text/plain"] and "round 2" in result(after)["text/plain"]
    # The panel sees the rollback, recorded with the Jupyter user as author.
    code, moves = server.api("GET", "repos/truth/branches/master/moves")
    assert code == 200 and len(moves["moves"]) == 1 and moves["moves"][0]["reason"] == "rollback"


def test_notebook_mount_write_commit_and_read_back(server):
    outputs = server.run_notebook([
        "%load_ext jupyterlab_pachls",
        "%pachls status",
        "%pachls repos",
        "%pachls mount labels@master --rw",
        "from jupyterlab_pachls import connect\n"
        "pachls = connect()\n"
        "mnt = pachls.mount_status('labels')\n"
        "print(pachls.mode, mnt.mode, mnt.mountpoint)",
        LABEL_CELL,
        "%%pachls commit labels -m 'round 1'\n"
        "write_label('/cats/001.png', 'Cat', 1)\n"
        "write_label('/dogs/001.png', 'Dog', 2)\n",
        "%%pachls commit labels -m 'nothing'\nx = 1 + 1\n",
        "log = %pachls log labels@master\nprint(list(log['message']))",
        "df = %pachls labels labels@master --data images@master\n"
        "print(df[['data_path', 'annotator', 'labels']].to_json(orient='records'))",
        "%pachls blame labels@master:/cats/001.png",
        "%pachls log labels@master -n 1",
    ], name="flow")
    for cell in outputs:
        no_errors(cell)
    (_, status, repos, mount, info, _, commit, nothing, log, labels, blame, log_html) = outputs
    assert f"Jupyter server at {server.url}" in stream(status, "stdout")
    html = result(repos)["text/html"]
    assert "<table" in html and "images" in html and "labels" in html
    assert "Mounted labels@master read-write as 'labels'" in stream(mount, "stdout")
    mode, mnt_mode, mountpoint = stream(info, "stdout").split()
    assert (mode, mnt_mode) == ("server", "rw")
    assert Path(mountpoint).is_relative_to(server.root)
    committed = stream(commit, "stdout")
    assert "Committed mount 'labels' to labels@master" in committed, commit
    assert stream(nothing, "stdout").strip() == "The cell wrote nothing into mount 'labels': no commit."
    assert stream(log, "stdout").strip() == "['round 1']"
    rows = json.loads(stream(labels, "stdout"))
    assert rows == [
        {"data_path": "/cats/001.png", "annotator": "ann@example.com", "labels": ["Cat"]},
        {"data_path": "/dogs/001.png", "annotator": "bob@example.com", "labels": ["Dog"]},
    ]
    blame_html = result(blame)["text/html"]
    assert "round 1" in blame_html and "ann@example.com" in blame_html
    assert "round 1" in result(log_html)["text/plain"]

    # The panel (the REST API) sees the same mount and the commit the notebook made.
    code, mounts = server.api("GET", "mounts")
    assert code == 200 and [m["name"] for m in mounts["mounts"]] == ["labels"]
    assert mounts["mounts"][0]["pending"] == 0
    code, history = server.api("GET", "repos/labels/branches/master/commits")
    assert code == 200 and [c["message"] for c in history["commits"]] == ["round 1"]
    assert committed.strip().endswith(history["commits"][0]["id"])
    code, body = server.api("DELETE", "mounts/labels")
    assert code == 204, body


def test_notebook_waits_for_a_round(server):
    """%pachls wait through the kernel's server: nothing new yet, then the commit after a given one."""
    outputs = server.run_notebook([
        "%load_ext jupyterlab_pachls\n%pachls create-repo rounds\n%pachls mount rounds@master --rw\n"
        "from jupyterlab_pachls import connect\npachls = connect()\n"
        "where = pachls.mount_status('rounds').mountpoint",
        "%%pachls commit rounds -m 'round 1'\nopen(where + '/a.txt', 'w').write('1')",
        "%pachls wait rounds@master --timeout 0",
        "%%pachls commit rounds -m 'round 2'\nopen(where + '/b.txt', 'w').write('2')",
        "first = pachls.log('rounds@master')[-1].id\n"
        "got = %pachls wait rounds@master --after {first} --timeout 30\n"
        "print(got.message, got.parent == first)",
        "%pachls unmount rounds",
    ], name="wait")
    for cell in outputs:
        no_errors(cell)
    nothing, waited = outputs[2], outputs[4]
    assert stream(nothing, "stderr") == "No new commit on rounds@master within 0 s\n"
    code, history = server.api("GET", "repos/rounds/branches/master/commits")
    assert code == 200 and [c["message"] for c in history["commits"]] == ["round 2", "round 1"]
    second = history["commits"][0]
    assert stream(waited, "stdout") == (f"New commit on rounds@master: {second['id']} ('round 2' by "
                                        f"{second['author']})\nround 2 True\n")


def test_notebook_failed_cell_discard_and_pinned_commit(server):
    outputs = server.run_notebook([
        "%load_ext jupyterlab_pachls\n%pachls create-repo scratchpad",
        "%pachls mount scratchpad@master --rw --name scratch",
        "import os\nfrom jupyterlab_pachls import connect\nmnt = connect().mount_status('scratch')",
        "%%pachls commit scratch -m 'never'\n"
        "open(mnt.mountpoint + '/half.txt', 'w').write('x')\n"
        "raise ValueError('boom')\n",
        "%pachls diff scratch",
        "%pachls unmount scratch",
        "%pachls discard scratch",
        "%pachls diff scratch",
        "open(mnt.mountpoint + '/early.txt', 'w').write('staged before')",
        "%%pachls commit scratch -m 'both'\n"
        "open(mnt.mountpoint + '/late.txt', 'w').write('from the cell')\n",
        "%pachls diff scratchpad@master",
        "%pachls unmount scratch",
        "%pachls mount truth@master^1 --name pinned\n"
        "pinned = connect().mount_status('pinned')\n"
        "print(pinned.base == connect().inspect_commit('truth@master^1').id, pinned.commit == pinned.base)\n"
        "print(sorted(os.listdir(pinned.mountpoint)))",
        "%pachls mounts",
        "%pachls unmount pinned",
    ], name="failed-cell")
    (created, _, _, failed, diff, refused, discarded, empty, _, both, landed, unmounted,
     pinned, mounts, _) = outputs
    assert stream(created, "stdout").strip() == "Created repo 'scratchpad'"
    # a failing cell commits nothing; what it wrote stays staged until discarded
    assert any(o.get("output_type") == "error" and o.get("ename") == "ValueError" for o in failed)
    assert "nothing committed" in stream(failed, "stderr")
    assert "half.txt" in result(diff)["text/html"]
    assert "scratch has 1 pending changes; commit or discard them first" in one_error_line(refused)
    assert stream(discarded, "stdout").strip() == "Discarded 1 staged change(s) of mount 'scratch'"
    assert result(empty)["text/plain"].startswith("Empty DataFrame\nColumns: [path, change, size, old_size]")
    # changes staged before the cell join the cell's one commit, and the magic says so
    no_errors(both)
    said = stream(both, "stdout")
    assert "(1 change(s) staged before the cell went into this commit too)" in said
    assert "Committed mount 'scratch' to scratchpad@master" in said
    landed_text = result(landed)["text/plain"]
    assert "/early.txt" in landed_text and "/late.txt" in landed_text and "/half.txt" not in landed_text
    code, history = server.api("GET", "repos/scratchpad/branches/master/commits")
    assert code == 200 and [c["message"] for c in history["commits"]] == ["both"]
    assert "Unmounted 'scratch'" in stream(unmounted, "stdout")
    # branch^N mounts that one commit, read-only
    no_errors(pinned)
    assert "Mounted truth@master^1 read-only as 'pinned'" in stream(pinned, "stdout")
    assert stream(pinned, "stdout").splitlines()[-2:] == ["True True", "['cats']"]
    assert "pinned" in result(mounts)["text/plain"] and "<table" in result(mounts)["text/html"]


def test_notebook_user_mistakes_print_one_line(server):
    outputs = server.run_notebook([
        "%load_ext jupyterlab_pachls",
        "%pachls log nosuch@master",
        "%pachls ls images@@master:/",
        "%pachls commit nosuch -m 'x'",
        "%%pachls commit nosuch -m 'x'\nprint('the cell ran')\n",
        "%pachls log",
        "%pachls blame images@master",
        "%pachls frobnicate",
        "%pachls mount images@master --name ro_images",
        "%%pachls commit ro_images -m 'x'\nprint('the cell ran')\n",
        "%pachls unmount ro_images",
    ], name="mistakes")
    (_, unknown_repo, bad_syntax, unmounted, unmounted_cell, missing_arg, no_path, unknown,
     _, read_only, _) = outputs
    assert "nosuch" in one_error_line(unknown_repo) and "not found" in one_error_line(unknown_repo)
    assert "cannot parse 'images@@master:/' at position 7" in one_error_line(bad_syntax)
    assert "nosuch" in one_error_line(unmounted)
    assert "nosuch" in one_error_line(unmounted_cell)  # and the cell body never ran
    assert "required: REPO@BRANCH" in one_error_line(missing_arg)
    assert "must name a file" in one_error_line(no_path)
    assert "invalid choice: 'frobnicate'" in one_error_line(unknown)
    assert "mount 'ro_images' is read-only" in one_error_line(read_only)


def test_discovery_skips_servers_that_do_not_answer_and_prefers_the_kernels_own(server, tmp_path, monkeypatch):
    from jupyterlab_pachls.client import find_server

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime))
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    dead_port = _free_port()
    # A live pid whose server does not answer, with a root that holds the cwd: ranked first, then skipped.
    stale = server.runtime / f"jpserver-{os.getpid()}.json"
    stale.write_text(json.dumps({"url": f"http://127.0.0.1:{dead_port}/", "pid": os.getpid(), "token": "t",
                                 "root_dir": str(tmp_path), "port": dead_port, "secure": False}))
    try:
        found = find_server(cwd=str(tmp_path), timeout=2)
        assert found is not None and found.url == server.url and found.token == server.token
        # The server that started the kernel wins even when another root holds the cwd.
        monkeypatch.setenv("JPY_PARENT_PID", str(server.process.pid))
        found = find_server(cwd=str(tmp_path), timeout=2)
        assert found is not None and found.url == server.url
        assert found.info["pid"] == server.process.pid
    finally:
        stale.unlink()


def test_notebook_put_imports_with_a_progress_bar(server):
    photos = server.root / "photos" / "cats"
    photos.mkdir(parents=True)
    (photos / "1.png").write_bytes(b"one")
    (photos.parent / "2.png").write_bytes(b"two" * 1000)
    outputs = server.run_notebook([
        "%load_ext jupyterlab_pachls",
        "%pachls put images@master:/nb photos -m 'from a kernel'",
        "from jupyterlab_pachls import connect\n"
        "c = connect().put('images@master:/nb2', 'photos/*.png')\nprint(c.message)",
    ], name="put")
    _, magic, api_call = outputs
    no_errors(magic)
    assert "Committed 'from a kernel' to images@master" in stream(magic, "stdout")
    assert "2/2 files" in stream(magic, "stderr")  # tqdm's bar (the text one without ipywidgets)
    no_errors(api_call)
    assert stream(api_call, "stdout") == "Import 1 files\n"
    assert "1/1 files" in stream(api_call, "stderr")  # shown by default in a kernel
    status, page = server.api("GET", "repos/images/commits/master/files?path=/nb/photos")
    assert status == 200 and [f["path"] for f in page["items"]] == ["/nb/photos/2.png", "/nb/photos/cats/"]
