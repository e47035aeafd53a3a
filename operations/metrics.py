"""The service's own Prometheus metrics (prefix `bg_remover_`).

Plain prometheus_client objects: BentoML runs its workers with PROMETHEUS_MULTIPROC_DIR set,
so values from every process (API and model workers) appear on BentoML's `/metrics`. Gauges
say how the values of several processes add up (`multiprocess_mode`).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "bg_remover_requests", "Requests by endpoint and HTTP status", ["endpoint", "status"]
)
REQUEST_DURATION = Histogram(
    "bg_remover_request_duration_seconds",
    "Request duration by endpoint",
    ["endpoint"],
    # Past REQUEST_TIMEOUT_S (120 s): a request also spends up to BODY_TIMEOUT_S uploading.
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256),
)
REQUESTS_IN_FLIGHT = Gauge(
    "bg_remover_requests_in_flight",
    "Processing requests admitted and not yet answered (the autoscaling signal)",
    multiprocess_mode="livesum",
)
SHED = Counter(
    "bg_remover_shed",
    "Requests answered 503 to shed load, by reason: overloaded, memory, model_queue, unavailable",
    ["reason"],
)
REDIS_UP = Gauge(
    "bg_remover_redis_up",
    "1 when the Redis of a role (limits, cache) answers, 0 when it does not; absent when the "
    "role has no Redis",
    ["role"],
    multiprocess_mode="livemin",
)
BUILD_INFO = Gauge(
    "bg_remover_build_info",
    "Always 1; the labels say what runs",
    ["version", "model", "bentoml", "python"],
    multiprocess_mode="livemax",
)
RATE_LIMITED = Counter(
    "bg_remover_rate_limited", "Requests refused with 429 by endpoint", ["endpoint"]
)
OUTPUT_BYTES = Histogram(
    "bg_remover_output_bytes",
    "Size of each output image by format",
    ["format"],
    buckets=tuple(2**power for power in range(10, 26)),
)
COMPRESSION_RATIO = Histogram(
    "bg_remover_compression_ratio",
    "1 - output/input size, by format",
    ["format"],
    buckets=(-1.0, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99),
)
INFERENCE_BATCH_SIZE = Histogram(
    "bg_remover_inference_batch_size",
    "Images per model call",
    [],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
)
INFERENCE_DURATION = Histogram(
    "bg_remover_inference_duration_seconds",
    "Time of one model call (a batch) in the model service, by model",
    ["model"],
    buckets=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6),
)
CACHE_REQUESTS = Counter(
    "bg_remover_cache_requests",
    "Result cache outcomes: hit, mask, miss, not_modified",
    ["result"],
)
CACHE_STORED_BYTES = Gauge(
    "bg_remover_cache_stored_bytes",
    "Bytes held by the in-process result cache",
    multiprocess_mode="livesum",
)
ADMITTED_MEMORY = Gauge(
    "bg_remover_admitted_memory_bytes",
    "Memory admitted to image work in flight",
    multiprocess_mode="livesum",
)
RATELIMIT_FALLBACK = Counter(
    "bg_remover_ratelimit_fallback",
    "Budget decisions made in process because the budgets' Redis was down (fail-open)",
    ["endpoint"],
)
IMAGE_WORK_BUSY = Gauge(
    "bg_remover_image_work_busy_threads",
    "Threads busy with image work (headers, decoding, compositing, encoding)",
    multiprocess_mode="livesum",
)
IMAGE_WORK_WAITING = Gauge(
    "bg_remover_image_work_waiting",
    "Image work waiting for a thread",
    multiprocess_mode="livesum",
)
IMAGE_WORK_WAIT = Histogram(
    "bg_remover_image_work_wait_seconds",
    "How long image work waited for a thread",
    [],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
IMAGE_WORK_CANCELLED = Counter(
    "bg_remover_image_work_cancelled",
    "Image work stopped because its request was gone (client disconnected or timed out)",
)


def report_redis_roles(roles: Mapping[str, bool | None]) -> None:
    """`bg_remover_redis_up` for each role: its Redis answers (True) or not (False). A role
    without Redis (None) is never set, so its series stays absent and never alerts."""
    for role, up in roles.items():
        if up is not None:
            REDIS_UP.labels(role=role).set(1 if up else 0)


def report_build(version: str, model: str, bentoml: str, python: str) -> None:
    BUILD_INFO.labels(version=version, model=model, bentoml=bentoml, python=python).set(1)
