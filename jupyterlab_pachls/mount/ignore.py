"""What a read-write mount never counts as a change: Jupyter's own files and a ``.pachlsignore``.

Jupyter writes files of its own beside the ones a user edits (``.ipynb_checkpoints/`` on every save,
``.virtual_documents/`` for language servers, ``__pycache__/`` on import, ``.DS_Store`` from macOS
copies, and the trash a delete from the file browser makes at the top of a FUSE mount: ``.Trash-<uid>/``
holding the deleted file and its ``.trashinfo``, as the freedesktop spec says); none of them is ever
pending by default. A ``.pachlsignore`` at the root of the mount adds
rules in gitignore syntax (parsed by ``pathspec``); a ``!pattern`` there re-includes what a default
rule left out (``!__pycache__/``). Ignored paths are never pending, whatever their change, so they
are never committed; the ``.pachlsignore`` itself is an ordinary file (pending, committed).

The rules are read again whenever the file's bytes change (a stage asks for them at each scan).
A line pathspec cannot parse is left out (logged), so one bad line never stops a mount.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Callable, Iterable, TypeVar

import pathspec

log = logging.getLogger(__name__)

IGNORE_FILE = ".pachlsignore"
#: left out of every read-write mount unless its .pachlsignore re-includes them
DEFAULT_PATTERNS = (".ipynb_checkpoints/", ".virtual_documents/", "__pycache__/", ".DS_Store",
                    "/.Trash/", "/.Trash-*/")
#: bytes of a .pachlsignore read (the rest is left out)
MAX_RULES_BYTES = 1 << 20

T = TypeVar("T")


def _compile(text: str) -> pathspec.GitIgnoreSpec:
    lines = [*DEFAULT_PATTERNS, *text.splitlines()]
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:  # pathspec raises several kinds for a malformed pattern: keep the good lines
        good = []
        for line in lines:
            try:
                pathspec.GitIgnoreSpec.from_lines([line])
            except Exception:
                log.warning("%s: cannot parse %r; the line is left out", IGNORE_FILE, line)
                continue
            good.append(line)
        return pathspec.GitIgnoreSpec.from_lines(good)


class IgnoreRules:
    """The rules of one mount. ``read`` answers the bytes of its .pachlsignore (None: there is none)."""

    def __init__(self, read: Callable[[], bytes | None]) -> None:
        self._read = read
        self._source: bytes | None = b""
        self._spec = _compile("")

    def _current(self) -> pathspec.GitIgnoreSpec:
        try:
            source = self._read()
        except OSError as exc:  # unreadable: the defaults still hold
            log.warning("%s unreadable (%s); only the default rules apply", IGNORE_FILE, exc)
            source = None
        source = source or b""
        if source != self._source:
            self._spec = _compile(source.decode("utf-8", "replace"))
            self._source = source
        return self._spec

    def ignored(self, paths: Iterable[str]) -> set[str]:
        """Which of the repo paths (``/a/b``) the rules leave out; one batch (pathspec is costly per call)."""
        paths = list(paths)
        if not paths:
            return set()
        spec = self._current()
        return {"/" + p for p in spec.match_files(p.lstrip("/") for p in paths)}

    def keep(self, items: list[T], path: Callable[[T], str] = lambda item: item.path) -> list[T]:
        """``items`` without the ignored ones (changes by default; pass ``path`` for other items)."""
        left_out = self.ignored(path(item) for item in items)
        return [item for item in items if path(item) not in left_out] if left_out else items


def read_rules_file(path: str | os.PathLike) -> bytes | None:
    """The bytes of a .pachlsignore on disk; None when absent or not a regular file (never followed
    through a symlink: it could point anywhere)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_RULES_BYTES)
    finally:
        os.close(fd)


def workspace_rules(root: str | os.PathLike) -> IgnoreRules:
    """The rules of a no-FUSE read-write mount: its directory is the mount."""
    return IgnoreRules(lambda: read_rules_file(os.path.join(root, IGNORE_FILE)))


def overlay_rules(overlay) -> IgnoreRules:
    """The rules of a FUSE read-write mount (an ``Overlay``): the staged .pachlsignore if there is one,
    none if it was deleted, else the base commit's (read once per base)."""
    path = "/" + IGNORE_FILE
    committed: dict[str | None, bytes | None] = {}

    def read() -> bytes | None:
        staged = read_rules_file(overlay.upper_path(path))
        if staged is not None:
            return staged
        if overlay.hidden(path):
            return None
        tree = overlay.tree
        if tree.commit not in committed:
            committed.clear()
            info = tree.lookup(path)
            if info is None or info.is_dir:
                committed[tree.commit] = None
            else:
                fd = tree.open_file(path, info)
                try:
                    committed[tree.commit] = os.read(fd, MAX_RULES_BYTES)
                finally:
                    os.close(fd)
        return committed[tree.commit]

    return IgnoreRules(read)
