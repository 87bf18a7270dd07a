"""A REAL ``jupyter server`` subprocess with the extension: for tests that must kill or restart it,
and the one way stress runs (stress/) and benchmarks (bench/) start a server.

    from serverproc import JupyterServer          # tests/ is on sys.path for test modules

    with JupyterServer(tmp_path / "root", store=tmp_path / "store", no_fuse=True) as server:
        status, body = server.api("POST", "repos", {"name": "images"})
        server.kill()                               # SIGKILL, as a crash would
        server.start()                              # same store, same mount dir, same config

The server listens on 127.0.0.1 and a free port, with a random token. Its environment holds
``PACHLS_STORE``, ``PACHLS_MOUNT_DIR`` (default ``<root>/pfs``) and, with ``no_fuse``,
``PACHLS_NO_FUSE=1``; Jupyter's config, data and runtime directories are private to the instance
(under ``<root>/.jupyter``), so the saved backend choice and other servers' state stay apart.
``config`` adds traitlets to the instance's config file (``{"PachlsConfig.label_studio_url": "http://..."}``).
Its output goes to ``<root>/.jupyter/server-<n>.log`` (``log_text()``; one file per start).

``kill()`` SIGKILLs the server only (as the kernel does to a crashed process); processes it started
in their own session (a managed Label Studio) are left to whatever the product does about them:
``descendants()`` taken before the kill names them. ``stop()`` shuts down cleanly (SIGTERM).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXTENSION = "jupyterlab_pachls"
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class ServerError(RuntimeError):
    pass


class JupyterServer:
    """One Jupyter server process over a fixed root, store and mount directory (see the module doc)."""

    def __init__(self, root: str | os.PathLike, *, store: str | os.PathLike, mount_dir: str | os.PathLike | None = None,
                 no_fuse: bool = False, config: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 token: str | None = None) -> None:
        self.root = Path(root).absolute()
        self.store = Path(store).absolute()
        self.mount_dir = Path(mount_dir).absolute() if mount_dir is not None else self.root / "pfs"
        self.no_fuse = no_fuse
        self.config = dict(config or {})
        self.extra_env = dict(env or {})
        self.token = token or secrets.token_hex(16)
        self.jupyter_dir = self.root / ".jupyter"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None

    # -- lifetime ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PACHLS_", "JUPYTER_"))}
        env.update({
            "PACHLS_STORE": str(self.store),
            "PACHLS_MOUNT_DIR": str(self.mount_dir),
            "JUPYTER_CONFIG_DIR": str(self.jupyter_dir / "config"),
            "JUPYTER_DATA_DIR": str(self.jupyter_dir / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.jupyter_dir / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
        })
        if self.no_fuse:
            env["PACHLS_NO_FUSE"] = "1"
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                "--port-retries=0", f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}"]
        if os.geteuid() == 0:
            args.append("--allow-root")
        return args

    def write_config(self) -> None:
        """``jupyter_server_config.json`` in the private config dir: the extension and ``config``."""
        document: dict[str, dict] = {"ServerApp": {"jpserver_extensions": {EXTENSION: True}}}
        for key, value in self.config.items():
            section, trait = key.rsplit(".", 1)
            document.setdefault(section, {})[trait] = value
        folder = self.jupyter_dir / "config"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "jupyter_server_config.json").write_text(json.dumps(document, indent=1))

    def start(self, timeout: float = 90.0) -> "JupyterServer":
        """Start (again) and wait until ``/pachls/api/health`` answers 200."""
        if self.proc is not None and self.proc.poll() is None:
            raise ServerError("the server is already running")
        self.root.mkdir(parents=True, exist_ok=True)
        self.jupyter_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        for attempt in range(3):
            self.port = free_port()
            self.starts += 1
            self.log_path = self.jupyter_dir / f"server-{self.starts}.log"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.command(), env=self.environment(), cwd=self.root, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _ = self.api("GET", "health", timeout=5)
                    if status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.kill()
                raise ServerError(f"the server did not answer within {timeout:.0f} s:\n{self.log_text()[-3000:]}")
            if "address already in use" not in self.log_text().lower():
                break  # not a port race: give up
        raise ServerError(f"the server exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the server (its own process only) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown (SIGTERM: the extension unmounts and closes), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def descendants(self) -> list[int]:
        return descendants(self.proc.pid) if self.running else []

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "JupyterServer":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                timeout: float = 60.0, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
        """(status, body bytes, headers) of ``method`` on ``path`` below the server root
        (``pachls/api/repos``); HTTP errors are returned, connection errors raise OSError."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        request = urllib.request.Request(f"{self.url}/{path.lstrip('/')}", data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        if data:
            request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def api(self, method: str, path: str, body: Any = None, **kwargs) -> tuple[int, Any]:
        """(status, decoded JSON or None) of a ``/pachls/api/<path>`` call."""
        status, raw, _headers = self.request(method, f"pachls/api/{path.lstrip('/')}", body, **kwargs)
        return status, (json.loads(raw) if raw.strip() else None)
