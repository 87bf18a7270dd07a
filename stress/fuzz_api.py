"""Fuzz every route of the OpenAPI document against a real Jupyter server with the extension.

The server runs as a subprocess on 127.0.0.1 with a token, over a throwaway
store seeded with repos, branches, commits, files and a read-write mount with a
pending change, so generated requests reach deep code paths. Label Studio is
configured as an external server that does not answer (every labeling route
must then answer a clear typed error), unless ``--label-studio`` starts the
managed one (slow: a first start migrates its database).

Each operation is fuzzed twice per generation mode (positive and negative):
once with every parameter generated, once with the path parameters pinned to
things that exist (``images``, ``master``, the head commit, the mount), so the
generated queries and bodies reach the backend. Every response is checked by
schemathesis: no 5xx, status code documented, content type, headers and body
conforming to the document.

    .venv/bin/python stress/fuzz_api.py --cases 200      # cases per operation and flavour
    .venv/bin/python stress/fuzz_api.py --fuse --label-studio

Ends with ``fuzz_cases=N operations=M server_errors=0 schema_violations=0 failures=0``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from serverproc import JupyterServer, free_port  # noqa: E402

TOKEN = "fuzz-token-0123456789abcdef"
SEED_FILES = {
    "/cats/001.png": b"\x89PNG\r\n\x1a\n cat one",
    "/cats/002.png": b"\x89PNG\r\n\x1a\n cat two",
    "/dogs/001.png": b"\x89PNG\r\n\x1a\n dog one",
    "/notes.txt": b"hello\n",
}


@dataclass
class Server:
    """A running ``jupyter server`` with the extension, and the seed it was given."""

    url: str  # http://127.0.0.1:port
    token: str
    root: Path
    process: subprocess.Popen
    log_path: Path
    seed: dict = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.url + "/pachls/api"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def request(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else (b"" if method in ("POST", "PUT") else None)
        req = urllib.request.Request(self.api + "/" + path, data=data, method=method,
                                     headers={**self.headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, (json.loads(raw) if raw else None)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def seed_store(store: Path) -> dict:
    """Repos ``images`` (two commits on master, a branch ``dev``) and ``labels`` (one commit)."""
    from jupyterlab_pachls.pfs import open_backend

    backend = open_backend({"kind": "local", "path": str(store)})
    try:
        backend.create_repo("images", description="fuzz seed")
        with backend.commit("images", "master", message="first") as c:
            for path, raw in SEED_FILES.items():
                c.put_file(path, raw)
        with backend.commit("images", "master", message="second") as c:
            c.put_file("/cats/003.png", b"\x89PNG\r\n\x1a\n cat three")
            c.delete_file("/notes.txt")
        head = backend.inspect_branch("images", "master").head.id
        first = backend.inspect_commit("images", "master^1").id
        backend.create_branch("images", "dev", first)
        backend.create_repo("labels")
        with backend.commit("labels", "master", message="labels") as c:
            c.put_file("/cats/001.png.json", json.dumps({"schema": "pachls.label/1", "annotations": []}).encode())
        return {"repo": "images", "branch": "master", "head": head, "first": first,
                "labels_head": backend.inspect_branch("labels", "master").head.id}
    finally:
        backend.close()


@contextlib.contextmanager
def jupyter_server(workdir: Path, *, fuse: bool = False, label_studio: bool = False):
    """Start a seeded server; yield a :class:`Server`; stop it (and its mounts) on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / "pachls" / "store"
    seed = seed_store(store)
    config = {"PachlsConfig.backend_file": str(workdir / "backend.json"), "PachlsConfig.connect_timeout": 1,
              "PachlsConfig.label_studio_dir": str(workdir / "labelstudio")}
    if not label_studio:
        # A team Label Studio that does not answer: labeling routes must say so, typed and documented.
        config["PachlsConfig.label_studio_url"] = f"http://127.0.0.1:{free_port()}"
    process = JupyterServer(workdir / "root", store=store, no_fuse=not fuse, config=config, token=TOKEN)
    try:
        process.start(timeout=120)
        server = Server(url=process.url, token=TOKEN, root=process.root, process=process.proc,
                        log_path=process.log_path, seed=seed)
        status, body = server.request("POST", "mounts", {"repo": "images", "branch": "master", "mode": "rw",
                                                         "name": "imgs"})
        assert status == 201, body
        mountpoint = Path(body["mountpoint"])
        (mountpoint / "cats" / "004.png").write_bytes(b"staged")
        status, body = server.request("POST", "mounts", {"repo": "images", "ref": seed["first"], "name": "old"})
        assert status == 201, body
        server.seed["mount"] = "imgs"
        yield server
    finally:
        process.stop()
        # A server killed before it unmounted leaves FUSE mounts behind: release them.
        for line in Path("/proc/mounts").read_text().splitlines():
            point = line.split()[1].encode().decode("unicode_escape")
            if point.startswith(str(workdir)):
                subprocess.run(["fusermount3", "-u", "-z", point], check=False, capture_output=True)


# -- fuzzing ---------------------------------------------------------------------------------------
@dataclass
class FuzzResult:
    cases: int = 0
    operations: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)  # failure classes found by the checks
    server_errors: int = 0  # 5xx the document does not promise
    documented_unavailable: int = 0  # 503 unavailable where documented (Label Studio does not answer)
    schema_violations: int = 0

    def summary(self) -> str:
        return (f"fuzz_cases={self.cases} operations={self.operations} server_errors={self.server_errors} "
                f"documented_503={self.documented_unavailable} "
                f"schema_violations={self.schema_violations} failures={len(self.failures)}")


def pinned_parameters(template: str, seed: dict) -> dict:
    """Path parameters naming things that exist, for the templated routes."""
    known = {"repo": seed["repo"], "branch": seed["branch"], "ref": seed["head"], "name": seed.get("mount", "imgs"),
             "session": "0123456789ab"}
    return {name: value for name, value in known.items() if "{" + name + "}" in template}


def fuzz(server: Server, *, cases: int, seed: int | None = 0, log=print, document: dict | None = None,
         only: str | None = None) -> FuzzResult:
    """Run the document's examples, then ``cases`` generated cases per operation, flavour
    (generated / pinned) and mode. ``document`` replaces the served OpenAPI document (to show the
    checks fail when the document and the server disagree); ``only`` keeps the operations of
    one path template."""
    import hypothesis
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
    from schemathesis.checks import negative_data_rejection

    checks = [status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance, negative_data_rejection]
    if document is None:
        status, document = server.request("GET", "openapi.json")  # the document the server serves
        assert status == 200, document
    schema = schemathesis.openapi.from_dict(document)
    result = FuzzResult()
    base_url = server.api
    settings = hypothesis.settings(
        max_examples=cases, deadline=None, database=None, derandomize=seed is not None,
        suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
        verbosity=hypothesis.Verbosity.quiet,
    )
    def run_cases(op, label: str, strategy, examples: int) -> None:
        @hypothesis.settings(settings, max_examples=examples)
        @hypothesis.given(strategy)
        def run(case):
            result.cases += 1
            if op.path.endswith("/wait"):  # a long poll: answer at once (a valid timeout stays a valid one)
                timeout = (case.query or {}).get("timeout")
                if timeout is None or str(timeout).isdigit() and int(timeout) <= 300:
                    case.query = {**(case.query or {}), "timeout": 0}
            try:
                response = case.call(base_url=base_url, headers=server.headers, timeout=60)
            except Exception as exc:  # a dropped connection is a failure too
                result.failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: {exc}")
                return
            status = response.status_code
            result.statuses[status] += 1
            if status >= 500:
                # A 5xx is a failure unless the operation documents it (503 when Label Studio does not
                # answer) and the body says so with the typed error.
                documented = str(status) in op.definition.raw.get("responses", {})
                try:
                    code = response.json().get("error")
                except Exception:
                    code = None
                if documented and status == 503 and code == "unavailable":
                    result.documented_unavailable += 1
                else:
                    result.server_errors += 1
                    result.failures.append(f"{op.method.upper()} {op.path} [{label}] -> {status} "
                                           f"{response.text[:500]}")
            try:
                case.validate_response(response, checks=checks)
            except (Exception, BaseExceptionGroup) as exc:
                text = str(exc)
                for failure in getattr(exc, "exceptions", [exc]):
                    result.kinds[type(failure).__name__] += 1
                    if type(failure).__name__ in ("JsonSchemaError", "MalformedJson"):
                        result.schema_violations += 1
                result.failures.append(
                    f"{op.method.upper()} {op.path} [{label}] -> {response.status_code}\n"
                    f"  {case.as_curl_command(headers={'Authorization': 'token ***'})}\n"
                    f"  {text[:1500]}"
                )

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            pass

    operations = [r.ok() for r in schema.get_all_operations()]
    if only is not None:
        operations = [op for op in operations if op.path == only]
    # State-changing routes that would end the run early go last: deleting the seeded mount or
    # repo, or switching the backend (refused while mounts exist, which the seed keeps).
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))
    for op in operations:
        result.operations += 1
        before = result.cases
        flavours = [{}]
        pinned = pinned_parameters(op.path, server.seed)
        if pinned:
            flavours.append(pinned)
        strategies = [("examples", strategy, 3) for strategy in schema.get_strategies_from_examples(op)]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in flavours:
                strategies.append((mode.value, op.as_strategy(generation_mode=mode,
                                                              path_parameters=path_parameters or None), cases))
        for label, strategy, examples in strategies:
            run_cases(op, label, strategy, examples)
        log(f"{op.method.upper():6} {op.path:48} {result.cases - before:5} cases")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100, help="cases per operation, flavour and mode")
    parser.add_argument("--seed", type=int, default=None, help="derandomize (default: random)")
    parser.add_argument("--fuse", action="store_true", help="mounts through FUSE (default: no-FUSE)")
    parser.add_argument("--label-studio", action="store_true",
                        help="run the managed Label Studio (default: an external one that does not answer)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="pachls-fuzz-"))
    started = time.monotonic()
    try:
        with jupyter_server(workdir, fuse=args.fuse, label_studio=args.label_studio) as server:
            result = fuzz(server, cases=args.cases, seed=args.seed)
            log = server.log()
        for failure in result.failures[:50]:
            print(failure)
        print("statuses:", dict(sorted(result.statuses.items())))
        if result.kinds:
            print("failure kinds:", dict(result.kinds))
        tracebacks = log.count("Traceback (most recent call last)")
        print(f"server log tracebacks={tracebacks} elapsed={time.monotonic() - started:.0f}s")
        print(result.summary())
        return 1 if result.failures or result.server_errors else 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("work directory:", workdir)


if __name__ == "__main__":
    sys.exit(main())
