"""Server configuration for the Galata UI tests.

Starts JupyterLab on 127.0.0.1 (port $PACHLS_UI_PORT, default 18888) with a
fresh PACHLS_STORE that holds the demo data.

The store sits in ``ui-tests/.pachls-store/store`` (git-ignored). Its parent
directory is where the server keeps the managed Label Studio
(``labelstudio/``), the labeling sessions (``labeling/``), the mount state
(``mounts/``) and the saved identities (``identities.json``). Everything but
``labelstudio/`` is removed at start and at exit, so every run begins from the
demo data; the Label Studio data dir is kept, so only the first run on a
machine pays its database migration (a minute or two).

Two people for the authorship tests: `TwoUserTestIdentityProvider` stands in
for a real identity provider (JupyterHub's, or one a deployment configures).
Opening `/lab?token=alice-token` (or sending `Authorization: token
alice-token`) is Alice, `bob-token` is Bob; the browser keeps the login cookie
as after any login. Without one of these tokens a request gets Jupyter's own
random anonymous user, as plain `jupyter lab` does; that user writes history as the configured
"Uma Tester" (the machine's git identity is hidden from the server).
"""

import atexit
import os
import shutil

from jupyter_server.auth.identity import PasswordIdentityProvider, User
from jupyterlab.galata import configure_jupyter_server

from jupyterlab_pachls.demo import generate

configure_jupyter_server(c)  # noqa: F821

c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ.get("PACHLS_UI_PORT", "18888"))  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821
# Every page load of a test would have the server scan for ~20 language servers (none installed)
# and check whether JupyterLab needs a rebuild: work no test looks at.
c.LanguageServerManager.autodetect = False  # noqa: F821
c.ServerApp.tornado_settings = {"page_config_data": {"buildCheck": False, "buildAvailable": False}}  # noqa: F821


class TwoUserTestIdentityProvider(PasswordIdentityProvider):
    """Test stand-in for a real identity provider: two people, each known by a token of their own.

    Built on Jupyter's password provider so that, with galata's empty token and password, requests
    without a person's token stay open and anonymous, as in the other UI tests.
    """

    people = {
        "alice-token": User(username="alice", name="Alice Example"),
        "bob-token": User(username="bob", name="Bob Example"),
    }

    async def get_user(self, handler):
        person = self.people.get(self.get_token(handler) or "")
        if person is not None:
            # a token switches who the browser is, as a fresh login would
            self.set_login_cookie(handler, person)
            return person
        return await super().get_user(handler)


c.ServerApp.identity_provider_class = TwoUserTestIdentityProvider  # noqa: F821

# Whatever git identity the machine has is hidden, so every run sees the same thing: the anonymous
# (token-less) user writes history as this configured person, Alice and Bob as themselves.
os.environ["GIT_CONFIG_GLOBAL"] = os.devnull
os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
c.PachlsConfig.user_name = "Uma Tester"  # noqa: F821
c.PachlsConfig.user_email = "uma@example.com"  # noqa: F821

_home = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".pachls-store")
if c.ServerApp.port != 18888:  # noqa: F821
    # runs on other ports (several at once on one checkout) get a home of their own, seeded with
    # the default home's migrated Label Studio data dir
    _seed = os.path.join(_home, "labelstudio")
    _home = os.path.join(_home, f"port-{c.ServerApp.port}")  # noqa: F821
    if os.path.isdir(_seed) and not os.path.isdir(os.path.join(_home, "labelstudio")):
        shutil.copytree(_seed, os.path.join(_home, "labelstudio"))
_store = os.path.join(_home, "store")


def _clean() -> None:
    for name in ("store", "labeling", "mounts"):
        shutil.rmtree(os.path.join(_home, name), ignore_errors=True)
    # names and emails saved through PUT /pachls/api/identity
    if os.path.exists(os.path.join(_home, "identities.json")):
        os.remove(os.path.join(_home, "identities.json"))


_clean()
atexit.register(_clean)
os.makedirs(_store)
generate(_store)
os.environ["PACHLS_STORE"] = _store

# Uncomment to set server log level to debug level
# c.ServerApp.log_level = "DEBUG"
