"""The connection to pachd: where it is (an address, or ``pachctl``'s config), the gRPC channel,
readiness (a call waits at most ``connect_timeout`` for the cluster, never hangs), the auth metadata
and deadline on every call, and every failed call turned into a typed error.

Deadlines, so that a cluster that accepts connections and never answers cannot hold a thread, nor the
panel for longer than a few seconds, while a big commit is never cut for being big. The channel picks
each call's deadline from the gRPC method (``deadline_kind``); callers pass nothing:

- quick reads (``QUICK_METHODS``: projects, repos, branches, commits without waiting — what pachd
  answers from its metadata store, whatever the size of the data): ``quick_rpc_timeout`` seconds
  (default 5), counted from when the call was asked for, waiting for the connection included. The
  panel's polls make only these, so a stalled cluster answers them ``Unavailable`` within that time
  (ListRepo within twice it, see below). Inside a ``long_operation`` (a commit, a landing, a branch
  move) they are long calls.
- everything else (writes, ``InspectCommit`` waiting for a commit to finish, file listings, diffs):
  ``rpc_timeout`` seconds (default 120); finishing a big commit and the diff a landing replays grow
  with the commit.
- server streams get an idle deadline, not one for the whole call: the call is cancelled when no
  message came for the deadline while we wait on it (a quick stream's first message counts from when
  it was asked for). A stream is then never cut for being long (the repos of a big cluster, the diff
  of a huge commit), only for the cluster's silence. The caller's time with a message does not count,
  so a slow reader is never cut. ListRepo, which pachd builds whole before sending anything
  (``BUILT_WHOLE``), may wait up to ``rpc_timeout`` for its first message while the cluster answers a
  quick read asked when the quick deadline passed; a stalled cluster still ends it within two quick
  deadlines.
- ``ModifyFile`` (uploads of any size) gets the same idle deadline (``rpc_timeout``): the cluster must
  take each request, then answer, within it.

A cluster that lets a quick read run out of its deadline is not asked that read again until it answers
(``Stalls``): each such read is refused at once with the ``Unavailable`` of the one that ran out, while
one thread asks the cluster (``InspectProject``, under the quick deadline) until it answers. The same
holds for a connection that could not be made within ``connect_timeout``: every call is refused at once
until that thread has connected and been answered. Otherwise every poll of every panel would hold a
server thread for the whole deadline, and a few panels would fill the threads the other requests need.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import grpc
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs
from pachyderm_sdk.api.pfs import betterproto_lib_google_protobuf as protobuf
from pachyderm_sdk.api.pfs.extension import ApiStub as PfsStub
from pachyderm_sdk.config import ConfigFile
from pachyderm_sdk.constants import GRPC_CHANNEL_OPTIONS

from ..address import DEFAULT_PROJECT
from ..errors import InvalidArgument, PfsError, Unavailable
from .errors import from_rpc_error

logger = logging.getLogger(__name__)

#: Default deadline of the calls that are not quick reads (see the module docstring): finishing a big
#: commit (InspectCommit waiting for FINISHED) and the diff a landing replays grow with the commit, and
#: must not be cut by default.
RPC_TIMEOUT = 120.0
#: Default deadline of a quick read: what the panel polls answers within it when the cluster stalls.
QUICK_RPC_TIMEOUT = 5.0
#: Reads pachd answers from its metadata store, whatever the size of the data (InspectCommit only
#: without ``wait``: waiting for a commit to finish takes as long as the commit).
QUICK_METHODS = frozenset(f"/pfs_v2.API/{name}" for name in (
    "InspectProject", "ListProject", "InspectRepo", "ListRepo", "InspectBranch", "ListBranch",
    "InspectCommit", "ListCommit"))
#: Quick streams pachd builds whole before sending the first message (ListRepo: auth checks and each
#: repo's size in one transaction, seconds on a cluster of thousands of repos); ListBranch sends as it
#: reads. Their first message may take ``rpc_timeout`` while the cluster answers (``IdleWatch``).
BUILT_WHOLE = frozenset({"/pfs_v2.API/ListRepo"})
#: The deadline settings, by the kind of call they are for (``deadline_kind``).
DEADLINE_KINDS = {"rpc_timeout": "long", "quick_rpc_timeout": "quick"}
#: Calls that carry file data, each watched by its own method (``get_file``, ``modify_file``).
DATA_METHODS = frozenset({"/pfs_v2.API/GetFile", "/pfs_v2.API/GetFileTAR", "/pfs_v2.API/ModifyFile"})
#: While the cluster is known to be down, the probe waits this long for it each time (``Stalls``).
DOWN_RECHECK = 1.0
#: Reconnection attempts are at most this far apart, so a cluster that comes back is used within seconds.
CHANNEL_OPTIONS = [*GRPC_CHANNEL_OPTIONS, ("grpc.initial_reconnect_backoff_ms", 250),
                   ("grpc.min_reconnect_backoff_ms", 250), ("grpc.max_reconnect_backoff_ms", 2000)]


#: True while this thread runs a long operation (``long_operation``).
_LONG_OPERATION: ContextVar[bool] = ContextVar("pachls_long_operation", default=False)


@contextmanager
def long_operation() -> Iterator[None]:
    """Around a commit, a landing or a branch move (also a decorator): its reads get ``rpc_timeout``
    and are asked even while the stall guard refuses them to the panel's polls, so a slow cluster slows
    the operation down instead of failing it halfway."""
    token = _LONG_OPERATION.set(True)
    try:
        yield
    finally:
        _LONG_OPERATION.reset(token)


def deadline_kind(method: str, request) -> str:
    """``"quick"`` for a quick read (``QUICK_METHODS``, InspectCommit without ``wait``) outside a
    ``long_operation``, else ``"long"``."""
    if method not in QUICK_METHODS or _LONG_OPERATION.get():
        return "long"
    return "long" if getattr(request, "wait", None) else "quick"


@dataclass
class Asked:
    """One call as ``Channel`` asked for it: when (a quick read's deadline counts from then, waiting for
    the connection included) and, filled in by ``CallOptions``, its method, deadline kind, the deadline it
    got and (streams) its watched replies."""

    at: float
    probe: bool = False  # the stall probe: asked even while its read is refused to others
    method: str = ""
    kind: str = ""
    deadline: float | None = None
    replies: WatchedReplies | None = None


#: ``Stalls`` key of a connection that could not be made (every call waits for one).
CONNECTION = "connection"
#: The call being asked for in this thread (set by ``Channel`` around the stub call only).
_ASKED: ContextVar[Asked | None] = ContextVar("pachls_asked", default=None)


class CallOptions(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """The auth metadata on every call and its deadline (see the module docstring): a whole-call one on
    unary calls, an idle watch on server streams; ``DATA_METHODS`` are watched by their own methods.

    ``pachyderm_sdk``'s own interceptor turns some failures into ``ConnectionError`` / ``TypeError``;
    this one leaves every failure a ``grpc.RpcError``, which ``Channel`` maps to typed errors.
    """

    def __init__(self, metadata, timeouts: dict[str, float], stalls: Stalls, answers) -> None:
        self.metadata = list(metadata)
        self.timeouts = timeouts  # the channel's, by deadline kind (``Channel.set_deadlines`` changes them)
        self.stalls = stalls
        self.answers = answers  # True when the cluster answers a quick read (``Channel.answers``)

    def _details(self, call_details, timeout: float | None):
        return call_details._replace(metadata=[*(call_details.metadata or ()), *self.metadata], timeout=timeout)

    def _asked(self, call_details, request) -> tuple[Asked, str]:
        asked = _ASKED.get() or Asked(time.monotonic())
        kind = deadline_kind(call_details.method, request)
        if kind == "quick" and not asked.probe:
            self.stalls.refuse(call_details.method)
        asked.method, asked.kind, asked.deadline = call_details.method, kind, self.timeouts[kind]
        return asked, kind

    def intercept_unary_unary(self, continuation, call_details, request):
        asked, kind = self._asked(call_details, request)
        start = asked.at if kind == "quick" else time.monotonic()
        return continuation(self._details(call_details, max(0.0, start + asked.deadline - time.monotonic())),
                            request)

    def intercept_unary_stream(self, continuation, call_details, request):
        if call_details.method in DATA_METHODS:
            return continuation(self._details(call_details, None), request)
        asked, kind = self._asked(call_details, request)
        first = ((self.timeouts["long"], self.answers)
                 if kind == "quick" and call_details.method in BUILT_WHOLE else None)
        watch = IdleWatch(asked.deadline, since=asked.at if kind == "quick" else None, first=first)
        call = continuation(self._details(call_details, None), request)
        watch.start(call)
        asked.replies = WatchedReplies(call, watch)
        return asked.replies

    def intercept_stream_unary(self, continuation, call_details, request_iterator):
        timeout = None if call_details.method in DATA_METHODS else self.timeouts["long"]
        return continuation(self._details(call_details, timeout), request_iterator)

    def intercept_stream_stream(self, continuation, call_details, request_iterator):
        return continuation(self._details(call_details, self.timeouts["long"]), request_iterator)


class Stalls:
    """Quick reads the cluster let run out of their deadline, by method, and the connection when it could
    not be made (``CONNECTION``): refused at once (``refuse`` raises the last ``Unavailable``) until the
    cluster answers again. ``ran_out`` starts the one thread that asks the cluster (``probe``: a quick read
    that raises on failure) until it answers; ``answered`` (any call that got its answer) forgets them all."""

    def __init__(self, probe, closed) -> None:
        self.probe = probe
        self.closed = closed  # True once the channel is closed: the probe stops
        self._lock = threading.Lock()
        self._errors: dict[str, Unavailable] = {}
        self._probing = False

    def refuse(self, method: str) -> None:
        error = self._errors.get(method)
        if error is not None:
            self._start_probe()  # one runs already, unless the last one ended just before a call ran out
            raise Unavailable(f"{error.message} It has answered nothing since; it is asked again in the background.",
                              **error.details)

    def ran_out(self, method: str, error: Unavailable) -> None:
        with self._lock:
            self._errors[method] = error
        self._start_probe()

    def answered(self) -> None:
        if self._errors:
            with self._lock:
                self._errors.clear()

    def _start_probe(self) -> None:
        with self._lock:
            start, self._probing = not self._probing, True
        if start:
            threading.Thread(target=self._ask_until_answered, name="pachls-stall-probe", daemon=True).start()

    def _ask_until_answered(self) -> None:
        while not self.closed():
            asked_at = time.monotonic()
            try:
                self.probe()
            except Unavailable:
                time.sleep(max(0.0, DOWN_RECHECK - (time.monotonic() - asked_at)))  # never a busy loop
                continue
            except PfsError:
                pass  # a typed answer (no such project, no permission) is an answer
            except Exception:  # gRPC's "channel closed" once closed; anything else must not end the probe
                if self.closed():
                    break
                logger.exception("the stall probe of the Pachyderm API failed; asking again")
                time.sleep(max(0.0, DOWN_RECHECK - (time.monotonic() - asked_at)))
                continue
            # one block: a call that runs out after it starts a new probe, before it is forgotten here
            with self._lock:
                self._errors.clear()
                self._probing = False
            return
        with self._lock:
            self._probing = False


class IdleWatch:
    """Cancels a call (a ``grpc.Future``) once it has waited on the cluster for ``idle`` seconds without
    progress; ``waiting()`` / ``progress()`` mark the waits (``since``: a wait began before the call).
    ``first``: (seconds, answers) for a reply the cluster builds whole before sending it: once ``idle``
    passed without the first message, the call waits up to ``seconds`` for it if ``answers()`` (a quick
    read of the cluster) says the cluster is alive. One thread per watched call, from ``start``."""

    def __init__(self, idle: float, since: float | None = None, first: tuple[float, object] | None = None) -> None:
        self.idle = idle
        self.fired = False
        self.waited = idle  # the wait that ran out, once ``fired``
        self._since = since  # monotonic time the call began waiting on the cluster (None: not waiting)
        self._first = first
        self._extended = False  # the first message is given ``first``'s seconds
        self._replied = False
        self._done = threading.Event()

    def start(self, call: grpc.Future) -> None:
        threading.Thread(target=self._watch, args=(call,), name="pachls-idle-watch", daemon=True).start()

    def waiting(self) -> None:
        if self._since is None:  # a wait already under way (a quick read being asked for) keeps its start
            self._since = time.monotonic()

    def progress(self) -> None:
        self._replied = True
        self._since = None

    def stop(self) -> None:
        self._done.set()

    def _watch(self, call: grpc.Future) -> None:
        while True:
            since = self._since
            idle = self._first[0] if self._extended and not self._replied else self.idle
            left = idle if since is None else since + idle - time.monotonic()
            if left <= 0:
                if self._first is not None and not (self._extended or self._replied):
                    self._extended = True
                    if self._first[1]():  # alive: it is still building the reply
                        continue
                self.fired, self.waited = True, idle
                call.cancel()
                return
            if self._done.wait(left):
                return


class WatchedReplies:
    """The replies of a server stream under its ``IdleWatch``: waiting for the next reply counts as the
    cluster's time, the caller's time with one does not. ``close`` ends the call and its watch."""

    def __init__(self, call, watch: IdleWatch) -> None:
        self.call = call
        self.watch = watch

    def __iter__(self) -> WatchedReplies:
        return self

    def __next__(self):
        self.watch.waiting()
        try:
            reply = next(self.call)
        except BaseException:  # the end of the stream, or its failure: nothing more to watch
            self.watch.stop()
            raise
        self.watch.progress()
        return reply

    def close(self) -> None:
        self.watch.stop()
        self.call.cancel()  # no-op once the call ended; frees the stream when the reader stopped early


def check_seconds(**values) -> None:
    """InvalidArgument unless each value is a positive number of seconds."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InvalidArgument(f"{name} must be a positive number of seconds, not {value!r}", **{name: value})


def cluster_client(pachd_address: str | None, auth_token: str | None,
                   config_path: str | os.PathLike | None) -> tuple[Client, str]:
    """The ``pachyderm_sdk`` client and the pachd address for an explicit address, else for the active
    context of ``config_path``, ``$PACH_CONFIG`` or ``~/.pachyderm/config.json`` (as ``pachctl`` reads it)."""
    root_certs = None
    if not pachd_address:
        path = Path(config_path or os.environ.get("PACH_CONFIG") or "~/.pachyderm/config.json").expanduser()
        try:
            context = ConfigFile.from_path(path).active_context
        except FileNotFoundError:
            raise Unavailable(f"no pachd_address given and no Pachyderm config at {path}", path=str(path)) from None
        except Exception as exc:  # malformed config
            raise InvalidArgument(f"cannot read the Pachyderm config {path}: {exc}", path=str(path)) from None
        pachd_address = context.active_pachd_address
        auth_token = auth_token or context.session_token
        root_certs = context.server_cas_decoded
        if not pachd_address:
            raise InvalidArgument(f"the active context of {path} has no pachd address", path=str(path))
    try:
        client = Client.from_pachd_address(pachd_address, auth_token=auth_token, root_certs=root_certs)
    except ValueError as exc:
        raise InvalidArgument(f"invalid pachd address {pachd_address!r}: {exc}", address=pachd_address) from None
    return client, pachd_address


class Channel:
    """The PFS API of one cluster. No call is made at construction; ``rpc`` and ``stream`` first wait
    for the cluster (at most ``connect_timeout``) and raise ``Unavailable`` otherwise."""

    def __init__(self, pachd_address: str | None = None, auth_token: str | None = None,
                 config_path: str | os.PathLike | None = None, *, connect_timeout: float = 5.0,
                 rpc_timeout: float = RPC_TIMEOUT, quick_rpc_timeout: float = QUICK_RPC_TIMEOUT) -> None:
        check_seconds(connect_timeout=connect_timeout, rpc_timeout=rpc_timeout, quick_rpc_timeout=quick_rpc_timeout)
        client, address = cluster_client(pachd_address, auth_token, config_path)
        self.address = address if "://" in address else f"grpc://{address}"
        self.connect_timeout = connect_timeout
        self._timeouts: dict[str, float] = {}
        self.set_deadlines(rpc_timeout=rpc_timeout, quick_rpc_timeout=quick_rpc_timeout)
        if client.root_certs is not None:
            raw = grpc.secure_channel(client.address, grpc.ssl_channel_credentials(client.root_certs),
                                      options=CHANNEL_OPTIONS)
        else:
            raw = grpc.insecure_channel(client.address, options=CHANNEL_OPTIONS)
        self._raw = raw
        self._state = None
        self._down_at: float | None = None  # when a call last found the cluster unreachable
        self._closed = False
        self._stalls = Stalls(lambda: self._inspect_default_project(probe=True), lambda: self._closed)
        raw.subscribe(self._on_state, try_to_connect=False)
        channel = grpc.intercept_channel(raw, CallOptions(client._build_metadata(), self._timeouts, self._stalls,
                                                          self.answers))
        self.pfs = PfsStub(channel, get_transaction_id=lambda: None)
        self.grpc_channel = channel  # with the call options above, for callables that decode their own way
        # The data calls as gRPC's own callables: the stub's methods hide the call that IdleWatch cancels.
        self._get_file = channel.unary_stream("/pfs_v2.API/GetFile",
                                              request_serializer=pfs.GetFileRequest.SerializeToString,
                                              response_deserializer=protobuf.BytesValue.FromString)
        self._get_file_tar = channel.unary_stream("/pfs_v2.API/GetFileTAR",
                                                  request_serializer=pfs.GetFileRequest.SerializeToString,
                                                  response_deserializer=protobuf.BytesValue.FromString)
        self._modify_file = channel.stream_unary("/pfs_v2.API/ModifyFile",
                                                 request_serializer=pfs.ModifyFileRequest.SerializeToString,
                                                 response_deserializer=protobuf.Empty.FromString)

    @property
    def rpc_timeout(self) -> float:
        return self._timeouts["long"]

    @property
    def quick_rpc_timeout(self) -> float:
        return self._timeouts["quick"]

    def set_deadlines(self, **deadlines: float) -> None:
        """Set the deadlines given (``rpc_timeout``, ``quick_rpc_timeout``) for the calls made from now on."""
        unknown = sorted(set(deadlines) - set(DEADLINE_KINDS))
        if unknown:
            raise InvalidArgument(f"unknown deadlines {unknown}; expected {sorted(DEADLINE_KINDS)}")
        check_seconds(**deadlines)
        for name, value in deadlines.items():
            self._timeouts[DEADLINE_KINDS[name]] = float(value)

    def _on_state(self, state) -> None:
        self._state = state

    def unreachable(self, waited: float, reason: str = "") -> Unavailable:
        self._down_at = time.monotonic()
        why = f" ({reason})" if reason else ""
        return Unavailable(
            f"the Pachyderm API at {self.address} does not answer{why}; waited {waited:g} s. Check that pachd "
            "(or `jupyter pachls serve`) runs there and is reachable, or switch the backend in Settings. "
            "Nothing was changed by the failed call; the connection is retried on the next request.",
            address=self.address)

    def ready(self, probe: bool = False) -> None:
        """Wait for the connection (at most ``connect_timeout``). Once one could not be made, calls are
        refused at once while the stall probe (``probe``) waits for it, ``DOWN_RECHECK`` at a time."""
        if self._closed:
            raise Unavailable("the backend is closed")
        if self._state == grpc.ChannelConnectivity.READY:
            return
        if not (probe or _LONG_OPERATION.get()):
            self._stalls.refuse(CONNECTION)
        down = self._down_at is not None and time.monotonic() - self._down_at < self.connect_timeout
        timeout = min(DOWN_RECHECK, self.connect_timeout) if down else self.connect_timeout
        connected = grpc.channel_ready_future(self._raw)
        try:
            connected.result(timeout=timeout)
        except grpc.FutureTimeoutError:
            # else it stays subscribed to the channel until it connects: one more per probe while a
            # cluster is down (every DOWN_RECHECK), each called on every change of the channel's state
            connected.cancel()
            error = self.unreachable(timeout)
            if not probe:
                self._stalls.ran_out(CONNECTION, error)
            raise error from None
        self._down_at = None

    def error(self, exc: grpc.RpcError, what: str, watch: IdleWatch | None = None,
              deadline: float | None = None) -> PfsError:
        """The typed error of a failed call; a transport failure or a deadline says where the cluster was
        expected (``watch``: the call's idle deadline, when it has one; ``deadline``: the call's own,
        when not ``rpc_timeout``; ``rpc`` and ``stream`` pass what the call got)."""
        deadline = self.rpc_timeout if deadline is None else deadline
        if watch is not None and watch.fired:
            return self.unreachable(watch.waited, f"{what} got nothing for {watch.waited:g} s")
        error = from_rpc_error(exc, what)
        if isinstance(error, Unavailable) and "address" not in error.details:
            code = exc.code() if hasattr(exc, "code") else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return self.unreachable(deadline, f"{what} got no complete answer within {deadline:g} s")
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                return self.unreachable(0, f"{what} failed: {exc.details() if hasattr(exc, 'details') else exc}")
        return error

    def _failed(self, exc: grpc.RpcError, what: str, asked: Asked) -> PfsError:
        """The typed error of a call ``rpc`` or ``stream`` made; a quick read that ran out of its deadline
        is refused to others until the cluster answers again (``Stalls``)."""
        watch = asked.replies.watch if asked.replies is not None else None
        error = self.error(exc, what, watch, asked.deadline)
        ran_out = ((watch is not None and watch.fired)
                   or (hasattr(exc, "code") and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED))
        if asked.kind == "quick" and ran_out and isinstance(error, Unavailable) and not asked.probe:
            self._stalls.ran_out(asked.method, error)
        return error

    def rpc(self, what: str, fn, *, _asked: Asked | None = None, **kwargs):
        """A unary call (``fn``, a method of ``self.pfs``) once the cluster is ready; ``what`` names it.
        Its deadline is the one of its method (see the module docstring)."""
        asked = _asked or Asked(time.monotonic())
        self.ready(probe=asked.probe)
        token = _ASKED.set(asked)
        try:
            answer = fn(**kwargs)
        except grpc.RpcError as exc:
            raise self._failed(exc, what, asked) from None
        finally:
            _ASKED.reset(token)
        self._stalls.answered()
        return answer

    def ping(self) -> None:
        """Inspect the default project, a quick read (a typed error within ``quick_rpc_timeout``): the
        health probe. pachd answers it from its metadata store without reading any repo, so a poll costs
        the same however big the cluster; it needs the token when auth is on (a wrong one shows); and a
        cluster that never answers is reported within seconds, not after ``rpc_timeout``."""
        self._inspect_default_project()

    def answers(self) -> bool:
        """Whether the cluster answers a quick read now (refused at once while it is known stalled)."""
        try:
            self._inspect_default_project()
        except Unavailable:
            return False
        except PfsError:
            return True  # a typed answer (no permission) is an answer
        except ValueError:  # gRPC's "channel closed"
            return False
        return True

    def _inspect_default_project(self, probe: bool = False) -> None:
        self.rpc("InspectProject", self.pfs.inspect_project, _asked=Asked(time.monotonic(), probe=probe),
                 project=pfs.Project(name=DEFAULT_PROJECT))

    def stream(self, what: str, fn, **kwargs) -> Iterator:
        """The replies of a server stream (``fn``, a method of ``self.pfs``), as ``rpc``, under an idle
        deadline. Closing the iterator early cancels the call."""
        asked = Asked(time.monotonic())
        self.ready()
        replies = fn(**kwargs)
        try:
            while True:
                token = _ASKED.set(asked)  # only while the stub asks: the caller's own calls are theirs
                try:
                    reply = next(replies)
                except StopIteration:
                    self._stalls.answered()
                    return
                finally:
                    _ASKED.reset(token)
                yield reply
        except grpc.RpcError as exc:
            raise self._failed(exc, what, asked) from None
        finally:
            if asked.replies is not None:
                asked.replies.close()

    def get_file(self, request: pfs.GetFileRequest, *, tar: bool = False) -> Iterator[bytes]:
        """The chunks of ``GetFile`` (``GetFileTAR`` with ``tar``), under an idle deadline (a big file is
        never cut for its size). Closing the iterator early cancels the call."""
        self.ready()
        call = (self._get_file_tar if tar else self._get_file)(request)
        watch = IdleWatch(self.rpc_timeout)
        watch.start(call)
        try:
            while True:
                watch.waiting()
                try:
                    message = next(call)
                except StopIteration:
                    return
                watch.progress()  # the caller's time with the chunk does not count as the cluster's
                yield message.value
        except grpc.RpcError as exc:
            raise self.error(exc, "GetFileTAR" if tar else "GetFile", watch) from None
        finally:
            watch.stop()
            call.cancel()  # no-op once the call ended; frees the stream when the reader stopped early

    def modify_file(self, requests: Iterable[pfs.ModifyFileRequest]) -> None:
        """One ``ModifyFile`` stream, under an idle deadline: the cluster must take each request, then
        answer, within ``rpc_timeout`` of the last one (an upload is never cut for its size)."""
        self.ready()
        watch = IdleWatch(self.rpc_timeout)

        def taken():
            for request in requests:  # making a request is the caller's time, not the cluster's
                watch.waiting()
                yield request
                watch.progress()  # gRPC asks for the next one once the cluster took this one
            watch.waiting()  # all sent: the answer is due

        call = self._modify_file.future(taken())
        watch.start(call)
        try:
            call.result()
        except grpc.FutureCancelledError:
            raise self.unreachable(self.rpc_timeout, f"ModifyFile got nothing for {self.rpc_timeout:g} s") from None
        except grpc.RpcError as exc:
            raise self.error(exc, "ModifyFile", watch) from None
        finally:
            watch.stop()

    def close(self) -> None:
        self._closed = True
        try:
            self._raw.unsubscribe(self._on_state)
        except Exception:
            pass
        self._raw.close()
