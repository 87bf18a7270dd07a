"""The demo data generator writes valid PNGs and is idempotent."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

from jupyterlab_pachls import demo


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Minimal PNG reader: checks signature and CRCs, returns (width, height, raw rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None
    width, height, depth, color, *_ = header
    assert (depth, color) == (8, 2)
    return width, height, zlib.decompress(idat)


def test_demo_files_are_valid_distinct_pngs():
    files = demo.demo_files()
    assert len(files) == 12
    paths = [p for p, _ in files]
    assert sum(p.startswith("/cats/") for p in paths) == 6
    assert sum(p.startswith("/dogs/") for p in paths) == 6
    assert len({data for _, data in files}) == 12
    for _, data in files:
        width, height, raw = decode_png(data)
        assert (width, height) == (demo.SIZE, demo.SIZE)
        assert len(raw) == height * (1 + 3 * width)
        colours = {raw[i : i + 3] for i in range(1, len(raw), 3)}
        assert len(colours) >= 2  # a shape on a background


def test_demo_cli_is_idempotent(tmp_path):
    store = tmp_path / "store"
    run = [sys.executable, "-m", "jupyterlab_pachls.demo", str(store)]
    first = subprocess.run(run, capture_output=True, text=True, timeout=120, check=True)
    assert "images: created" in first.stdout
    assert "labels: created" in first.stdout

    from jupyterlab_pachls.pfs import LocalBackend

    backend = LocalBackend(str(store))
    try:
        head = backend.inspect_branch("images", "master").head
        assert head is not None and head.message == "demo data"
        listed = {f.path for f in backend.walk("images", "master", "/") if not f.is_dir}
        assert listed == {p for p, _ in demo.demo_files()}
        assert backend.get_file("images", "master", "/cats/001.png") == dict(demo.demo_files())["/cats/001.png"]
        assert [b.name for b in backend.list_branches("labels")] == ["master"]
        n_commits = len(backend.list_commits("images", "master"))
    finally:
        backend.close()

    second = subprocess.run(run, capture_output=True, text=True, timeout=120, check=True)
    assert "images: exists" in second.stdout
    assert "labels: exists" in second.stdout
    backend = LocalBackend(str(store))
    try:
        assert backend.inspect_branch("images", "master").head.id == head.id
        assert len(backend.list_commits("images", "master")) == n_commits
    finally:
        backend.close()
