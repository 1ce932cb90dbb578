"""What wraps every request of the prediction service: the Prometheus metrics, the count of
every response by route and status, and the API-key guard. Plain ASGI middleware, so the hot
path pays a few attribute look-ups, not a Starlette `BaseHTTPMiddleware`."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from unified_assets.lib.serving import api_keys


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self, shared_dir: str = ""):
        self.shared_dir = shared_dir  # the workers' shared files (serve --workers), or none
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("unified_assets_online_requests", "Prediction requests.",
                                ["model", "status"], registry=r)
        self.errors = Counter("unified_assets_online_errors", "Failed prediction requests.",
                              ["model", "status"], registry=r)
        self.rows = Counter("unified_assets_online_rows", "Rows scored.", ["model"], registry=r)
        self.latency = Histogram(
            "unified_assets_online_latency_seconds", "Prediction latency in the service.",
            ["model"], registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # with several workers: 1 while any live worker serves the version
        self.version = Gauge("unified_assets_online_model_version", "1 for the version serving.",
                             ["model", "version"], registry=r, multiprocess_mode="livemax")
        self.reloads = Counter("unified_assets_online_reloads", "Model versions swapped in.",
                               ["model"], registry=r)
        self.refused = Counter("unified_assets_online_refused_reloads",
                               "Promoted manifests refused (artifact missing or tampered).",
                               ["model"], registry=r)
        self.log_problems = Counter(
            "unified_assets_online_request_log_problems",
            "Request log trouble: rows dropped while its queue was full, writes that failed.",
            ["kind"], registry=r)
        self.responses = Counter("unified_assets_online_http_responses",
                                 "Every HTTP response, by route and status (5xx included).",
                                 ["route", "status"], registry=r)
        self._serving: dict[str, str] = {}
        self._ok: dict[str, tuple] = {}

    def reloaded(self, name: str, served) -> None:
        old = self._serving.get(name)
        if old:
            self.version.labels(name, old).set(0)  # what the workers' shared files keep
            self.version.remove(name, old)
        self._serving[name] = served.version
        self.version.labels(name, served.version).set(1)
        self.reloads.labels(name).inc()

    def exposed(self) -> CollectorRegistry:
        """What /metrics shows: this process's metrics, or every worker's when `serve
        --workers` keeps them in shared files (online/server.py)."""
        if not self.shared_dir:
            return self.registry
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=self.shared_dir)
        return combined

    def log_problem(self, kind: str, count: int) -> None:
        self.log_problems.labels(kind).inc(count)

    def refused_reload(self, name: str, reason: str, manifest_sha: str) -> None:
        self.refused.labels(name).inc()

    def scored(self, model: str, rows: int, seconds: float) -> None:
        """A 200 answer: its counters' children are looked up once per model, not per call."""
        children = self._ok.get(model)
        if children is None:
            children = (
                self.requests.labels(model, "200"),
                self.rows.labels(model),
                self.latency.labels(model),
            )
            self._ok[model] = children
        requests, scored_rows, latency = children
        requests.inc()
        scored_rows.inc(rows)
        latency.observe(seconds)

    def failed(self, model: str, status: int) -> None:
        self.requests.labels(model, str(status)).inc()
        self.errors.labels(model, str(status)).inc()


_ROUTES = ("/health", "/ready", "/metrics", "/v1/models", "/docs", "/openapi.json")


def route_of(path: str) -> str:
    """A response's route for the metrics: the template, never what a client put in the path
    (so many distinct paths cannot make many distinct series)."""
    if path.startswith("/v1/models/") and path.endswith("/predict") and path.count("/") == 4:
        return "/v1/models/{model}/predict"
    return path if path in _ROUTES else "other"


class CountResponses:
    """ASGI middleware: counts every response by route and status, a crash as a 500."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = [500]

        async def counting(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            self.metrics.responses.labels(route_of(scope["path"]), str(status[0])).inc()


OPEN_ROUTES = frozenset({"/health", "/ready", "/metrics"})
"""Answered without a key, for probes and scrapers; every other route needs one when keys are
configured."""


class RequireKey:
    """ASGI middleware: with API keys configured, a request outside OPEN_ROUTES needs
    `Authorization: Bearer <key>`; without one it gets a 401 and is counted."""

    def __init__(self, app, digests: frozenset):
        self.app, self.digests = app, digests

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or not self.digests or scope["path"] in OPEN_ROUTES
                or api_keys.allowed(self.digests, _header(scope, b"authorization"))):
            return await self.app(scope, receive, send)
        response = JSONResponse(status_code=401, content={
            "detail": "an API key is required: Authorization: Bearer <key>", "field": None},
            headers={"www-authenticate": "Bearer"})
        await response(scope, receive, send)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
