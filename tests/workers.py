"""How the tests are split over processes: scripts/test.sh runs pytest on two workers (pytest-xdist
``-n 2 --dist loadfile``); tests/conftest.py loads this as a plugin.

A fixture set up once per module still is: each file's tests run on one worker. A session-scoped
fixture of ours must be in a conftest.py of one of ``ONE_WORKER_DIRS``, whose tests all run on one
worker as one unit: the real Label Studio of tests/labeling/conftest.py starts once (and no two
processes share its data dir). A test using one elsewhere is refused before anything runs.
"""

from __future__ import annotations

import pytest

ONE_WORKER_DIRS = ("tests/labeling/",)
# Units that take minutes in few tests, handed out first after ONE_WORKER_DIRS: xdist deals the units
# biggest in number of tests first, so these came last and ended the run on one worker.
LONG_UNITS = ("tests/test_fuzz_api.py", "tests/test_crash_trials.py", "tests/test_magics_notebook.py",
              "tests/test_bench_smoke.py", "tests/test_stall.py")


def one_worker_unit(nodeid: str) -> str:
    """The unit of tests handed to one worker: a directory of ``ONE_WORKER_DIRS``, else the test's file."""
    for folder in ONE_WORKER_DIRS:
        if nodeid.startswith(folder):
            return folder
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getoption("dist") != "loadfile":
        return None
    # Not xdist's xdist_group marks: with pytest 9.2 they group nothing (xdist renames the items through
    # an attribute pytest no longer reads).
    from xdist.scheduler import LoadFileScheduling

    class OneWorkerDirs(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return one_worker_unit(nodeid)

        def _assign_work_unit(self, node) -> None:
            for unit in reversed(ONE_WORKER_DIRS + LONG_UNITS):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            super()._assign_work_unit(node)

    return OneWorkerDirs(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtureinfo = getattr(item, "_fixtureinfo", None)
        if fixtureinfo is None or one_worker_unit(item.nodeid) in ONE_WORKER_DIRS:
            continue
        # plugins' fixtures (no baseid) are not ours: setting them up twice costs nothing
        shared = sorted(name for name, defs in fixtureinfo.name2fixturedefs.items()
                        if defs and defs[-1].baseid and defs[-1].scope in ("session", "package"))
        if shared:
            raise pytest.UsageError(f"{item.nodeid} uses the session-scoped fixture(s) {', '.join(shared)} of "
                                    f"this project: such tests must be under one of ONE_WORKER_DIRS "
                                    f"{ONE_WORKER_DIRS} (tests/workers.py), or each worker sets it up")
