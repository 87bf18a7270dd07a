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

Blocking work runs on two thread pools that ``PachlsState`` owns (shut down with the server):
short calls (the reads the panel polls; ``PachlsConfig.short_operation_threads``) and long operations
(commits, imports, Label Studio sessions, backend switches; ``PachlsConfig.long_operation_threads``).
A handful of slow commits fills the long pool only, and the panel's polls keep their own threads.
Which calls are long is decided in ``handlers/base.py`` (``call`` and ``call_long``). A cluster's
deadlines (``PachlsConfig.rpc_timeout``, ``quick_rpc_timeout``) go to the backend through
``config.backend_spec``.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from jupyter_server.extension.application import ExtensionApp

from .atomic_write import write_json
from .config import PachlsConfig, backend_spec, load_choice, resolve_mount_dir, resolve_store
from .identity import IdentityBook
from .listing import ReposListing
from .mount import MountManager
from .pfs import Backend, Conflict, InvalidArgument, PfsError, Unavailable
from .pfs import open_backend as open_spec
from .pfs.imports import ImportRegistry

if TYPE_CHECKING:
    from .labeling.session import LabelingService

MALLOC_ARENAS = 2  # glibc malloc arenas the server's threads share (see limit_malloc_arenas)
_M_ARENA_MAX = -8  # mallopt's parameter number for it (glibc's malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let every thread started from now on allocate from at most ``arenas`` glibc malloc arenas.

    glibc gives each new thread an arena of its own, up to 8 per core. Each arena keeps the free
    memory its threads leave behind for those threads only, so the server's pools (tens of threads,
    each busy in turn) held 20 MiB free across 16 arenas after 5 minutes of polling and committing,
    and resident memory climbed as each arena met its own peak. The threads mostly wait on the store
    or the network and allocate while holding the GIL, so they seldom contend for an arena: the soak's
    polls answered no slower with two (docs/performance.md). ``MALLOC_ARENA_MAX`` (or the
    ``glibc.malloc.arena_max`` tunable) in the environment wins. Returns whether the limit was set
    (not on other C libraries)."""
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if "CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}) or not os.confstr("CS_GNU_LIBC_VERSION"):
        return False  # mallopt's parameter numbers are glibc's own
    return ctypes.CDLL(None).mallopt(_M_ARENA_MAX, arenas) == 1


class OperationPool:
    """Threads that run blocking calls off the event loop: ``threads`` at a time, and (``queue`` not
    None) at most ``queue`` more waiting for a thread; one more is refused at once with Unavailable
    (503) saying the server is busy.

    A call holds its place until it really ends in its thread, not when its awaiter stops waiting
    (a timed-out probe, a request whose client went away), so the bound counts what the threads hold."""

    def __init__(self, name: str, threads: int, queue: int | None = None) -> None:
        self.name = name
        self.threads = threads
        self.queue = queue
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=f"pachls-{name}")
        self._lock = threading.Lock()
        self._admitted = 0  # running or waiting for a thread

    @property
    def admitted(self) -> int:
        """Calls running or waiting for a thread now."""
        return self._admitted

    async def run(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in one of the threads (as ``asyncio.to_thread``, context included)."""
        with self._lock:
            if self.queue is not None and self._admitted >= self.threads + self.queue:
                raise Unavailable(
                    f"the server is busy: {self.threads} {self.name} operations are running and {self.queue} "
                    "more are waiting; try again in a moment",
                    reason="busy", pool=self.name, running=self.threads, waiting=self.queue)
            self._admitted += 1
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        try:
            future = self._executor.submit(call)
        except RuntimeError:  # shut down: the server is stopping
            self._release()
            raise Unavailable("the server is stopping", reason="stopping", pool=self.name) from None
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _done: Future | None = None) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        """Refuse new calls and drop the waiting ones; running calls end on their own (a commit in
        flight lands or is settled from its journal at the next start)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


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
    #: Imports running, by the id their client gave, for progress and cancel (``handlers/transfer.py``).
    imports: ImportRegistry = field(default_factory=ImportRegistry)
    #: Where blocking calls run (see OperationPool and ``handlers/base.py``); made from ``config``.
    short_operations: OperationPool = field(init=False)
    long_operations: OperationPool = field(init=False)

    def __post_init__(self) -> None:
        self.short_operations = OperationPool("short", self.config.short_operation_threads)
        self.long_operations = OperationPool("long", self.config.long_operation_threads,
                                             self.config.long_operation_queue)

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
        short, long = self.short_operations.run, self.long_operations.run
        async with self.switch_lock:
            if self.mounts is not None:
                existing = await short(self.mounts.list)
                if existing:
                    raise Conflict(
                        "Unmount every mount before switching the backend.",
                        mounts=[m.name for m in existing],
                    )
            # opening and probing a cluster may take until its deadline: a long operation
            new = await long(self._open_checked, choice)
            timeout = self.config.connect_timeout + self.config.quick_rpc_timeout  # connect, then a quick read
            try:
                await asyncio.wait_for(long(new.list_repos), timeout)
            except BaseException as exc:
                await short(new.close)
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
                await short(save_choice, self.config.backend_file, choice)
            except OSError as exc:
                await short(new.close)
                raise Unavailable(f"cannot save the backend choice in {self.config.backend_file}: {exc}") from exc
            old_backend, old_mounts = self.backend, self.mounts
            self.mounts = None
            if old_mounts is not None:
                await short(old_mounts.close)  # releases the mount state dir for the new manager
            self.backend, self.error, self.choice = new, None, choice
            self.mounts = await short(make_mount_manager, self)
            if old_backend is not None:
                await short(old_backend.close)
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
        self.long_operations.shutdown()
        self.short_operations.shutdown()
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
    from .labeling.session import Deadlines, LabelingService

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
    deadlines = Deadlines.reading(poll=config.label_studio_poll_timeout, commit=config.label_studio_commit_timeout,
                                  work=config.label_studio_timeout)
    return LabelingService(lambda: state.backend, lambda: state.mounts, label_studio,
                           os.path.join(home, "labeling"), baked_origin=baked, deadlines=deadlines)


class PachlsExtension(ExtensionApp):
    """Server extension app of jupyterlab-pachls."""

    name = "jupyterlab_pachls"
    load_other_extensions = True

    def initialize_settings(self) -> None:
        limit_malloc_arenas()  # before the pools start their threads
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
