"""tests/workers.py: on two pytest-xdist workers (as scripts/test.sh runs), a fixture meant to be set
up once per session or module still is, on one worker; both workers get work; a
session-scoped fixture used outside ``ONE_WORKER_DIRS`` is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

TESTS = Path(__file__).resolve().parent

SESSION_CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def costly():
    with open({log!r}, "a") as log:  # all workers append here
        log.write("session\\n")
"""

USES_SESSION = """
import pytest

@pytest.mark.parametrize("n", range(6))
def test_uses_it(costly, n):
    pass
"""

USES_MODULE = """
import pytest

@pytest.fixture(scope="module")
def per_module():
    with open({log!r}, "a") as log:
        log.write("module\\n")

class TestOne:
    @pytest.mark.parametrize("n", range(3))
    def test_one(self, per_module, n):
        pass

class TestTwo:
    @pytest.mark.parametrize("n", range(3))
    def test_two(self, per_module, n):
        pass
"""

PLAIN = """
import pytest

@pytest.mark.parametrize("n", range(2))
def test_plain(n):
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A small test tree laid out like ours, with tests/workers.py as its plugin; the setups log."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # only what is needed: starts in a second
    log = tmp_path / "setups.log"
    (pytester.path / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntestpaths = ['tests']\n")
    folder = pytester.mkpydir("tests") / "labeling"
    folder.mkdir()
    (folder.parent / "conftest.py").write_text('pytest_plugins = ("workers",)\n')
    (folder / "conftest.py").write_text(SESSION_CONFTEST.format(log=str(log)))
    (folder / "test_a.py").write_text(USES_SESSION)
    (folder / "test_b.py").write_text(USES_SESSION)
    (folder.parent / "test_module.py").write_text(USES_MODULE.format(log=str(log)))
    for name in "cdef":
        (folder.parent / f"test_plain_{name}.py").write_text(PLAIN)
    (folder.parent / "test_fuzz_api.py").write_text("def test_long():\n    pass\n")  # one of LONG_UNITS
    return log


def test_shared_fixtures_are_set_up_once_on_two_workers(pytester: pytest.Pytester, suite: Path):
    result = pytester.runpytest_subprocess("-p", "xdist.plugin", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider",
                                          "-v")
    result.assert_outcomes(passed=27)
    assert sorted(suite.read_text().splitlines()) == ["module", "session"]  # not once per worker
    passed = [line for line in result.outlines if "PASSED" in line]

    def workers(part: str) -> set[str]:
        return {line.split("]")[0] for line in passed if part in line}

    # each unit on one worker; the Label Studio unit and the long one go out first, one to each worker
    assert len(workers("tests/labeling/")) == len(workers("test_module.py")) == 1, result.outlines
    assert workers("tests/labeling/") | workers("test_fuzz_api.py") == {"[gw0", "[gw1"}, result.outlines
    first_plain = min(i for i, line in enumerate(passed) if "test_plain" in line)
    assert any("test_fuzz_api.py" in line for line in passed[:first_plain]), result.outlines  # not last


def test_a_session_fixture_outside_the_one_worker_dirs_is_refused(pytester: pytest.Pytester, suite: Path):
    (pytester.path / "tests" / "test_outside.py").write_text(
        "import pytest\n\n@pytest.fixture(scope='session')\ndef mine():\n    return 1\n\n"
        "def test_outside(mine):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tests/test_outside.py::test_outside uses the session-scoped fixture(s) mine*"])
    assert not suite.exists()  # refused before anything ran
