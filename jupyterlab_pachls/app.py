"""The Jupyter server extension: configuration, backend lifetime, routes.

Configuration: :class:`~.config.PachlsConfig` (``c.PachlsConfig.store_dir``,
``c.PachlsConfig.mount_dir``, ...); the store is found by :func:`~.config.resolve_store`.
When ``mount_dir`` is not configured, ``PACHLS_MOUNT_DIR`` is used, and failing
that ``<server root_dir>/pfs`` (so the JupyterLab file browser shows the mounts).
Mount state (staged changes, the list of mounts) lives beside the store, in
``<parent of store_dir>/mounts``.

Backend choice: the embedded store by default; ``PUT /pachls/api/backend``
switches explicitly to a Pachyderm cluster (or back) and saves the choice in
``backend_file`` (default ``<jupyter data dir>/pachls/backend.json``, readable by
the owner only since it may hold an auth token), which is read at start so a
restart keeps it.

The backend is opened once when the extension loads and closed when the
server shuts down. Handlers reach it through ``settings["pachls"]``
(a :class:`PachlsState`). If the backend cannot be opened the server still
starts: ``/pachls/api/health`` reports the error and data routes answer 503.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from jupyter_server.extension.application import ExtensionApp

from .config import PachlsConfig, resolve_mount_dir, resolve_store
from .identity import IdentityBook


@dataclass
class PachlsState:
    """What the handlers share: the config, the one backend (or why there is none), the mounts."""

    config: PachlsConfig
    backend: Any = None
    error: str | None = None
    #: The backend config in use, as ``pfs.open_backend`` takes it (may hold a token: never sent out).
    choice: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})
    mount_dir: str = ""
    mount_state_dir: str = ""
    mounts: Any = None  # a mount.MountManager, when the mount package is available
    mounts_error: str | None = None
    labeling: Any = None  # a labeling.session.LabelingService
    identities: Any = None  # an identity.IdentityBook: identities saved through PUT /pachls/api/identity
    switch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        labeling, self.labeling = self.labeling, None
        if labeling is not None:
            labeling.close()
        for item in list(self.extra.values()):
            close = getattr(item, "close", None)
            if callable(close):
                close()
        self.extra.clear()
        mounts, self.mounts = self.mounts, None
        if mounts is not None:
            try:
                mounts.close()
            finally:
                self._close_backend()
        else:
            self._close_backend()

    def _close_backend(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.close()


def backend_spec(config: PachlsConfig, choice: dict[str, Any]) -> dict[str, Any]:
    """The ``pfs.open_backend`` config for a saved choice (the embedded store is always ``store_dir``)."""
    if choice.get("kind", "local") == "local":
        return {"kind": "local", "path": resolve_store(config)}
    return dict(choice)


def open_backend(config: PachlsConfig, choice: dict[str, Any] | None = None) -> Any:
    from .pfs import open_backend as open_spec

    return open_spec(backend_spec(config, choice or {"kind": "local"}))


def load_choice(path: str) -> dict[str, Any] | None:
    """The saved backend choice, or None when there is none."""
    try:
        with open(path, encoding="utf-8") as f:
            choice = json.load(f)
    except FileNotFoundError:
        return None
    if not isinstance(choice, dict) or choice.get("kind") not in ("local", "pachyderm"):
        raise ValueError(f"{path} does not hold a backend choice")
    return choice


def save_choice(path: str, choice: dict[str, Any]) -> None:
    """Write the choice atomically, readable by the owner only (it may hold an auth token)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".backend-", suffix=".json", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(choice, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def make_mount_manager(state: PachlsState) -> Any:
    """A MountManager over the current backend, or None (and ``mounts_error``) when it cannot run."""
    if state.backend is None:
        state.mounts_error = "no backend"
        return None
    try:
        from .mount import MountManager
    except ImportError as exc:
        state.mounts_error = f"mount support is not available ({exc})"
        return None
    try:
        manager = MountManager(state.backend, state.mount_dir, state.mount_state_dir)
    except Exception as exc:
        state.mounts_error = f"{type(exc).__name__}: {exc}"
        return None
    state.mounts_error = None
    return manager


def make_labeling_service(state: PachlsState, store: str, connection_url: str) -> Any:
    """Labeling over the current backend and mounts, with a managed or the configured Label Studio."""
    from urllib.parse import urlsplit

    from .labeling.labelstudio import ExternalLabelStudio, ManagedLabelStudio
    from .labeling.proxy import PREFIX
    from .labeling.session import LabelingService

    config = state.config
    home = os.path.dirname(store)
    if config.label_studio_url:
        label_studio = ExternalLabelStudio(config.label_studio_url, config.label_studio_token)
        baked = None
    else:
        # Label Studio bakes this URL into its pages; the proxy rewrites its origin per request.
        public = connection_url.rstrip("/") + "/" + PREFIX
        parts = urlsplit(public)
        baked = f"{parts.scheme}://{parts.netloc}"
        data_dir = config.label_studio_dir or os.path.join(home, "labelstudio")
        label_studio = ManagedLabelStudio(data_dir, state.mount_dir, public_url=public)
    return LabelingService(lambda: state.backend, lambda: state.mounts, label_studio,
                           os.path.join(home, "labeling"), baked_origin=baked)


class PachlsExtension(ExtensionApp):
    """Server extension app of jupyterlab-pachls."""

    name = "jupyterlab_pachls"
    load_other_extensions = True

    def initialize_settings(self) -> None:
        config = PachlsConfig(config=self.config, parent=self)
        state = PachlsState(config=config)
        root_dir = getattr(self.serverapp, "root_dir", None) or os.getcwd()
        state.mount_dir = resolve_mount_dir(config, root_dir)
        store = resolve_store(config)
        state.mount_state_dir = os.path.join(os.path.dirname(store), "mounts")
        state.identities = IdentityBook(os.path.join(os.path.dirname(store), "identities.json"))
        try:
            saved = load_choice(config.backend_file)
        except (OSError, ValueError) as exc:
            self.log.error("jupyterlab_pachls: ignoring %s: %s", config.backend_file, exc)
            saved = None
        if saved is not None:
            state.choice = saved
        try:
            state.backend = open_backend(config, state.choice)
        except Exception as exc:  # keep the server up; health reports the problem
            state.error = f"{type(exc).__name__}: {exc}"
            self.log.error("jupyterlab_pachls: cannot open the %s backend: %s", state.choice.get("kind"), state.error)
        else:
            self.log.info(
                "jupyterlab_pachls: %s backend at %s", state.backend.kind, state.backend.address
            )
            state.mounts = make_mount_manager(state)
            if state.mounts_error:
                self.log.warning("jupyterlab_pachls: mounts unavailable: %s", state.mounts_error)
            else:
                cleaned = getattr(state.mounts, "cleaned_stale", None)
                if cleaned:
                    self.log.warning("jupyterlab_pachls: cleaned stale mounts %s", ", ".join(cleaned))
                self.log.info(
                    "jupyterlab_pachls: mounts under %s (%s)", state.mount_dir,
                    "FUSE" if state.mounts.use_fuse else f"no FUSE: {state.mounts.fuse_reason}",
                )
        state.labeling = make_labeling_service(state, store, self.serverapp.connection_url)
        self.settings["pachls"] = state

    def initialize_handlers(self) -> None:
        from .handlers import route_table
        from .labeling.proxy import proxy_route

        self.handlers.extend(route_table())
        self.handlers.append(proxy_route(self.settings["pachls"]))

    async def stop_extension(self) -> None:
        state = self.settings.get("pachls")
        if state is not None:
            await asyncio.to_thread(state.close)
