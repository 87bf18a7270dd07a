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
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_server.extension.application import ExtensionApp

from .atomic_write import write_json
from .config import PachlsConfig, backend_spec, load_choice, resolve_mount_dir, resolve_store
from .identity import IdentityBook
from .listing import ReposListing
from .mount import MountManager
from .pfs import Backend, Conflict, InvalidArgument, PfsError, Unavailable
from .pfs import open_backend as open_spec

if TYPE_CHECKING:
    from .labeling.session import LabelingService


@dataclass
class PachlsState:
    """What the handlers share: the config, the one backend (or why there is none), the mounts."""

    config: PachlsConfig
    backend: Backend | None = None
    error: str | None = None
    #: The backend config in use, as ``pfs.open_backend`` takes it (may hold a token: never sent out).
    choice: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})
    mount_dir: str = ""
    mount_state_dir: str = ""
    mounts: MountManager | None = None
    mounts_error: str | None = None
    labeling: LabelingService | None = None
    identities: IdentityBook | None = None  # identities saved through PUT /pachls/api/identity
    switch_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The ``GET /pachls/api/repos`` body kept for the current backend (see ``listing.py``).
    listing: ReposListing | None = None
    #: One lock per labels mount: label commits into one mount run one at a time (see commit_labels);
    #: the others wait on the event loop, not in a worker thread the rest of the API needs.
    label_commit_gates: dict[str, asyncio.Lock] = field(default_factory=dict)

    def repos_listing(self, backend: Backend) -> ReposListing:
        """The kept listing of ``backend`` (a new one after a backend switch)."""
        if self.listing is None or self.listing.backend is not backend:
            self.listing = ReposListing(backend)
        return self.listing

    def label_commit_gate(self, labels_mount: str) -> asyncio.Lock:
        return self.label_commit_gates.setdefault(labels_mount, asyncio.Lock())

    async def switch_backend(self, choice: dict[str, Any]) -> Backend:
        """Open the backend of ``choice``, check that it answers, save the choice, then put it (and a new
        mount manager) in place of the current ones. Refused (Conflict) while anything is mounted; the
        current backend stays when the new one cannot be opened, does not answer or cannot be saved."""
        async with self.switch_lock:
            if self.mounts is not None:
                existing = await asyncio.to_thread(self.mounts.list)
                if existing:
                    raise Conflict(
                        "Unmount every mount before switching the backend.",
                        mounts=[m.name for m in existing],
                    )
            new = await asyncio.to_thread(self._open_checked, choice)
            timeout = self.config.connect_timeout
            try:
                await asyncio.wait_for(asyncio.to_thread(new.list_repos), timeout)
            except BaseException as exc:
                await asyncio.to_thread(new.close)
                if isinstance(exc, PfsError):
                    raise
                if isinstance(exc, asyncio.TimeoutError):
                    raise Unavailable(
                        f"the {choice['kind']} backend did not answer within {timeout:g} s",
                        address=choice.get("pachd_address"),
                    ) from None
                if isinstance(exc, Exception):
                    raise Unavailable(f"the {choice['kind']} backend does not answer: {exc}") from exc
                raise
            try:
                await asyncio.to_thread(save_choice, self.config.backend_file, choice)
            except OSError as exc:
                await asyncio.to_thread(new.close)
                raise Unavailable(f"cannot save the backend choice in {self.config.backend_file}: {exc}") from exc
            old_backend, old_mounts = self.backend, self.mounts
            self.mounts = None
            if old_mounts is not None:
                await asyncio.to_thread(old_mounts.close)  # releases the mount state dir for the new manager
            self.backend, self.error, self.choice = new, None, choice
            self.mounts = await asyncio.to_thread(make_mount_manager, self)
            if old_backend is not None:
                await asyncio.to_thread(old_backend.close)
            return new

    def _open_checked(self, choice: dict[str, Any]) -> Backend:
        """The backend of ``choice``; a failure that is not a typed error is bad input (400)."""
        try:
            return open_backend(self.config, choice)
        except PfsError:
            raise
        except Exception as exc:
            raise InvalidArgument(f"cannot open the {choice['kind']} backend: {exc}", kind=choice["kind"]) from exc

    def close(self) -> None:
        labeling, self.labeling = self.labeling, None
        if labeling is not None:
            labeling.close()
        self.listing = None
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


def open_backend(config: PachlsConfig, choice: dict[str, Any]) -> Backend:
    """The backend of a choice, opened (it may fail: a cluster that does not answer, a bad store)."""
    return open_spec(backend_spec(config, choice))


def save_choice(path: str, choice: dict[str, Any]) -> None:
    """Write the choice atomically, readable by the owner only (it may hold an auth token)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json(path, dict(sorted(choice.items())))


def make_mount_manager(state: PachlsState) -> MountManager | None:
    """A MountManager over the current backend, or None (and ``mounts_error``) when it cannot run."""
    if state.backend is None:
        state.mounts_error = "no backend"
        return None
    try:
        manager = MountManager(state.backend, state.mount_dir, state.mount_state_dir)
    except Exception as exc:
        state.mounts_error = f"{type(exc).__name__}: {exc}"
        return None
    state.mounts_error = None
    return manager


def make_labeling_service(state: PachlsState, store: str, connection_url: str) -> LabelingService:
    """Labeling over the current backend and mounts, with a managed or the configured Label Studio."""
    from urllib.parse import urlsplit

    from .handlers.labelstudio_proxy import PREFIX
    from .labeling.labelstudio import ExternalLabelStudio, ManagedLabelStudio
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
        from .handlers.labelstudio_proxy import proxy_route

        self.handlers.extend(route_table())
        self.handlers.append(proxy_route(self.settings["pachls"]))

    async def stop_extension(self) -> None:
        state = self.settings.get("pachls")
        if state is not None:
            await asyncio.to_thread(state.close)
