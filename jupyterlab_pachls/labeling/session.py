"""Labeling sessions: versioned data in, one label commit per round out.

A session binds a data source (``images@master`` pinned to a commit, optional
glob) and a label target (``labels@master``) to a Label Studio project. The
data is mounted read-only at its pinned commit and Label Studio reads the
files from that mount (local-file serving rooted at the mount dir); the labels
branch is mounted read-write. **Commit labels** reads every annotation through
Label Studio's API, renders one canonical label file per data file, writes
the files that differ straight into the labels mount's stage
(``MountManager.stage_files``: all or nothing, no symlink followed) and commits them as ONE commit
with the user's message, the Jupyter user as author, and the data commits as
provenance. A failure anywhere leaves no partial commit: files written to the
mount stay staged and the next attempt re-renders the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import httpx

from ..atomic_write import write_json
from ..identity import EmailTaken
from ..pfs.address import normalize_path, parse_address
from ..pfs.backend import Backend
from ..pfs.errors import Conflict, InvalidArgument, InvalidPath, NotFound, Unavailable
from ..pfs.model import Commit, Provenance, _Json
from .history import blame, diff_labels
from ..pfs.globbing import glob_plan
from .labelfile import SUFFIX, authors, content, data_path, decode, encode, label_document, label_path, same_labels
from .templates import TEMPLATES, config_from_request

IMPORT_BATCH = 5000
#: Versions of each label file a session remembers having committed.
COMMITTED_KEPT = 20
#: Seconds a call waits for Label Studio to answer (a restart after a crash takes a few); then 503.
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class CallDeadline:
    """How long one kind of Label Studio call may take before it answers ``unavailable``.

    ``ready``: seconds to wait for a (re)starting Label Studio before the call. ``timeout``: httpx's
    connect, then read and write deadlines, which are idle deadlines (no byte for that long), so a
    big answer still arriving is not cut; Label Studio sends its JSON export only once it is built,
    so the read deadline also bounds the wait for the first byte. ``read_most``: how far the read
    deadline of an export stretches for a session whose exports take long."""

    kind: str
    ready: float
    timeout: httpx.Timeout
    read_most: float

    def reading_at_least(self, seconds: float) -> "CallDeadline":
        """This deadline with a read deadline of at least ``seconds``, at most ``read_most``."""
        read = max(self.timeout.read, min(seconds, self.read_most))
        return CallDeadline(self.kind, self.ready, httpx.Timeout(self.timeout.connect, read=read,
                                                                 write=self.timeout.write, pool=self.timeout.pool),
                            self.read_most)


#: What the panel polls (pending labels): it must answer within seconds, also when Label Studio
#: accepts and never answers. Label Studio builds an export whole before its first byte (1,000
#: annotated tasks: 1-2 s idle, 5-6 s on a loaded 2-core machine), so the export of a session whose
#: last one took long gets EXPORT_ALLOWANCE times that, up to 30 s.
POLL = CallDeadline("poll", ready=2.0, timeout=httpx.Timeout(5.0, connect=2.0), read_most=30.0)
EXPORT_ALLOWANCE = 3.0
#: A poll of a session whose last export took (or ran out after) the poll's longest read deadline
#: answers unavailable at once for this many seconds, instead of leaving Label Studio building one
#: more export nobody reads; then one poll tries again.
SLOW_EXPORT_RETRY = 300.0
#: The reads of a label commit (and the pending check of a session's deletion): longer, since the
#: user waits for them; a big round's export (about 12,000 annotated tasks take over 60 s on a loaded
#: machine) gets EXPORT_ALLOWANCE times the session's last one, up to 300 s. Nothing is written
#: before they answer, so running out leaves no half-commit and loses no label.
COMMIT = CallDeadline("commit", ready=READY_TIMEOUT, timeout=httpx.Timeout(60.0, connect=5.0), read_most=300.0)
#: Project creation, task imports (one request per IMPORT_BATCH tasks, answered when all are in),
#: full exports, resyncs, accounts.
WORK = CallDeadline("work", ready=READY_TIMEOUT, timeout=httpx.Timeout(300.0, connect=5.0), read_most=300.0)


@dataclass(frozen=True)
class Deadlines:
    """The deadline of each kind of Label Studio call a service makes (the defaults above)."""

    poll: CallDeadline = POLL
    commit: CallDeadline = COMMIT
    work: CallDeadline = WORK

    @classmethod
    def reading(cls, *, poll: float, commit: float, work: float) -> "Deadlines":
        """The defaults with these read deadlines, in seconds (``PachlsConfig.label_studio_*_timeout``);
        a connection is waited for at most as long, an export stretches to at least as long."""
        def kind(default: CallDeadline, read: float) -> CallDeadline:
            if isinstance(read, bool) or not isinstance(read, (int, float)) or not read > 0:
                raise InvalidArgument(f"a Label Studio {default.kind} deadline must be a positive number of "
                                      f"seconds, not {read!r}", kind=default.kind)
            timeout = httpx.Timeout(float(read), connect=min(default.timeout.connect, read))
            return CallDeadline(default.kind, default.ready, timeout, max(default.read_most, read))

        return cls(kind(POLL, poll), kind(COMMIT, commit), kind(WORK, work))


@dataclass
class Session(_Json):
    id: str
    title: str
    data_repo: str
    data_branch: str
    data_commit: str
    glob: str
    labels_repo: str
    labels_branch: str
    project_id: int
    data_mount: str
    labels_mount: str
    data_key: str
    created_by: str
    created: float
    tasks: int = 0
    #: Label Studio annotation id (str) -> the committed annotation a resync recreated it from.
    restored: dict = field(default_factory=dict)
    #: label path -> sha256 of the versions this session committed (the latest few): what a resync
    #: after a rollback would replace was committed once, and can be found again in history.
    committed: dict = field(default_factory=dict)
    #: label paths whose annotations this project held (loaded from the labels branch or committed
    #: from it): only those can be deleted by deleting their annotations here.
    held: list = field(default_factory=list)
    #: the Label Studio labeling config (XML), in each label commit's metadata (``pachls.label_config``;
    #: empty for a session made before it was kept: read from the project then)
    label_config: str = ""
    #: a training format (formats.FORMATS) each label commit also carries under EXPORTS/<format>/, or ""
    export_format: str = ""

    def to_json(self) -> dict:
        # the scalars only: the containers change under a label commit or a resync in a worker thread
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("restored", "committed", "held", "label_config")}


@dataclass(frozen=True)
class Pending(_Json):
    added: tuple[str, ...]
    modified: tuple[str, ...]
    deleted: tuple[str, ...]
    annotators: tuple[str, ...]  # who created the annotations of the changed label files
    data_commits: tuple[str, ...]
    files: dict = field(default_factory=dict, repr=False)  # label path -> bytes (None: delete)
    changed_by: tuple[str, ...] = ()  # who made the new or changed annotations

    @property
    def count(self) -> int:
        return len(self.added) + len(self.modified) + len(self.deleted)

    def to_json(self) -> dict:
        return {"count": self.count, "added": list(self.added), "modified": list(self.modified),
                "deleted": list(self.deleted), "annotators": list(self.annotators),
                "changed_by": list(self.changed_by), "data_commits": list(self.data_commits)}


@dataclass(frozen=True)
class SessionRequest:
    """A labeling session's arguments, checked without touching the store or Label Studio."""

    source: Any
    target: Any
    data_branch: str
    pattern: str
    labels_branch: str
    config: Any

    @classmethod
    def parse(cls, *, data: str, labels: str, glob: str | None = None, template: str | None = None,
              classes: list[str] | None = None, xml: str | None = None) -> "SessionRequest":
        source = parse_address(data)
        target = parse_address(labels)
        if target.ref is not None and target.is_commit:
            raise InvalidArgument("the label target must be a branch (labels@master), not a commit")
        if target.ancestors or target.path not in (None, "/"):
            raise InvalidArgument("the label target must be repo@branch")
        pattern = glob or source.path or "/**"
        normalize_path(pattern)  # one rule with paths: no control or text-direction character, no '..'
        if not pattern.startswith("/"):
            raise InvalidPath(f"the glob {pattern[:80]!r} is relative; paths are repo-absolute (start with '/')",
                              path=pattern[:80])
        glob_plan(pattern)  # a bad pattern is refused before anything is created
        return cls(source=source, target=target, data_branch=source.ref or "master", pattern=pattern,
                   labels_branch=target.ref or "master", config=config_from_request(template, classes, xml))


class ConfirmationRequired(Conflict):
    code = "confirmation_required"


class PendingLabels(Conflict):
    code = "pending_labels"


#: Where a session's chosen training format is written in each label commit (``/exports/COCO/...``).
EXPORTS = "/exports"


def export_format_name(name: object) -> str:
    """A session's ``export_format``: a format's canonical name, or "" for none."""
    if name is None or name == "":
        return ""
    from .formats import export_format

    return export_format(name).name


#: Seconds a label commit waits for another one into the same labels mount.
COMMIT_WAIT = 300


class LabelingService:
    """Sessions, pending labels and label commits; usable without tornado."""

    def __init__(self, backend: Callable[[], Backend], mounts: Callable[[], Any], label_studio,
                 state_dir: str | os.PathLike, *, baked_origin: str | None = None,
                 deadlines: Deadlines = Deadlines()) -> None:
        self._backend = backend
        self._mounts = mounts
        self.label_studio = label_studio
        self.deadlines = deadlines
        self.baked_origin = baked_origin
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._path = self.state_dir / "sessions.json"
        #: Held by an operation on sessions from start to end, Label Studio calls included.
        self._lock = threading.RLock()
        #: Held for a moment only (a copy, one change; never across I/O), so the event loop and the
        #: short threads may take it: the sessions dict and the containers of each session are read
        #: as a copy taken under it and changed under it, never iterated while a worker changes them.
        self._snapshot_lock = threading.Lock()
        #: One write of sessions.json at a time, each of a copy taken under it: the last one the newest.
        self._save_lock = threading.Lock()
        self._accounts_lock = threading.Lock()
        #: session id -> the lock held by whatever changes that session's annotations in Label Studio
        #: (a resync's deletes and recreations, loading label files, an import, its deletion) and by a
        #: label commit from before its reads to its end, so a commit never exports a half-changed
        #: project. Order: _lock, then a session lock, then a commit lock; a commit never takes _lock.
        #: Changed under _snapshot_lock; dropped with the session.
        self._session_locks: dict[str, threading.RLock] = {}
        #: labels mount -> the lock its label commits take one at a time; dropped when no session
        #: writes to that mount any more (see _drop_commit_lock). Changed under _snapshot_lock.
        self._commit_locks: dict[str, threading.Lock] = {}
        #: session id -> (seconds its last export of annotated tasks took, or the read deadline it ran
        #: out of; time.monotonic() then) (see POLL and _export); under _snapshot_lock.
        self._export_seconds: dict[str, tuple[float, float]] = {}
        #: (labels repo, branch) -> {path: (store hash, sha256)} of its label files when last walked
        #: (a real pachd's hash is opaque): replaced whole by each walk, so it holds what the branch holds
        #: (a bounded LRU missed every file once a branch had more); dropped with the last session of
        #: that branch. Each map is never changed once in place; swapped under _snapshot_lock.
        self._digests: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
        self._sessions: dict[str, Session] = {}
        if self._path.exists():
            for raw in json.loads(self._path.read_text()):
                session = Session(**raw)
                self._sessions[session.id] = session

    @property
    def backend(self) -> Backend:
        backend = self._backend()
        if backend is None:
            raise Unavailable("the versioned store is not available")
        return backend

    @property
    def mounts(self):
        mounts = self._mounts()
        if mounts is None:
            raise Unavailable("mounts are not available, and labeling needs them to serve the data")
        return mounts

    # -- persistence ---------------------------------------------------------------------
    def _save(self) -> None:
        """Write every session."""
        with self._save_lock:
            with self._snapshot_lock:
                rows = [asdict(s) for s in self._sessions.values()]
            write_json(self._path, rows)

    def list_sessions(self) -> list[Session]:
        with self._snapshot_lock:
            sessions = list(self._sessions.values())
        return sorted(sessions, key=lambda s: s.created, reverse=True)

    def get(self, session_id: str) -> Session:
        with self._snapshot_lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"labeling session {session_id!r} not found", session=session_id)
        return session

    # -- Label Studio --------------------------------------------------------------------
    def _ls(self, deadline: CallDeadline | None = None) -> tuple[str, dict[str, str]]:
        """Label Studio's URL and auth headers once it is up (waiting at most ``deadline``'s ``ready``)."""
        deadline = deadline or self.deadlines.work
        if self.label_studio is None:
            raise Unavailable("Label Studio is not configured")
        self.label_studio.start()
        if not self.label_studio.ready():  # an external one is asked by the call itself
            self.label_studio.wait_ready(deadline.ready)
        return self.label_studio.url, {"Authorization": f"Token {self.label_studio.credentials.token}"}

    def _request(self, method: str, path: str, *, deadline: CallDeadline | None = None, **kwargs) -> Any:
        """One call to Label Studio once it is up, under ``deadline`` (None: the service's work one)."""
        deadline = deadline or self.deadlines.work
        url, headers = self._ls(deadline)
        return self._send(url, headers, method, path, deadline=deadline, **kwargs)

    def _send(self, url: str, headers: dict[str, str], method: str, path: str, *, deadline: CallDeadline,
              **kwargs) -> Any:
        """One request to a Label Studio known to be up (``_ls``)."""
        try:
            response = httpx.request(method, url + path, headers=headers, timeout=deadline.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            if self.label_studio.crashed(0):
                raise self.label_studio.unavailable() from exc
            raise self._timed_out(method, path, deadline, exc) from exc
        except httpx.HTTPError as exc:
            # Killed or restarting under the call: say so (the watchdog brings it back); else its answer.
            if self.label_studio.crashed():
                raise self.label_studio.unavailable() from exc
            raise Unavailable(f"Label Studio did not answer: {exc}; try again",
                              label_studio="unreachable") from exc
        if response.status_code >= 400:
            text = response.text[:500]
            if response.status_code == 404:
                raise NotFound(f"Label Studio: {text}")
            if response.status_code < 500:
                raise InvalidArgument(f"Label Studio refused the request: {text}")
            raise Unavailable(f"Label Studio failed ({response.status_code}): {text}")
        return response.json() if response.content else None

    @staticmethod
    def _timed_out(method: str, path: str, deadline: CallDeadline, exc: httpx.TimeoutException) -> Unavailable:
        """The error of a call that ran out of its deadline: which call, which deadline, how long."""
        # one client per request (httpx.request): no pool to wait for
        phase, what = {httpx.ConnectTimeout: ("connect", "accept the connection of"),
                       httpx.WriteTimeout: ("write", "take")}.get(type(exc), ("read", "answer"))
        seconds = getattr(deadline.timeout, phase)
        return Unavailable(f"Label Studio did not {what} {method} {path} within {seconds:g} s (the {phase} deadline "
                           f"of its {deadline.kind} calls); it is overloaded or stuck: try again",
                           label_studio="timeout", call=f"{method} {path}", timed_out=phase, deadline=seconds,
                           kind=deadline.kind)

    def _users(self, deadline: CallDeadline | None = None) -> dict[int, str]:
        return {u["id"]: u.get("email") or u.get("username") or str(u["id"])
                for u in self._request("GET", "/api/users/", deadline=deadline)}

    # -- sessions ------------------------------------------------------------------------
    def create_session(self, *, data: str, labels: str, glob: str | None = None, template: str | None = None,
                       classes: list[str] | None = None, xml: str | None = None, user: str = "",
                       export_format: str | None = None) -> Session:
        """Create (or reopen, when one with the same data, glob and target exists) a labeling session.
        ``export_format``: a training format (COCO, YOLO, ...) each label commit also carries, rendered
        into ``/exports/<format>/`` of the same commit."""
        export_format = export_format_name(export_format)
        request = SessionRequest.parse(data=data, labels=labels, glob=glob, template=template, classes=classes,
                                       xml=xml)
        source, target, config = request.source, request.target, request.config
        data_branch, pattern, labels_branch = request.data_branch, request.pattern, request.labels_branch
        if export_format:  # refused now, not at every label commit
            from .formats import check_format_fits

            export_format = check_format_fits(config.xml, export_format)
        with self._lock:
            for session in self.list_sessions():
                if (session.data_repo, session.data_branch, session.glob, session.labels_repo,
                        session.labels_branch) == (source.repo_key, data_branch, pattern, target.repo_key,
                                                   labels_branch):
                    return session
            backend = self.backend
            commit = backend.inspect_commit(source.repo_key, data_branch if not source.ancestors else source.ref_text)
            try:
                backend.inspect_repo(target.repo_key)
            except NotFound:
                backend.create_repo(target.repo_key, description=f"labels of {source.repo_key}")
            try:
                backend.inspect_branch(target.repo_key, labels_branch)
            except NotFound:
                backend.create_branch(target.repo_key, labels_branch)
            data_mount = self._ensure_mount(source.repo_key, commit=commit.id, mode="ro",
                                            name=f"{source.repo}_{commit.short_id}")
            labels_mount = self._ensure_mount(target.repo_key, branch=labels_branch, mode="rw")
            title = f"{source.repo_key}@{data_branch} \u2192 {target.repo_key}@{labels_branch}"
            project = self._request("POST", "/api/projects/", json={"title": title[:50], "label_config": config.xml,
                                                                  "description": f"data {source.repo_key}@{commit.id}"})
            session = Session(
                id=uuid.uuid4().hex[:12], title=title, data_repo=source.repo_key, data_branch=data_branch,
                data_commit=commit.id, glob=pattern, labels_repo=target.repo_key, labels_branch=labels_branch,
                project_id=project["id"], data_mount=data_mount, labels_mount=labels_mount,
                data_key=config.data_key, created_by=user, created=time.time(), label_config=config.xml,
                export_format=export_format,
            )
            self._allow_serving(session, data_mount)
            session.tasks = len(self._import(session, commit.id, data_mount, set()))
            with self._snapshot_lock:
                self._sessions[session.id] = session
            self._save()
            self._load_labels(session, None)
            return session

    def _ensure_mount(self, repo: str, *, branch: str | None = None, commit: str | None = None,
                      mode: str, name: str | None = None) -> str:
        """The name of a mount of ``repo`` at ``commit`` (read-only) or ``branch`` (read-write), made if missing."""
        for status in self.mounts.list():
            if status.repo != repo or status.mode != mode:
                continue
            if (commit is not None and status.commit == commit) or (commit is None and status.branch == branch):
                return status.name
        return self.mounts.mount(repo, branch, commit=commit, mode=mode, name=name).name

    def _data_prefix(self, mount: str) -> str:
        """A mount's folder relative to Label Studio's document root (the ``d=`` of its local-file URLs)."""
        mountpoint = self.mounts.status(mount).mountpoint
        root = getattr(self.label_studio, "document_root", None)
        return os.path.relpath(mountpoint, root) if root else mount

    def _served_at(self) -> str:
        """The path Label Studio's pages are served under in the browser (the proxy's, when managed).

        Task URLs are loaded by Label Studio's frontend as they are, so they carry that path."""
        public = getattr(self.label_studio, "public_url", None)
        return urllib.parse.urlsplit(public).path.rstrip("/") if public else ""

    def _allow_serving(self, session: Session, mount: str) -> None:
        """Label Studio serves a local file only below a Local Files storage of some project."""
        self._request("POST", "/api/storages/localfiles/", json={
            "project": session.project_id, "path": self.mounts.status(mount).mountpoint,
            "use_blob_urls": True, "title": f"pachls {mount}",
            "description": "data served from the read-only mount (tasks are imported by jupyterlab-pachls)",
        })

    def _import(self, session: Session, commit: str, mount: str, known: set[str]) -> set[str]:
        """Create a task for every data file matching the session's glob and not yet imported; their paths."""
        extensions = next((t.extensions for t in TEMPLATES.values() if t.data_key == session.data_key), ())
        prefix = self._data_prefix(mount)
        tasks = []
        for info in self.backend.glob(session.data_repo, commit, session.glob):
            if info.is_dir or info.path in known:
                continue
            if extensions and not info.path.lower().endswith(extensions):
                continue
            reference = urllib.parse.quote(prefix + info.path)
            tasks.append({session.data_key: f"{self._served_at()}/data/local-files/?d={reference}",
                          "pachls_path": info.path, "pachls_commit": commit})
        for start in range(0, len(tasks), IMPORT_BATCH):
            self._request("POST", f"/api/projects/{session.project_id}/import",
                          json=tasks[start:start + IMPORT_BATCH], params={"commit_to_project": "true"})
        return {task["pachls_path"] for task in tasks}

    def _load_labels(self, session: Session, paths: set[str] | None) -> int:
        """Load the label files the labels branch holds for the data files ``paths`` (None: all the
        project's) into the project as annotations, as their original authors (as a resync does), so a
        new session or newly imported data starts with nothing pending. Tasks that have annotations
        are left as they are. Under the session's lock: a label commit never sees some of them."""
        with self._session_held(session.id):
            return self._load_labels_held(session, paths)

    def _load_labels_held(self, session: Session, paths: set[str] | None) -> int:
        try:
            head = self.backend.inspect_branch(session.labels_repo, session.labels_branch).head
        except NotFound:
            return 0
        if head is None:
            return 0
        plan = self._resync_plan(session, head.id)
        user_ids = {email.lower(): uid for uid, email in plan["users"].items()}
        loaded = 0
        for path, (task, current, annotations) in plan["actions"].items():
            if current or not annotations or (paths is not None and path not in paths):
                continue
            loaded += self._recreate(session, task, annotations, user_ids)
            self._save()
        return loaded

    def _recreate(self, session: Session, task: dict, annotations: list[dict], user_ids: dict[str, int]) -> int:
        """Make ``annotations`` (a label file's) the task's, each as its original author (``completed_by``,
        the Label Studio user of its ``created_by``, made if missing); the session remembers what each
        was made from, so the next label commit writes it back exactly as committed."""
        for annotation in annotations:
            body = {"result": annotation.get("result") or [], "lead_time": annotation.get("lead_time"),
                    "was_cancelled": bool(annotation.get("was_cancelled")),
                    "ground_truth": bool(annotation.get("ground_truth"))}
            creator = authors(annotation)[0]
            if creator and "@" in creator:
                try:
                    body["completed_by"] = self._user_id(creator, user_ids)
                except InvalidArgument:
                    pass  # no account for it (Label Studio refused the address); the label file keeps it
            made = self._request("POST", f"/api/tasks/{task['id']}/annotations/", json=body)
            with self._snapshot_lock:
                session.restored[str(made["id"])] = annotation
        held = label_path(task["data"]["pachls_path"])
        with self._snapshot_lock:
            if annotations and held not in session.held:
                session.held.append(held)
        return len(annotations)

    def data_status(self, session_id: str) -> dict:
        """How far the data branch moved since the session's pinned commit."""
        session = self.get(session_id)
        head = self.backend.inspect_branch(session.data_repo, session.data_branch).head
        behind = 0
        if head is not None and head.id != session.data_commit:
            for commit in self.backend.list_commits(session.data_repo, head.id, limit=1000):
                if commit.id == session.data_commit:
                    break
                behind += 1
        return {"data_commit": session.data_commit, "head": head.id if head else None, "behind": behind}

    def import_new_data(self, session_id: str) -> Session:
        """Pin the session to the data branch head and add tasks for files that are new there."""
        with self._lock:
            self.get(session_id)
            with self._session_held(session_id):
                return self._import_new_data_held(self.get(session_id))

    def _import_new_data_held(self, session: Session) -> Session:
        head = self.backend.inspect_branch(session.data_repo, session.data_branch).head
        if head is None or head.id == session.data_commit:
            return session
        known = {t["data"].get("pachls_path") for t in self._export(session, all_tasks=True)}
        mount = self._ensure_mount(session.data_repo, commit=head.id, mode="ro",
                                   name=f"{parse_address(session.data_repo).repo}_{head.short_id}")
        self._allow_serving(session, mount)
        new = self._import(session, head.id, mount, known)
        with self._snapshot_lock:  # a label commit's _save() copies the session meanwhile
            session.tasks += len(new)
            session.data_commit, session.data_mount = head.id, mount
        self._save()
        self._load_labels(session, new)
        return session

    # -- pending and commit ----------------------------------------------------------------
    def _export(self, session: Session, *, all_tasks: bool = False,
                deadline: CallDeadline | None = None) -> list[dict]:
        """Tasks with their annotations, as Label Studio's JSON export gives them (annotated ones only,
        unless ``all_tasks``: exporting every task of a big project costs many times more)."""
        deadline = deadline or self.deadlines.work
        params = {"exportType": "JSON"}
        if all_tasks:
            params["download_all_tasks"] = "true"
            return self._request("GET", f"/api/projects/{session.project_id}/export", params=params,
                                 deadline=deadline)
        path = f"/api/projects/{session.project_id}/export"
        with self._snapshot_lock:
            took, when = self._export_seconds.get(session.id, (0.0, 0.0))
        if deadline.kind == "poll" and took >= deadline.read_most and time.monotonic() - when < SLOW_EXPORT_RETRY:
            raise Unavailable(
                f"Label Studio's last export of this session's annotations took {took:g} s or more, longer than "
                f"a poll waits ({deadline.read_most:g} s); pending labels are asked again in at most "
                f"{SLOW_EXPORT_RETRY:g} s, and a label commit waits longer", label_studio="slow_export",
                call=f"GET {path}", kind=deadline.kind, last_export_seconds=took)
        deadline = deadline.reading_at_least(EXPORT_ALLOWANCE * took)
        url, headers = self._ls(deadline)  # not timed: a restarting Label Studio is waited for here
        started = time.monotonic()
        try:
            tasks = self._send(url, headers, "GET", path, params=params, deadline=deadline)
        except Unavailable as exc:
            if exc.details.get("label_studio") == "timeout" and exc.details.get("timed_out") == "read":
                self._export_took(session, deadline.timeout.read)  # at least that: the next one waits longer
            raise
        self._export_took(session, time.monotonic() - started)
        return tasks

    def _export_took(self, session: Session, seconds: float) -> None:
        with self._snapshot_lock:
            if session.id in self._sessions:  # a deleted session's entry is not brought back
                self._export_seconds[session.id] = (seconds, time.monotonic())

    def _committed_digests(self, session: Session) -> dict[str, str]:
        """label path -> sha256 of its bytes on the labels branch.

        A store's file hash is the bytes' sha256 only when it says so (``content_sha256``; a real
        pachd's is opaque): otherwise the content is read. Label files are small, and a file is read
        again only when the store's hash of it changed (equal hashes within one store, equal content)."""
        digests: dict[str, str] = {}
        branch = (session.labels_repo, session.labels_branch)
        try:
            infos = [i for i in self.backend.walk(*branch) if not i.is_dir]
        except NotFound:
            return digests
        with self._snapshot_lock:
            known = self._digests.get(branch, {})
        walked: dict[str, tuple[str, str]] = {}
        for info in infos:
            digest = info.content_sha256
            if digest is None and info.hash and known.get(info.path, ("", ""))[0] == info.hash:
                digest = known[info.path][1]
            if digest is None:
                try:
                    raw = self.backend.get_file(session.labels_repo, session.labels_branch, info.path)
                except NotFound:
                    continue  # deleted meanwhile
                digest = hashlib.sha256(raw).hexdigest()
            if info.hash and info.content_sha256 is None:
                walked[info.path] = (info.hash, digest)
            digests[info.path] = digest
        with self._snapshot_lock:  # never _lock: a poll must not wait for a long operation
            if any((s.labels_repo, s.labels_branch) == branch for s in self._sessions.values()):
                self._digests[branch] = walked
        return digests
        for info in infos:
            key = (session.labels_repo, info.path, info.hash)
            with self._snapshot_lock:
                digest = info.content_sha256 or (self._digests.get(key) if info.hash else None)
            if digest is None:
                try:
                    raw = self.backend.get_file(session.labels_repo, session.labels_branch, info.path)
                except NotFound:
                    continue  # deleted meanwhile
                digest = hashlib.sha256(raw).hexdigest()
                if info.hash:
                    with self._snapshot_lock:  # never _lock: a poll must not wait for a long operation
                        self._digests[key] = digest
            digests[info.path] = digest
        return digests

    def _render(self, session: Session, task: dict, users: dict[int, str]) -> dict:
        path = task["data"]["pachls_path"]
        return label_document(repo=session.data_repo, commit=task["data"].get("pachls_commit"), path=path,
                              task=task, users=users, restored=session.restored)

    def pending(self, session_id: str) -> Pending:
        """What a label commit would change now: label files added, modified, deleted.

        What the panel polls: Label Studio gets the poll deadline, and no lock a long operation holds
        is taken (a label commit running meanwhile does not delay the answer).

        A committed label file is deleted only when its annotations were in this project (loaded
        from the labels branch, or committed from it) and all were deleted here: one this project
        never held is not this session's to delete. A label file whose annotations are what is
        committed is unchanged, whatever else differs (an old file's Label Studio task id, the data
        commit of a later session): its committed bytes stay.
        """
        return self._pending(self.get(session_id), self.deadlines.poll)

    def _pending(self, session: Session, deadline: CallDeadline) -> Pending:
        users = self._users(deadline)
        committed = self._committed_digests(session)
        _, _, in_scope = glob_plan(session.glob)
        added, modified, annotators, changers, commits, files = [], [], set(), set(), set(), {}
        labeled = set()
        for task in self._export(session, deadline=deadline):
            path = task["data"].get("pachls_path")
            if not path or not task.get("annotations"):
                continue
            target = label_path(path)
            labeled.add(target)
            document = self._render(session, task, users)
            raw = encode(document)
            if committed.get(target) == hashlib.sha256(raw).hexdigest():
                continue
            committed_document = self._committed_document(session, target) if target in committed else None
            if committed_document is not None and same_labels(committed_document, document):
                continue
            (modified if target in committed else added).append(target)
            files[target] = raw
            annotators.update(authors(a)[0] for a in document["annotations"] if authors(a)[0])
            before = {a.get("id"): a for a in (committed_document or {}).get("annotations", [])}
            changers.update(authors(a)[1] for a in document["annotations"]
                            if authors(a)[1] and content(a) != content(before.get(a["id"], {})))
            commits.add(document["data"]["commit"])
        with self._snapshot_lock:
            held = set(session.held) | set(session.committed)
        deleted = [p for p in committed if p not in labeled and p in held and p.endswith(SUFFIX)
                   and in_scope(data_path(p))]
        files.update((p, None) for p in deleted)
        return Pending(tuple(sorted(added)), tuple(sorted(modified)), tuple(sorted(deleted)),
                       tuple(sorted(annotators)), tuple(sorted(commits)), files, tuple(sorted(changers)))

    def _committed_document(self, session: Session, target: str) -> dict | None:
        """The label file ``target`` on the labels branch (None if missing or unreadable)."""
        try:
            document = decode(self.backend.get_file(session.labels_repo, session.labels_branch, target))
        except (NotFound, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def commit_labels(self, session_id: str, *, message: str, author: str) -> Commit:
        """Write every pending label file into the labels mount and commit them as ONE commit."""
        if not isinstance(message, str) or not message.strip():
            raise InvalidArgument("a commit message is required")
        session = self.get(session_id)
        # The session's lock first (never _lock: a resync holding it may wait for this commit's lock):
        # a resync or an import changing this project's annotations ends before this commit reads them.
        with self._session_held(session_id, wait=COMMIT_WAIT):
            self.get(session_id)  # deleted while this waited: NotFound
            return self._commit_labels_held(session, message=message, author=author)

    def _commit_labels_held(self, session: Session, *, message: str, author: str) -> Commit:
        # One label commit at a time per labels mount: sessions writing to the same labels branch
        # share its mount, and one's files must not ride along in the other's commit. A second
        # press waits for the first, then commits what is left (or finds nothing to commit).
        lock = self._hold_commit_lock(session.labels_mount)
        if lock is None:
            raise Conflict(f"another label commit into {session.labels_repo}@{session.labels_branch} "
                           f"has been running for over {COMMIT_WAIT} s; try again when it is done")
        try:
            pending = self._pending(session, self.deadlines.commit)
            if pending.count == 0:
                raise InvalidArgument("nothing to commit: no annotation changed since the last label commit")
            self._unstage_stale(session, pending)
            # straight into the mount's stage (not file by file through the kernel); no symlink followed;
            # the chosen training format rides in the same commit
            staged = dict(pending.files)
            if session.export_format:
                staged.update(self._export_files(session, pending.files))
            self.mounts.stage_files(session.labels_mount, staged)
            summary = {"added": len(pending.added), "modified": len(pending.modified),
                       "deleted": len(pending.deleted), "session": session.id,
                       "project": session.project_id}
            try:
                landed = self.mounts.commit(
                    session.labels_mount, message=message.strip(), author=author,
                    provenance=[Provenance(session.data_repo, c) for c in pending.data_commits] or
                    [Provenance(session.data_repo, session.data_commit)],
                    metadata={"pachls.annotators": ",".join(pending.annotators),
                              "pachls.changed_by": ",".join(pending.changed_by),
                              "pachls.label_config": self._label_config(session),
                              "pachls.labels": json.dumps(summary, sort_keys=True)},
                )
            except Conflict as clash:
                if "paths" not in clash.details:
                    raise
                where = f"{session.labels_repo}@{session.labels_branch}"
                raise Conflict(
                    f"{len(clash.details['paths'])} of these label files were committed to {where} since this "
                    f"session's labels mount was last refreshed; nothing was committed and no annotation is "
                    f"lost. To keep those labels, resync this session from {where}; to replace them with "
                    f"this session's, discard and refresh the labels mount ({session.labels_mount}), then "
                    "commit labels again.", **clash.details) from None
            # not under _lock: a resync holding it may be waiting for this commit's lock
            with self._snapshot_lock:
                for path, raw in pending.files.items():
                    if raw is not None:
                        digest = hashlib.sha256(raw).hexdigest()
                        versions = [d for d in session.committed.get(path, []) if d != digest]
                        session.committed[path] = (versions + [digest])[-COMMITTED_KEPT:]
            self._save()
            return landed
        finally:
            lock.release()
            self._drop_commit_lock(session.labels_mount)  # its session may have been deleted meanwhile

    def _label_config(self, session: Session) -> str:
        if not session.label_config:  # a session made before the config was kept: its project's
            session.label_config = self._request("GET", f"/api/projects/{session.project_id}/",
                                                 deadline=self.deadlines.commit)["label_config"]
        return session.label_config

    def _export_files(self, session: Session, pending: dict[str, bytes | None]) -> dict[str, bytes | None]:
        """``/exports/<format>/...`` of the label files the commit will hold (the labels mount's commit
        with the pending files applied), replacing what an earlier commit exported there."""
        from .formats import render_export

        base = self.mounts.status(session.labels_mount).base
        files: dict[str, bytes] = {}
        if base:
            for info, chunks in self.backend.read_tree(session.labels_repo, base, "/"):
                if chunks is not None and info.path.endswith(SUFFIX) and not info.path.startswith(EXPORTS + "/"):
                    files[info.path] = b"".join(chunks)
        for path, raw in pending.items():
            if raw is None:
                files.pop(path, None)
            else:
                files[path] = raw
        where = f"{session.labels_repo}@{session.labels_branch}"
        # a commit that deletes the last label file leaves nothing to export: only the old export goes
        rendered = render_export(sorted(files.items()), session.labels_repo, session.export_format,
                                 source=where) if files else {}
        folder = f"{EXPORTS}/{session.export_format}"
        out: dict[str, bytes | None] = {}
        if base:  # what an earlier commit exported and this one does not: deleted
            try:
                out.update({info.path: None for info in self.backend.walk(session.labels_repo, base, folder)
                            if not info.is_dir})
            except NotFound:
                pass
        out.update({f"{folder}/{name}": data for name, data in rendered.items()})
        return out

    @contextlib.contextmanager
    def _session_held(self, session_id: str, *, wait: float = -1):
        """Hold the lock of a session's annotations in Label Studio (see _session_locks); Conflict if
        not had within ``wait`` s. A lock made for a session deleted meanwhile is not kept."""
        with self._snapshot_lock:
            lock = self._session_locks.setdefault(session_id, threading.RLock())
        if not lock.acquire(timeout=wait):
            raise Conflict(f"a resync or data import of this session has been running for over {wait:g} s; "
                           "try again when it is done", session=session_id)
        try:
            yield
        finally:
            lock.release()
            with self._snapshot_lock:
                if session_id not in self._sessions and self._session_locks.get(session_id) is lock:
                    del self._session_locks[session_id]

    def _hold_commit_lock(self, labels_mount: str) -> threading.Lock | None:
        """Acquire the commit lock of ``labels_mount`` (made if missing) within COMMIT_WAIT s, or None.

        Taking it holds no other lock, so a commit never waits behind a long operation's ``_lock``."""
        deadline = time.monotonic() + COMMIT_WAIT
        while True:
            with self._snapshot_lock:
                lock = self._commit_locks.setdefault(labels_mount, threading.Lock())
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return None
            with self._snapshot_lock:
                if self._commit_locks.get(labels_mount) is lock:
                    return lock
            lock.release()  # dropped while this waited for it: take the one in place now

    def _drop_commit_lock(self, labels_mount: str) -> None:
        """Forget the commit lock of a labels mount no session writes to, unless a commit holds it."""
        with self._snapshot_lock:
            lock = self._commit_locks.get(labels_mount)
            if lock is None or any(s.labels_mount == labels_mount for s in self._sessions.values()):
                return
            if lock.acquire(blocking=False):
                del self._commit_locks[labels_mount]
                lock.release()

    def _unstage_stale(self, session: Session, pending: Pending) -> None:
        """Revert label files staged in the labels mount that this commit would not write.

        A label commit that failed after writing its files (the store unreachable, a conflict)
        leaves them staged; if their annotations changed or were deleted in Label Studio meanwhile,
        committing the stage as it is would land labels nobody gave. Label files are rendered from
        Label Studio every time, so reverting them to the mount's base loses nothing."""
        changes = self.mounts.changes(session.labels_mount)
        revert: dict[str, bytes | None] = {}
        for change in changes.changes:
            if not change.path.endswith(SUFFIX) or change.path in pending.files:
                continue
            # added: removed; modified or deleted: the base's bytes put back
            revert[change.path] = None if change.change == "added" else \
                self.backend.get_file(session.labels_repo, changes.base, change.path)
        if revert:
            self.mounts.stage_files(session.labels_mount, revert)

    # -- history ---------------------------------------------------------------------------
    def blame(self, repo: str, ref: str, path: str):
        return blame(self.backend, repo, ref, path)

    def diff(self, repo: str, old: str | None, new: str):
        return diff_labels(self.backend, repo, old, new)

    def resync_preview(self, session_id: str, ref: str) -> dict:
        """What a resync from the label files at ``ref`` would do to the project's annotations.

        ``restore``: annotations to recreate from label files; ``unchanged``: data files whose
        annotations already are what ``ref`` holds; ``overwrite`` / ``remove``: data files whose
        current annotations would be replaced / deleted; ``uncommitted``: of those, the ones whose
        annotations differ from the labels branch (never committed: a resync would lose them).
        An unknown ``ref`` is NotFound, before anything is read from Label Studio."""
        return self._resync_plan(self.get(session_id), ref)["preview"]

    def _resync_plan(self, session: Session, ref: str) -> dict:
        commit = self.backend.inspect_commit(session.labels_repo, ref)  # NotFound: nothing touched
        _, _, in_scope = glob_plan(session.glob)
        wanted: dict[str, dict] = {}
        for info in self.backend.walk(session.labels_repo, commit.id):
            if info.is_dir or not info.path.endswith(SUFFIX) or not in_scope(data_path(info.path)):
                continue
            try:
                wanted[data_path(info.path)] = decode(self.backend.get_file(session.labels_repo, commit.id, info.path))
            except ValueError:
                continue  # not a label file
        users = self._users()
        committed = self._committed_digests(session)
        tasks = {t["data"].get("pachls_path"): t for t in self._export(session, all_tasks=True)}
        restore, unchanged, overwrite, remove, uncommitted, actions = 0, 0, [], [], [], {}
        for path, task in sorted(tasks.items(), key=lambda item: item[0] or ""):
            if not path:
                continue
            target = wanted.get(path)
            current = task.get("annotations") or []
            rendered = self._render(session, task, users) if current else None
            if rendered is not None and target is not None and \
                    rendered["annotations"] == target.get("annotations", []):
                unchanged += 1
                continue
            if rendered is None and not (target or {}).get("annotations"):
                continue
            if rendered is not None:
                (overwrite if target is not None else remove).append(path)
                digest = hashlib.sha256(encode(rendered)).hexdigest()
                if committed.get(label_path(path)) != digest and \
                        digest not in session.committed.get(label_path(path), []):
                    uncommitted.append(path)
            restore += len((target or {}).get("annotations", []))
            actions[path] = (task, current, (target or {}).get("annotations", []))
        preview = {"ref": ref, "commit": commit.id, "restore": restore, "unchanged": unchanged,
                   "overwrite": overwrite, "remove": remove, "uncommitted": uncommitted}
        return {"preview": preview, "actions": actions, "users": users}

    def resync(self, session_id: str, ref: str, *, commit: str | None = None, confirm: bool = False) -> dict:
        """Make the project's annotations those of the label files at ``ref`` (after a rollback, a conflict).

        ``commit`` is the commit the preview resolved ``ref`` to: if ``ref`` moved since, Conflict.
        Replacing or deleting annotations needs ``confirm``; without it, Conflict
        ``confirmation_required`` carrying the preview; with it, ``commit`` is required (a ref that
        moved since the preview must not replace what the preview did not show). Each annotation is recreated as its
        original author (``completed_by``, the Label Studio user of its ``created_by``, made if
        missing), and the session remembers what it was recreated from, so the next label commit
        writes it back exactly as committed: a resync of what is committed leaves nothing pending."""
        with self._lock:
            session = self.get(session_id)
            plan = self._resync_plan(session, ref)
            preview = plan["preview"]
            if commit is not None and commit != preview["commit"]:
                raise Conflict(f"{ref!r} is now {preview['commit']}, not the previewed {commit}; preview again",
                               ref=ref, commit=preview["commit"], previewed=commit)
            if (preview["overwrite"] or preview["remove"]) and not confirm:
                raise ConfirmationRequired(
                    f"resync from {ref!r} would replace the annotations of {len(preview['overwrite'])} and delete "
                    f"those of {len(preview['remove'])} data file(s), {len(preview['uncommitted'])} of them never "
                    "committed; confirm to go ahead", **preview)
            if commit is None and (preview["overwrite"] or preview["remove"]):
                raise InvalidArgument(
                    "'commit' is required when a resync would replace or delete annotations: send the commit "
                    "id the preview (GET .../resync?ref=) answered, so a ref moved since is refused",
                    field="commit")
            user_ids = {email.lower(): uid for uid, email in plan["users"].items()}
            restored, removed = 0, 0
            # a label commit exporting between a DELETE and its POST would commit a deletion
            with self._session_held(session.id):
                for path, (task, current, annotations) in plan["actions"].items():
                    for annotation in current:
                        self._request("DELETE", f"/api/annotations/{annotation['id']}/")
                        with self._snapshot_lock:
                            session.restored.pop(str(annotation["id"]), None)
                        removed += 1
                    restored += self._recreate(session, task, annotations, user_ids)
                    self._save()  # after each data file: a failure midway keeps what was recreated so far
                self._follow_labels_branch(session)
            return {"restored": restored, "removed": removed, "commit": preview["commit"]}

    def _follow_labels_branch(self, session: Session) -> None:
        """Move the labels mount to the labels branch head (rolled back, or moved by someone else),
        so the next label commit lands on it. Staged label files are reverted first: they are
        rendered from Label Studio at every commit, so nothing is lost."""
        lock = self._hold_commit_lock(session.labels_mount)
        if lock is None:
            return  # a label commit is running; it reports a conflict if the mount is behind
        try:
            self._unstage_stale(session, Pending((), (), (), (), ()))
            try:
                self.mounts.refresh(session.labels_mount)
            except Conflict:
                pass  # files other than label files staged there clash: the next commit says which
        finally:
            lock.release()

    def _user_id(self, email: str, known: dict[str, int]) -> int:
        """The Label Studio user of ``email``, made if missing (in the managed one, an account its
        person can log in to later through the tab; on a team server, a user without a password).
        ``known``: lowercased email -> user id (Label Studio keeps emails lowercased)."""
        email = email.lower()
        if email not in known and getattr(self.label_studio, "mode", None) == "managed":
            with self._accounts_lock:
                self._account(email, email.split("@")[0], known)
        if email not in known:
            local = email.split("@")[0] or "user"
            made = self._request("POST", "/api/users/", json={
                "email": email, "username": f"{local}-{uuid.uuid4().hex[:6]}", "first_name": local[:30]})
            known[email] = made["id"]
        return known[email]

    def delete_session(self, session_id: str, *, project: str = "keep", force: bool = False) -> dict:
        """Forget a session; ``project="delete"`` deletes its Label Studio project too (else it is kept).

        Label changes not yet committed refuse (``pending_labels``) unless ``force``. Committed label
        files are never touched."""
        if project not in ("keep", "delete"):
            raise InvalidArgument("'project' must be keep or delete", parameter="project")
        with self._lock:
            session = self.get(session_id)
            with self._session_held(session.id):
                self._delete_session_held(session, project=project, force=force)
        return {"deleted": session.id, "project": "deleted" if project == "delete" else "kept",
                "project_id": session.project_id}

    def _delete_session_held(self, session: Session, *, project: str, force: bool) -> None:
        if not force:
            count = self._pending(session, self.deadlines.commit).count
            if count:
                raise PendingLabels(
                    f"{count} label file(s) of this session have changes not yet committed; commit labels "
                    "first, or delete with force=true to drop them", pending=count)
        if project == "delete":
            try:
                self._request("DELETE", f"/api/projects/{session.project_id}/")
            except NotFound:
                pass  # already gone
        with self._snapshot_lock:
            del self._sessions[session.id]
            self._export_seconds.pop(session.id, None)
            branch = (session.labels_repo, session.labels_branch)
            if not any((s.labels_repo, s.labels_branch) == branch for s in self._sessions.values()):
                self._digests.pop(branch, None)
        self._save()
        self._drop_commit_lock(session.labels_mount)

    def account_owner(self, email: str) -> str | None:
        """The Jupyter user whose managed Label Studio account has ``email`` (any case), or None."""
        if self.label_studio is None or self.label_studio.mode != "managed":
            return None
        return next((user for user, owned in self.label_studio.account_owners().items()
                     if owned.lower() == email.lower()), None)

    def login(self, user: str, email: str, name: str) -> dict:
        """What the embedded tab logs in with: the Label Studio account of the Jupyter ``user`` (made on
        first use, from their ``email``), never the admin's and never another user's. Managed mode only;
        the password is never logged.

        Accounts are kept per Jupyter user: once ``user`` has one, it is theirs whatever email they save
        later, and an email whose account another Jupyter user holds is refused (EmailTaken)."""
        if self.label_studio is None or self.label_studio.mode != "managed":
            raise NotFound("automatic login is only available for the managed Label Studio; a team server "
                           "keeps its own users: log in there with your own account")
        self._ls()
        with self._accounts_lock:
            owned = self.label_studio.account_owners().get(user)
            email = (owned or email).lower()  # as Label Studio keeps it
            if owned is None:
                holder = self.account_owner(email)
                if holder is not None and holder != user:
                    raise EmailTaken(f"the Label Studio account of {email} belongs to another Jupyter user; "
                                     "save your own email (PUT /pachls/api/identity)", email=email)
                self.label_studio.save_account_owner(user, email)
            password = self._account(email, name, {e.lower(): i for i, e in self._users().items()})
        return {"email": email, "password": password}

    def _account(self, email: str, name: str, known: dict[str, int]) -> str:
        """The password of the managed Label Studio's account of ``email``, making the account
        (through sign-up with the organization's invite token) or setting its password if needed."""
        label_studio = self.label_studio
        if email.lower() == label_studio.credentials.email.lower():
            raise InvalidArgument(f"{email} is the server's own Label Studio account; choose another email")
        password = label_studio.account_passwords().get(email)
        if password and email in known:
            return password
        password = secrets.token_urlsafe(18)
        if email in known:
            label_studio.reset_password(email, password)
        else:
            self._sign_up(email, password)
        label_studio.save_account_password(email, password)
        made = {e.lower(): i for i, e in self._users().items()}
        if email not in made:
            raise Unavailable(f"Label Studio did not create the account of {email}")
        known[email] = made[email]
        self._request("PATCH", f"/api/users/{made[email]}/", json={"first_name": name[:30]})
        return password

    def _sign_up(self, email: str, password: str) -> None:
        """Label Studio's own sign-up form, with the invite token (sign-up without it is closed)."""
        url, headers = self._ls()
        token = self._request("GET", "/api/invite")["token"]
        with httpx.Client(base_url=url, timeout=self.deadlines.work.timeout) as browser:
            form = browser.get("/user/signup/", params={"token": token})
            csrf = browser.cookies.get("csrftoken")
            if csrf is None:
                raise Unavailable(f"Label Studio's sign-up page answered {form.status_code} without a CSRF cookie")
            done = browser.post("/user/signup/", params={"token": token}, headers={"Referer": str(form.url)},
                                data={"csrfmiddlewaretoken": csrf, "email": email, "password": password})
        if done.status_code == 200:  # the form again, with what is wrong (an address it does not take)
            raise InvalidArgument(f"Label Studio refused to make an account for {email!r}", email=email)
        if done.status_code != 302:
            raise Unavailable(f"Label Studio refused to create the account of {email} ({done.status_code})")
        # a new invite token: the one used cannot open the door again
        self._request("POST", "/api/invite/reset-token")

    def close(self) -> None:
        if self.label_studio is not None:
            self.label_studio.stop()

