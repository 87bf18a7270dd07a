"""docs/pachyderm-compat.md has one row for every method of pfs_v2, transaction_v2 and metadata in
the SDK's stubs, and says "served" exactly for the methods the server serves."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from pachyderm_sdk.api import metadata, pfs, transaction

from jupyterlab_pachls.pfs.server.calls import stub_methods
from jupyterlab_pachls.pfs.server.service import NOT_SERVED

DOC = Path(__file__).resolve().parents[3] / "docs" / "pachyderm-compat.md"


def rows(section: str) -> dict[str, str]:
    """``{method: served column}`` of the table under the ``## section`` heading."""
    text = DOC.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    table = {}
    for line in text[start:end if end > 0 else None].splitlines():
        match = re.match(r"\|\s*([A-Za-z0-9]+)\s*\|\s*(yes|no)\s*\|", line)
        if match:
            assert match.group(1) not in table, f"two rows for {match.group(1)}"
            table[match.group(1)] = match.group(2)
    return table


@pytest.mark.parametrize("section, stub", [("pfs_v2.API", pfs.ApiStub), ("transaction_v2.API", transaction.ApiStub),
                                           ("metadata.API", metadata.ApiStub)])
def test_every_method_of_the_stubs_has_a_row(section, stub):
    methods = {path.rsplit("/", 1)[1] for path in stub_methods(stub)}
    documented = rows(section)
    assert set(documented) == methods


def test_the_served_column_matches_the_server():
    documented = rows("pfs_v2.API")
    assert {m for m, served in documented.items() if served == "no"} == set(NOT_SERVED)


def test_unserved_methods_answer_unimplemented_with_their_reason(client, served):
    with grpc.insecure_channel(f"127.0.0.1:{served[1]}") as channel:
        call = channel.unary_unary("/pfs_v2.API/ShardFileSet")
        with pytest.raises(grpc.RpcError) as failed:
            call(b"")
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert failed.value.details() == NOT_SERVED["ShardFileSet"]
