"""The two tiers, and the homes the system tier shares.

unit/ mirrors unified_assets/lib/: plain Python and DuckDB, no Dagster run, no server, no other
process. system/ is everything else: runs of the graph, sensors, the service, the UI in a
browser, PostgreSQL, Dask, killed and concurrent processes, the command line. Each test gets
the marker of its folder (`pytest -m unit`, `make test-fast`).

The homes below are built once per session and copied by every test that writes to them. Under
pytest-xdist the workers share them: the first worker to need one builds it under a file lock,
in the session's own temporary folder, and the others wait for it and copy it.
"""

from __future__ import annotations

import ast
import os

# Before LightGBM's OpenMP runtime loads, here and in every process the tests start: the two
# workers of pytest-xdist share two cores, and OpenMP threads that spin while they wait make a
# small training on a busy machine many times slower (docs/performance.md). Results are the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402

from unified_assets.lib.raw import landing  # noqa: E402

HERE = Path(__file__).resolve().parent
TIERS = ("unit", "system")
FIRST_DAYS_END = date(2013, 1, 3)
JANUARY_END = "2013-01-28"  # four weeks: the small models' windows (support/runs.py `small`)


# What a unit test module may not import: Dagster, the code location, the service, other
# processes, the system tier's support (unit/conftest.py also refuses to start a process).
NOT_IN_UNIT = ("dagster", "unified_assets.defs", "unified_assets.definitions",
               "unified_assets.cli", "unified_assets.replay", "unified_assets.online",
               "unified_assets_tests.support.runs", "subprocess", "multiprocessing")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


# pytest-xdist (make test: --dist loadfile --no-loadscope-reorder) hands the workers whole
# modules in collection order: the longest first, so that both workers finish together.
SLOWEST_FIRST = ("system/cli/test_replay.py", "system/cli/test_scenarios.py", "system/postgres/",
                 "system/concurrency/",
                 "system/dask/", "system/models/", "system/monitoring/test_drift_shifts.py",
                 "system/crash/", "system/ui/")


def slowness_rank(item) -> int:
    where = Path(item.path).resolve().relative_to(HERE).as_posix()
    return next((i for i, part in enumerate(SLOWEST_FIRST) if where.startswith(part)),
                len(SLOWEST_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=slowness_rank)  # stable: the rest keep their order, system/ before unit/
    checked = set()
    for item in items:
        path = Path(item.path).resolve()
        tier = path.relative_to(HERE).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test module lives in unit/ or system/")
        item.add_marker(tier)
        if tier == "unit" and path not in checked:
            checked.add(path)
            refused = sorted(n for n in imported(path)
                             if any(n == f or n.startswith(f + ".") for f in NOT_IN_UNIT))
            if refused:
                raise pytest.UsageError(f"{path.relative_to(HERE)} imports {refused}: a unit "
                                        "test uses lib/ alone; move it to system/")


def shared_template(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder `build` fills once per session, shared by the xdist workers; read-only to tests."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker's basetemp is in the session's folder
        root = root.parent
    target = root / "templates" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    done = target.parent / f"{name}.done"
    with FileLock(str(target.parent / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)  # a build that failed half-way
            target.mkdir()
            build(target)
            done.touch()
    return target


def copy_of(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


@pytest.fixture(scope="session")
def landed_template(tmp_path_factory) -> Path:
    """Jan 1-3 2013 landed; tests copy it."""
    return shared_template(tmp_path_factory, "landed",
                           lambda home: landing.land(home, through=FIRST_DAYS_END))


@pytest.fixture
def home(tmp_path, landed_template, monkeypatch) -> Path:
    """A fresh home folder with Jan 1-3 landed, set as UNIFIED_ASSETS_HOME."""
    target = copy_of(landed_template, tmp_path / "home")
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(target))
    return target


@pytest.fixture(scope="session")
def built_template(tmp_path_factory, landed_template) -> Path:
    """Jan 1-3 landed and built through raw, warehouse and marts by one run of the graph."""
    from unified_assets_tests.support.runs import run

    def build(home: Path) -> None:
        shutil.copytree(landed_template, home, dirs_exist_ok=True)
        assert run(home).success

    return shared_template(tmp_path_factory, "built", build)


@pytest.fixture
def built(tmp_path, built_template, monkeypatch) -> Path:
    """A fresh copy of the built Jan 1-3 home, set as UNIFIED_ASSETS_HOME."""
    target = copy_of(built_template, tmp_path / "home")
    monkeypatch.setenv("UNIFIED_ASSETS_HOME", str(target))
    return target


@pytest.fixture(scope="session")
def featured_template(tmp_path_factory) -> Path:
    """Jan 1-28 landed and built up to the feature tables: every window the small models read
    (support/runs.py `small`, support/train_small.py)."""
    from unified_assets_tests.support.runs import FEATURES_UP, data_and_feature_assets, run_assets

    def build(home: Path) -> None:
        landing.land(home, through=date.fromisoformat(JANUARY_END))
        assert run_assets(home, data_and_feature_assets(), selection=FEATURES_UP,
                          start="2013-01-01", end=JANUARY_END).success

    return shared_template(tmp_path_factory, "featured", build)


@pytest.fixture
def featured(tmp_path, featured_template) -> Path:
    """A fresh copy of the featured Jan 1-28 home."""
    return copy_of(featured_template, tmp_path / "home")
