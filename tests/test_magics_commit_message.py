"""``%%pachls commit NAME -m ""`` fails before the cell runs, in plain words (not the API's field
wording after the cell already wrote its files)."""

from __future__ import annotations

import pytest

from jupyterlab_pachls.magics import PachlsMagics


class Shell:
    """Records the cells it is asked to run (a stand-in for IPython's shell: only run_cell is used)."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.configurables = []

    def run_cell(self, cell, *args, **kwargs):
        self.ran.append(cell)


def no_client():
    raise AssertionError("no client may be opened for an empty message")


@pytest.mark.parametrize("line", ['commit labels -m ""', "commit labels -m '   '", "commit labels --message="])
def test_an_empty_message_stops_the_cell_before_it_runs(line, capsys):
    magics = PachlsMagics(shell=None, client_factory=no_client)
    magics.shell = Shell()
    assert magics.pachls(line, "open('/tmp/x', 'w').write('x')") is None
    assert magics.shell.ran == []
    err = capsys.readouterr().err
    assert "%%pachls commit: the commit message is empty" in err and "nothing was run or committed" in err


def test_an_empty_message_on_the_line_magic(capsys):
    magics = PachlsMagics(shell=None, client_factory=no_client)
    assert magics.pachls('commit labels -m ""') is None
    assert "%pachls commit: the commit message is empty" in capsys.readouterr().err
