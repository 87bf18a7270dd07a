"""Where a server's memory is, written from inside it: ``bench/soak.py --breakdown`` puts this
directory first on the server's ``PYTHONPATH`` and names a file in ``SOAK_PROBE_FILE``.

Every ``SOAK_PROBE_EVERY`` seconds a thread appends one JSON line: resident memory split as the
kernel sees it (``/proc/self/status``), glibc's malloc (bytes in use, free but kept, arenas),
SQLite's own allocations, Python's allocated blocks, threads, open SQLite connections and the
embedded store's commit cache. Python runs this file in every interpreter started with that
path; without ``SOAK_PROBE_FILE`` it does nothing (the server's children do not inherit it).
"""

import ctypes
import gc
import json
import os
import sys
import threading
import time


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _status() -> dict:
    wanted = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads")
    with open("/proc/self/status") as status:
        return {key: int(value.split()[0]) for key, _, value in (row.partition(":") for row in status) if key in wanted}


def _arenas(libc) -> int:
    """How many arenas malloc has (``<heap nr=...>`` elements of malloc_info's XML)."""
    text = ctypes.c_char_p()
    size = ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    xml = ctypes.string_at(text, size.value).decode()
    libc.free(text)
    return xml.count("<heap nr=")


def _connection_memory(sqlite, connections) -> dict:
    """SQLite's own split of its connections' memory (sqlite3_db_status): page caches, parsed
    schemas, prepared statements (Python keeps up to 128 per connection)."""
    totals = {}
    current, highest = ctypes.c_int(), ctypes.c_int()
    for connection in connections:
        # CPython's sqlite3 Connection object starts with its sqlite3* after the object header
        handle = ctypes.c_void_p.from_address(id(connection) + object.__basicsize__).value
        if not handle:
            continue  # closed
        for op, name in ((1, "sqlite_cache"), (2, "sqlite_schema"), (3, "sqlite_statements")):
            if sqlite.sqlite3_db_status(ctypes.c_void_p(handle), op, ctypes.byref(current), ctypes.byref(highest), 0) == 0:
                totals[name] = totals.get(name, 0) + current.value
    return totals


def _sample(libc, sqlite) -> dict:
    import sqlite3

    info = libc.mallinfo2()
    objects = gc.get_objects()
    connections = [o for o in objects if isinstance(o, sqlite3.Connection)]
    row = {
        "t": time.time(), **_status(),
        "malloc_in_use": info.uordblks + info.hblkhd, "malloc_free": info.fordblks, "arenas": _arenas(libc),
        "sqlite": sqlite.sqlite3_memory_used(), "py_blocks": sys.getallocatedblocks(),
        "connections": len(connections), **_connection_memory(sqlite, connections),
        "commit_cache": [len(o._commits) for o in objects if type(o).__name__ == "LocalBackend"],
    }
    del objects, connections
    return row


def _run(path: str, every: float) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    libc.open_memstream.restype = ctypes.c_void_p
    libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 module is linked to
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    with open(path, "a") as out:
        while True:
            out.write(json.dumps(_sample(libc, sqlite)) + "\n")
            out.flush()
            time.sleep(every)


_path = os.environ.pop("SOAK_PROBE_FILE", None)  # popped: a child process of the server writes nothing
if _path:
    threading.Thread(target=_run, args=(_path, float(os.environ.get("SOAK_PROBE_EVERY", "30"))),
                     name="soak-probe", daemon=True).start()
