"""Names, paths and Pachyderm's address syntax.

Accepted forms (as ``pachctl`` prints and parses them)::

    repo                        project/repo
    repo@branch                 repo@<32-hex commit id>
    repo@branch^N  repo@branch^^   (N-th ancestor)
    repo@ref:/path/to/file

Commit ids are 32 lowercase hex characters (a UUID without dashes), which is
how Pachyderm tells a commit id from a branch name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidName, InvalidPath, ParseError

DEFAULT_PROJECT = "default"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
COMMIT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_NAME = {"project": 63, "repo": 63, "branch": 255}
MAX_PATH = 4096
MAX_SEGMENT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
# Invisible direction controls (names that display reversed: "gnp.exe" shown as "exe.png") and lone
# surrogates (not text: they cannot be encoded, stored or sent).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BAD_SEGMENT = re.compile(r"(^|/)(\.{1,2})?(/|$)")  # an empty, '.' or '..' segment


def validate_name(name: object, kind: str = "repo") -> str:
    """Return ``name`` if it is a valid project/repo/branch name, else raise InvalidName."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{kind} name must be a non-empty string", kind=kind, name=name)
    if len(name) > MAX_NAME[kind]:
        raise InvalidName(
            f"{kind} name {name[:20]!r}... is {len(name)} characters long; the limit is {MAX_NAME[kind]}",
            kind=kind,
            name=name,
        )
    if not NAME_RE.match(name):
        raise InvalidName(
            f"{kind} name {name!r} is invalid: only letters, digits, '_' and '-' are allowed",
            kind=kind,
            name=name,
        )
    return name


def is_commit_id(text: str) -> bool:
    return bool(COMMIT_ID_RE.match(text))


def normalize_path(path: object, *, allow_root: bool = True) -> str:
    """Return the canonical absolute form of a repo path (``/a/b``), or raise InvalidPath.

    Refused, never silently fixed: ``..`` and ``.`` segments, empty segments
    (``a//b``), NUL and other control characters, text-direction controls, lone
    surrogates, over-long paths or segments. Other characters are name characters
    (a backslash, ``\uff0f``, NFC and NFD spellings are distinct names).
    A leading ``/`` is optional; a single trailing ``/`` is accepted.
    """
    if not isinstance(path, str):
        raise InvalidPath("path must be a string", path=repr(path))
    if len(path) > MAX_PATH:
        raise InvalidPath(f"path is {len(path)} characters long; the limit is {MAX_PATH}", path=path[:80])
    if _CONTROL.search(path):
        raise InvalidPath("path contains a control character (NUL, newline, ...)", path=path.encode("unicode_escape").decode())
    if _SURROGATE.search(path):
        raise InvalidPath("path is not valid Unicode text (a lone surrogate)",
                          path=path.encode("unicode_escape").decode()[:80])
    if _BIDI.search(path):
        raise InvalidPath("path contains an invisible text-direction control (U+202E, ...)",
                          path=path.encode("unicode_escape").decode()[:80])
    body = path[1:] if path.startswith("/") else path
    if body.endswith("/"):
        body = body[:-1]
    if body == "":
        if allow_root:
            return "/"
        raise InvalidPath("path must name a file, not the repo root", path=path)
    if _BAD_SEGMENT.search(body):
        raise InvalidPath(
            f"path {path!r} has an empty, '.' or '..' segment; paths must stay inside the repo", path=path
        )
    if len(body) > MAX_SEGMENT // 4 and any(len(s.encode()) > MAX_SEGMENT for s in body.split("/")):
        raise InvalidPath(f"a path segment is longer than {MAX_SEGMENT} bytes", path=path[:80])
    return "/" + body


def parent_dir(path: str) -> str:
    """Parent directory of a normalized file or directory path: ``/a/b`` and ``/a/b/`` -> ``/a/``."""
    cut = path.rfind("/", 0, len(path) - 1)
    return path[: cut + 1] if cut > 0 else "/"


@dataclass(frozen=True)
class RepoAddress:
    repo: str
    project: str = DEFAULT_PROJECT

    def __str__(self) -> str:
        return self.repo if self.project == DEFAULT_PROJECT else f"{self.project}/{self.repo}"


@dataclass(frozen=True)
class Address:
    """A parsed ``[project/]repo[@ref[^N]][:path]``."""

    repo: str
    project: str = DEFAULT_PROJECT
    ref: str | None = None  # branch name or commit id
    ancestors: int = 0  # the N of ref^N
    path: str | None = None

    @property
    def repo_address(self) -> RepoAddress:
        return RepoAddress(self.repo, self.project)

    @property
    def repo_key(self) -> str:
        """``repo`` or ``project/repo``: the form every Backend method accepts."""
        return str(self.repo_address)

    @property
    def is_commit(self) -> bool:
        return self.ref is not None and is_commit_id(self.ref)

    @property
    def ref_text(self) -> str | None:
        """``branch``, ``branch^2``, or a commit id: the form Backend methods accept as ``ref``."""
        if self.ref is None:
            return None
        return self.ref + (f"^{self.ancestors}" if self.ancestors else "")

    def __str__(self) -> str:
        text = self.repo_key
        if self.ref is not None:
            text += "@" + self.ref_text
        if self.path is not None:
            text += ":" + self.path
        return text


def _fail(text: str, pos: int, why: str) -> ParseError:
    pointer = f"{text}\n{' ' * pos}^"
    return ParseError(f"cannot parse {text!r} at position {pos}: {why}\n{pointer}", text=text, position=pos)


def parse_ref(text: str) -> tuple[str, int]:
    """Split ``branch^N`` / ``branch^^`` / ``<commit id>`` into (ref, ancestors)."""
    ref, ancestors = _parse_ref(text, text, 0)
    return ref, ancestors


def _parse_ref(full: str, ref_text: str, offset: int) -> tuple[str, int]:
    caret = ref_text.find("^")
    name = ref_text if caret < 0 else ref_text[:caret]
    if not name:
        raise _fail(full, offset, "expected a branch name or commit id")
    if not is_commit_id(name):
        try:
            validate_name(name, "branch")
        except InvalidName as exc:
            raise _fail(full, offset, exc.message) from None
    ancestors = 0
    if caret >= 0:
        tail = ref_text[caret:]
        if re.fullmatch(r"\^+", tail):
            ancestors = len(tail)
        elif re.fullmatch(r"\^[0-9]+", tail):
            ancestors = int(tail[1:])
        else:
            raise _fail(full, offset + caret, "after '^' expect a number (branch^2) or more carets (branch^^)")
    return name, ancestors


def parse_address(text: object, *, require_ref: bool = False, require_path: bool = False) -> Address:
    """Parse Pachyderm's address syntax; raise ParseError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ParseError("address must be a string", text=repr(text), position=0)
    if not text:
        raise _fail(text, 0, "empty address; expected repo[@branch][:/path]")
    path = None
    colon = text.find(":")
    head = text if colon < 0 else text[:colon]
    if colon >= 0:
        raw_path = text[colon + 1 :]
        try:
            path = normalize_path(raw_path if raw_path else "/")
        except InvalidPath as exc:
            raise _fail(text, colon + 1, exc.message) from None
    at = head.find("@")
    repo_part = head if at < 0 else head[:at]
    project = DEFAULT_PROJECT
    repo_offset = 0
    if "/" in repo_part:
        project, repo_part = repo_part.split("/", 1)
        repo_offset = len(project) + 1
        try:
            validate_name(project, "project")
        except InvalidName as exc:
            raise _fail(text, 0, exc.message) from None
    try:
        validate_name(repo_part, "repo")
    except InvalidName as exc:
        raise _fail(text, repo_offset, exc.message) from None
    ref, ancestors = None, 0
    if at >= 0:
        ref, ancestors = _parse_ref(text, head[at + 1 :], at + 1)
    if require_ref and ref is None:
        raise _fail(text, len(head), "expected @branch or @commit after the repo name")
    if require_path and path is None:
        raise _fail(text, len(text), "expected :/path after the commit")
    return Address(repo=repo_part, project=project, ref=ref, ancestors=ancestors, path=path)


def parse_repo(text: object) -> RepoAddress:
    """``repo`` or ``project/repo``; raise InvalidName for anything else."""
    if not isinstance(text, str):
        raise InvalidName("repo name must be a string", kind="repo", name=repr(text))
    project, slash, repo = text.rpartition("/")
    return RepoAddress(validate_name(repo, "repo"), validate_name(project, "project") if slash else DEFAULT_PROJECT)
