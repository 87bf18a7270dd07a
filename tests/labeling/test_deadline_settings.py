"""Label Studio's deadlines are settings: ``PachlsConfig.label_studio_poll_timeout``,
``label_studio_commit_timeout`` and ``label_studio_timeout`` reach the labeling service the server
builds, and each kind of call runs out after its configured time, answering the typed ``Unavailable``
that names the call, its kind and that deadline.

Label Studio is a stand-in here (``export_stalls``: a team server, given by URL, whose exports never
come): only a server that never answers lets a call run out of its deadline.
"""

from __future__ import annotations

import pytest

from jupyterlab_pachls.app import PachlsState, make_labeling_service
from jupyterlab_pachls.config import PachlsConfig
from jupyterlab_pachls.pfs import LocalBackend
from jupyterlab_pachls.pfs.errors import InvalidArgument
from labeling.test_labelstudio_deadlines import a_session, assert_timed_out, export_stalls, outcome  # noqa: F401

POLL, COMMIT, WORK = 1.0, 1.5, 2.0


@pytest.fixture
def configured(tmp_path, export_stalls):  # noqa: F811
    url, _asked = export_stalls
    config = PachlsConfig(label_studio_url=url, label_studio_token="token", label_studio_poll_timeout=POLL,
                          label_studio_commit_timeout=COMMIT, label_studio_timeout=WORK)
    state = PachlsState(config=config)
    state.backend = LocalBackend(tmp_path / "store")
    state.labeling = make_labeling_service(state, str(tmp_path / "store"), "http://127.0.0.1:8888/")
    yield state
    state.close()


def test_each_kind_of_label_studio_call_runs_out_after_its_configured_deadline(configured):
    service, backend = configured.labeling, configured.backend

    error = outcome(lambda: service.pending(a_session(service).id))
    assert_timed_out(error, "poll")
    assert error.details["deadline"] == POLL

    error = outcome(lambda: service.commit_labels(a_session(service).id, message="round", author="ana"))
    assert_timed_out(error, "commit")
    assert error.details["deadline"] == COMMIT

    backend.create_repo("images")  # the data branch moved on: importing it exports every task first
    with backend.commit("images", "master", message="new data") as c:
        c.put_files([("/cats/001.png", b"png")])
    error = outcome(lambda: service.import_new_data(a_session(service).id))
    assert_timed_out(error, "work")
    assert error.details["deadline"] == WORK


@pytest.mark.parametrize("setting", ["label_studio_poll_timeout", "label_studio_commit_timeout",
                                     "label_studio_timeout"])
def test_a_deadline_that_is_not_positive_is_refused_when_the_service_is_made(tmp_path, setting):
    state = PachlsState(config=PachlsConfig(**{setting: 0.0}))
    try:
        with pytest.raises(InvalidArgument) as info:
            make_labeling_service(state, str(tmp_path / "store"), "http://127.0.0.1:8888/")
        assert "positive number of seconds" in info.value.message
    finally:
        state.close()
