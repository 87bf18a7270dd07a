"""File-like reading of a file that arrives in chunks (from the store or over HTTP)."""

from __future__ import annotations

import io
from typing import Any, Callable, Iterator


class ChunkReader(io.RawIOBase):
    """A raw binary stream over an iterator of byte chunks (a file read from the store or an HTTP body)."""

    def __init__(self, chunks: Iterator[bytes], name: str = "", close: Callable[[], None] | None = None) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.name = name
        self._close_source = close or getattr(chunks, "close", None)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        if self._close_source is not None:
            self._close_source()
        super().close()
