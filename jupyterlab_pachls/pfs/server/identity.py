"""The calls clients make before anything else, answered as a pachd 2.12 without enterprise, and with
auth off, or on with one token.

- ``auth_v2.API`` without a token: every method answers UNIMPLEMENTED "the auth service is not
  activated", pachd's ``auth.ErrNotActivated`` (clients such as jupyterlab-pachyderm read that as
  "auth is off, the cluster is fine"). ``Activate`` is refused the same way: there is no auth to
  activate here.
- ``auth_v2.API`` with a token (``--auth-token-file``; ``calls.TokenCheck`` refuses calls without
  it): auth is on, as on a pachd whose root token is that token. ``WhoAmI`` answers ``pach:root``
  (no expiration), ``Authorize`` grants every permission asked, ``Activate`` is pachd's "already
  activated"; the rest (users, groups, role bindings, robot tokens, OIDC) is UNIMPLEMENTED: there
  is one token and nobody else.
- ``versionpb_v2.API/GetVersion``: 2.12.2, with ``-pachls`` in ``additional``.
- ``admin_v2.API/InspectCluster``: a cluster id fixed per store, ``warnings_ok``, pachd's warning
  when the client sends no version, and a warning if ``current_project`` does not exist.
  ``RestartPachyderm`` is UNIMPLEMENTED: there is nothing to restart but this process.
- ``enterprise_v2`` and ``license_v2`` answer as pachd 2.12 does (UNKNOWN "... server is
  deprecated"); ``identity_v2``, ``pps_v2``, ``pjs``, ``logs``, ``snapshot`` and ``debug``
  answer UNIMPLEMENTED with the reason (no auth, no pipelines, no pods here).
"""

from __future__ import annotations

import uuid

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import admin, auth, debug, enterprise, identity, license, logs, pjs, pps, snapshot
from pachyderm_sdk.api import version as versionpb

from . import calls

VERSION = versionpb.Version(major=2, minor=12, micro=2, additional="-pachls")
NOT_ACTIVATED = "the auth service is not activated"  # pachd's auth.ErrNotActivated
ALREADY_ACTIVATED = "the auth service is already activated"  # pachd's auth.ErrAlreadyActivated
#: Who holds the token: pachd's auth.RootUser, whose root token is the one a cluster starts with.
TOKEN_HOLDER = "pach:root"
ONE_TOKEN = ("not served: this server knows one token (`jupyter pachls serve --auth-token-file`) and no users, "
             "groups, role bindings, robot tokens or OIDC")
NO_CLIENT_VERSION = ("WARNING: The client used to connect to Pachyderm did not send its version, which means "
                     "that it is likely too old.  Please upgrade it.")


#: The other services of pachd, with what pachd answers when the feature is off, or why they are not served.
OFF = [
    (enterprise.ApiStub, grpc.StatusCode.UNKNOWN, "enterprise server is deprecated"),  # pachd 2.12's own answer
    (license.ApiStub, grpc.StatusCode.UNKNOWN, "license server is deprecated"),  # pachd 2.12's own answer
    (identity.ApiStub, grpc.StatusCode.UNIMPLEMENTED,
     "the identity service is not served: there is no identity provider (OIDC) here"),
    (pps.ApiStub, grpc.StatusCode.UNIMPLEMENTED,
     "pipelines are not served: the embedded store runs no pipelines, jobs or datums"),
    (pjs.ApiStub, grpc.StatusCode.UNIMPLEMENTED, "the job system is not served: the embedded store runs no jobs"),
    (logs.ApiStub, grpc.StatusCode.UNIMPLEMENTED,
     "cluster logs are not served: the embedded store has no pods (run `jupyter pachls serve` with --log-level)"),
    (snapshot.ApiStub, grpc.StatusCode.UNIMPLEMENTED,
     "snapshots are not served: copy the store directory while the server is stopped"),
    (debug.DebugStub, grpc.StatusCode.UNIMPLEMENTED, "debug dumps are not served by the embedded store"),
]


class IdentityService:
    def __init__(self, backend, *, auth_on: bool = False) -> None:
        self.backend = backend
        self.auth_on = auth_on

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
            if not self._project_exists(project):
                info.warnings.append(f'WARNING: Could not inspect project "{project}": project "{project}" not found')
        return info

    def _project_exists(self, name: str) -> bool:
        if name == "default" or self.backend.annotation("project", name) is not None:
            return True
        return any(r.project == name for r in self.backend.list_repos())

    def auth_methods(self) -> dict[str, grpc.RpcMethodHandler]:
        """``auth_v2.API``: off (NOT_ACTIVATED everywhere), or on with one token holder."""
        methods = {}
        for path, kind in calls.stub_methods(auth.ApiStub).items():
            name = path.rsplit("/", 1)[1]
            if not self.auth_on:
                methods[name] = calls.refused(path, kind, grpc.StatusCode.UNIMPLEMENTED, NOT_ACTIVATED)
            elif name == "Activate":
                methods[name] = calls.refused(path, kind, grpc.StatusCode.UNIMPLEMENTED, ALREADY_ACTIVATED)
            else:
                methods[name] = calls.refused(path, kind, grpc.StatusCode.UNIMPLEMENTED, f"{name} is {ONE_TOKEN}")
        if self.auth_on:  # the caller passed calls.TokenCheck: it holds the token
            methods["WhoAmI"] = calls.unary("/auth_v2.API/WhoAmI",
                                            lambda context, request: auth.WhoAmIResponse(username=TOKEN_HOLDER),
                                            auth.WhoAmIRequest)
            methods["Authorize"] = calls.unary("/auth_v2.API/Authorize", self.authorize, auth.AuthorizeRequest)
        return methods

    @staticmethod
    def authorize(context, request: auth.AuthorizeRequest) -> auth.AuthorizeResponse:
        return auth.AuthorizeResponse(authorized=True, satisfied=list(request.permissions), principal=TOKEN_HOLDER)

    def services(self) -> dict[str, dict[str, grpc.RpcMethodHandler]]:
        auth_methods = self.auth_methods()
        admin_methods = {
            "InspectCluster": calls.unary("/admin_v2.API/InspectCluster", self.inspect_cluster,
                                          admin.InspectClusterRequest),
            "RestartPachyderm": calls.refused("/admin_v2.API/RestartPachyderm", "unary_unary",
                                              grpc.StatusCode.UNIMPLEMENTED,
                                              "restarting is not served: stop and start `jupyter pachls serve`"),
        }
        version_methods = {"GetVersion": calls.unary("/versionpb_v2.API/GetVersion",
                                                     lambda context, request: VERSION, Empty)}
        served = {"auth_v2.API": auth_methods, "admin_v2.API": admin_methods, "versionpb_v2.API": version_methods}
        for stub, code, message in OFF:
            methods: dict[str, grpc.RpcMethodHandler] = {}
            for path, kind in calls.stub_methods(stub).items():
                methods[path.rsplit("/", 1)[1]] = calls.refused(path, kind, code, message)
            service = next(iter(calls.stub_methods(stub))).split("/")[1]
            served[service] = methods
        return served


__all__ = ["ALREADY_ACTIVATED", "IdentityService", "NOT_ACTIVATED", "TOKEN_HOLDER", "VERSION"]
