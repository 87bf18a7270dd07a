"""Write a small demo store: ``python -m jupyterlab_pachls.demo STORE_DIR``.

Creates, in the embedded store at ``STORE_DIR``:

- repo ``images`` with one commit on ``master`` holding 12 small PNGs of
  coloured shapes, 6 under ``/cats`` and 6 under ``/dogs`` (generated here
  with ``zlib`` + ``struct``; nothing is downloaded);
- repo ``labels`` with an empty branch ``master``, where label commits go.

Idempotent: a repo that already exists is left untouched.
"""

from __future__ import annotations

import argparse
import struct
import sys
import zlib
from typing import Callable

DATA_REPO = "images"
LABEL_REPO = "labels"
BRANCH = "master"
SIZE = 64

Pixel = tuple[int, int, int]

# (name, background, foreground) per image; cats are round, dogs are square-ish.
_PALETTE: list[tuple[str, Pixel, Pixel]] = [
    ("orange", (250, 240, 230), (230, 126, 34)),
    ("grey", (235, 240, 245), (120, 130, 140)),
    ("black", (255, 250, 220), (30, 30, 30)),
    ("white", (60, 80, 110), (245, 245, 245)),
    ("ginger", (225, 245, 225), (200, 90, 20)),
    ("cream", (90, 60, 90), (245, 225, 180)),
]


def png(width: int, height: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    """Encode an 8-bit RGB PNG whose colour at (x, y) is ``pixel(x, y)``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(pixel(x, y))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def _cat(bg: Pixel, fg: Pixel, variant: int) -> bytes:
    c = SIZE / 2
    r = 16 + 2 * variant

    def pixel(x: int, y: int) -> Pixel:
        dx, dy = x - c, y - c - 4
        # head: a disc; ears: two triangles above it
        if dx * dx + dy * dy <= r * r:
            return fg
        for side in (-1, 1):
            ex = c + side * (r * 0.6)
            top = c - 4 - r - 10
            if top <= y <= c - 4 - r + 12 and abs(x - ex) <= (y - top) * 0.55:
                return fg
        return bg

    return png(SIZE, SIZE, pixel)


def _dog(bg: Pixel, fg: Pixel, variant: int) -> bytes:
    half = 14 + 2 * variant

    def pixel(x: int, y: int) -> Pixel:
        c = SIZE // 2
        # head: a square; ears: two hanging bars at its sides
        if abs(x - c) <= half and abs(y - c) <= half:
            return fg
        if c - half - 6 <= x < c - half and c - half <= y <= c + 6:
            return fg
        if c + half < x <= c + half + 6 and c - half <= y <= c + 6:
            return fg
        return bg

    return png(SIZE, SIZE, pixel)


def demo_files() -> list[tuple[str, bytes]]:
    """The 12 demo images as ``(path, png bytes)``, sorted by path."""
    files: list[tuple[str, bytes]] = []
    for i, (_, bg, fg) in enumerate(_PALETTE):
        files.append((f"/cats/{i + 1:03d}.png", _cat(bg, fg, i % 3)))
        files.append((f"/dogs/{i + 1:03d}.png", _dog(bg, fg, i % 3)))
    return sorted(files)


def _repo_names(backend) -> set[str]:
    return {repo.key for repo in backend.list_repos()}


def generate(store_dir: str) -> dict[str, str]:
    """Fill ``store_dir`` with the demo repos; return what was done per repo."""
    from .pfs import LocalBackend

    done: dict[str, str] = {}
    backend = LocalBackend(store_dir)
    try:
        existing = _repo_names(backend)
        if DATA_REPO in existing:
            done[DATA_REPO] = "exists"
        else:
            backend.create_repo(DATA_REPO, description="Demo images: cats and dogs as coloured shapes")
            with backend.commit(DATA_REPO, BRANCH, message="demo data", author="demo") as c:
                c.put_files(demo_files())
            done[DATA_REPO] = f"created ({c.finished.id if c.finished else '?'})"
        if LABEL_REPO in existing:
            done[LABEL_REPO] = "exists"
        else:
            backend.create_repo(LABEL_REPO, description="Labels of the demo images")
            backend.create_branch(LABEL_REPO, BRANCH)
            done[LABEL_REPO] = "created"
    finally:
        backend.close()
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyterlab_pachls.demo",
        description="Write the demo repos 'images' and 'labels' into an embedded store.",
    )
    parser.add_argument("store_dir", help="store directory (created if missing)")
    args = parser.parse_args(argv)
    for repo, what in generate(args.store_dir).items():
        print(f"{repo}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
