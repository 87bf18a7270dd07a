"""Fuzz every route of the OpenAPI document against a real Jupyter server (schemathesis).

The server is a subprocess on 127.0.0.1 with a token, over a throwaway store seeded with repos,
branches, commits, files and two mounts (one read-write with a staged file), so generated
requests reach the backend; state-changing routes are fuzzed too. Label Studio is configured but
does not answer: labeling routes must say so with the documented 503 ``unavailable``.

The long variant is ``stress/fuzz_api.py --cases N`` (see stress/README.md).
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = yaml.safe_load((ROOT / "jupyterlab_pachls" / "openapi.yaml").read_text())
CASES = 14  # per operation, flavour (generated / pinned path parameters) and mode (positive / negative)


def load_harness():
    spec = importlib.util.spec_from_file_location("pachls_stress_fuzz_api", ROOT / "stress" / "fuzz_api.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = load_harness()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with harness.jupyter_server(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def test_fuzz_every_route(server):
    result = harness.fuzz(server, cases=CASES, seed=0, log=lambda line: None)
    print(f"statuses {dict(sorted(result.statuses.items()))}")
    print(result.summary())
    assert not result.failures, "\n\n".join(result.failures[:10])
    operations = sum(1 for item in SPEC["paths"].values() for m in item if m in ("get", "put", "post", "delete"))
    assert result.operations == operations
    assert result.cases >= 1000
    assert result.server_errors == 0 and result.schema_violations == 0
    # Deep paths were reached: successes, commits landed, typed errors of every kind.
    assert {200, 201, 204, 400, 404, 409} <= set(result.statuses)
    assert result.documented_unavailable >= 1  # creating a session while Label Studio does not answer
    assert "Traceback" not in server.log()
    # The seeded store is still whole after the fuzzing.
    status, health = server.request("GET", "health")
    assert status == 200 and health["backend"]["connected"] is True


def test_fuzz_reports_a_server_that_breaks_the_document(server):
    """The checks can fail: a document stricter than the server (a required field the server never
    sends, no 503 for labeling) gives schema violations and undocumented server errors."""
    document = copy.deepcopy(SPEC)
    repo = document["components"]["schemas"]["Repo"]
    repo["required"] = [*repo["required"], "owner"]
    repo["properties"]["owner"] = {"type": "string"}
    result = harness.fuzz(server, cases=3, seed=0, log=lambda line: None, document=document, only="/repos/{repo}")
    assert result.schema_violations >= 1, result.failures
    document = copy.deepcopy(SPEC)
    del document["paths"]["/labeling/sessions"]["post"]["responses"]["503"]
    result = harness.fuzz(server, cases=3, seed=0, log=lambda line: None, document=document,
                          only="/labeling/sessions")
    assert result.server_errors >= 1, result.failures
