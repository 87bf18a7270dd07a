"""Open a backend from a plain config dict (what the server extension, magics and tests store)."""

from __future__ import annotations

from typing import Any

from .backend import Backend
from .errors import InvalidArgument


def open_backend(config: dict[str, Any]) -> Backend:
    """``{"kind": "local", "path": DIR}`` or ``{"kind": "pachyderm", "pachd_address": ..., "auth_token": ...}``.

    A Pachyderm config without ``pachd_address`` uses the active context of
    ``$PACH_CONFIG`` or ``~/.pachyderm/config.json``, as ``pachctl`` does. Its deadlines, in seconds:
    ``connect_timeout``, ``rpc_timeout`` and ``quick_rpc_timeout`` (see ``pachyderm.channel``).
    """
    kind = config.get("kind", "local")
    options = {k: v for k, v in config.items() if k != "kind"}
    if kind == "local":
        from .local import LocalBackend

        if "path" not in options:
            raise InvalidArgument("the embedded store needs a 'path'")
        return LocalBackend(options["path"])
    if kind == "pachyderm":
        from .pachyderm import PachydermBackend

        return PachydermBackend(**options)
    raise InvalidArgument(f"unknown backend kind {kind!r}; expected 'local' or 'pachyderm'", kind=kind)
