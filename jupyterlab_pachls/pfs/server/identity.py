"""The calls clients make before anything else, answered as a pachd 2.12 without auth or enterprise.

- ``auth_v2.API``: every method answers UNIMPLEMENTED "the auth service is not activated", pachd's
  ``auth.ErrNotActivated`` (clients such as jupyterlab-pachyderm read that as "auth is off, the
  cluster is fine"). ``Activate`` is refused the same way: there is no auth to activate here.
- ``versionpb_v2.API/GetVersion``: 2.12.2, with ``-pachls`` in ``additional``.
- ``admin_v2.API/InspectCluster``: a cluster id fixed per store, ``warnings_ok``, pachd's warning
  when the client sends no version, and a warning if ``current_project`` does not exist.
  ``RestartPachyderm`` is UNIMPLEMENTED: there is nothing to restart but this process.
"""

from __future__ import annotations

import uuid

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import admin, auth
from pachyderm_sdk.api import version as versionpb

from ..errors import NotFound
from . import calls

VERSION = versionpb.Version(major=2, minor=12, micro=2, additional="-pachls")
NOT_ACTIVATED = "the auth service is not activated"
NO_CLIENT_VERSION = ("WARNING: The client used to connect to Pachyderm did not send its version, which means "
                     "that it is likely too old.  Please upgrade it.")


class IdentityService:
    def __init__(self, backend) -> None:
        self.backend = backend

    def cluster_id(self) -> str:
        record = self.backend.annotation("cluster", "id")
        if record is None:
            record = {"id": uuid.uuid4().hex}
            self.backend.annotate("cluster", "id", record)
        return record["id"]

    def inspect_cluster(self, context, request: admin.InspectClusterRequest):
        info = admin.ClusterInfo(id=self.cluster_id(), warnings_ok=True,
                                 metadata=dict((self.backend.annotation("cluster", "metadata") or {})))
        if not calls.has(request, "client_version"):
            info.warnings.append(NO_CLIENT_VERSION)
        project = request.current_project.name if calls.has(request, "current_project") else ""
        if project:
            try:
                known = self._project_exists(project)
            except NotFound:
                known = False
            if not known:
                info.warnings.append(f'WARNING: Could not inspect project "{project}": project "{project}" not found')
        return info

    def _project_exists(self, name: str) -> bool:
        if name == "default" or self.backend.annotation("project", name) is not None:
            return True
        return any(r.project == name for r in self.backend.list_repos())

    def services(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        auth_methods = {}
        for path, kind in calls.stub_methods(auth.ApiStub).items():
            auth_methods[path.rsplit("/", 1)[1]] = calls.refused(path, kind, grpc.StatusCode.UNIMPLEMENTED,
                                                                 NOT_ACTIVATED)
        admin_methods = {
            "InspectCluster": calls.unary("/admin_v2.API/InspectCluster", self.inspect_cluster,
                                          admin.InspectClusterRequest),
            "RestartPachyderm": calls.refused("/admin_v2.API/RestartPachyderm", "unary_unary",
                                              grpc.StatusCode.UNIMPLEMENTED,
                                              "restarting is not served: stop and start `jupyter pachls serve`"),
        }
        version_methods = {"GetVersion": calls.unary("/versionpb_v2.API/GetVersion",
                                                     lambda context, request: VERSION, Empty)}
        return {"auth_v2.API": auth_methods, "admin_v2.API": admin_methods, "versionpb_v2.API": version_methods}


__all__ = ["IdentityService", "NOT_ACTIVATED", "VERSION"]
