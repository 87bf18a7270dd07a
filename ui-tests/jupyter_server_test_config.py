"""Server configuration for the Galata UI tests.

Starts JupyterLab on 127.0.0.1 (port $PACHLS_UI_PORT, default 18888) with a
temporary PACHLS_STORE that holds the demo data; the store is removed when the
server exits.
"""

import atexit
import os
import shutil
import tempfile

from jupyterlab.galata import configure_jupyter_server

from jupyterlab_pachls.demo import generate

configure_jupyter_server(c)  # noqa: F821

c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ.get("PACHLS_UI_PORT", "18888"))  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821

_store = tempfile.mkdtemp(prefix="pachls-ui-store-")
atexit.register(shutil.rmtree, _store, ignore_errors=True)
generate(_store)
os.environ["PACHLS_STORE"] = _store

# Uncomment to set server log level to debug level
# c.ServerApp.log_level = "DEBUG"
