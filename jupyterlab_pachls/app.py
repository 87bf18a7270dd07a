"""The Jupyter server extension: configuration, backend lifetime, routes.

Configuration (``jupyter_server_config.py`` or the command line)::

    c.PachlsConfig.store_dir = "/data/pachls"   # embedded store directory

When ``store_dir`` is not configured, the ``PACHLS_STORE`` environment
variable is used, and failing that ``<jupyter data dir>/pachls/store``.

The backend is opened once when the extension loads and closed when the
server shuts down. Handlers reach it through ``settings["pachls"]``
(a :class:`PachlsState`). If the backend cannot be opened the server still
starts: ``/pachls/api/health`` reports the error and data routes answer 503.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode, default
from traitlets.config import Configurable

STORE_ENV = "PACHLS_STORE"


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

    @default("store_dir")
    def _default_store_dir(self) -> str:
        return default_store_dir()


@dataclass
class PachlsState:
    """What the handlers share: the config and the one backend (or why there is none)."""

    config: PachlsConfig
    backend: Any = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            backend.close()


def open_backend(config: PachlsConfig) -> Any:
    from .pfs import LocalBackend

    store = os.path.abspath(os.path.expanduser(config.store_dir))
    return LocalBackend(store)


class PachlsExtension(ExtensionApp):
    """Server extension app of jupyterlab-pachls."""

    name = "jupyterlab_pachls"
    load_other_extensions = True

    def initialize_settings(self) -> None:
        config = PachlsConfig(config=self.config, parent=self)
        state = PachlsState(config=config)
        try:
            state.backend = open_backend(config)
        except Exception as exc:  # keep the server up; health reports the problem
            state.error = f"{type(exc).__name__}: {exc}"
            self.log.error("jupyterlab_pachls: cannot open store %s: %s", config.store_dir, state.error)
        else:
            self.log.info(
                "jupyterlab_pachls: %s backend at %s", state.backend.kind, state.backend.address
            )
        self.settings["pachls"] = state

    def initialize_handlers(self) -> None:
        from .handlers import route_table

        self.handlers.extend(route_table())

    async def stop_extension(self) -> None:
        state = self.settings.get("pachls")
        if state is not None:
            state.close()
