"""Where a client goes: a running Jupyter server with jupyterlab-pachls, else the store itself."""

from __future__ import annotations

import os
from typing import Iterable

from ..pfs import PfsError, Unavailable
from .base import Client
from .direct import DirectClient
from .http import PROBE_TIMEOUT, ServerClient

SERVER_URL_ENV = "PACHLS_SERVER_URL"
SERVER_TOKEN_ENV = "PACHLS_SERVER_TOKEN"


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.realpath(path), os.path.realpath(root)]) == os.path.realpath(root)
    except ValueError:  # different drives
        return False


def rank_servers(servers: Iterable[dict], cwd: str, parent_pid: int | None = None) -> list[dict]:
    """Order runtime-file entries: the kernel's own server, then roots holding ``cwd`` (deepest first), then the rest."""
    def key(info: dict) -> tuple:
        root = info.get("root_dir") or info.get("notebook_dir") or ""
        if parent_pid is not None and info.get("pid") == parent_pid:
            return (0, 0)
        if root and _inside(cwd, root):
            return (1, -len(os.path.realpath(root)))
        return (2, 0)

    usable = [s for s in servers if str(s.get("url", "")).startswith(("http://", "https://"))]
    return sorted(usable, key=key)


def running_servers() -> list[dict]:
    """Entries of the Jupyter runtime files of live servers (``jupyter server list``)."""
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return []
    try:
        return list(list_running_servers())
    except OSError:
        return []


def find_server(cwd: str | None = None, timeout: float = PROBE_TIMEOUT) -> ServerClient | None:
    """A client of the first reachable Jupyter server with jupyterlab-pachls, or None (see module doc)."""
    parent = os.environ.get("JPY_PARENT_PID", "")
    parent_pid = int(parent) if parent.isdigit() else None
    fallback_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    for info in rank_servers(running_servers(), cwd or os.getcwd(), parent_pid):
        client = ServerClient(info["url"], info.get("token") or fallback_token, info=info)
        try:
            client.probe(timeout)
        except PfsError:
            client.close()
            continue
        return client
    return None


def connect(url: str | None = None, token: str | None = None, *, store: str | None = None,
            pachd_address: str | None = None, auth_token: str | None = None,
            server: bool | None = None) -> Client:
    """A client for versioned repos, mounts and labels.

    - ``url`` (+ ``token``), or ``$PACHLS_SERVER_URL`` (+ ``$PACHLS_SERVER_TOKEN``): that Jupyter server.
    - ``store=DIR``: the embedded store at DIR, opened directly (no server).
    - ``pachd_address=...`` (+ ``auth_token``): a Pachyderm cluster, opened directly (no server).
    - otherwise a running Jupyter server found from this kernel (see the module doc), else the
      store opened directly. ``server=True`` requires a server (Unavailable if none answers);
      ``server=False`` never looks for one.

    A direct client cannot mount: its mount methods raise Unavailable saying a server is needed.
    """
    if store is not None or pachd_address is not None:
        if store is not None:
            spec: dict = {"kind": "local", "path": os.path.abspath(os.path.expanduser(store))}
        else:
            spec = {"kind": "pachyderm", "pachd_address": pachd_address}
            if auth_token:
                spec["auth_token"] = auth_token
        return DirectClient(spec)
    url = url or os.environ.get(SERVER_URL_ENV, "").strip() or None
    if url is not None:
        client = ServerClient(url, token if token is not None else os.environ.get(SERVER_TOKEN_ENV, ""))
        try:
            client.probe()
        except PfsError:
            client.close()
            raise
        return client
    if server is not False:
        found = find_server()
        if found is not None:
            return found
        if server:
            raise Unavailable("no running Jupyter server with jupyterlab-pachls answered (see `jupyter server list`)")
    return DirectClient()
