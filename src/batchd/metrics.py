"""Prometheus metrics: one `Metrics` object (and registry) per app, so nothing leaks between apps.

The dispatcher calls `result`, `backend_latency`, `retry` and `claimed` on its hot path; each is a
dict lookup of a cached labeled child and an increment, never a label resolution per request.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, exposition, generate_latest
from prometheus_client.metrics import MetricWrapperBase

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST
MAX_MODELS = 64  # distinct model labels kept; later ones count as "other" (models are user input)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
SIZE_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)
BYTES_BUCKETS = tuple(float(4**i * 1024) for i in range(10))  # 1 KiB .. 256 MiB
HTTP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

M = typing.TypeVar("M", bound=MetricWrapperBase)


class HasLimit(typing.Protocol):
    """A route's adaptive limit (engine/adaptive.py), as the metrics read it."""

    @property
    def limit(self) -> int: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = Counter(
            "batchd_requests", "Requests that got their result, by result type and model",
            ["result", "model"], registry=r,
        )  # fmt: skip
        self._latency = Histogram(
            "batchd_backend_latency_seconds",
            "Duration of one backend call (every attempt; not a wait for a slot), by model",
            ["model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._retries = Counter(
            "batchd_retries", "Backend attempts that failed and were retried, by error type",
            ["error_type"], registry=r,
        )  # fmt: skip
        self._backend_errors = Counter(
            "batchd_backend_errors",
            "Backend attempts that failed, by model, error type and whether they were retried",
            ["model", "error_type", "retried"], registry=r,
        )  # fmt: skip
        self._claimed = Counter("batchd_claimed_requests", "Requests claimed from the store", registry=r)
        self._inflight = Gauge("batchd_inflight_requests", "Requests claimed and not finished", registry=r)
        self._calling = Gauge("batchd_backend_calls_in_progress", "Backend calls in progress", registry=r)
        self._queued = Gauge(
            "batchd_queued_requests",
            "Claimed requests waiting for a backend slot or a retry backoff (queue depth)",
            registry=r,
        )
        self._batches = Counter("batchd_batches_created", "Batches created", registry=r)
        self._batch_requests = Histogram(
            "batchd_batch_create_requests", "Requests per created batch", buckets=SIZE_BUCKETS, registry=r
        )
        self._batch_bytes = Histogram(
            "batchd_batch_create_bytes",
            "Body size of each create, in bytes",
            buckets=BYTES_BUCKETS,
            registry=r,
        )
        self._uploads = Counter(
            "batchd_openai_files_uploaded", "Files uploaded through the OpenAI Files API", registry=r
        )
        self._upload_bytes = Counter(
            "batchd_openai_uploaded_bytes",
            "Bytes of the files uploaded through the OpenAI Files API",
            registry=r,
        )
        self._http = Counter(
            "batchd_http_requests", "HTTP requests served, by method, route and status",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self._http_latency = Histogram(
            "batchd_http_request_duration_seconds", "Time to answer an HTTP request, by route",
            ["route"], buckets=HTTP_BUCKETS, registry=r,
        )  # fmt: skip
        self._tool_calls = Counter(
            "batchd_server_tool_calls",
            "Server tool calls batchd ran, by tool and outcome (ok, or the error code)",
            ["tool", "outcome"], registry=r,
        )  # fmt: skip
        self._tool_latency = Histogram(
            "batchd_server_tool_seconds", "Duration of one server tool call, by tool",
            ["tool"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._executions = Counter(
            "batchd_code_executions",
            "Programs run in the code-execution sandbox, by tool and outcome "
            "(ok, nonzero_exit, timeout, or the error code)",
            ["tool", "outcome"], registry=r,
        )  # fmt: skip
        self._execution_latency = Histogram(
            "batchd_code_execution_seconds", "Duration of one program in the sandbox, by tool",
            ["tool"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._route_limit = Gauge(
            "batchd_route_concurrency_limit",
            "Batch calls a route lets in at once now, learnt from its upstream (adaptive_concurrency)",
            ["model"], registry=r,
        )  # fmt: skip
        self._containers = Gauge(
            "batchd_code_containers", "Code-execution containers with a home in this process", registry=r
        )
        self._usage = {
            name: Gauge(f"batchd_workspace_{name}", text, ["workspace"], registry=r)
            for name, text in (
                ("batches", "Batches in progress, by workspace (read at scrape time)"),
                ("queued_requests", "Requests pending or running, by workspace (read at scrape time)"),
                ("stored_bytes", "Bytes of requests kept until deleted or archived, by workspace"),
            )
        }
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        self._models: set[str] = set()

    def _child(self, metric: M, *labels: str) -> M:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return typing.cast(M, child)  # stored under this metric's id: its own child, of its class

    def _model(self, model: object) -> str:
        name = model if isinstance(model, str) else "unknown"
        if name not in self._models:
            if len(self._models) >= MAX_MODELS:
                return "other"
            self._models.add(name)
        return name

    # -- engine ---------------------------------------------------------------------------

    def result(self, result_type: str, model: object) -> None:
        self._child(self._requests, str(result_type), self._model(model)).inc()

    def backend_latency(self, model: object, seconds: float) -> None:
        self._child(self._latency, self._model(model)).observe(seconds)

    def retry(self, error_type: str) -> None:
        self._child(self._retries, error_type).inc()

    def backend_error(self, model: object, error_type: str, *, retried: bool) -> None:
        """One failed backend attempt; `retried`: another attempt follows (else it is the result)."""
        self._child(
            self._backend_errors, self._model(model), error_type, "true" if retried else "false"
        ).inc()

    def claimed(self, n: int) -> None:
        if n:
            self._claimed.inc(n)

    def watch_engine(self, inflight: Callable[[], int], calling: Callable[[], int]) -> None:
        """Gauges read at scrape time from the engine (nothing to update on the hot path)."""
        self._inflight.set_function(lambda: float(inflight()))
        self._calling.set_function(lambda: float(calling()))
        self._queued.set_function(lambda: float(max(0, inflight() - calling())))

    def watch_routes(self, routes: Iterable[tuple[str, HasLimit]]) -> None:
        """Each route's adaptive limit, read at scrape time; `model`: the route's `model` pattern."""
        for name, learnt in routes:
            self._route_limit.labels(name).set_function(_reader(learnt))

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        """One server tool call (web_search, web_fetch) that ran, or failed with `outcome` as its code."""
        self._child(self._tool_calls, tool, outcome).inc()
        self._child(self._tool_latency, tool).observe(seconds)

    def execution(self, tool: str, outcome: str, seconds: float) -> None:
        """One program run in the sandbox (a code-execution call), with its outcome."""
        self._child(self._executions, tool, outcome).inc()
        self._child(self._execution_latency, tool).observe(seconds)

    def containers(self, count: int) -> None:
        self._containers.set(count)

    # -- API ------------------------------------------------------------------------------

    def batch_created(self, requests: int, body_bytes: int) -> None:
        self._batches.inc()
        self._batch_requests.observe(requests)
        self._batch_bytes.observe(body_bytes)

    def file_uploaded(self, size: int) -> None:
        """One file uploaded through the OpenAI Files API (api/openai/files.py)."""
        self._uploads.inc()
        self._upload_bytes.inc(size)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._child(self._http, method, route, str(status)).inc()
        self._child(self._http_latency, route).observe(seconds)

    def workspace_usage(self, usage: Iterable[tuple[str, int, int, int]]) -> None:
        """What each workspace holds now, as (workspace, batches, queued_requests, stored_bytes)
        rows (`Store.usage`); a workspace that holds nothing any more is dropped."""
        for gauge in self._usage.values():
            gauge.clear()
        for workspace, batches, queued, stored in usage:
            self._usage["batches"].labels(workspace).set(batches)
            self._usage["queued_requests"].labels(workspace).set(queued)
            self._usage["stored_bytes"].labels(workspace).set(stored)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _reader(learnt: HasLimit) -> Callable[[], float]:
    return lambda: float(learnt.limit)
