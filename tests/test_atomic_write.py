"""atomic_write: a file is replaced whole, with the mode asked for, and nothing is left beside it."""

from __future__ import annotations

import json
import os

import pytest

from jupyterlab_pachls.atomic_write import write_bytes, write_json


def test_write_json_replaces_the_file_whole_owner_only(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_json(target, {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"b": 1, "a": [1, 2]}
    assert list(json.loads(target.read_text())) == ["b", "a"]  # the caller's order
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_write_bytes_takes_the_mode_and_may_skip_fsync(tmp_path):
    target = tmp_path / "pid"
    write_bytes(target, b"123", mode=0o644, fsync=False)
    assert target.read_bytes() == b"123"
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    write_json(target, {"kept": True})
    with pytest.raises(TypeError):
        write_json(target, {"not json": object()})
    with pytest.raises(TypeError):
        write_bytes(target, "text, not bytes")  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"kept": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_json(tmp_path / "missing" / "state.json", {})


def test_without_replace_the_first_writer_wins_and_nothing_is_left_beside(tmp_path):
    target = tmp_path / "credentials.json"
    write_json(target, {"first": True}, replace=False)
    with pytest.raises(FileExistsError):
        write_json(target, {"second": True}, replace=False)
    assert json.loads(target.read_text()) == {"first": True}
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.json"]
