"""Scenario reports: what each retraining policy made of a planted change, on the same rows.

For each scenario and model: when the platform first raised an alarm after the start and what
it named (a data check, a drifted feature, a retraining decision); the realized metric of the
loop, the monthly calendar and the frozen model over the 7 and 28 days from the start, with
the loop − calendar difference and its 95 % interval; the days until each policy's served
metric was back within a stated tolerance of its level before the start; each policy's
trainings; and whether any model a policy deployed was trained on edited rows.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from unified_assets.lib.core import artifacts, config, database
from unified_assets.lib.deployment import manifests
from unified_assets.lib.features.tables import FEATURE_SOURCES, WEATHER
from unified_assets.lib.models import evaluation
from unified_assets.lib.models.specs import SPECS, ModelSpec
from unified_assets.lib.monitoring import model_health, report
from unified_assets.lib.quality import feeds
from unified_assets.lib.raw.scenarios import Scenario

PRE_DAYS = 14  # the served metric's level before the start: these days
PERIODS = (7, 28)  # days from the start the realized metric is pooled over
RECOVERY_DAYS = 7  # the served metric's trailing window when judging recovery
TOLERANCE = {"binary": ("AUC", 0.02, "lower"), "regression": ("MAE", 0.05, "higher"),
             "forecast": ("MAE", 0.10, "higher")}
"""Recovered: the trailing RECOVERY_DAYS metric is within this of the level before the
start (AUC at most 0.02 lower; MAE at most 5 % higher, 10 % for the noisy forecaster)."""
POLICY_COLUMNS = {"loop": "prediction", "calendar": "calendar", "frozen": "frozen"}


def _rows(home: Path, spec: ModelSpec, start: date, end: date) -> pd.DataFrame:
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        frame = model_health.scored_rows(conn, spec, start, end)
    finally:
        conn.close()
    return frame[frame["_actual"].notna()].reset_index(drop=True)


def same_rows(homes: dict[str, Path], state: Path, spec: ModelSpec, start: date,
              end: date) -> pd.DataFrame:
    """The loop's served rows with outcomes in [start, end), beside the calendar's prediction
    for each same row and the frozen champion's (the saved state's) score."""
    loop = _rows(homes["loop"], spec, start, end)
    calendar = _rows(homes["calendar"], spec, start, end)[[*spec.key, "prediction"]]
    rows = loop.merge(calendar.rename(columns={"prediction": "calendar"}), on=list(spec.key))
    current = manifests.current(state, spec.name)
    rows["frozen"] = (report.frozen_scores(homes["loop"], spec, current["version"], rows)
                      if current and not rows.empty else np.nan)
    rows["day"] = pd.to_datetime(rows["_day"]).dt.date
    return rows.rename(columns={"_actual": "actual"})


def metric(spec: ModelSpec, rows: pd.DataFrame, column: str) -> float | None:
    y = rows["actual"].to_numpy(float)
    if len(rows) < 2 or (spec.task == "binary" and len(set(y)) < 2):
        return None
    return float(evaluation.primary(spec.task, y, rows[column].to_numpy(float)))


def daily(spec: ModelSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """The realized metric of each policy per scored day."""
    return pd.DataFrame({
        policy: {day: metric(spec, part, column) for day, part in rows.groupby("day")}
        for policy, column in POLICY_COLUMNS.items()
    }).sort_index()


def recovery(spec: ModelSpec, rows: pd.DataFrame, start: date, level: float | None,
             column: str) -> str:
    """Days from the start until the trailing RECOVERY_DAYS metric is back within tolerance
    of `level` after it left it; "held" when it never left."""
    if level is None:
        return "n/a"
    _, tolerance, _ = TOLERANCE[spec.task]
    higher = spec.higher_is_better
    limit = level - tolerance if higher else level * (1 + tolerance)
    left = False
    days = sorted(d for d in rows["day"].unique() if d >= start)
    for day in days:
        window = rows[(rows["day"] > day - timedelta(days=RECOVERY_DAYS))
                      & (rows["day"] >= start) & (rows["day"] <= day)]
        value = metric(spec, window, column)
        if value is None:
            continue
        within = value >= limit if higher else value <= limit
        if not within:
            left = True
        elif left:
            return f"{(day - start).days + 1} d"
    if not left:
        return "held"
    return f"not in {len(days)} d"


def detection(home: Path, ledger: dict, spec: ModelSpec, start: date,
              end: date) -> tuple[int | None, str]:
    """The first alarm on or after the start, as scored days from it (the start = 1), and
    what it named. A drift streak already running before the start is not the scenario's."""
    alarms: list[tuple[date, str]] = []
    tables = FEATURE_SOURCES[spec.table]
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        for faults in (feeds.FEED_FAULTS, feeds.LABEL_FAULTS):
            for day, checks in feeds.feed_faults(conn, tables, start, end, faults).items():
                if sum(checks.values()) >= (feeds.BROKEN_DAY_ROWS
                                            if faults is feeds.FEED_FAULTS else 1):
                    alarms.append((day, "data check " + ", ".join(sorted(checks))))
        drifts, _ = model_health.history(conn, spec.name)
    finally:
        conn.close()
    if not drifts.empty:  # the first drift verdict of a streak that began on or after it
        drifts["d"] = pd.to_datetime(drifts["day"]).dt.date
        drifted = drifts["is_drift"].fillna(False).astype(bool)
        began = drifted & ~drifted.shift(fill_value=False)
        for r in drifts[(drifts["d"] >= start) & began].itertuples():
            top = str(r.top_features or "").split(", ")[:3]
            alarms.append((r.d, f"drift ({', '.join(t for t in top if t) or r.drift_reasons})"))
            break
    for event in ledger["retrainings"]:
        asked = date.fromisoformat(event["sim_time"][:10]) - timedelta(days=1)
        if event["model"] == spec.name and asked >= start and event["reason"] in (
                "drift", "performance", "estimated_performance"):
            alarms.append((asked, f"retraining on {event['reason']}"))
            break
    if not alarms:
        return None, "none"
    first = min(day for day, _ in alarms)
    named = "; ".join(what for day, what in alarms if day == first)
    return (first - start).days + 1, named


SEGMENT_MIN_ROWS = 200
HOUR_BANDS = {"morning (before 12)": (0, 12), "afternoon (12-17)": (12, 18),
              "evening (18 on)": (18, 25)}


def segments(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """The segments a shift can hit: origin, carrier, hour band and origin by hour band (the
    flight models); origin (the forecaster)."""
    found = {}
    if "origin" in rows:
        found["origin"] = rows["origin"].astype(str)
    if "carrier" in rows:
        found["carrier"] = rows["carrier"].astype(str)
    if "sched_hour" in rows:
        band = pd.Series("", index=rows.index)
        for name, (low, high) in HOUR_BANDS.items():
            band[(rows["sched_hour"] >= low) & (rows["sched_hour"] < high)] = name
        found["hour"] = band
        if "origin" in found:
            found["origin, hour"] = found["origin"] + ", " + band
    return found


def segment_shift(rows: pd.DataFrame, start: date, days: int = 7) -> str:
    """The segment whose outcomes moved furthest from the served predictions in the first
    `days` days against the PRE_DAYS before the start: the change of the mean of (outcome -
    prediction), on segments of at least SEGMENT_MIN_ROWS rows in each period."""
    before = rows["day"] < start
    after = (rows["day"] >= start) & (rows["day"] < start + timedelta(days=days))
    gap = rows["actual"].astype(float) - rows["prediction"].astype(float)
    best, named = 0.0, "none"
    for kind, values in segments(rows).items():
        frame = pd.DataFrame({"segment": values, "gap": gap, "before": before, "after": after})
        for segment, part in frame.groupby("segment"):
            pre, post = part[part["before"]], part[part["after"]]
            if min(len(pre), len(post)) < SEGMENT_MIN_ROWS:
                continue
            change = post["gap"].mean() - pre["gap"].mean()
            if abs(change) > abs(best) + 1e-12:
                best, named = change, f"{kind} {segment}: {change:+.3g}"
    return named


def trainings(home: Path, ledger: dict, spec: ModelSpec, edited: set[str]) -> dict:
    """The policy's retrainings of the model in the replay, and whether a model it deployed
    was trained on an edited day (broken-feed days its training set left out do not count; an
    edited day counts whole, also when the edit only took outcomes away)."""
    events = [e for e in ledger["retrainings"] if e["model"] == spec.name]
    on_edited, gaps = [], []
    for e in events:
        if e["status"] != "promoted" or not e.get("version"):
            continue
        meta = artifacts.load_metadata(home, e["version"])
        windows = meta.get("windows", {})
        first, last = windows["train"][0], windows["test"][1]
        used = {d for d in edited if first <= d < last} - set(meta.get("excluded_days", {}))
        if used:
            on_edited.append(f"{e['version'][:8]} ({len(used)} d)")
        gaps += list(meta.get("label_gaps", {}))
    return {"count": len(events), "promoted": sum(e["status"] == "promoted" for e in events),
            "reasons": ", ".join(sorted({e["reason"] for e in events})) or "-",
            "on_edited": ", ".join(on_edited) or "no",
            "label_gaps": len(set(gaps))}


def edited_days(ledger: dict, spec: ModelSpec) -> set[str]:
    """Days on which the scenario changed rows the model's features are built from."""
    weather = WEATHER in FEATURE_SOURCES[spec.table]
    return {e["day"] for e in ledger["edits"]
            if e["rows"] and (e["table"] == "flights" or weather)}


def monitoring_cover(home: Path, spec: ModelSpec, start: date, end: date) -> str:
    """Scored days in the window with a realized metric, and with a label-free estimate."""
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        drifts, perf = model_health.history(conn, spec.name)
        guesses = model_health.estimates(conn, spec.name)
    finally:
        conn.close()

    def days(frame: pd.DataFrame) -> set:
        if frame.empty:
            return set()
        frame = frame[frame["value"].notna()] if "value" in frame else frame
        d = pd.to_datetime(frame["day"]).dt.date
        return {x for x in d if start <= x <= end}

    scored = days(drifts)
    return (f"{len(days(perf) & scored)} realized, {len(days(guesses) & scored)} estimated "
            f"of {len(scored)} scored days")


def scenario_section(scenario: Scenario, work: Path, state: Path, models: list[str],
                     out: Path, days: int, plt) -> tuple[list[str], list[dict]]:
    homes = {p: work / scenario.name / p for p in ("loop", "calendar")}
    ledgers = {p: json.loads((h / "replay_ledger.json").read_text()) for p, h in homes.items()}
    start = scenario.start
    end = start + timedelta(days=days)
    edits = pd.DataFrame(ledgers["loop"]["edits"])
    lines = [f"## {scenario.name}", "", scenario.description, "",
             f"File `{Path(scenario.path).name}`, sha256 `{scenario.sha256[:16]}`; from "
             f"{start}{f' to {scenario.end}' if scenario.end else ''}; replayed {start}.."
             f"{end - timedelta(days=1)} from the calm state of {start - timedelta(days=1)}.",
             ""]
    if not edits.empty:
        per_edit = edits.groupby("what").agg(days=("day", "nunique"), rows=("rows", "sum"))
        lines += ["Edits applied to the landing files:", "",
                  per_edit.reset_index().to_markdown(index=False), ""]
    summary = []
    for model in models:
        spec = SPECS[model]
        name, _, _ = TOLERANCE[spec.task]
        rows = same_rows(homes, state, spec, start - timedelta(days=PRE_DAYS), end)
        before = rows[rows["day"] < start]
        after = rows[rows["day"] >= start]
        level = metric(spec, before, "prediction")
        found_on, named = detection(homes["loop"], ledgers["loop"], spec, start, end)
        edited = edited_days(ledgers["loop"], spec)
        trained = {p: trainings(homes[p], ledgers[p], spec, edited) for p in homes}
        row = {"scenario": scenario.name, "model": model,
               "first alarm (scored day)": f"{found_on}: {named}" if found_on else "none",
               f"{name} before": _fmt(level)}
        for n in PERIODS:
            part = after[after["day"] < start + timedelta(days=n)]
            for policy, column in POLICY_COLUMNS.items():
                row[f"{n} d {policy}"] = _fmt(metric(spec, part, column))
            row[f"{n} d loop − calendar [95 %]"] = report.loop_against(spec, part) \
                if not part.empty else "n/a"
        for policy, column in POLICY_COLUMNS.items():
            row[f"recovery {policy}"] = recovery(spec, rows, start, level, column)
        for policy in homes:
            row[f"trainings {policy}"] = (f"{trained[policy]['count']} "
                                          f"({trained[policy]['promoted']} promoted)")
            row[f"deployed models trained on edited days ({policy})"] = trained[policy]["on_edited"]
        row["most moved segment (7 d, outcome − prediction)"] = segment_shift(rows, start)
        row["monitoring (loop)"] = monitoring_cover(homes["loop"], spec, start,
                                                    end - timedelta(days=1))
        row["label gaps in trainings (loop, calendar)"] = \
            f"{trained['loop']['label_gaps']}, {trained['calendar']['label_gaps']} d"
        summary.append(row)
        lines += [f"### {model}", "", pd.Series(row).drop(["scenario", "model"])
                  .to_frame("value").to_markdown(), ""]
        per_day = daily(spec, rows)
        if not per_day.empty:
            fig, ax = plt.subplots(figsize=(10, 3.2))
            x = pd.to_datetime(pd.Series(per_day.index))
            for policy in POLICY_COLUMNS:
                ax.plot(x, per_day[policy].astype(float).to_numpy(), marker=".",
                        label=policy)
            ax.axvline(pd.Timestamp(start), color="red", linestyle="--", linewidth=1)
            if scenario.end:
                ax.axvline(pd.Timestamp(scenario.end), color="grey", linestyle="--",
                           linewidth=1)
            ax.set_ylabel(f"realized {name}")
            ax.set_title(f"{scenario.name}: {model}, realized {name} per day (red: start)")
            ax.legend()
            fig.tight_layout()
            png = f"{scenario.name}_{model}.png"
            fig.savefig(out / png, dpi=80)
            plt.close(fig)
            lines += [f"![{model}]({png})", ""]
    return lines, summary


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


SUMMARY_COLUMNS = ("scenario", "model", "first alarm (scored day)", "28 d loop",
                   "28 d calendar", "28 d frozen", "28 d loop − calendar [95 %]",
                   "recovery loop", "recovery calendar", "trainings loop", "trainings calendar",
                   "deployed models trained on edited days (loop)",
                   "deployed models trained on edited days (calendar)")


def write_all(loaded: list[Scenario], work: Path, states: Path, models: list[str], out: Path,
              timing: dict, days: int) -> Path:
    """One Markdown report per scenario and the summary (`summary.md`) in `out`."""
    plt = report._plt()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for scenario in loaded:
        state = states / str(scenario.start - timedelta(days=1))
        lines, summary = scenario_section(scenario, work, state, models, out, days, plt)
        (out / f"{scenario.name}.md").write_text("\n".join(lines) + "\n")
        rows += summary
    table = pd.DataFrame(rows)
    shown = table[[c for c in SUMMARY_COLUMNS if c in table]]
    replays = sum(sum(v.values()) for v in timing["replays_s"].values())
    lines = ["# Scenario replays", "",
             f"{len(loaded)} scenarios, {days} days each from its start, under the loop and "
             f"the monthly calendar (the frozen model scored on the same rows). Calm prefix "
             f"{timing['prefix_s'] / 60:.1f} min, the scenario replays {replays / 60:.1f} min "
             f"of replay time, {timing['total_s'] / 60:.1f} min in all. Recovery tolerance: "
             "AUC within 0.02, regressor MAE within 5 %, forecaster MAE within 10 % of the 14 "
             f"days before the start, over the trailing {RECOVERY_DAYS} days.", "",
             shown.to_markdown(index=False), "",
             *[f"- [{s.name}]({s.name}.md): {s.description}" for s in loaded], ""]
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    table.to_csv(out / "summary.csv", index=False)
    return path
