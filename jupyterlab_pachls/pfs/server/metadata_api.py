"""``metadata.API/EditMetadata`` as pachd 2.12 serves it.

Every edit is checked before any is written, so a request applies whole or not at all, as in
pachd's single database transaction. Targets: projects, repos, branches, commits and the cluster
(pipelines do not exist here: picking one fails as in a pachd that has none). Errors carry
pachd's wording ("apply edits: edit #N: ...") and codes (FAILED_PRECONDITION for add_key of an
existing key, UNKNOWN otherwise). Commit metadata lives in the store's commits; the metadata of
projects, repos, branches and the cluster in the store's annotations.
"""

from __future__ import annotations

import betterproto
import grpc
from pachyderm_sdk.api import metadata

from ..errors import PfsError
from . import calls
from .calls import Status


class _EditError(Exception):
    pass


def _apply(edit: metadata.Edit, current: dict[str, str]) -> dict[str, str]:
    result = dict(current)
    op, value = betterproto.which_one_of(edit, "op")
    if op == "add_key":
        if value.key in result:
            raise _EditError(f"add_key target key {value.key!r} already exists; use edit_key instead")
        result[value.key] = value.value
    elif op == "edit_key":
        result[value.key] = value.value
    elif op == "delete_key":
        result.pop(value.key, None)
    elif op == "replace":
        result = dict(value.replacement)
    return result


class MetadataService:
    def __init__(self, pfs_service) -> None:
        self.pfs = pfs_service
        self.backend = pfs_service.backend

    # -- EditMetadata ------------------------------------------------------------------------------
    def _plan(self, index: int, edit: metadata.Edit):
        """(write, description) of one edit: ``write()`` stores it; nothing is stored here."""
        target, value = betterproto.which_one_of(edit, "target")
        if target == "commit":
            commit = self.pfs.pick_commit(value)
            new = _apply(edit, commit.metadata)
            return lambda: self.backend.set_commit_metadata(commit.repo, commit.id, new)
        if target in ("project", "repo", "branch"):
            if target == "project":
                kind, name = "project", self.pfs.pick_project(value)
            elif target == "repo":
                kind, name = "repo", self.pfs.pick_repo(value)
            else:
                key, branch = self.pfs.pick_branch(value)
                kind, name = "branch", f"{key}@{branch}"
            record = dict(self.backend.annotation(kind, name) or {})
            record["metadata"] = _apply(edit, record.get("metadata", {}))
            return lambda: self.backend.annotate(kind, name, record)
        if target == "cluster":
            new = _apply(edit, self.backend.annotation("cluster", "metadata") or {})
            return lambda: self.backend.annotate("cluster", "metadata", new)
        if target == "pipeline":
            name = value.pipeline.name if calls.has(value, "pipeline") else ""
            raise _EditError(f"pick pipeline: pipeline {name!r} not found (there are no pipelines here)")
        raise _EditError(f"unknown target {target}")

    def edit_metadata(self, context, request: metadata.EditMetadataRequest):
        writes, problems = [], []
        for i, edit in enumerate(request.edits):
            try:
                writes.append(self._plan(i, edit))
            except (_EditError, PfsError, Status) as exc:
                problems.append(f"edit #{i}: {exc}")
        if problems:
            message = "apply edits: " + "\n".join(problems)
            code = grpc.StatusCode.FAILED_PRECONDITION if "already exists" in message else grpc.StatusCode.UNKNOWN
            raise Status(code, message)
        for write in writes:
            write()
        return metadata.EditMetadataResponse()

    def services(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        return {"metadata.API": {"EditMetadata": calls.unary(
            "/metadata.API/EditMetadata", self.edit_metadata, metadata.EditMetadataRequest)}}


__all__ = ["MetadataService"]
