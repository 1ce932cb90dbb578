"""A source table and a lookup feature added from their declarations alone: the two files of
docs/graph.md's worked example, copied from that page into a copy of the package."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HOLIDAYS_2013 = ("date,name\n2013-01-01,New Year's Day\n2013-01-21,Martin Luther King Jr. Day\n"
                 "2013-02-18,Presidents' Day\n2013-05-27,Memorial Day\n2013-07-04,Independence "
                 "Day\n2013-09-02,Labor Day\n2013-10-14,Columbus Day\n2013-11-11,Veterans Day\n"
                 "2013-11-28,Thanksgiving\n2013-12-25,Christmas Day\n")


def worked_example() -> dict[str, str]:
    """The files docs/graph.md shows: a backquoted path ending in .py, then its code block."""
    text = (REPO / "docs" / "graph.md").read_text()
    found = re.findall(r"`(unified_assets/[\w/]+\.py)`[^`]*?\n\n```python\n(.*?)```", text, re.S)
    return dict(found)


def test_a_source_and_a_feature_from_their_declarations_alone(tmp_path, built_template):
    files = worked_example()
    assert sorted(files) == ["unified_assets/lib/features/lookups/holidays.py",
                             "unified_assets/lib/sources/holidays.py"]
    package = tmp_path / "package"
    shutil.copytree(REPO / "unified_assets", package / "unified_assets",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", package)  # the project's root, as Dagster finds it
    for path, code in files.items():
        (package / path).write_text(code)
    home = shutil.copytree(built_template, tmp_path / "home")
    (home / "landing" / "reference" / "holidays.csv").write_text(HOLIDAYS_2013)
    env = dict(os.environ, PYTHONPATH=f"{package}{os.pathsep}{REPO}",
               UNIFIED_ASSETS_HOME=str(home))
    done = subprocess.run([sys.executable, str(REPO / "unified_assets_tests" / "support" /
                                                "declared.py"), str(home)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["package"].startswith(str(package))  # the copy, not the repository
    assert seen["success"] and seen["registered"]
    # its assets have every check a source's tables have, a dimension's loss check among them
    assert {"raw/holidays:schema", "raw/holidays:landing_files", "warehouse/dim_holiday:schema",
            "warehouse/dim_holiday:conservation", "warehouse/dim_holiday:dimension_loss",
            "warehouse/dim_holiday:conflicting_duplicates"} <= set(seen["checks"])
    # the feature table depends on the new dimension because the feature declares it
    assert "warehouse/dim_holiday" in seen["flight_features_deps"]
    # batch: New Year's Day is a holiday, the next two days are not
    assert seen["batch_by_day"] == {"2013-01-01": [True], "2013-01-02": [False],
                                    "2013-01-03": [False]}
    # online: the same values for the same flights, from the same declaration
    assert seen["online"] == seen["batch_sampled"] and True in seen["online"]
    # a feature the online path does not compute is named, never served as a silent null
    assert seen["uncovered"] == ["computed_nowhere"]
    # the landing sensor discovers the new reference file with no list kept by hand
    assert any("reference/holidays" in (f or "") for f in seen["sensor_files"])
