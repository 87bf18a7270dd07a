"""jupyterlab-pachls: label versioned data with Label Studio inside JupyterLab.

The package is a Jupyter server extension (REST API under ``/pachls/api/``)
plus a prebuilt JupyterLab frontend extension. Importing the package is
cheap: the server parts are imported only when Jupyter loads the extension,
so ``jupyterlab_pachls.pfs`` can be used from a kernel or a script on its own.
"""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    import warnings

    warnings.warn("Importing 'jupyterlab_pachls' outside a proper installation.", stacklevel=2)
    __version__ = "dev"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyterlab-pachls"}]


def _jupyter_server_extension_points():
    from .app import PachlsExtension

    return [{"module": "jupyterlab_pachls", "app": PachlsExtension}]


def _load_jupyter_server_extension(server_app):
    """Load the extension into a running server (used when no app class is looked up)."""
    from .app import PachlsExtension

    return PachlsExtension._load_jupyter_server_extension(server_app)


# For servers that still look for the older, unprefixed hook name.
load_jupyter_server_extension = _load_jupyter_server_extension


def connect(*args, **kwargs):
    """A client for versioned repos, mounts and labels: see :func:`jupyterlab_pachls.client.connect`."""
    from .client import connect as _connect

    return _connect(*args, **kwargs)


def load_ipython_extension(ipython):
    """``%load_ext jupyterlab_pachls``: the ``%pachls`` magics (see :mod:`jupyterlab_pachls.magics`)."""
    from .magics import load_ipython_extension as _load

    _load(ipython)
