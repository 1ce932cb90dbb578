"""The Dask cluster setting's value (lib/core/cluster.py), parsed without a cluster."""

import pytest

from unified_assets.lib.core import cluster


def test_a_cluster_setting_is_parsed_or_refused_with_its_name():
    assert cluster.parse("") is None
    assert cluster.parse("local:2") == cluster.Target(local_workers=2)
    assert cluster.parse("10.0.0.5:8786") == cluster.Target(address="tcp://10.0.0.5:8786")
    assert cluster.parse("tcp://sched:8786").address == "tcp://sched:8786"
    for bad in ("local:0", "local:two", "sched"):
        with pytest.raises(ValueError, match="dask cluster"):
            cluster.parse(bad)
