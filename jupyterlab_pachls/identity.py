"""Who writes history: the author of commits, rollbacks and label rounds.

An identity is chosen in this order:

1. ``jupyter``: the user Jupyter's identity provider names, when it is a real user (JupyterHub's
   provider, or any provider a deployment configures). Plain ``jupyter lab`` with its token or
   password knows no user: its built-in providers make up a random "Anonymous <moon>" per browser,
   which must never be written into immutable history, so they do not count.
2. ``configured``: a name and email saved through ``PUT /pachls/api/identity``, else the
   ``PachlsConfig.user_name`` / ``user_email`` settings.
3. ``git``: ``git config user.name`` / ``user.email``, which git users already have.

When none is known the identity is *required*: routes that write history refuse with
``identity_required`` (409) until a name and email are saved. The author written into commits
is ``Name <email>``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic_write import write_json
from .pfs.errors import Conflict, InvalidArgument

#: Jupyter's own providers; each answers a token or password login with a made-up anonymous user.
ANONYMOUS_PROVIDERS = frozenset({
    "jupyter_server.auth.identity.IdentityProvider",
    "jupyter_server.auth.identity.PasswordIdentityProvider",
    "jupyter_server.auth.identity.LegacyIdentityProvider",
})
#: The key saved identities are kept under when Jupyter names no real user (one person: the server's).
SERVER_USER = ""
MAX_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


class IdentityRequired(Conflict):
    code = "identity_required"


class EmailTaken(Conflict):
    """An email another Jupyter user already has: a person only ever gets their own Label Studio account."""


@dataclass(frozen=True)
class Identity:
    name: str | None
    email: str | None
    source: str | None  # jupyter, configured, git; None when unknown

    @property
    def required(self) -> bool:
        return not (self.name and self.email)

    @property
    def author(self) -> str:
        """``Name <email>``, as commits record it; refuses when no identity is known."""
        if self.required:
            raise IdentityRequired(
                "Set your name and email before writing history (commits, rollbacks, label commits, "
                "resync): PUT /pachls/api/identity, the PachlsConfig.user_name and user_email settings, "
                "or git config user.name / user.email.")
        return f"{self.name} <{self.email}>"

    def to_json(self) -> dict:
        return {"name": self.name, "email": self.email, "source": self.source, "required": self.required}


def provider_names_real_user(provider: Any, user: Any) -> bool:
    """Whether the Jupyter identity provider's ``user`` is a person, not a made-up anonymous name."""
    if user is None or not getattr(user, "username", None):
        return False
    kind = type(provider)
    if f"{kind.__module__}.{kind.__qualname__}" in ANONYMOUS_PROVIDERS:
        return False
    # a provider built on Jupyter's falls back to its made-up users: a random hex id, "Anonymous <moon>"
    return not (_GENERATED_ID.match(user.username) and str(getattr(user, "name", "")).startswith("Anonymous "))


def check_identity(name: object, email: object) -> tuple[str, str]:
    """A name and an email as given to ``PUT identity``, stripped; else a typed error naming the field."""
    checked = []
    for field, value in (("name", name), ("email", email)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(f"'{field}' must be a non-empty string", field=field)
        if _CONTROL.search(value):  # before stripping: a trailing newline is refused, not trimmed away
            raise InvalidArgument(f"'{field}' contains a control character", field=field)
        value = value.strip()
        if len(value) > MAX_LENGTH:
            raise InvalidArgument(f"'{field}' is longer than {MAX_LENGTH} characters", field=field)
        checked.append(value)
    name, email = checked
    if "<" in name or ">" in name:
        raise InvalidArgument("'name' must not contain '<' or '>' (the author is written 'Name <email>')",
                              field="name")
    if not _EMAIL.match(email):
        raise InvalidArgument("'email' must be an address with one '@' (name@example.com)", field="email")
    return name, email


def git_identity(cwd: str | os.PathLike | None = None) -> tuple[str, str] | None:
    """``git config user.name`` and ``user.email`` (both, checked), or None."""
    found = []
    for key in ("user.name", "user.email"):
        try:
            done = subprocess.run(["git", "config", "--get", key], cwd=cwd, capture_output=True, text=True,
                                  timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0 or not done.stdout.strip():
            return None
        found.append(done.stdout.strip())
    try:
        return check_identity(*found)
    except InvalidArgument:
        return None


class IdentityBook:
    """Saved identities (``PUT identity``), one per Jupyter user, in a JSON file readable by the owner only."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict]:
        try:
            saved = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

    def get(self, user: str) -> tuple[str, str] | None:
        entry = self._load().get(user)
        if isinstance(entry, dict) and entry.get("name") and entry.get("email"):
            return entry["name"], entry["email"]
        return None

    def owner_of(self, email: str) -> str | None:
        """The Jupyter user whose saved identity has ``email`` (compared case-insensitively), or None."""
        for user, entry in self._load().items():
            if isinstance(entry, dict) and str(entry.get("email", "")).lower() == email.lower():
                return user
        return None

    def save(self, user: str, name: str, email: str) -> None:
        with self._lock:
            saved = self._load()
            saved[user] = {"name": name, "email": email}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, dict(sorted(saved.items())))


def user_key(provider: Any, user: Any) -> str:
    """Whose saved identity applies: the real user's name, or the server's one person."""
    return user.username if provider_names_real_user(provider, user) else SERVER_USER


def check_saved_identity(provider: Any, user: Any, name: str, email: str, *, email_domain: str,
                         other_owner: str | None) -> None:
    """Refuse what ``PUT identity`` must not save for this Jupyter ``user``.

    - A name the identity provider gives cannot be changed here (it would not be used).
    - An email is how a person is known in Label Studio and in label files: one another Jupyter
      user's identity or Label Studio account has (``other_owner``) is refused, and so is an
      address at ``email_domain`` other than the user's own (``<username>@<email_domain>`` is the
      default email of each provider-named user, saved or not).
    """
    if provider_names_real_user(provider, user):
        given = getattr(user, "name", None) or user.username
        if name != given:
            raise InvalidArgument(
                f"your name, {given!r}, comes from Jupyter's identity provider and cannot be changed here; "
                "save only your email (with that name)", field="name", name=given)
        local, _, domain = email.rpartition("@")
        if domain.lower() == email_domain.lower() and local.lower() != user.username.lower():
            raise EmailTaken(f"{email} is the address of the Jupyter user {local!r}, not yours", email=email)
    if other_owner is not None:
        raise EmailTaken(f"{email} belongs to another Jupyter user (their identity or their Label Studio "
                         "account); choose your own email", email=email)


def resolve_identity(provider: Any, user: Any, book: IdentityBook, *, configured_name: str = "",
                     configured_email: str = "", email_domain: str = "localhost",
                     git_cwd: str | os.PathLike | None = None) -> Identity:
    """The identity of a request's ``user`` (see the module docstring for the order)."""
    if provider_names_real_user(provider, user):
        saved = book.get(user.username)
        # the provider names the person; an email it does not know comes from what they saved
        email = saved[1] if saved else f"{user.username}@{email_domain}"
        name = getattr(user, "name", None) or user.username
        return Identity(name, email, "jupyter")
    saved = book.get(SERVER_USER)
    if saved:
        return Identity(*saved, "configured")
    if configured_name.strip() and configured_email.strip():
        try:
            return Identity(*check_identity(configured_name, configured_email), "configured")
        except InvalidArgument:
            pass
    found = git_identity(git_cwd)
    if found:
        return Identity(*found, "git")
    return Identity(None, None, None)
