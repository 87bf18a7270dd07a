"""``jupyter pachls serve``: serve a store over Pachyderm's gRPC API.

    jupyter pachls serve [--host 127.0.0.1] [--port 30650] [--store DIR] [--log-level DEBUG]

Clients connect as to pachd: ``pachyderm_sdk.Client("localhost", 30650)``,
``pachctl config set context ... --pachd-address grpc://localhost:30650``, or
``PachydermBackend(pachd_address="grpc://localhost:30650")``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from ...config import resolve_store


def serve(store: str, host: str = "127.0.0.1", port: int = 30650, *, ready=None) -> None:
    """Serve the embedded store at ``store`` until SIGINT/SIGTERM."""
    from ..local import LocalBackend
    from . import make_server

    backend = LocalBackend(store)
    server, bound = make_server(backend, f"{host}:{port}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"pachls: serving the store {backend.address} as pachd on grpc://{host}:{bound}", flush=True)
    if ready is not None:
        ready(bound)
    try:
        stop.wait()
    finally:
        server.stop(grace=2).wait()
        backend.close()
        print("pachls: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter pachls", description="jupyterlab-pachls command line")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve a store over Pachyderm's gRPC API (pfs_v2)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=30650, help="port (default 30650, pachd's; 0 picks a free one)")
    run.add_argument("--store", default=None, help=("store directory (default: the server extension's, i.e. "
                          "PachlsConfig.store_dir, else $PACHLS_STORE, else <jupyter data dir>/pachls/store)"))
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="DEBUG logs one line per call: method, status code, duration (default INFO)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            serve(args.store or resolve_store(), args.host, args.port)
        except OSError as exc:
            print(f"pachls: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
