"""REST API of jupyterlab-pachls: one route table, thin authenticated handlers.

Every route lives under ``/pachls/api/`` and is described by the OpenAPI document
``openapi.yaml`` (served at ``/pachls/api/openapi.json``). Handlers only parse and check
requests (``args.py``), call the backend, the mount manager or labeling (in a worker
thread: all are blocking) and shape JSON; ``base.py`` turns typed errors into JSON errors.
One module per area: ``system.py``, ``repos.py``, ``transfer.py`` (bulk in and out), ``mounts.py``,
``labeling.py``; ``panel.py`` answers the panel's poll with what ``/health``, ``/repos`` and
``/mounts`` answer, in one request.
"""

from __future__ import annotations

from . import labeling, mounts, panel, repos, system, transfer
from .base import PachlsHandler

API_PREFIX = "/pachls/api"
SEG = r"([^/]+)"


def route_table() -> list[tuple[str, type[PachlsHandler]]]:
    """The one route table (paths relative to the server's base URL)."""
    p, s = API_PREFIX, SEG
    return [
        (rf"{p}/health", system.HealthHandler),
        (rf"{p}/openapi\.json", system.OpenApiHandler),
        (rf"{p}/backend", system.BackendHandler),
        (rf"{p}/identity", system.IdentityHandler),
        (rf"{p}/panel", panel.PanelHandler),
        (rf"{p}/repos", repos.ReposHandler),
        (rf"{p}/repos/{s}", repos.RepoHandler),
        (rf"{p}/repos/{s}/branches", repos.BranchesHandler),
        (rf"{p}/repos/{s}/branches/{s}", repos.BranchHandler),
        (rf"{p}/repos/{s}/branches/{s}/commits", repos.CommitsHandler),
        (rf"{p}/repos/{s}/branches/{s}/head", repos.BranchHeadHandler),
        (rf"{p}/repos/{s}/branches/{s}/wait", repos.BranchWaitHandler),
        (rf"{p}/repos/{s}/branches/{s}/moves", repos.BranchMovesHandler),
        (rf"{p}/repos/{s}/branches/{s}/import", transfer.ImportHandler),
        (rf"{p}/repos/{s}/commits/{s}", repos.CommitHandler),
        (rf"{p}/repos/{s}/commits/{s}/files", repos.FilesHandler),
        (rf"{p}/repos/{s}/commits/{s}/file", repos.FileHandler),
        (rf"{p}/repos/{s}/commits/{s}/archive", repos.ArchiveHandler),
        (rf"{p}/repos/{s}/diff", repos.DiffHandler),
        (rf"{p}/imports", transfer.ImportsHandler),
        (rf"{p}/imports/{s}", transfer.ImportCancelHandler),
        (rf"{p}/mounts", mounts.MountsHandler),
        (rf"{p}/mounts/{s}", mounts.MountHandler),
        (rf"{p}/mounts/{s}/refresh", mounts.MountRefreshHandler),
        (rf"{p}/mounts/{s}/follow", mounts.MountFollowHandler),
        (rf"{p}/mounts/{s}/changes", mounts.MountChangesHandler),
        (rf"{p}/mounts/{s}/commit", mounts.MountCommitHandler),
        (rf"{p}/mounts/{s}/discard", mounts.MountDiscardHandler),
        (rf"{p}/labeling", labeling.LabelingStatusHandler),
        (rf"{p}/labeling/login", labeling.LoginHandler),
        (rf"{p}/labeling/log", labeling.LogHandler),
        (rf"{p}/labeling/sessions", labeling.SessionsHandler),
        (rf"{p}/labeling/sessions/{s}", labeling.SessionHandler),
        (rf"{p}/labeling/sessions/{s}/pending", labeling.PendingHandler),
        (rf"{p}/labeling/sessions/{s}/commit", labeling.LabelCommitHandler),
        (rf"{p}/labeling/sessions/{s}/import", labeling.ImportHandler),
        (rf"{p}/labeling/sessions/{s}/resync", labeling.ResyncHandler),
        (rf"{p}/labels/blame", labeling.BlameHandler),
        (rf"{p}/labels/diff", labeling.LabelDiffHandler),
        (rf"{p}/labels/rows", labeling.LabelRowsHandler),
        (rf"{p}/labels/export", labeling.LabelExportHandler),
        # Must stay last: tornado takes the first pattern that matches.
        (rf"{p}/(.*)", system.NotFoundHandler),
    ]


__all__ = ["API_PREFIX", "route_table"]
