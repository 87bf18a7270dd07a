"""Python API: versioned repos, mounts and labels from a notebook or a script.

::

    from jupyterlab_pachls import connect

    pachls = connect()
    pachls.repos()                                   # [Repo(name='images', ...), ...]
    pachls.log("labels@master", limit=5)             # [Commit(...), ...] newest first
    with pachls.open("images@master:/cats/001.png") as f:
        png = f.read()
    df = pachls.labels("labels@master").to_frame()   # one row per (data file, annotation)

Where it goes (:func:`connect`):

1. ``connect(url=..., token=...)``, or ``$PACHLS_SERVER_URL`` (+ ``$PACHLS_SERVER_TOKEN``):
   that Jupyter server.
2. Otherwise a running Jupyter server with jupyterlab-pachls, found in the Jupyter
   runtime files (``jupyter server list``): first the server that started this kernel
   (``$JPY_PARENT_PID``), then servers whose root directory contains the current
   directory (deepest root first), then any other. The first that answers
   ``/pachls/api/health`` with its token wins. Mounts and pending changes are then
   the very ones the JupyterLab panel shows.
3. No server (a plain script, a pipeline): the store is opened directly, as the server
   would open it: ``connect(store=DIR)``, ``connect(pachd_address=...)``,
   ``$PACHD_ADDRESS`` (a Pachyderm cluster), the backend saved by the panel in
   ``PachlsConfig.backend_file`` (``<jupyter data dir>/pachls/backend.json``), else the
   embedded store the server uses (:func:`jupyterlab_pachls.config.resolve_store`). Mount operations need a
   Jupyter server and raise :class:`~jupyterlab_pachls.pfs.Unavailable` saying so.

Addresses use Pachyderm's syntax (``repo@branch``, ``repo@<commit id>``,
``repo@branch^2``, ``repo@ref:/path``, ``project/repo@...``); a missing ``@ref``
means ``master``. Every failure is a typed :class:`~jupyterlab_pachls.pfs.PfsError`
(``NotFound``, ``Conflict``, ``ParseError``, ``Unavailable``, ...) carrying the
server's message, whichever way the client is connected.

Modules: :mod:`.discovery` (``connect``, finding the server), :mod:`.base` (the ``Client``
interface), :mod:`.http` (``ServerClient``), :mod:`.direct` (``DirectClient``),
:mod:`.convert` (REST JSON -> value types), :mod:`.model` (mounts), :mod:`.tables` (``Table``).
"""

from .base import Client
from .direct import DirectClient
from .discovery import connect, find_server, rank_servers
from .http import ServerClient
from .model import Mount, PendingChange, PendingChanges
from .tables import Table

__all__ = [
    "connect", "Client", "ServerClient", "DirectClient", "Mount", "PendingChange", "PendingChanges",
    "Table", "find_server", "rank_servers",
]
