"""%pachls argument parsing and result rendering (no server: parsing and tables are pure)."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas
import pytest

from jupyterlab_pachls.client import Table
from jupyterlab_pachls.client.tables import format_cell
from jupyterlab_pachls.magics import (
    PARSER,
    HelpShown,
    UsageError,
    as_result,
    blame_rows,
    commit_rows,
    first_line,
    parse,
)
from jupyterlab_pachls.pfs import Commit, Provenance

SUBCOMMANDS = ["repos", "branches", "log", "ls", "mount", "unmount", "mounts", "status", "diff", "commit",
               "discard", "follow", "rollback", "blame", "labels", "export", "put", "get", "create-repo", "wait"]


def test_every_subcommand_has_help(capsys):
    choices = PARSER._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert sorted(choices) == sorted(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        with pytest.raises(HelpShown):
            parse(f"{name} --help")
        out = capsys.readouterr().out
        assert out.startswith(f"usage: %pachls {name}"), out


def test_empty_line_and_top_level_help_list_subcommands(capsys):
    for line in ("", "--help", "-h"):
        with pytest.raises(HelpShown):
            parse(line)
        out = capsys.readouterr().out
        assert "create-repo" in out and "labels" in out


@pytest.mark.parametrize("line, expected", [
    ("repos", {"command": "repos"}),
    ("branches images", {"repo": "images"}),
    ("log images@master", {"address": "images@master", "limit": 20}),
    ("log images@master -n 3", {"limit": 3}),
    ("ls images@master:/cats --limit 5", {"address": "images@master:/cats", "limit": 5}),
    ("mount labels@master", {"address": "labels@master", "rw": False, "name": None}),
    ("mount labels@dev --rw --name work", {"rw": True, "name": "work"}),
    ("unmount work --discard", {"name": "work", "discard": True}),
    ("diff work", {"target": "work", "other": None, "labels": False}),
    ("diff labels@a labels@b --labels", {"target": "labels@a", "other": "labels@b", "labels": True}),
    ("commit labels -m 'round 2: cats'", {"name": "labels", "message": "round 2: cats", "provenance": []}),
    ("commit labels --message=x --provenance images@master --provenance text@v1",
     {"message": "x", "provenance": ["images@master", "text@v1"]}),
    ("discard labels", {"name": "labels"}),
    ("rollback labels@master master^2", {"address": "labels@master", "commit": "master^2"}),
    ("blame labels@master:/cats/001.png", {"address": "labels@master:/cats/001.png"}),
    ("labels labels@master --data images@master", {"data": "images@master", "path": "/"}),
    ("create-repo text --description 'some text'", {"name": "text", "description": "some text"}),
])
def test_parse(line, expected):
    args = vars(parse(line))
    for key, value in expected.items():
        assert args[key] == value, (key, args)


@pytest.mark.parametrize("line, message", [
    ("log", "%pachls log: the following arguments are required: REPO@BRANCH (see %pachls log --help)"),
    ("commit labels", "%pachls commit: the following arguments are required: -m/--message"),
    ("log images@master -n many", "argument -n/--limit: invalid int value: 'many'"),
    ("frobnicate", "invalid choice: 'frobnicate'"),
    ("repos extra", "unrecognized arguments: extra"),
    ("commit labels -m 'unclosed", "%pachls: No closing quotation"),
])
def test_usage_errors_are_one_line(line, message):
    with pytest.raises(UsageError) as info:
        parse(line)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_first_line_keeps_the_message_and_drops_the_pointer():
    assert first_line("cannot parse 'a@@b' at position 2: bad\na@@b\n  ^") == "cannot parse 'a@@b' at position 2: bad"
    assert first_line("\n\nsecond") == "second"


def test_format_cell():
    when = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc)
    assert format_cell(None) == ""
    assert format_cell(when) == "2026-01-02 03:04:05+00:00"
    assert format_cell(["Cat", "Dog"]) == "Cat, Dog"
    assert format_cell([{"a": 1}]) == '[{"a":1}]'
    assert format_cell("x" * 10, 5) == "xxxx…"


def test_table_text_and_html_escape_and_truncate():
    table = Table([{"path": "/a<b>.png", "labels": ["Cat"], "note": "y" * 400},
                   {"path": "/c.png", "labels": [], "note": None}], title="files")
    assert table.columns == ["path", "labels", "note"]
    text = table.to_text()
    lines = text.splitlines()
    assert lines[0].split() == ["path", "labels", "note"]
    assert lines[2].startswith("/a<b>.png  Cat ")
    assert len(lines) == 4 and "…" in lines[2]
    html = table._repr_html_()
    assert "<table" in html and "&lt;b&gt;" in html and "<b>" not in html
    assert html.count("<tr>") == 3
    assert f"title='{'y' * 400}'" in html and "y" * 300 not in html.replace(f"title='{'y' * 400}'", "")
    assert list(table) == [dict(r) for r in table]  # still a plain list of dicts


def test_empty_table_says_so_and_keeps_columns():
    table = Table([], columns=("commit", "message"), title="commits")
    assert "(no commits)" in table.to_text()
    assert "no commits" in table._repr_html_()
    frame = table.to_frame()
    assert list(frame.columns) == ["commit", "message"] and len(frame) == 0


def test_pretty_printer_uses_the_text_table():
    from IPython.lib.pretty import pretty

    table = Table([{"a": 1}])
    assert pretty(table) == table.to_text()


def test_as_result_is_a_dataframe_with_the_columns():
    commit = Commit(id="a" * 32, repo="labels", branch="master", parent=None, message="round 1",
                    author="ann", finished=datetime(2026, 1, 1, tzinfo=timezone.utc), n_files=2,
                    provenance=(Provenance("images", "b" * 32),))
    frame = as_result(commit_rows([commit]))
    assert isinstance(frame, pandas.DataFrame)
    assert frame.loc[0, "commit"] == "a" * 32
    assert frame.loc[0, "provenance"] == ["images@" + "b" * 32]
    assert list(frame.columns)[:4] == ["commit", "branch", "parent", "message"]


def test_blame_rows_flatten_provenance():
    from jupyterlab_pachls.labeling.history import BlameEntry

    entry = BlameEntry(commit="c" * 32, time=None, author="ann", message="m", change="added",
                       annotators=("ann@example.com",), labels=("Cat",), data_commit="d" * 32,
                       provenance=(Provenance("images", "d" * 32),))
    (row,) = blame_rows([entry])
    assert row["provenance"] == ["images@" + "d" * 32] and row["labels"] == ["Cat"]


def test_as_result_without_pandas_is_the_table(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    table = commit_rows([])
    assert as_result(table) is table and table == [] and table.columns[0] == "commit"
