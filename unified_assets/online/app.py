"""The HTTP face of the prediction service: FastAPI on uvicorn, Prometheus metrics."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from unified_assets.lib.models import SPECS
from unified_assets.lib.online_store import NY, FlightRequest
from unified_assets.online.service import RequestError, Service, ServiceConfig

log = logging.getLogger(__name__)

Carrier = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
Airport = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")]
Value = float | int | bool | str | None


class Flight(BaseModel):
    """A flight as the published schedule knows it."""

    model_config = ConfigDict(extra="forbid")
    carrier: Carrier = Field(description="Operating carrier code, e.g. 'UA'.")
    flight: int = Field(ge=0, le=99_999, description="Flight number.")
    origin: Airport = Field(description="Origin airport (FAA code).")
    dest: Airport = Field(description="Destination airport (FAA code).")
    sched_dep: datetime = Field(description="Scheduled departure, New York local time "
                                "(a time with an offset is converted).")  # fmt: skip
    tailnum: str | None = Field(default=None, max_length=10, description="Tail number.")
    as_of: datetime | None = Field(default=None, description="Score as of this time (UTC; for "
                                   "historical days); the features never pass the flight's "
                                   "cutoff either way.")  # fmt: skip


class Forecast(BaseModel):
    """What the departures forecaster is asked: departures at an origin on a day."""

    model_config = ConfigDict(extra="forbid")
    origin: Airport
    target_date: date


class PredictRequest(BaseModel):
    """Flights (flight models), forecasts (the forecaster), or ready-made feature rows."""

    model_config = ConfigDict(extra="forbid")
    request_id: str | None = Field(default=None, max_length=100)
    flights: list[Flight] | None = None
    forecasts: list[Forecast] | None = None
    features: list[dict[str, Value]] | None = None
    return_features: bool = Field(default=False, description="Echo the computed features.")


def _local(ts: datetime) -> datetime:
    return ts.astimezone(NY).replace(tzinfo=None) if ts.tzinfo else ts


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("unified_assets_online_requests", "Prediction requests.",
                                ["model", "status"], registry=r)  # fmt: skip
        self.errors = Counter("unified_assets_online_errors", "Failed prediction requests.",
                              ["model", "status"], registry=r)  # fmt: skip
        self.rows = Counter("unified_assets_online_rows", "Rows scored.", ["model"], registry=r)
        self.latency = Histogram(
            "unified_assets_online_latency_seconds", "Prediction latency in the service.",
            ["model"], registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.version = Gauge("unified_assets_online_model_version", "1 for the version serving.",
                             ["model", "version"], registry=r)  # fmt: skip
        self.reloads = Counter("unified_assets_online_reloads", "Model versions swapped in.",
                               ["model"], registry=r)  # fmt: skip
        self.refused = Counter("unified_assets_online_refused_reloads",
                               "Promoted manifests refused (artifact missing or tampered).",
                               ["model"], registry=r)  # fmt: skip
        self._serving: dict[str, str] = {}

    def reloaded(self, name: str, served) -> None:
        old = self._serving.get(name)
        if old:
            self.version.remove(name, old)
        self._serving[name] = served.version
        self.version.labels(name, served.version).set(1)
        self.reloads.labels(name).inc()

    def refused_reload(self, name: str, reason: str) -> None:
        self.refused.labels(name).inc()


def create_app(config: ServiceConfig) -> FastAPI:
    """The service's ASGI app over one home folder; it starts following on startup."""
    metrics = Metrics()
    service = Service(config, on_reload=metrics.reloaded, on_refused=metrics.refused_reload)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        service.stop()

    app = FastAPI(title="unified_assets prediction service", lifespan=lifespan,
                  description="Every promoted model of the platform, scored with the batch "
                  "path's features. Follows deployments/<model>/current.json.")  # fmt: skip
    app.state.service = service
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        model = request.path_params.get("model", "")
        if request.url.path.endswith("/predict"):
            metrics.requests.labels(model, "422").inc()
            metrics.errors.labels(model, "422").inc()
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "msg": e["msg"]}
                  for e in exc.errors()]  # fmt: skip
        return JSONResponse(status_code=422, content={"detail": errors, "field": errors[0]["field"]
                                                      if errors else None})  # fmt: skip

    @app.post("/v1/models/{model}/predict")
    async def predict(model: str, body: PredictRequest):
        """Score flights (or forecasts, or feature rows) with the model's promoted version."""
        started = time.perf_counter()
        label = model if model in SPECS else "unknown"
        try:
            flights = None
            if body.flights is not None:
                flights = [
                    FlightRequest(f.carrier, f.flight, f.origin, f.dest, _local(f.sched_dep),
                                  f.tailnum, _utc(f.as_of))
                    for f in body.flights
                ]  # fmt: skip
            forecasts = None
            if body.forecasts is not None:
                forecasts = [(f.origin, f.target_date) for f in body.forecasts]
            result = service.predict(model, flights=flights, forecasts=forecasts,
                                     rows=body.features, request_id=body.request_id,
                                     return_features=body.return_features)  # fmt: skip
        except RequestError as exc:
            metrics.requests.labels(label, str(exc.status)).inc()
            metrics.errors.labels(label, str(exc.status)).inc()
            return JSONResponse(status_code=exc.status,
                                content={"detail": str(exc), "field": exc.field})  # fmt: skip
        metrics.requests.labels(label, "200").inc()
        metrics.rows.labels(label).inc(len(result["predictions"]))
        metrics.latency.labels(label).observe(time.perf_counter() - started)
        return result

    @app.get("/v1/models")
    async def list_models():
        """Each model's promoted version, when it was promoted, and its test metrics."""
        out = []
        for name, state in service.registry.states.items():
            served = state.served
            manifest = served.manifest if served else None
            out.append({
                "model": name, "task": SPECS[name].task,
                "version": served.version if served else None,
                "sha256": served.sha256 if served else None,
                "promoted_at": (manifest.get("rolled_back_at") or manifest.get("recorded_at")
                                or manifest.get("decided_at")) if manifest else None,
                "restored_by_rollback": bool(manifest and manifest.get("restored_by_rollback")),
                "test_metrics": (manifest.get("metrics") or {}).get("test") if manifest else None,
                "threshold": manifest.get("threshold") if manifest else None,
                "features": list(served.features) if served else None,
                "refused": state.refused,
            })  # fmt: skip
        return {"models": out, "store_version": service.store.version if service.store else None}

    @app.get("/health")
    async def health():
        """Alive."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        """200 once every promoted model is loaded and verified, else 503 with the reasons."""
        ok, why = service.ready()
        serving = {n: s.served.version for n, s in service.registry.states.items() if s.served}
        body = {"ready": ok, "serving": serving, "waiting_for": why}
        return JSONResponse(status_code=200 if ok else 503, content=body)

    @app.get("/metrics")
    async def prometheus():
        """Prometheus text exposition."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(config: ServiceConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the service until interrupted (127.0.0.1 unless told otherwise)."""
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", access_log=False)
