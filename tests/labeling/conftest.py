"""One real Label Studio for the whole test session (its first start migrates a database)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyterlab_pachls.labeling.labelstudio import ManagedLabelStudio


@pytest.fixture(scope="session")
def ls_document_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ls-docroot")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory, ls_document_root):
    # Reuse a data dir across runs on one machine: a fresh one costs a migration (30 s to minutes).
    # Beside the run's temp dirs: a pytest-xdist worker's basetemp is one level deeper (<run>/popen-gwN).
    runs = tmp_path_factory.getbasetemp().parent
    if os.environ.get("PYTEST_XDIST_WORKER"):
        runs = runs.parent
    data_dir = Path(os.environ.get("PACHLS_TEST_LS_DIR", runs / "pachls-ls-data"))
    process = ManagedLabelStudio(data_dir, ls_document_root)
    process.start()
    process.wait_ready(900)
    yield process
    process.stop()
