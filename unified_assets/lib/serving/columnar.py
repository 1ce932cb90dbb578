"""The online store's columns, encoded at export time from the exported frames: what
`online_store.py` memory-maps and searches. Strings become integer codes into vocabularies,
times int64 microseconds (missing: `online_store.NAT`), numbers float64 (missing: NaN), and every
array the service searches is sorted by the key it is searched by. The small reference rows go
to `small.json` as plain values."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd

from unified_assets.lib.serving.online_store import day_key, hour_key, key_text

_KINDS = {"int": "int", "bool": "bool", "float": "float"}


def plain(value):
    """A frame's value as JSON holds it: None for missing, Python numbers, ISO text for days,
    `str()` of a timestamp (as the service answers it)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return str(pd.Timestamp(value))
    if isinstance(value, date):
        return value.isoformat()
    return value


def _us(values: pd.Series) -> np.ndarray:
    """Naive UTC timestamps as int64 microseconds since the epoch (missing: int64 min)."""
    return values.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _days(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[D]").astype(np.int64)


def _floats(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=float, na_value=np.nan)


def _codes(values: pd.Series) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int32), [plain(u) for u in uniques]


def _key(values) -> str:
    """A key of exported rows as `online_store.key_text` writes a request's: days as days."""
    return key_text(v.date() if isinstance(v, datetime) else plain(v) for v in values)


def _offsets(keys) -> dict[str, tuple[int, int]]:
    """Where each key's rows start and end in rows ordered by key."""
    spans: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        text = _key(key)
        span = spans.setdefault(text, [position, position])
        if span[1] != position:
            raise ValueError(f"the rows of key {text} are not together: order them by key")
        span[1] = position + 1
    return {text: (start, end) for text, (start, end) in spans.items()}


def _flights(fl: pd.DataFrame, columns: dict, small: dict) -> None:
    """Every flight, sorted by its scheduled local time (then the export's order), with the
    searches the features make: by plane and day, by origin, day and hour."""
    sched_local = _us(fl["sched_dep_ts"])
    order = np.argsort(sched_local, kind="stable")
    fl = fl.iloc[order].reset_index(drop=True)
    vocab = {}
    for name in ("carrier", "origin", "dest", "tailnum"):
        columns[f"f_{name if name != 'tailnum' else 'tail'}"], vocab[name] = _codes(fl[name])
    day = _days(fl["flight_date"])
    columns |= {
        "f_sched_local": sched_local[order], "f_sched_utc": _us(fl["sched_dep_utc"]),
        "f_day": day.astype(np.int32), "f_flight": fl["flight"].to_numpy(np.int32),
        "f_distance": fl["distance_mi"].to_numpy(np.int32),
        "f_known": _us(fl["known_at_utc"]), "f_dep": _us(fl["dep_utc"]),
        "f_arr_delay": _floats(fl["arr_delay_min"]),
        "f_dep_delay": _floats(fl["dep_delay_min"]),
    }
    small["vocab"] = vocab
    tail = columns["f_tail"]
    has_tail = np.flatnonzero(tail >= 0)
    plane_key = day_key(tail[has_tail].astype(np.int64), day[has_tail])
    by_plane = np.argsort(plane_key, kind="stable")
    columns["plane_key"] = plane_key[by_plane]
    columns["plane_rows"] = has_tail[by_plane].astype(np.int32)
    hours = hour_key(columns["f_origin"].astype(np.int64), day,
                     fl["sched_hour"].to_numpy(np.int64))
    columns["hours_key"], counts = np.unique(hours, return_counts=True)
    columns["hours_count"] = counts.astype(np.int32)
    columns["days"] = np.unique(day)
    routes = {}
    for origin, dest, distance in zip(fl["origin"], fl["dest"], fl["distance_mi"], strict=True):
        routes[f"{origin}|{dest}"] = int(distance)
    small["routes"] = routes
    # departures per origin and per carrier, in time order, with their delays' running sums
    departed = columns["f_dep"] != np.iinfo(np.int64).min
    small["live"] = {}
    for grain in ("origin", "carrier"):
        frame = pd.DataFrame({"k": fl[grain].to_numpy(object)[departed],
                              "ts": columns["f_dep"][departed],
                              "v": columns["f_dep_delay"][departed].astype(np.int64)})
        ts, cum, spans = [], [], {}
        start = cum_start = 0
        for k, part in frame.sort_values(["k", "ts"], kind="stable").groupby("k"):
            ts.append(part["ts"].to_numpy(np.int64))
            cum.append(np.concatenate([[0], np.cumsum(part["v"].to_numpy(np.int64))]))
            spans[k] = (start, start + len(part), cum_start)
            start, cum_start = start + len(part), cum_start + len(part) + 1
        columns[f"live_{grain}_ts"] = np.concatenate(ts) if ts else np.zeros(0, np.int64)
        columns[f"live_{grain}_cum"] = np.concatenate(cum) if cum else np.zeros(0, np.int64)
        small["live"][grain] = spans


def _rates(r: pd.DataFrame, columns: dict, small: dict) -> None:
    keys = list(zip(r["grain"], r["key1"], r["key2"], strict=True))
    names = sorted({(g, plain(k1), plain(k2)) for g, k1, k2 in keys},
                   key=lambda k: tuple("" if x is None else x for x in k))
    code = {k: i for i, k in enumerate(names)}
    codes = np.array([code[(g, plain(k1), plain(k2))] for g, k1, k2 in keys], dtype=np.int64)
    search = day_key(codes, _days(r["anchor_day"]))
    order = np.argsort(search, kind="stable")
    columns |= {"rates_key": search[order], "rates_short": _floats(r["rate_short"])[order],
                "rates_long": _floats(r["rate_long"])[order],
                "rates_n": r["n_long"].to_numpy(np.int64)[order]}
    small["rate_keys"] = [list(k) for k in names]


def encode(frames: dict[str, pd.DataFrame], days: dict[str, list[str]], groups: list,
           lookups: list, defaults: dict) -> tuple[dict[str, np.ndarray], dict]:
    """The exported frames as the store's columns and its small rows (`days`: each frame's
    DATE columns, whose values the service answers as days)."""
    columns: dict[str, np.ndarray] = {}
    small: dict = {}
    _flights(frames["flights"], columns, small)
    _rates(frames["rates"], columns, small)
    small["as_of"] = []
    for i, group in enumerate(groups):
        rows = frames[f"asof_{i}"]  # ordered by key, then known
        key_columns = [f"k{j}" for j in range(len(group[0].asof.on))]
        offsets = _offsets(zip(*(rows[c] for c in key_columns), strict=True))
        columns[f"asof_{i}_known"] = _us(rows["known"])
        for f in group:
            columns[f"asof_{i}_{f.name}"] = _floats(rows[f.name].astype(float))
        small["as_of"].append({"on": [c for c, _ in group[0].asof.on],
                               "features": [f.name for f in group],
                               "as_of_column": group[0].asof.as_of_column,
                               "kinds": [_KINDS[f.dtype] for f in group], "offsets": offsets})
    small["lookups"] = {}
    for f in lookups:
        rows = frames[f"lookup_{f.name}"]
        key_columns = [rows[f"k{j}"] for j in range(len(f.lookup.on))]
        small["lookups"][f.name] = {
            "on": [c for c, _ in f.lookup.on], "default": defaults[f.name],
            "rows": [[_key(key), plain(v)] for *key, v in zip(*key_columns, rows["v"],
                                                               strict=True)]}
    small["planes"] = {t: None if plain(y) is None else int(y)
                       for t, y in frames["planes"].itertuples(index=False)
                       if plain(t) is not None}
    small["dates"] = {pd.Timestamp(d).date().isoformat(): [int(w), int(m), int(h)]
                      for d, w, m, h in frames["dates"].itertuples(index=False)}
    small["origin_daily"] = {}
    if "origin_daily" in frames:
        od = frames["origin_daily"]
        as_days = set(days["origin_daily"])
        for row in od.to_dict("records"):
            row = {k: pd.Timestamp(v).date() if k in as_days and plain(v) is not None else v
                   for k, v in row.items()}
            key = f"{row['origin']}|{pd.Timestamp(row['feature_date']).date().isoformat()}"
            small["origin_daily"][key] = {k: plain(v) for k, v in row.items()}
    return columns, small
