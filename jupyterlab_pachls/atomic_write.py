"""Replace a small file whole: a reader sees the old content or the new one, never a part.

The new content goes to a temporary file beside the target (same directory, so the rename
stays on one file system), is flushed, then renamed over the target. With ``fsync`` the file
and then its directory are synced, so the new content and the rename survive a crash of the
machine, not only of the process: use it for state the server needs after a restart. With
``replace=False`` the file is created only if it does not exist yet (the first writer wins:
``FileExistsError`` for the others), still never seen half-written.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: str | os.PathLike, data: bytes, *, mode: int = 0o600, fsync: bool = True,
                replace: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, with permissions exactly ``mode``."""
    target = Path(path)
    directory = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if the target exists: nobody else's file is replaced
    finally:
        Path(temporary).unlink(missing_ok=True)
    if fsync:
        _fsync_directory(directory)


def write_json(path: str | os.PathLike, data: Any, *, mode: int = 0o600, fsync: bool = True,
               replace: bool = True) -> None:
    """Write ``data`` as JSON (indented by one, keys in the caller's order) atomically."""
    write_bytes(path, json.dumps(data, indent=1).encode(), mode=mode, fsync=fsync, replace=replace)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
