"""What the prediction service does, without HTTP: follow the manifests and the online store,
compute features, score, log. `online/app.py` puts it behind FastAPI; the benchmark calls it
directly as the in-process floor, and the parity check calls it as the service's code path."""

from __future__ import annotations

import gc
import hashlib
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from unified_assets.lib.core.files import ArtifactIntegrityError
from unified_assets.lib.monitoring import alerts
from unified_assets.lib.monitoring.alerts import Channels
from unified_assets.lib.serving import online_store
from unified_assets.lib.serving.online_store import FlightRequest, OnlineStore
from unified_assets.lib.serving.request_log import RequestLog
from unified_assets.lib.serving.served_models import ModelRegistry, ServedModel

log = logging.getLogger(__name__)

MAX_ROWS = 10_000
MAX_BODY_BYTES = 16 * 1024 * 1024  # 10,000 rows of ready-made features fit with room to spare
BODY_TIMEOUT_S = 30.0  # a client that has not sent its whole body by then is cut off
HEADER_TIMEOUT_S = 10.0  # a request's headers, from the connection's first byte (slowloris)
FORECAST_HORIZON_DAYS = 7
# The dates the service scores: outside them a date is refused with a 422 naming the field.
FIRST_SERVED_DAY, LAST_SERVED_DAY = date(1900, 1, 1), date(2099, 12, 31)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^/\s'\"():,]+)+/([^/\s'\"():,]+)")


def public(text: str | None) -> str | None:
    """A message as a client may see it: a file path reduced to its file name."""
    return None if text is None else _PATH.sub(r"\1", text)


class RequestError(ValueError):
    """A request the service cannot score: `status` is its HTTP status, `field` what is wrong."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.field = status, field


@dataclass(frozen=True)
class ServiceConfig:
    home: Path
    lead_minutes: int = 120
    max_rows: int = MAX_ROWS
    max_body_bytes: int = MAX_BODY_BYTES
    body_timeout_s: float = BODY_TIMEOUT_S
    header_timeout_s: float = HEADER_TIMEOUT_S
    api_key_digests: frozenset = frozenset()  # sha256 of the accepted keys; empty: no keys
    alerts: Channels = Channels()  # where a refused artifact is told; default: nowhere
    poll_s: float = 0.5
    log_requests: bool = True
    worker: int | None = None  # this worker's number under `serve --workers N`
    metrics_dir: str = ""  # where the workers keep their metrics (online/server.py)


class Service:
    """The promoted models, the online store and the request log of one home folder."""

    def __init__(self, config: ServiceConfig, on_reload=None, on_refused=None,
                 on_log_problem=None):
        self.config = config
        self._on_refused = on_refused or (lambda name, reason, manifest_sha: None)
        self.registry = ModelRegistry(
            config.home,
            on_reload=on_reload or (lambda name, served: None),
            on_refused=self._refused,
        )
        self.store: OnlineStore | None = None
        self.store_error: str | None = None
        self._store_sha: str | None = None
        self.request_log = (RequestLog(config.home, worker=config.worker,
                                       on_problem=on_log_problem or (lambda kind, n: None))
                            if config.log_requests else None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- following the manifests and the store -----------------------------------------------
    def refresh(self) -> None:
        """Re-read the manifests and the store pointer; swap in what changed."""
        self.registry.refresh()
        path = online_store.pointer_path(self.config.home)
        try:
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            self.store_error = f"no online store at {path}: materialize serving/online_store"
            return
        if sha == self._store_sha:
            return
        self._store_sha = sha
        try:
            self.store = online_store.load(self.config.home)
            self.store_error = None
            # Collect what loading left behind, then keep what is alive now (the models, the
            # store's vocabularies and small rows) out of later full collections, which would
            # otherwise scan it again and again while requests wait.
            gc.collect()
            gc.freeze()
            log.info("online store %s loaded", self.store.version)
        except (OSError, ValueError, KeyError, ArtifactIntegrityError) as exc:
            self.store_error = f"online store refused: {exc}"
            log.error(self.store_error)

    def _refused(self, name: str, reason: str, manifest_sha: str) -> None:
        """A promoted artifact refused (the old model keeps serving): counted, and told."""
        self._on_refused(name, reason, manifest_sha)
        alerts.raise_alert(self.config.home, alerts.refused_artifact(name, manifest_sha, reason),
                           self.config.alerts)

    def start(self) -> None:
        """Load, then keep following, in a background thread."""

        def loop():
            while not self._stop.is_set():
                try:
                    self.refresh()
                except Exception:  # a bad poll must not stop the following; the next one retries
                    log.exception("refresh failed")
                self._stop.wait(self.config.poll_s)

        self._thread = threading.Thread(target=loop, name="follow-manifests", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        if self.request_log:
            self.request_log.close()

    def ready(self) -> tuple[bool, dict]:
        """Ready when every promoted model is loaded and verified, and the store is loaded."""
        ok, why = self.registry.ready()
        if self.registry.promoted() and self.store is None:
            why["online_store"] = self.store_error or "not loaded yet"
            ok = False
        return ok, why

    # -- scoring -------------------------------------------------------------------------------
    def model(self, name: str) -> ServedModel:
        if name not in self.registry.states:
            raise RequestError(
                404, f"unknown model {name!r}; known: {sorted(self.registry.states)}"
            )
        served = self.registry.get(name)
        if served is None:
            state = self.registry.states[name]
            raise RequestError(503, f"{name} has no promoted model loaded"
                               + (f" ({state.refused})" if state.refused else ""))
        return served

    def predict(
        self,
        name: str,
        flights=None,
        forecasts=None,
        rows=None,
        request_id: str | None = None,
        return_features: bool = False,
    ) -> dict:
        """Score one request on the model version serving when it starts."""
        started = time.perf_counter()
        served = self.model(name)  # held for the whole request, whatever a reload does
        given = [k for k, v in (("flights", flights), ("forecasts", forecasts),
                                ("features", rows)) if v is not None]
        expected = "forecasts" if served.spec.task == "forecast" else "flights"
        if len(given) != 1 or given[0] not in (expected, "features"):
            raise RequestError(422, f"{name} takes exactly one of '{expected}' or 'features'",
                               field=expected)
        items = flights if flights is not None else forecasts if forecasts is not None else rows
        if len(items) > self.config.max_rows:
            raise RequestError(413, f"{len(items)} rows in one request; at most "
                               f"{self.config.max_rows}", field=given[0])
        if flights is not None:
            keys, values, extra = self._flights(flights)
        elif forecasts is not None:
            keys, values, extra = self._forecasts(forecasts)
        else:
            keys, values, extra = self._rows(served, rows)
        scores = served.predict(values)
        request_id = request_id or uuid.uuid4().hex
        threshold = served.threshold
        out = []
        for key, row, more, score in zip(keys, values, extra, scores, strict=True):
            item = {"key": key, "prediction": float(score)} | more
            if threshold is not None:
                item["predicted_positive"] = bool(score >= threshold)
            item["unseen"] = served.unseen(row)
            if return_features:
                item["features"] = {f: row.get(f) for f in served.features}
            out.append(item)
        latency_ms = (time.perf_counter() - started) * 1000
        if self.request_log:
            self.request_log.write(self._records(served, request_id, datetime.now(UTC), keys,
                                                 values, out, latency_ms), rows=len(keys))
        return {"model": name, "version": served.version, "sha256": served.sha256,
                "request_id": request_id,
                "store_version": self.store.version if self.store else None,
                "latency_ms": latency_ms, "predictions": out}

    def _need_store(self) -> OnlineStore:
        store = self.store
        if store is None:
            raise RequestError(503, self.store_error or "the online store is not loaded yet")
        return store

    def _flights(self, flights: list[FlightRequest]):
        store = self._need_store()
        computed = online_store.flight_features(store, flights, self.config.lead_minutes)
        keys = [{"flight_date": f.sched_dep.date().isoformat(), "carrier": f.carrier,
                 "flight": f.flight, "origin": f.origin, "dest": f.dest,
                 "sched_dep": f.sched_dep.isoformat(), "tailnum": f.tailnum}
                for f in flights]
        values = [c.values for c in computed]
        extra = [{"cutoff_utc": c.cutoff_utc, "features_as_of": c.as_of, "flags": c.flags}
                 for c in computed]
        return keys, values, extra

    def _forecasts(self, forecasts: list[tuple[str, date]]):
        store = self._need_store()
        keys, values, extra = [], [], []
        for i, (origin, target) in enumerate(forecasts):
            row = online_store.origin_daily_features(store, origin, target, FORECAST_HORIZON_DAYS)
            if row is None:
                raise RequestError(422, f"no features for origin {origin} forecasting {target} "
                                   f"in the online store (it covers flights "
                                   f"{store.pointer.get('first_day')}..."
                                   f"{store.pointer.get('last_day')})",
                                   field=f"forecasts.{i}.target_date")
            keys.append({"origin": origin, "target_date": target.isoformat(),
                         "feature_date": str(row["feature_date"])[:10]})
            values.append(row)
            extra.append({"cutoff_utc": str(row["cutoff_utc"]),
                          "features_as_of": {"history": str(row["history_as_of"])},
                          "flags": []})
        return keys, values, extra

    def _rows(self, served: ServedModel, rows: list[dict]):
        need = list(served.features) + ([served.residual_of] if served.residual_of else [])
        for i, row in enumerate(rows):
            missing = [f for f in need if f not in row]
            if missing:
                raise RequestError(422, f"features row {i} lacks {missing}",
                                   field=f"features.{i}.{missing[0]}")
            for f in need:
                value = row[f]
                if f not in served.categories and isinstance(value, str):
                    raise RequestError(422, f"feature {f} must be a number, not {value!r}",
                                       field=f"features.{i}.{f}")
        keys = [{"row": i} for i in range(len(rows))]
        extra = [{"cutoff_utc": None, "features_as_of": None, "flags": ["client_features"]}
                 for _ in rows]
        return keys, rows, extra

    @staticmethod
    def _records(served, request_id, received, keys, values, out, latency_ms):
        """The request's log records; a generator, run by the log thread after the answer (the
        rows and predictions are not changed once the request has returned them)."""
        now = received.isoformat()
        for key, row, item in zip(keys, values, out, strict=True):
            day = key.get("flight_date") or key.get("feature_date")
            day = date.fromisoformat(day) if day else received.date()
            yield day, {
                "request_id": request_id, "received_at": now, "model": served.name,
                "model_version": served.version, "key": key,
                "features": {f: row.get(f) for f in served.features},
                "prediction": item["prediction"], "unseen": item["unseen"],
                "flags": item["flags"], "latency_ms": latency_ms,
            }
