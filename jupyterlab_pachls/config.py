"""Settings of jupyterlab-pachls and where the store and the mounts are.

Configuration (``jupyter_server_config.py``, ``.json`` or the command line)::

    c.PachlsConfig.store_dir = "/data/pachls"   # embedded store directory
    c.PachlsConfig.mount_dir = "/pfs"           # where repos are mounted as folders

The store is found the same way by the server extension, ``connect()`` and
``jupyter pachls serve`` (:func:`resolve_store`): ``PachlsConfig.store_dir`` from
the Jupyter config files (or the config the server was given), else the
``PACHLS_STORE`` environment variable, else ``<jupyter data dir>/pachls/store``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jupyter_core.application import JupyterApp
from jupyter_core.paths import jupyter_data_dir
from traitlets import Float, Int, Unicode, default
from traitlets.config import Configurable

STORE_ENV = "PACHLS_STORE"
MOUNT_DIR_ENV = "PACHLS_MOUNT_DIR"


def default_store_dir() -> str:
    """``$PACHLS_STORE`` if set, else ``<jupyter data dir>/pachls/store``."""
    env = os.environ.get(STORE_ENV, "").strip()
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(jupyter_data_dir(), "pachls", "store")


class PachlsConfig(Configurable):
    """Settings of jupyterlab-pachls."""

    store_dir = Unicode(
        help=(
            "Directory of the embedded versioned store. Defaults to $PACHLS_STORE, "
            "else <jupyter data dir>/pachls/store. Created if missing."
        ),
    ).tag(config=True)

    mount_dir = Unicode(
        "",
        help=(
            "Directory under which repos are mounted as folders (e.g. /pfs, as in Pachyderm "
            "pipelines). Defaults to $PACHLS_MOUNT_DIR, else <server root_dir>/pfs."
        ),
    ).tag(config=True)

    backend_file = Unicode(
        help=(
            "JSON file keeping the backend chosen through PUT /pachls/api/backend across "
            "restarts. Defaults to <jupyter data dir>/pachls/backend.json."
        ),
    ).tag(config=True)

    connect_timeout = Float(
        5.0,
        help=("Seconds a call waits for the connection to the Pachyderm cluster (after that it fails as "
              "unavailable, and calls are refused at once until the cluster answers again). A new backend "
              "chosen through PUT /pachls/api/backend has this plus quick_rpc_timeout to answer."),
    ).tag(config=True)

    rpc_timeout = Float(
        120.0,
        help=("Deadline in seconds of the Pachyderm calls that are not quick reads: commits and the wait for "
              "one to finish, file listings and diffs (idle deadline on streams: the time without a message). "
              "Long, since finishing a big commit takes as long as the commit."),
    ).tag(config=True)

    quick_rpc_timeout = Float(
        5.0,
        help=("Deadline in seconds of the quick Pachyderm reads (projects, repos, branches, commits without "
              "waiting), waiting for the connection included; the time without a message on their streams. "
              "The panel polls only these: a cluster that stops answering shows as unavailable within it."),
    ).tag(config=True)

    short_operation_threads = Int(
        32, min=1,
        help=("Threads that run short requests (the reads the panel polls). A short request mostly waits on "
              "the store or the cluster, not on a core; while a cluster stalls, each poll that asks it waits "
              "up to quick_rpc_timeout in one of them, so there are enough for as many panels polling at once."),
    ).tag(config=True)

    long_operation_threads = Int(
        4, min=1,
        help=("Threads that run long operations (mount and label commits, imports, resyncs, Label Studio "
              "sessions and logins, backend switches). Short requests (listing, health, mounts, pending "
              "labels) have threads of their own, so slow operations never delay the panel's polls."),
    ).tag(config=True)

    long_operation_queue = Int(
        16, min=0,
        help=("Long operations that may wait for a free thread while long_operation_threads run; one more "
              "is refused at once with 503 unavailable (the server is busy)."),
    ).tag(config=True)

    label_studio_url = Unicode(
        "",
        help=(
            "URL of a Label Studio server run by the team (with label_studio_token). Empty: the "
            "server starts and manages its own Label Studio on 127.0.0.1."
        ),
    ).tag(config=True)

    label_studio_dir = Unicode(
        "", help="Data directory of the managed Label Studio. Defaults to <store parent>/labelstudio."
    ).tag(config=True)

    label_studio_token = Unicode(
        "", help="API token of label_studio_url (kept server-side, never sent to the browser)."
    ).tag(config=True)

    label_studio_poll_timeout = Float(
        5.0,
        help=("Seconds Label Studio has to answer what the panel polls (pending labels); a session whose exports "
              "take long gets 3 times its last one, up to 30 s or this. Then the poll answers unavailable."),
    ).tag(config=True)

    label_studio_commit_timeout = Float(
        60.0,
        help=("Seconds Label Studio has to answer the reads of a label commit (its export of the round: 3 times "
              "the session's last one, up to 300 s or this). Nothing is written before they answer."),
    ).tag(config=True)

    label_studio_timeout = Float(
        300.0,
        help=("Seconds Label Studio has to answer its other calls: project creation, task imports, full exports, "
              "resyncs, accounts. Each deadline is the time without a byte, so a big answer still coming is "
              "never cut; running out answers unavailable with the call and its deadline."),
    ).tag(config=True)

    user_name = Unicode(
        "", help=("Name written as the author of commits when Jupyter names no real user (plain jupyter lab) "
                  "and none was saved through PUT /pachls/api/identity; with user_email. Empty: git's user.name.")
    ).tag(config=True)

    user_email = Unicode("", help="Email that goes with user_name. Empty: git's user.email.").tag(config=True)

    user_email_domain = Unicode(
        "localhost",
        help=("Domain of the email given to a real Jupyter user (JupyterHub) who saved none: <username>@<domain>; "
              "it is their Label Studio login in the managed Label Studio."),
    ).tag(config=True)

    @default("store_dir")
    def _default_store_dir(self) -> str:
        return default_store_dir()

    @default("backend_file")
    def _default_backend_file(self) -> str:
        return os.path.join(jupyter_data_dir(), "pachls", "backend.json")


class _ServerConfigFiles(JupyterApp):
    """Reads the config files a Jupyter server reads (``jupyter_config`` and ``jupyter_server_config``,
    ``.py`` and ``.json``, in every Jupyter config directory), and nothing else."""

    name = "jupyter-server"
    config_file_name = "jupyter_server_config"


def load_config() -> PachlsConfig:
    """``PachlsConfig`` as the Jupyter config files set it (for code that runs without the server)."""
    files = _ServerConfigFiles()
    files.load_config_file()
    return PachlsConfig(config=files.config)


def resolve_store(config: PachlsConfig | None = None) -> str:
    """The embedded store directory, absolute: ``config.store_dir`` (``config`` defaults to the one the
    Jupyter config files give), which is ``$PACHLS_STORE`` or ``<jupyter data dir>/pachls/store``
    when no config sets it."""
    chosen = (config or load_config()).store_dir
    return os.path.abspath(os.path.expanduser(chosen))


def backend_spec(config: PachlsConfig, choice: dict[str, Any] | None) -> dict[str, Any]:
    """The ``pfs.open_backend`` config of a backend choice (None: the embedded store); the embedded
    store is always the resolved ``store_dir``; a cluster gets the configured deadlines unless the
    choice names its own."""
    if choice is None or choice.get("kind", "local") == "local":
        return {"kind": "local", "path": resolve_store(config)}
    return {"connect_timeout": config.connect_timeout, "rpc_timeout": config.rpc_timeout,
            "quick_rpc_timeout": config.quick_rpc_timeout, **choice}


def load_choice(path: str) -> dict[str, Any] | None:
    """The backend choice saved by ``PUT /pachls/api/backend``, or None when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            choice = json.load(f)
    except FileNotFoundError:
        return None
    if not isinstance(choice, dict) or choice.get("kind") not in ("local", "pachyderm"):
        raise ValueError(f"{path} does not hold a backend choice")
    return choice


def resolve_mount_dir(config: PachlsConfig, root_dir: str) -> str:
    """The traitlet if set, else ``$PACHLS_MOUNT_DIR``, else ``<root_dir>/pfs``."""
    chosen = config.mount_dir.strip() or os.environ.get(MOUNT_DIR_ENV, "").strip()
    if not chosen:
        chosen = os.path.join(root_dir, "pfs")
    return os.path.abspath(os.path.expanduser(chosen))
