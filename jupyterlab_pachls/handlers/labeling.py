"""Routes of labeling: sessions, pending labels, label commits, blame, diff, rows, exports.

Thin handlers over :class:`~jupyterlab_pachls.labeling.session.LabelingService` and
:mod:`jupyterlab_pachls.labeling.history`.
"""

from __future__ import annotations

import asyncio
import time

import tornado.web

from ..labeling.formats import check_classes, export_format, export_labels
from ..labeling.history import blame, diff_labels, session_of_data
from ..labeling.rows import label_rows
from ..labeling.session import SessionRequest, export_format_name
from ..labeling.templates import TEMPLATES
from ..pfs.errors import InvalidArgument, NotFound, Unavailable
from .args import check_fields, commit_id_arg, mount_name_arg, ref_arg, repo_arg, string_field
from .base import PachlsHandler, json_errors
from .repos import content_disposition


#: Seconds a pending poll waits for Label Studio, and an action (create, commit, import, resync).
POLL_WAIT = 2.0
ACTION_WAIT = 60.0


class LabelingHandler(PachlsHandler):
    @property
    def labeling(self):
        service = self.state.labeling
        if service is None:
            self.backend  # no store: say that first
            raise Unavailable("Labeling is not available: the mount manager or Label Studio is not configured.")
        return service

    async def label_studio_ready(self, timeout: float) -> None:
        """Wait (without holding a worker thread) up to ``timeout`` s for Label Studio to answer; else 503
        saying what it is doing (starting, restarting after a crash, failed). Polls of the panel wait
        briefly; actions wait for a restart."""
        ls = self.labeling.label_studio
        if ls is None:
            raise Unavailable("Label Studio is not configured")
        await self.call(ls.start)
        deadline = time.monotonic() + timeout
        while not await self.call(ls.ready):
            if ls.status().state in ("failed", "stopped") or time.monotonic() >= deadline:
                raise ls.unavailable()
            await asyncio.sleep(0.25)

    def session_id(self, raw: str) -> str:
        if not raw.isalnum() or len(raw) > 64:
            raise InvalidArgument("a session id is letters and digits", session=raw[:64])
        return raw


class LabelingStatusHandler(LabelingHandler):
    """``GET /pachls/api/labeling``: Label Studio's state, templates and every session."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        service = self.labeling
        # an external Label Studio's status is a request to it: not on the event loop
        status = await self.call(service.label_studio.status) if service.label_studio else None
        self.send_json({
            "label_studio": status.to_json() if status else None,
            "templates": [{"name": t.name, "title": t.title, "data_key": t.data_key} for t in TEMPLATES.values()],
            "sessions": [s.to_json() for s in service.list_sessions()],
        })

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        """Start Label Studio now (it also starts on first use)."""
        service = self.labeling
        if service.label_studio is None:
            raise Unavailable("Label Studio is not configured")
        await self.call(service.label_studio.start)
        self.send_json((await self.call(service.label_studio.status)).to_json(), status=202)


class SessionsHandler(LabelingHandler):
    """``POST /pachls/api/labeling/sessions``: create (or reopen) a labeling session."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.send_json({"sessions": [s.to_json() for s in self.labeling.list_sessions()]})

    @tornado.web.authenticated
    @json_errors
    async def post(self) -> None:
        body = self.json_body()
        check_fields(body, ("data", "labels"), ("glob", "template", "classes", "xml", "export_format"))
        classes = body.get("classes")
        if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
            raise InvalidArgument("'classes' must be a list of strings", field="classes")
        arguments = dict(
            data=string_field(body, "data", required=True, allow_empty=False),
            labels=string_field(body, "labels", required=True, allow_empty=False),
            glob=body.get("glob") if isinstance(body.get("glob"), str) and body.get("glob") else None,
            template=body.get("template"), classes=classes, xml=body.get("xml"),
        )
        SessionRequest.parse(**arguments)  # bad input is refused before waiting for Label Studio
        export_format = export_format_name(string_field(body, "export_format", default=""))
        identity = self.identity
        await self.label_studio_ready(ACTION_WAIT)
        await self.send_long_result(self.labeling.create_session, **arguments, export_format=export_format,
                               user="" if identity.required else identity.author, status=201)


class SessionHandler(LabelingHandler):
    """``GET /pachls/api/labeling/sessions/{id}``: the session and how far its data is behind;
    ``DELETE ?project=keep|delete&force=``: forget it (its Label Studio project kept or deleted)."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, session_id: str) -> None:
        service = self.labeling
        session = service.get(self.session_id(session_id))
        data = await self.call(service.data_status, session.id)
        self.send_json({**session.to_json(), "data_status": data})

    @tornado.web.authenticated
    @json_errors
    async def delete(self, session_id: str) -> None:
        project = self.query("project") or "keep"
        if project not in ("keep", "delete"):
            raise InvalidArgument("'project' must be keep or delete", parameter="project")
        force = self.bool_query("force")
        session = self.labeling.get(self.session_id(session_id))
        await self.label_studio_ready(ACTION_WAIT)
        deleted = await self.call_long(self.labeling.delete_session, session.id, project=project, force=force)
        self.send_json(deleted)


class PendingHandler(LabelingHandler):
    """``GET .../sessions/{id}/pending``: label files a commit would add, modify, delete."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, session_id: str) -> None:
        session = self.labeling.get(self.session_id(session_id))
        await self.label_studio_ready(POLL_WAIT)
        await self.send_result(self.labeling.pending, session.id)


class LabelCommitHandler(LabelingHandler):
    """``POST .../sessions/{id}/commit`` {message}: ONE label commit, author = the Jupyter user."""

    @tornado.web.authenticated
    @json_errors
    async def post(self, session_id: str) -> None:
        body = self.json_body()
        check_fields(body, ("message",), ())
        message = string_field(body, "message", required=True, allow_empty=False)
        session = self.labeling.get(self.session_id(session_id))
        author = self.user_name  # no identity: 409 before anything is read or written
        await self.label_studio_ready(ACTION_WAIT)
        # Label commits into one labels mount run one at a time (see commit_labels); the others wait
        # here, on the event loop, not holding a thread of the long pool.
        async with self.state.label_commit_gate(session.labels_mount):
            commit = await self.call_long(self.labeling.commit_labels, session.id, message=message, author=author)
        self.send_json(commit.to_json(), status=201)


class ImportHandler(LabelingHandler):
    """``POST .../sessions/{id}/import``: pin the data branch head and add tasks for new files."""

    @tornado.web.authenticated
    @json_errors
    async def post(self, session_id: str) -> None:
        self.labeling.get(self.session_id(session_id))
        await self.label_studio_ready(ACTION_WAIT)
        await self.send_long_result(self.labeling.import_new_data, self.session_id(session_id))


class ResyncHandler(LabelingHandler):
    """``GET .../sessions/{id}/resync?ref=``: what a resync would do (nothing is changed);
    ``POST`` {ref, commit, confirm}: load the annotations of a label commit back into Label Studio."""

    @tornado.web.authenticated
    @json_errors
    async def get(self, session_id: str) -> None:
        ref = ref_arg(self.query("ref"))
        session = self.labeling.get(self.session_id(session_id))
        await self.label_studio_ready(ACTION_WAIT)
        self.send_json(await self.call_long(self.labeling.resync_preview, session.id, ref))

    @tornado.web.authenticated
    @json_errors
    async def post(self, session_id: str) -> None:
        body = self.json_body()
        check_fields(body, ("ref",), ("commit", "confirm"))
        ref = ref_arg(body.get("ref"))
        commit = commit_id_arg(body.get("commit"), "commit", "'commit' must be the commit id the preview answered")
        confirm = body.get("confirm", False)
        if not isinstance(confirm, bool):
            raise InvalidArgument("'confirm' must be true or false", field="confirm")
        session = self.labeling.get(self.session_id(session_id))
        self.user_name  # resync rewrites what the next label commit records: no identity, 409
        await self.label_studio_ready(ACTION_WAIT)
        self.send_json(await self.call_long(self.labeling.resync, session.id, ref, commit=commit, confirm=confirm))


class LoginHandler(LabelingHandler):
    """``GET /pachls/api/labeling/login``: what the embedded tab posts to log in (managed mode): the
    current Jupyter user's own Label Studio account, made on first use; never the admin's."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        identity = self.identity
        if identity.required:
            identity.author  # 409 identity_required: the account is made from it
        key = self.identity_key
        # an email saved before it was checked (or another user's default address) opens no account
        self.check_email_is_own(key, identity.name, identity.email)
        # the tab asks again while Label Studio starts (it shows the progress), so no long wait here
        await self.label_studio_ready(POLL_WAIT)
        self.send_json(await self.call_long(self.labeling.login, key, identity.email, identity.name))


class LogHandler(LabelingHandler):
    """``GET /pachls/api/labeling/log``: the end of Label Studio's log, secrets masked."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        service = self.labeling
        text = await self.call(service.label_studio.log_tail) if service.label_studio else ""
        self.send_json({"log": text})


class LabelsHandler(PachlsHandler):
    """Base of the ``/labels/...`` reads: ``repo`` and refs come as query parameters."""

    def repo_query(self) -> str:
        return repo_arg(self.query("repo") or "")

    def ref_query(self, name: str = "ref") -> str:
        """A ref query parameter; ``master`` when absent."""
        return ref_arg(self.query(name) or "master", name)


class BlameHandler(LabelsHandler):
    """``GET /pachls/api/labels/blame?repo=&ref=&path=``: every label commit that changed a file's label.

    ``?mount=&path=`` instead of ``repo``/``ref``: the labels of a file as seen in any mount of the data
    (``path`` inside the mount); the labeling session that labels the mount's repo names the labels branch.
    """

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        path = self.path_query(required=True)
        mount = self.query("mount")
        session_id = None
        if mount is not None:
            if self.query("repo") is not None:
                raise InvalidArgument("give either mount or repo, not both", parameter="mount")
            repo, ref, session_id = await self.call(self._labels_of_mount, mount_name_arg(mount))
        else:
            repo, ref = self.repo_query(), self.ref_query()
        entries = await self.call(blame, self.backend, repo, ref, path)
        self.send_json({"repo": repo, "ref": ref, "path": path, "session": session_id,
                        "entries": [e.to_json() for e in entries]})

    def _labels_of_mount(self, name: str) -> tuple[str, str, str]:
        status = self.mounts.status(name)
        service = self.state.labeling
        session = session_of_data(service.list_sessions() if service else [], status.repo, status.base)
        if session is None:
            raise NotFound(f"No labeling session labels {status.repo} (shown by mount {name}).",
                           mount=name, repo=status.repo)
        return session.labels_repo, session.labels_branch, session.id


class LabelDiffHandler(LabelsHandler):
    """``GET /pachls/api/labels/diff?repo=&from=&to=``: annotation-level changes between two label commits."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        repo = self.repo_query()
        old = self.query("from")
        new = self.ref_query("to")
        changes = await self.call(diff_labels, self.backend, repo, ref_arg(old, "from") if old else None, new)
        self.send_json({"repo": repo, "from": old, "to": new, "changes": [c.to_json() for c in changes]})


class LabelRowsHandler(LabelsHandler):
    """``GET /pachls/api/labels/rows?repo=&ref=&data=&path=``: one row per annotation."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        repo = self.repo_query()
        ref = self.ref_query()
        data = self.query("data")
        rows = await self.call(label_rows, self.backend, repo, ref,
                               data=repo_arg(data) if data else None, path=self.path_query())
        self.send_json({"repo": repo, "ref": ref, "rows": rows})


class LabelExportHandler(LabelsHandler):
    """``GET /pachls/api/labels/export?repo=&ref=&format=&classes=``: the label files of a commit as
    COCO, YOLO, VOC, CSV or JSON_MIN (Label Studio's converter; no Label Studio needed), streamed."""

    @tornado.web.authenticated
    @json_errors
    async def get(self) -> None:
        repo = self.repo_query()
        ref = self.ref_query()
        raw_format = self.query("format")
        if raw_format is None:
            raise InvalidArgument("query parameter 'format' is required: COCO, YOLO, VOC, CSV or JSON_MIN",
                                  parameter="format")
        fmt = export_format(raw_format)
        classes = self.query("classes")
        classes = check_classes(classes.split(",")) if classes is not None else None
        # reads every label file and runs the converter: a long operation
        export = await self.call_long(export_labels, self.backend, repo, ref, fmt.name, classes=classes)
        try:
            self.set_header("Content-Type", export.media_type)
            self.set_header("Content-Length", str(export.size))
            self.set_header("Content-Disposition", content_disposition(export.filename))
            self.set_header("X-Content-Type-Options", "nosniff")
            chunks = export.chunks()
            done = object()
            while True:
                chunk = await self.call(next, chunks, done)
                if chunk is done:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            await self.call(export.close)
        self.finish()
