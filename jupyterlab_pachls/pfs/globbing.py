"""Pachyderm glob patterns over repo paths (``*`` stays within a segment, ``**`` crosses them)."""

from __future__ import annotations

from collections.abc import Callable

from wcmatch import _wcparse, glob as wcglob

from .address import normalize_path
from .errors import InvalidArgument, InvalidPath

_FLAGS = wcglob.GLOBSTAR | wcglob.DOTGLOB | wcglob.BRACE
_MAGIC = set("*?[{")


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

    try:  # compiled up front: a brace expansion past wcmatch's limit is refused here, not mid-walk
        matcher = wcglob.compile(body, flags=_FLAGS)
    except _wcparse.PatternLimitException as error:
        raise InvalidArgument(f"glob pattern {pattern!r} expands to too many patterns: {error}",
                              pattern=pattern) from None

    def matches(path: str) -> bool:
        candidate = path[:-1] if path.endswith("/") and path != "/" else path
        return matcher.match(candidate)

    return base, depth, matches
