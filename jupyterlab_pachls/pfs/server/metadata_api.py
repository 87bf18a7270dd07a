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
from pachyderm_sdk.api import metadata, pfs

from ..address import DEFAULT_PROJECT
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

    # -- pickers -----------------------------------------------------------------------------------
    def _project(self, picker: pfs.ProjectPicker) -> str:
        name = picker.name or DEFAULT_PROJECT
        if name not in self.pfs._projects():
            raise _EditError(f"pick project: project {name!r} not found")
        return name

    def _repo(self, picker: pfs.RepoPicker) -> str:
        kind, value = betterproto.which_one_of(picker, "picker")
        if kind != "name":
            raise _EditError("pick repo: repo picker is of an unknown type")
        project = self._project(value.project) if calls.has(value, "project") else DEFAULT_PROJECT
        key = self.pfs._repo_key(pfs.Repo(name=value.name, type=value.type or "user",
                                          project=pfs.Project(name=project)))
        self.backend.inspect_repo(key)
        return key

    def _branch(self, picker: pfs.BranchPicker) -> tuple[str, str]:
        kind, value = betterproto.which_one_of(picker, "picker")
        if kind != "name":
            raise _EditError("pick branch: branch picker is of an unknown type")
        key = self._repo(value.repo)
        self.backend.inspect_branch(key, value.name)
        return key, value.name

    def _commit(self, picker: pfs.CommitPicker) -> tuple[str, str]:
        kind, value = betterproto.which_one_of(picker, "picker")
        if kind == "id":
            key = self._repo(value.repo)
            return key, self.backend.inspect_commit(key, value.id).id
        if kind == "branch_head":
            key, name = self._branch(value)
            return key, self.backend.inspect_commit(key, self.pfs._branch_ref(key, name)).id
        if kind == "ancestor":
            key, start = self._commit(value.start)
            return key, self.backend.inspect_commit(key, f"{start}^{value.offset}" if value.offset else start).id
        if kind == "branch_root":
            key, name = self._branch(value.branch)
            history = self.pfs._history(key, self.pfs._branch_ref(key, name))[::-1]
            if value.offset >= len(history):
                raise _EditError(f"pick commit: branch {name} has no commit {value.offset} from its root")
            return key, history[value.offset].id
        raise _EditError("pick commit: commit picker is of an unknown type")

    # -- EditMetadata ------------------------------------------------------------------------------
    def _plan(self, index: int, edit: metadata.Edit):
        """(write, description) of one edit: ``write()`` stores it; nothing is stored here."""
        target, value = betterproto.which_one_of(edit, "target")
        if target == "commit":
            key, commit_id = self._commit(value)
            new = _apply(edit, self.backend.inspect_commit(key, commit_id).metadata)
            return lambda: self.backend.set_commit_metadata(key, commit_id, new)
        if target in ("project", "repo", "branch"):
            if target == "project":
                kind, name = "project", self._project(value)
            elif target == "repo":
                kind, name = "repo", self._repo(value)
            else:
                key, branch = self._branch(value)
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
            except (_EditError, PfsError) as exc:
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
