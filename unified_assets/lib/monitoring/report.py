"""The replay report: per month, drift, every retraining (when and why), and the realized
metric of the automatic loop's deployment against the two fixed alternatives it claims to
beat, on the same rows: the frozen first model (never retrained) and a calendar policy
(retrained on the 1st of each month, lib/models/backtest.py)."""

from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from unified_assets.lib.core import artifacts, config, database
from unified_assets.lib.core.config import FIRST_DAY
from unified_assets.lib.deployment import compare
from unified_assets.lib.models import backtest, evaluation, training
from unified_assets.lib.models.specs import SPECS, ModelSpec
from unified_assets.lib.monitoring import model_health

SENSOR_INTERVAL_S = 30  # the daemon's default minimum interval between two sensor ticks


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def served_outcomes(conn, spec: ModelSpec) -> pd.DataFrame:
    """Every served prediction whose outcome is known, with its features for re-scoring."""
    frame = model_health.scored_rows(conn, spec, FIRST_DAY, date.max)
    frame = frame[frame["_actual"].notna()].rename(columns={"_day": "day", "_actual": "actual"})
    return frame.sort_values("day").reset_index(drop=True)


def monthly_metric(spec: ModelSpec, frame: pd.DataFrame, column: str) -> pd.Series:
    months = pd.to_datetime(frame["day"]).dt.to_period("M")
    return frame.groupby(months).apply(
        lambda g: evaluation.primary(spec.task, g["actual"].to_numpy(float),
                                     g[column].to_numpy(float))
    )


def frozen_scores(home: Path, spec: ModelSpec, version: str, frame: pd.DataFrame) -> np.ndarray:
    """The frozen first model's scores for the served rows (sha256-verified artifact)."""
    booster = lgb.Booster(model_str=artifacts.load_model_text(home, version))
    return training.predict(booster, spec, frame)


def policy_comparison(spec: ModelSpec, served: pd.DataFrame, events: list[dict],
                      calendar: backtest.Schedule, home: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per month, and over March–December and October–December: the realized metric of the
    automatic loop, the calendar policy and the frozen model on the same rows, with each
    policy's trainings and training seconds."""
    metric = "AUC" if spec.task == "binary" else "MAE"
    months = pd.to_datetime(served["day"]).dt.to_period("M")
    columns = {"automatic": "prediction", "calendar": "calendar", "frozen": "frozen"}
    table = pd.DataFrame({f"{name} {metric}": monthly_metric(spec, served, column)
                          for name, column in columns.items()})
    table["rows"] = served.groupby(months).size().reindex(table.index).fillna(0).astype(int)
    retrained = [e for e in events if e["reason"] != "bootstrap"]
    seconds = []
    for e in retrained:
        meta = artifacts.load_metadata(home, e["version"]) if e.get("version") else {}
        seconds.append(meta.get("training_seconds", e["seconds"]))
    summary, differences = [], []
    for label, start in (("March–December", "2013-03-01"), ("October–December", "2013-10-01")):
        part = served[pd.to_datetime(served["day"]) >= pd.Timestamp(start)]
        if part.empty:
            continue
        y = part["actual"].to_numpy(float)
        row = {"period": label, "rows": f"{len(part):,}"}
        for name, column in columns.items():
            value = evaluation.primary(spec.task, y, part[column].to_numpy(float))
            row[f"{name} {metric}"] = f"{value:.4f}"
        summary.append(row)
        differences.append({"period": f"{label}: automatic better than calendar by",
                            "rows": f"{len(part):,}",
                            f"automatic {metric}": loop_against(spec, part)})
    counts = {"period": "trainings (training seconds)", "rows": "",
              f"automatic {metric}": f"{len(retrained)} ({sum(seconds):.0f} s)",
              f"calendar {metric}": f"{len(calendar.trainings)} ({calendar.seconds:.0f} s)",
              f"frozen {metric}": "0 (0 s)"}
    return table, pd.DataFrame([*summary, counts, *differences]).fillna("")


def loop_against(spec: ModelSpec, part: pd.DataFrame, column: str = "calendar") -> str:
    """How much better the loop's served predictions were than `column`'s on the same rows,
    with its two-sided 95 % interval (DeLong for AUC, the paired bootstrap for MAE): a
    difference whose interval holds 0 is a tie, whatever the sign."""
    y = part["actual"].to_numpy(float)
    pair = part["prediction"].to_numpy(float), part[column].to_numpy(float)
    if compare.cannot_compare(spec.task, y, *pair):
        return "n/a"
    c = compare.non_inferiority(spec.task, y, *pair, margin=0.0, confidence=0.975)
    return f"{c.difference:+.4f} [{c.lower:+.4f}, {c.upper:+.4f}]"


def drift_latency(ledger, event: dict) -> dict | None:
    """From a drifted day's landing file to the retraining's manifest, as the daemon would take
    it: two sensor intervals (landing, retraining) plus the runs of that simulated day."""
    day_runs = [r for r in ledger.runs if r["sim_time"][:10] == event["sim_time"][:10]]
    ingest = sum(r["seconds"] for r in day_runs if r["job"] == "ingest_daily")
    scoring = sum(r["seconds"] for r in day_runs if r["job"] == "nightly_scoring")
    total = 2 * SENSOR_INTERVAL_S + ingest + scoring + event["seconds"]
    return {"ingest_s": ingest, "scoring_s": scoring, "retrain_s": event["seconds"],
            "total_s": total}


def write_replay_report(home: Path, ledger, models: list[str], out_dir: Path,
                        seconds: float, budget: int = 1) -> Path:
    """Markdown and PNG plots in `out_dir`; returns the Markdown file."""
    plt = _plt()
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Replay report", "",
             f"Replayed with `unified-assets replay` into `{home}` in {seconds:.0f} s "
             f"({seconds / 60:.1f} min); {len(ledger.runs)} runs, "
             f"{sum(not r['success'] for r in ledger.runs)} failed.", ""]
    if getattr(ledger, "scenario", None):  # replayed with a scenario file's edits
        planted = ledger.scenario
        lines += [f"Scenario `{planted['name']}` (sha256 `{planted['sha256']}`), from "
                  f"{planted['start']}{' to ' + planted['end'] if planted['end'] else ''}, "
                  f"policy {ledger.policy}: " + "; ".join(planted["edits"]) + ".", ""]
    jobs = pd.DataFrame(ledger.runs)
    if not jobs.empty:
        summary = jobs.groupby("job")["seconds"].agg(["count", "mean", "sum"]).round(2)
        lines += ["## Runs by job", "", summary.to_markdown(), ""]
    conn = database.connect(config.warehouse_path(home), read_only=True)
    try:
        for model in models:
            lines += _model_section(home, conn, SPECS[model], ledger, out_dir, plt, budget)
    finally:
        conn.close()
    path = out_dir / "replay.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _model_section(home, conn, spec: ModelSpec, ledger, out_dir: Path, plt,
                   budget: int) -> list[str]:
    events = [e for e in ledger.retrainings if e["model"] == spec.name]
    lines = [f"## {spec.name}", ""]
    metric = "AUC" if spec.task == "binary" else "MAE"
    # Retrainings
    if events:
        table = pd.DataFrame([{
            "simulated": e["sim_time"][:16], "as of": e["as_of"], "reason": e["reason"],
            "evidence": ", ".join(f"{k}={v}" for k, v in e["evidence"].items())[:120],
            "decision": e["status"], f"test {metric}": e["test_primary"],
            f"champion {metric}": e["champion_primary"], "run s": e["seconds"],
        } for e in events])
        lines += ["### Retrainings", "", table.to_markdown(index=False, floatfmt=".3f"), ""]
    # Drift by month
    drifts, perf = model_health.history(conn, spec.name)
    if not drifts.empty:
        drifts["month"] = pd.to_datetime(drifts["day"]).dt.to_period("M")
        by_month = drifts.groupby("month").agg(
            scored_days=("day", "count"), drift_days=("is_drift", "sum"),
            mean_prediction_psi=("prediction_psi", "mean"),
            mean_drifted_share=("drifted_share", "mean"), mean_input_dq=("input_dq", "mean"),
        )
        lines += ["### Drift by month", "", by_month.to_markdown(floatfmt=".3f"), ""]
        fig, ax = plt.subplots(figsize=(10, 3.5))
        ax.plot(pd.to_datetime(drifts["day"]), drifts["prediction_psi"], label="prediction PSI")
        ax.plot(pd.to_datetime(drifts["day"]), drifts["drifted_share"],
                label="share of drifted features")
        for e in events:
            ax.axvline(pd.Timestamp(e["as_of"]), color="red" if e["status"] == "promoted"
                       else "grey", linestyle="--", linewidth=0.8)
        ax.set_title(f"{spec.name}: drift per scored day (red: promoted retraining, "
                     "grey: rejected)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / f"replay_{spec.name}_drift.png", dpi=90)
        plt.close(fig)
        lines += [f"![drift](replay_{spec.name}_drift.png)", ""]
    # Realized metric: the loop's deployment against the frozen model and the calendar policy
    bootstrap = next((e for e in events if e["reason"] == "bootstrap"
                      and e["status"] == "promoted"), None)
    served = served_outcomes(conn, spec)
    if bootstrap and not served.empty:
        served["frozen"] = frozen_scores(home, spec, bootstrap["version"], served)
        calendar = backtest.monthly_retraining(conn, spec, served, "day", spec.rolling, budget)
        served["calendar"] = calendar.predictions
        table, summary = policy_comparison(spec, served, events, calendar, home)
        lines += ["### The loop against the fixed alternatives, on the same rows", "",
                  f"Automatic = what was served that day (the loop's champion); frozen = the "
                  f"first model ({bootstrap['version'][:12]}, trained as of "
                  f"{bootstrap['as_of']}); calendar = retrained on the 1st of each month on all "
                  f"labelled history with the same training code and budget ({budget}).", "",
                  table.to_markdown(floatfmt=".4f"), "",
                  summary.to_markdown(index=False, floatfmt=".4f"), ""]
        fig, ax = plt.subplots(figsize=(10, 3.5))
        x = [str(p) for p in table.index]
        for column, label in ((f"automatic {metric}", "automatic loop"),
                              (f"calendar {metric}", "monthly calendar"),
                              (f"frozen {metric}", "frozen first model")):
            ax.plot(x, table[column], marker="o", label=label)
        ax.set_ylabel(metric)
        ax.set_title(f"{spec.name}: realized {metric} by month")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / f"replay_{spec.name}_realized.png", dpi=90)
        plt.close(fig)
        lines += [f"![realized](replay_{spec.name}_realized.png)", ""]
    elif not perf.empty:
        lines += ["### Realized performance", "",
                  f"Mean realized {metric}: {perf['value'].mean():.3f} over {len(perf)} days.",
                  ""]
    triggered = [e for e in events if e["reason"] in ("drift", "performance")]
    latencies = [drift_latency(ledger, e) for e in triggered if e["status"] == "promoted"]
    if latencies:
        totals = [x["total_s"] for x in latencies]
        med = {k: statistics.median(x[k] for x in latencies)
               for k in ("ingest_s", "scoring_s", "retrain_s")}
        lines += ["### From a drifted day's landing file to a promoted manifest", "",
                  f"Two daemon sensor intervals ({SENSOR_INTERVAL_S} s each, the worst case) plus "
                  f"the runs: median {statistics.median(totals):.0f} s, max {max(totals):.0f} s "
                  f"over {len(totals)} promoted retrainings (medians: ingest "
                  f"{med['ingest_s']:.1f} s, scoring {med['scoring_s']:.1f} s, retraining "
                  f"{med['retrain_s']:.1f} s).", ""]
    return lines


def scorecard_markdown(models: list[dict], latency: dict, dq: pd.DataFrame, rel: dict, ev: dict,
                       now) -> str:
    """The scorecard as Markdown: one table per KPI family."""
    lines = [f"# KPI scorecard ({now:%Y-%m-%d %H:%M} UTC)", "",
             "## Deployment readiness per model (FEE, V_val, AMDR)", ""]
    lines += [pd.DataFrame(models).to_markdown(index=False, floatfmt=".3f") if models
              else "No promoted model yet.", ""]
    lines += ["## Pipeline latency L_dp: one scored day's path, seconds by layer", ""]
    if latency:
        table = pd.DataFrame({m: v["by_layer_s"] | {"total": v["total_s"], "day": v["day"]}
                              for m, v in latency.items()}).T
        lines += [table.to_markdown(floatfmt=".2f"), "",
                  "Steps of range runs count their share (seconds / days in the range).", ""]
    lines += ["## Data quality DQ per table (last 7 partitions)", "",
              dq.to_markdown(index=False, floatfmt=".4f") if not dq.empty else "No DQ yet.", ""]
    shown = "n/a" if rel["value"] is None else f"{rel['value']:.3f}"
    lines += ["## CI/CD reliability Rel_cicd", "",
              f"**{shown}**: {rel['attempts']} deployment attempts, {rel['failures']} failures "
              f"({rel['crashed_runs']} crashed retraining runs, {rel['rollbacks']} rollbacks); "
              "a challenger rejected by a gate is a correct outcome.", ""]
    lines += ["## Enterprise value EV", ""]
    if ev["models"]:
        lines += [pd.DataFrame(ev["models"]).to_markdown(index=False, floatfmt=".4g"), "",
                  f"**EV = {ev['value']:.4g}** (Acc: gain over the naive baseline; Scal: rows "
                  "scored per second / reference; Cost: training + one day's scoring seconds)."]
    else:
        lines += ["No deployed model with a measured scoring run yet."]
    return "\n".join(lines) + "\n"


def write_scorecard(home: Path, markdown: str, history: pd.DataFrame) -> Path:
    """reports/kpi_scorecard.md and a plot of the KPIs over time."""
    out = Path(home) / "reports"
    out.mkdir(parents=True, exist_ok=True)
    shown = [k for k in history["kpi"].unique()
             if k in ("dq_min", "rel_cicd") or k.endswith("_amdr")] if not history.empty else []
    if shown:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(9, 3.5))
        for kpi in shown:
            rows = history[history["kpi"] == kpi]
            ax.plot(rows["measured_at"], rows["value"], marker=".", label=kpi)
        ax.set_ylim(0, 1.05)
        ax.set_title("KPIs over time")
        ax.legend(fontsize=7)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out / "kpi_scorecard.png", dpi=90)
        plt.close(fig)
        markdown += "\n![KPIs over time](kpi_scorecard.png)\n"
    path = out / "kpi_scorecard.md"
    path.write_text(markdown)
    return path
