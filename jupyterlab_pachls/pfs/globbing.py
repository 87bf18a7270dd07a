"""Pachyderm glob patterns over repo paths (``*`` stays within a segment, ``**`` crosses them)."""

from __future__ import annotations

from collections.abc import Callable

import bracex
from wcmatch import glob as wcglob

from .address import normalize_path
from .errors import InvalidArgument, InvalidPath

_FLAGS = wcglob.GLOBSTAR | wcglob.DOTGLOB | wcglob.BRACE
_MAGIC = set("*?[{")
#: Patterns one glob may expand to (wcmatch's own default): ``{1..5000}`` or ``{a,b}{a,b}...`` is refused.
PATTERN_LIMIT = 1000


def glob_plan(pattern: object) -> tuple[str, int | None, Callable[[str], bool]]:
    """Return (base directory to walk, depth limit or None, predicate on FileInfo paths).

    The base is the longest literal directory prefix, so ``/cats/*.png`` walks
    one directory, not the repo.
    """
    if not isinstance(pattern, str) or not pattern:
        raise InvalidArgument("glob pattern must be a non-empty string", pattern=repr(pattern))
    text = pattern if pattern.startswith("/") else "/" + pattern
    segments = [s for s in text.split("/")[1:]]
    if any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", ".."):
        raise InvalidPath(f"glob pattern {pattern!r} has an empty, '.' or '..' segment", path=pattern)
    literal: list[str] = []
    for segment in segments:
        if _MAGIC & set(segment):
            break
        literal.append(segment)
    if len(literal) == len(segments):  # no wildcard at all: the pattern names one path
        literal = literal[:-1]
    base = normalize_path("/" + "/".join(literal))
    rest = segments[len(literal) :]
    depth = None if any("**" in s for s in rest) else len(rest)
    body = "/" + "/".join(segments)
    if body.endswith("/") and body != "/":
        body = body[:-1]

    # Counted up front with bracex, the brace expander wcmatch uses (same arguments), so a brace
    # expansion past the limit is refused here, not mid-walk; wcmatch then needs no limit of its own.
    try:
        for _ in bracex.iexpand(body, keep_escapes=True, limit=PATTERN_LIMIT, return_empty=True):
            pass
    except bracex.ExpansionLimitException as error:
        raise InvalidArgument(f"glob pattern {pattern!r} expands to too many patterns: {error}",
                              pattern=pattern) from None
    matcher = wcglob.compile(body, flags=_FLAGS, limit=0)

    def matches(path: str) -> bool:
        candidate = path[:-1] if path.endswith("/") and path != "/" else path
        return matcher.match(candidate)

    return base, depth, matches
