"""The service's own Prometheus metrics (prefix `bg_remover_`).

Plain prometheus_client objects: BentoML runs its workers with PROMETHEUS_MULTIPROC_DIR set,
so values from every process (API and model workers) appear on BentoML's `/metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "bg_remover_requests", "Requests by endpoint and HTTP status", ["endpoint", "status"]
)
REQUEST_DURATION = Histogram(
    "bg_remover_request_duration_seconds",
    "Request duration by endpoint",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
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
REDIS_UP = Gauge(
    "bg_remover_redis_up",
    "1 while the role's Redis answers, 0 during an outage; absent: role not configured",
    ["role"],
    multiprocess_mode="livemin",  # down in any live API worker is down
)
RATELIMIT_FALLBACK = Counter(
    "bg_remover_ratelimit_fallback",
    "Budget decisions made in process because the budgets' Redis was down (fail-open)",
    ["endpoint"],
)
