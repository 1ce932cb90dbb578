"""The online store's format and keys, without a warehouse."""

import json
from datetime import date

import numpy as np
import pytest

from unified_assets.lib.serving import online_store


def test_a_store_of_an_older_format_is_refused_with_what_to_do(tmp_path):
    online = tmp_path / "online"
    online.mkdir()
    (online / "store.json").write_text(json.dumps({"folder": "store-old", "files": {}}))
    with pytest.raises(ValueError, match=r"format 1; .* materialize serving/online_store again"):
        online_store.load(tmp_path)


def test_search_keys_sort_by_code_then_day_across_1970():
    days = [date(1969, 12, 31), date(1970, 1, 1), date(2013, 6, 1), date(2099, 12, 31)]
    numbers = [d.toordinal() - date(1970, 1, 1).toordinal() for d in days]
    keys = [int(online_store.day_key(code, n)) for code in (0, 1, 4000) for n in numbers]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    hours = [int(online_store.hour_key(o, n, h)) for o in (0, 2) for n in numbers
             for h in (0, 23)]
    assert hours == sorted(hours) and len(set(hours)) == len(hours)
    assert isinstance(online_store.day_key(np.int64(3), 5), np.integer)


def test_request_and_exported_keys_agree_on_days():
    assert online_store.key_of([date(2013, 1, 1), "N123", 7]) == ("2013-01-01", "N123", 7)
    text = online_store.key_text([date(2013, 1, 1), None])
    assert tuple(json.loads(text)) == online_store.key_of([date(2013, 1, 1), None])
