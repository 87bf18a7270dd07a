"""``jupyter pachls serve``: serve a store over Pachyderm's gRPC API.

    jupyter pachls serve [--host 127.0.0.1] [--port 30650] [--store DIR] [--log-level DEBUG]
                         [--auth-token-file FILE] [--unauthenticated-public]

Clients connect as to pachd: ``pachyderm_sdk.Client("localhost", 30650)``,
``pachctl config set context ... --pachd-address grpc://localhost:30650``, or
``PachydermBackend(pachd_address="grpc://localhost:30650")``; with a token, they pass it as
``auth_token`` (sent in the ``authn-token`` metadata, as to pachd with auth on).

Without a token the store is open to whoever reaches the port, so a host other than loopback is
refused unless ``--unauthenticated-public`` says that is meant. The token is read from a file or
the environment, never from the command line (where ``ps`` shows it to every user), and never logged.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading

from ...config import resolve_store
from .calls import log

#: The environment variable that may hold the token instead of ``--auth-token-file``.
AUTH_TOKEN_ENV = "PACHLS_SERVE_AUTH_TOKEN"
#: Shorter tokens are refused: the token is all that guards a store served beyond loopback.
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine: 127.0.0.0/8, ::1, localhost.
    Other names are not resolved: a name may point anywhere."""
    name = host.strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def listen_address(host: str, port: int) -> str:
    """``host:port`` as gRPC reads it (an IPv6 address in brackets)."""
    name = host.strip("[]")
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def check_token(token: str) -> str:
    """The token, stripped of surrounding whitespace; ValueError (with no part of it) if unusable."""
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the auth token is shorter than {MIN_TOKEN_LENGTH} characters; make one with "
                         "python -c 'import secrets; print(secrets.token_hex(16))'")
    if not all("!" <= ch <= "~" for ch in token):
        raise ValueError("the auth token may only hold printable ASCII without spaces (gRPC metadata)")
    return token


def read_token(token_file: str | None) -> str | None:
    """The token from ``token_file`` or ``$PACHLS_SERVE_AUTH_TOKEN``; None if neither is given."""
    from_env = os.environ.get(AUTH_TOKEN_ENV)
    if token_file is not None and from_env is not None:
        raise ValueError(f"the auth token is given twice (--auth-token-file and ${AUTH_TOKEN_ENV}): give one")
    if token_file is not None:
        try:
            with open(token_file, encoding="ascii") as f:
                return check_token(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the auth token file {token_file}: "
                             f"{exc.strerror if isinstance(exc, OSError) else 'not ASCII text'}") from None
    if from_env is not None:
        return check_token(from_env)
    return None


def serve(store: str, host: str = "127.0.0.1", port: int = 30650, *, auth_token: str | None = None,
          ready=None) -> None:
    """Serve the embedded store at ``store`` until SIGINT/SIGTERM (``auth_token``: see ``make_server``)."""
    from ..local import LocalBackend
    from . import make_server

    backend = LocalBackend(store)
    server, bound = make_server(backend, listen_address(host, port), auth_token=auth_token)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    access = "clients must send the auth token" if auth_token else "no authentication"
    print(f"pachls: serving the store {backend.address} as pachd on grpc://{listen_address(host, bound)} "
          f"({access})", flush=True)
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
    run = commands.add_parser(
        "serve", help="serve a store over Pachyderm's gRPC API (pfs_v2)",
        epilog=(f"Without a token anyone who reaches the port can read, change and delete the whole store. "
                f"A token (--auth-token-file, or ${AUTH_TOKEN_ENV}) makes every client send it, as to pachd "
                f"with auth on: pachyderm_sdk.Client(host, port, auth_token=TOKEN). Connections are not "
                f"encrypted (no TLS): beyond this machine, use a trusted network or a TLS proxy."))
    run.add_argument("--host", default="127.0.0.1",
                     help=("address to listen on (default 127.0.0.1). One other than loopback (127.0.0.0/8, ::1, "
                           "localhost) needs a token, or --unauthenticated-public"))
    run.add_argument("--port", type=int, default=30650, help="port (default 30650, pachd's; 0 picks a free one)")
    run.add_argument("--store", default=None, help=("store directory (default: the server extension's, i.e. "
                          "PachlsConfig.store_dir, else $PACHLS_STORE, else <jupyter data dir>/pachls/store)"))
    run.add_argument("--auth-token-file", metavar="FILE", default=None,
                     help=(f"file holding the token every call must carry in its authn-token metadata "
                           f"(at least {MIN_TOKEN_LENGTH} characters; or set ${AUTH_TOKEN_ENV}). "
                           f"With a token a non-loopback --host needs no other flag"))
    run.add_argument("--unauthenticated-public", action="store_true",
                     help="serve a non-loopback --host with no token: anyone who reaches it owns the store")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="DEBUG logs one line per call: method, status code, duration (default INFO)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            token = read_token(args.auth_token_file)
        except ValueError as exc:
            run.error(str(exc))
        public = not is_loopback(args.host)
        if public and token is None and not args.unauthenticated_public:
            run.error(f"--host {args.host} is not a loopback address, and without a token anyone who can reach it "
                      f"could read, change and delete every repo of the store. Give a token (--auth-token-file "
                      f"FILE or ${AUTH_TOKEN_ENV}), or pass --unauthenticated-public to serve it to all anyway.")
        logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if public and token is None:
            log.warning("serving %s with NO authentication (--unauthenticated-public): anyone who can reach it "
                        "can read, change and delete every repo of the store", args.host)
        elif public:
            log.warning("serving %s without encryption (no TLS): the token and the data cross the network in "
                        "clear; use a trusted network or a TLS proxy", args.host)
        try:
            serve(args.store or resolve_store(), args.host, args.port, auth_token=token)
        except OSError as exc:
            print(f"pachls: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
