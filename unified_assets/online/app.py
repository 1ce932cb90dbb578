"""The HTTP face of the prediction service: FastAPI on uvicorn, Prometheus metrics.

The predict route is the hot path: it validates the raw body once with pydantic-core
(`PredictRequest.model_validate_json`, the same rules and the same 422 naming the field as a
declared body) and answers with JSON bytes from `pydantic_core.to_json`, skipping FastAPI's
`jsonable_encoder`. Its request and response schemas are still in the OpenAPI document.
Bodies over `INLINE_BYTES` are scored in a worker thread so they do not stall the loop."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import socket
import time
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Annotated

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    generate_latest,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from unified_assets.lib.models.specs import SPECS
from unified_assets.lib.serving.online_store import NY, FlightRequest
from unified_assets.online.connections import with_header_deadline
from unified_assets.online.middleware import CountResponses, Metrics, RequireKey, route_of
from unified_assets.online.service import (
    FIRST_SERVED_DAY,
    LAST_SERVED_DAY,
    RequestError,
    Service,
    ServiceConfig,
    public,
)

log = logging.getLogger(__name__)

Carrier = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
Airport = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")]
Value = float | int | bool | str | None
# a body larger than this (about 500 flights) is scored in a worker thread, so a 10,000-row
# request does not hold up the single-flight requests behind it
INLINE_BYTES = 64 * 1024


def _in_served_range(value):
    """A date or time the service can score (FIRST_SERVED_DAY..LAST_SERVED_DAY), else a 422."""
    if value is None:
        return value
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_SERVED_DAY <= day <= LAST_SERVED_DAY:
        raise ValueError(f"must be within {FIRST_SERVED_DAY} .. {LAST_SERVED_DAY}")
    return value


def _finite(row: dict) -> dict:
    """A ready-made feature row: every number finite and within a float's range."""
    for name, value in row.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise ValueError(f"{name}: {str(value)[:20]}... is too large") from None
            if not math.isfinite(number):
                raise ValueError(f"{name}: {value} is not a finite number")
    return row


ServedTime = Annotated[datetime, AfterValidator(_in_served_range)]
ServedDay = Annotated[date, AfterValidator(_in_served_range)]
FeatureRow = Annotated[dict[str, Value], AfterValidator(_finite)]


class Flight(BaseModel):
    """A flight as the published schedule knows it."""

    model_config = ConfigDict(extra="forbid")
    carrier: Carrier = Field(description="Operating carrier code, e.g. 'UA'.")
    flight: int = Field(ge=0, le=99_999, description="Flight number.")
    origin: Airport = Field(description="Origin airport (FAA code).")
    dest: Airport = Field(description="Destination airport (FAA code).")
    sched_dep: ServedTime = Field(description="Scheduled departure, New York local time "
                                  "(a time with an offset is converted).")
    tailnum: str | None = Field(default=None, max_length=10, description="Tail number.")
    as_of: ServedTime | None = Field(default=None, description="Score as of this time (UTC; for "
                                   "historical days); the features never pass the flight's "
                                   "cutoff either way.")


class Forecast(BaseModel):
    """What the departures forecaster is asked: departures at an origin on a day."""

    model_config = ConfigDict(extra="forbid")
    origin: Airport
    target_date: ServedDay


class PredictRequest(BaseModel):
    """Flights (flight models), forecasts (the forecaster), or ready-made feature rows."""

    model_config = ConfigDict(extra="forbid")
    request_id: str | None = Field(default=None, max_length=100)
    flights: list[Flight] | None = None
    forecasts: list[Forecast] | None = None
    features: list[FeatureRow] | None = None
    return_features: bool = Field(default=False, description="Echo the computed features.")


class Prediction(BaseModel):
    """One scored row."""

    key: dict = Field(description="The flight's key (or the forecast's, or the row's index).")
    prediction: float = Field(description="A probability (classifier), minutes (regressor) or "
                              "departures (forecaster).")
    predicted_positive: bool | None = Field(default=None, description="Against the threshold.")
    cutoff_utc: str | None = None
    features_as_of: dict[str, str | None] | None = Field(
        default=None, description="When each group of features was known; never after the cutoff."
    )
    flags: list[str] = []
    unseen: list[str] = Field(default=[], description="Categoricals never seen in training.")
    features: dict[str, Value] | None = Field(default=None, description="With return_features.")


class PredictResponse(BaseModel):
    """Predictions and the model version that made them."""

    model: str
    version: str
    sha256: str
    request_id: str
    store_version: str | None
    latency_ms: float = Field(description="Time in the service, features and scoring.")
    predictions: list[Prediction]


class BodyTooLarge(ValueError):
    """A body over the service's byte limit (413)."""


class FieldError(BaseModel):
    field: str
    msg: str


class ErrorBody(BaseModel):
    """What is wrong: `field` names it (e.g. `flights.0.origin`)."""

    detail: str | list[FieldError]
    field: str | None


def _field_errors(errors: list[dict]) -> list[dict]:
    return [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "msg": e["msg"]}
            for e in errors]


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                            and media.endswith("+json"))


class RawRoute(APIRoute):
    """A route FastAPI documents from its declaration (path parameters, `openapi_extra`,
    `responses`) but that calls its endpoint as `endpoint(request, **path_params)`, the
    parameters as the strings the path holds: no dependency solving, no body parsing, no
    response encoding. The endpoint validates and answers itself."""

    def get_route_handler(self):
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return handler


def _local(ts: datetime) -> datetime:
    return ts.astimezone(NY).replace(tzinfo=None) if ts.tzinfo else ts


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


def create_app(config: ServiceConfig) -> FastAPI:
    """The service's ASGI app over one home folder; it starts following on startup."""
    metrics = Metrics(config.metrics_dir)
    service = Service(config, on_reload=metrics.reloaded, on_refused=metrics.refused_reload,
                      on_log_problem=metrics.log_problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        service.stop()

    app = FastAPI(title="unified_assets prediction service", lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Every promoted model of the platform, scored with the batch "
                  "path's features. Follows deployments/<model>/current.json.")
    app.state.service = service
    app.state.metrics = metrics
    app.add_middleware(RequireKey, digests=config.api_key_digests)
    app.add_middleware(CountResponses, metrics=metrics)  # outermost: counts the 401s too

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("%s %s failed: %s", request.method, route_of(request.url.path),
                      type(exc).__name__)
        return JSONResponse(status_code=500, content={
            "detail": f"internal error ({type(exc).__name__})", "field": None})

    def invalid_body(model: str | None, errors: list[dict]) -> JSONResponse:
        if model is not None:  # a predict request
            metrics.failed(model if model in SPECS else "unknown", 422)
        fields = _field_errors(errors)
        return JSONResponse(status_code=422, content={"detail": fields, "field": fields[0]["field"]
                                                      if fields else None})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        model = request.path_params.get("model", "")
        predicting = request.url.path.endswith("/predict")
        return invalid_body(model if predicting else None, exc.errors())

    hot = APIRouter(route_class=RawRoute)

    @hot.post(
        "/v1/models/{model}/predict",
        response_class=Response,
        responses={200: {"model": PredictResponse, "description": "The predictions."},
                   404: {"model": ErrorBody, "description": "An unknown model."},
                   413: {"model": ErrorBody, "description": "More rows than --max-rows."},
                   422: {"model": ErrorBody, "description": "A malformed field, named."},
                   503: {"model": ErrorBody, "description": "No promoted model, or no store."}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PredictRequest"}}}}},
    )
    async def predict(request: Request, model: str) -> Response:
        """Score flights (or forecasts, or feature rows) with the model's promoted version."""
        started = time.perf_counter()
        label = model if model in SPECS else "unknown"
        if not _is_json(request.headers.get("content-type")):
            return invalid_body(model, [{"loc": ("body",), "msg": "the body must be JSON "
                                         "(content-type: application/json)"}])
        try:
            raw = await asyncio.wait_for(read_body(request), timeout=config.body_timeout_s)
        except BodyTooLarge as exc:
            metrics.failed(label, 413)
            return JSONResponse(status_code=413, content={"detail": str(exc), "field": None})
        except TimeoutError:
            metrics.failed(label, 408)
            return JSONResponse(status_code=408, content={
                "detail": f"the body did not arrive within {config.body_timeout_s:g} s",
                "field": None})
        except ClientDisconnect:
            metrics.failed(label, 499)
            log.info("a client hung up before its body arrived (%s)", model[:40])
            return Response(status_code=499)
        if len(raw) > INLINE_BYTES:  # a big request scores in a thread; small ones go on
            return await run_in_threadpool(answer, model, raw, started)
        return answer(model, raw, started)

    async def read_body(request: Request) -> bytes:
        """The body, refused before it is read whole when it is over the limit: by its
        Content-Length, else by counting as it streams in."""
        limit = config.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"a body of {int(declared)} bytes; at most {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"a body of more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def answer(model: str, raw: bytes, started: float) -> Response:
        label = model if model in SPECS else "unknown"
        try:
            body = PredictRequest.model_validate_json(raw)
        except ValidationError as exc:
            return invalid_body(model, exc.errors(include_url=False))
        except RecursionError:
            return invalid_body(model, [{"loc": ("body",), "msg": "nested too deeply"}])
        try:
            flights = None
            if body.flights is not None:
                flights = [
                    FlightRequest(f.carrier, f.flight, f.origin, f.dest, _local(f.sched_dep),
                                  f.tailnum, _utc(f.as_of))
                    for f in body.flights
                ]
            forecasts = None
            if body.forecasts is not None:
                forecasts = [(f.origin, f.target_date) for f in body.forecasts]
            result = service.predict(model, flights=flights, forecasts=forecasts,
                                     rows=body.features, request_id=body.request_id,
                                     return_features=body.return_features)
        except RequestError as exc:
            metrics.failed(label, exc.status)
            return JSONResponse(status_code=exc.status,
                                content={"detail": public(str(exc)), "field": exc.field})
        except Exception as exc:  # a fault of ours: one line in the log, JSON to the client
            metrics.failed(label, 500)
            log.exception("predict %s failed: %s", label, type(exc).__name__)
            return JSONResponse(status_code=500, content={
                "detail": f"internal error ({type(exc).__name__}); the service stays up",
                "field": None})
        content = to_json(result, inf_nan_mode="null")
        metrics.scored(label, len(result["predictions"]), time.perf_counter() - started)
        return Response(content, media_type="application/json")

    app.include_router(hot)

    @app.get("/v1/models")
    async def list_models():
        """Each model's promoted version, when it was promoted, and its test metrics."""
        out = []
        for name, state in service.registry.states.items():
            served = state.served
            manifest = served.manifest if served else None
            out.append({
                "model": name, "task": SPECS[name].task,
                "promoted_version": state.promoted_version,
                "version": served.version if served else None,
                "sha256": served.sha256 if served else None,
                "promoted_at": (manifest.get("rolled_back_at") or manifest.get("recorded_at")
                                or manifest.get("decided_at")) if manifest else None,
                "restored_by_rollback": bool(manifest and manifest.get("restored_by_rollback")),
                "test_metrics": (manifest.get("metrics") or {}).get("test") if manifest else None,
                "threshold": manifest.get("threshold") if manifest else None,
                "features": list(served.features) if served else None,
                "refused": public(state.refused),
            })
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
        body = {"ready": ok, "serving": serving,
                "waiting_for": {k: public(str(v)) for k, v in why.items()}}
        return JSONResponse(status_code=200 if ok else 503, content=body)

    @app.get("/docs", include_in_schema=False)
    async def docs():
        """The API's routes and schemas as one page, with nothing loaded from elsewhere (no
        internet needed); the machine-readable document is /openapi.json."""
        return HTMLResponse(openapi_page(app.openapi()))

    @app.get("/metrics")
    async def prometheus():
        """Prometheus text exposition."""
        return Response(generate_latest(metrics.exposed()), media_type=CONTENT_TYPE_LATEST)

    generated = app.openapi

    def openapi() -> dict:
        """FastAPI's document, plus the predict body's schema (the route reads raw bytes)."""
        if app.openapi_schema is None:
            schema = generated()
            body = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(body.pop("$defs", {}))
            schemas["PredictRequest"] = body
        return app.openapi_schema

    app.openapi = openapi
    return app


def openapi_page(document: dict) -> str:
    """A self-contained HTML page of an OpenAPI document: each route, what it does, and the
    schemas as JSON."""
    rows = []
    for path, operations in document.get("paths", {}).items():
        for method, op in operations.items():
            rows.append(f"<h3><code>{method.upper()} {html.escape(path)}</code></h3>"
                        f"<p>{html.escape(op.get('summary', ''))}</p>"
                        f"<pre>{html.escape(op.get('description', '') or '')}</pre>")
    schemas = json.dumps(document.get("components", {}).get("schemas", {}), indent=2)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(document['info']['title'])}</title></head><body>"
            f"<h1>{html.escape(document['info']['title'])}</h1>"
            f"<p>{html.escape(document['info'].get('description', ''))}</p>"
            f"<p>Send <code>Authorization: Bearer &lt;key&gt;</code> when the service has "
            f"keys. The document: <a href='/openapi.json'>/openapi.json</a>.</p>"
            f"{''.join(rows)}<h2>Schemas</h2><pre>{html.escape(schemas)}</pre></body></html>")


def run(config: ServiceConfig, sock: socket.socket) -> None:
    """Serve on a bound socket until interrupted (online/server.py binds it)."""
    # httptools and uvloop come with uvicorn[standard], which dagster-webserver requires; the
    # httptools protocol gets a deadline on each request's headers (online/connections.py).
    app = create_app(config)
    timed_out = app.state.metrics.responses.labels("(headers)", "408")
    server = uvicorn.Server(uvicorn.Config(
        app,
        http=with_header_deadline(config.header_timeout_s, timed_out.inc),
        loop="uvloop",
        log_level="info",
        access_log=False,
    ))
    server.run(sockets=[sock])
