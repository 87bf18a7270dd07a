"""A 256 MiB file through the Pachyderm-API server and back, with flat memory on both sides.

The server runs as its own process (``python -m jupyterlab_pachls.pfs.server serve``) so its
resident memory can be measured apart from the client's; both are sampled every 20 ms while the
file goes up (``PachydermBackend.put_file`` from a local path) and comes back down (``read_file``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from jupyterlab_pachls.pfs.pachyderm import PachydermBackend

SIZE = 256 * 1024 * 1024
FLAT = 96 * 1024 * 1024  # allowed growth of resident memory, far below the file's size
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Peak:
    """Highest RSS of some processes, sampled in a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.base = {p: rss(p) for p in pids}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in self.pids:
                self.peak[p] = max(self.peak[p], rss(p))
            time.sleep(0.02)

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join()
        return {p: self.peak[p] - self.base[p] for p in self.pids}


@pytest.fixture
def server(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab_pachls.pfs.server", "serve", "--port", "0", "--store", str(tmp_path / "s")],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    line = proc.stdout.readline()
    match = re.search(r"grpc://([\d.]+):(\d+)", line)
    assert match, f"server did not start: {line!r}"
    yield proc, f"grpc://{match.group(1)}:{match.group(2)}"
    proc.terminate()
    proc.wait(10)


def test_large_file_round_trip_with_flat_memory(server, tmp_path):
    proc, address = server
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(source, "wb") as out:
        for i in range(SIZE >> 20):
            chunk = block[i:] + block[:i]  # every MiB different, cheaply
            digest.update(chunk)
            out.write(chunk)
    expected = digest.hexdigest()

    backend = PachydermBackend(pachd_address=address)
    try:
        backend.create_repo("big")
        peak = Peak([proc.pid, os.getpid()])
        started = time.monotonic()
        with backend.commit("big", "master") as c:
            c.put_file("/big.bin", source)
        up = time.monotonic() - started
        info = backend.inspect_file("big", "master", "/big.bin")
        # pachd's hash is opaque (not the bytes' sha256): the content is checked below, on the bytes read back
        assert info.size == SIZE and info.hash_kind == "opaque" and info.hash != expected

        started = time.monotonic()
        got = hashlib.sha256()
        received = 0
        for chunk in backend.read_file("big", "master", "/big.bin"):
            got.update(chunk)
            received += len(chunk)
        down = time.monotonic() - started
        growth = peak.stop()
    finally:
        backend.close()
    assert (received, got.hexdigest()) == (SIZE, expected)
    mib = SIZE / (1 << 20)
    print(f"\n256 MiB: upload+land {mib / up:.0f} MiB/s ({up:.1f} s), download {mib / down:.0f} MiB/s ({down:.1f} s); "
          f"RSS growth: server {growth[proc.pid] / 2**20:.0f} MiB, client {growth[os.getpid()] / 2**20:.0f} MiB")
    assert growth[proc.pid] < FLAT, f"server memory grew by {growth[proc.pid] >> 20} MiB"
    assert growth[os.getpid()] < FLAT, f"client memory grew by {growth[os.getpid()] >> 20} MiB"
