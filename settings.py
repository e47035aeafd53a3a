"""Every setting of the service, in one object.

Values come from the environment or a `.env` file in the working directory; real environment
variables win. An empty value counts as unset (its default applies): container images declare
variables they cannot unset, and Kubernetes cannot remove an image's variable either. Nothing
else in the project reads `os.environ`. Imports nothing from the project, so every part of it
may read the settings.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = IPv4Network | IPv6Network
CommaList = Annotated[list[str], NoDecode]
NetworkList = Annotated[list[IPNetwork], NoDecode]
PortList = Annotated[list[Annotated[int, Field(gt=0, lt=65536)]], NoDecode]

# Loopback only: behind a proxy without TRUSTED_PROXIES every client would look private. Open
# it to the cluster's scraper network where one scrapes (the k8s overlays do).
DEFAULT_METRICS_ALLOW = "127.0.0.0/8,::1/128"


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def parse_networks(text: str) -> list[IPNetwork]:
    """A comma list of CIDRs or bare addresses; empty items are skipped.

    Host bits are allowed (`10.0.0.1/8` means `10.0.0.0/8`). Raises ValueError naming the
    first item that is not an address or network.
    """
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {item!r}") from exc
    return networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    # Redis: REDIS_URL serves both roles unless a role has its own URL (README, "Redis roles")
    redis_url: str | None = None
    rate_limit_redis_url: str | None = None  # the budgets
    cache_redis_url: str | None = None  # the result cache
    # On a Redis that also holds budgets, or does not evict, the cache writes only below this
    # share of maxmemory (docs/operations.md, "Redis roles").
    cache_redis_memory_percent: float = Field(75.0, gt=0, le=100)

    # Rate limits
    rate_limit_enabled: bool = True
    rate_limit_remove_bg_per_hour: int = Field(10, ge=0)
    rate_limit_preview_per_hour: int = Field(20, ge=0)
    rate_limit_base64_per_hour: int = Field(30, ge=0)
    rate_limit_read_file_per_hour: int = Field(15, ge=0)
    rate_limit_improve_per_hour: int = Field(100, ge=0)  # remove.bg's /v1.0/improve
    rate_limit_batch_per_hour: int = Field(50, ge=0)
    rate_limit_fail_open: bool = True
    # LOADTEST_KEYS: API keys whose budgets are set apart, each endpoint's at this rate
    rate_limit_loadtest_per_hour: int = Field(1_000_000, ge=0)
    rate_limit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = (
        "moving-window"
    )
    redis_socket_timeout: float = Field(0.25, gt=0)
    redis_retry_interval: float = Field(5.0, gt=0)

    # Client identity and access
    trusted_proxies: NetworkList = []
    api_keys: CommaList = []
    loadtest_keys: CommaList = []  # accepted like API_KEYS, with the load-test budgets
    cors_origins: CommaList = []
    metrics_allow: NetworkList = Field(
        default_factory=lambda: parse_networks(DEFAULT_METRICS_ALLOW)
    )
    client_ipv6_prefix: int = Field(64, ge=32, le=128)  # IPv6 clients share a budget per /64

    # Limits on what a client controls
    max_content_length: int = Field(16 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(50_000_000, gt=0)
    max_canvas_side: int = Field(4000, ge=100)  # `canvas=WxH`: each side 100..this
    max_batch_files: int = Field(20, gt=0)
    max_concurrency: int = Field(32, gt=0)
    allow_image_url: bool = False  # remove.bg's image_url parameter (fetches client URLs)
    image_url_timeout_s: float = Field(10.0, gt=0)
    image_url_ports: PortList = [80, 443]
    # A body must arrive within BODY_TIMEOUT_S, and (after the first seconds) at no less than
    # BODY_MIN_BYTES_PER_S on average; slower is 408.
    body_timeout_s: float = Field(60.0, gt=0)
    body_min_bytes_per_s: int = Field(32_768, ge=0)
    # A connection must send a complete request head (request line and headers) this fast.
    header_timeout_s: float = Field(10.0, gt=0)
    # Decoded-image memory one API worker admits at once; None: from the container's limit.
    memory_budget_mb: int | None = Field(None, gt=0)
    memory_wait_s: float = Field(5.0, ge=0)  # how long work over the budget waits for room
    batch_parallelism: int = Field(4, gt=0)  # files of one batch in work at once

    # Result cache: in Redis when CACHE_REDIS_URL (or REDIS_URL) is set, else in process
    cache_enabled: bool = True
    cache_ttl_s: int = Field(86_400, gt=0)
    cache_max_bytes: int = Field(256 * 1024 * 1024, ge=0)
    cache_max_item_bytes: int = Field(8 * 1024 * 1024, ge=0)
    # shared: one cache for every client (X-Cache tells a client whether anyone sent the same
    # image before); client: each client (API key or address) has a cache of its own.
    cache_scope: Literal["shared", "client"] = "shared"

    # Logging
    log_level: str = "INFO"
    log_file: Path | None = None
    log_format: Literal["text", "json"] = "text"

    # Files
    upload_dir: Path = Path("./uploads")
    output_dir: Path = Path("./outputs")
    save_outputs: bool = False
    file_ttl_hours: float = Field(24, gt=0)
    disk_min_free_mb: int = Field(512, ge=0)
    memory_max_percent: float = Field(95.0, gt=0, le=100)

    # Model and its serving layout, chosen by measurement (docs/performance.md, "Serving layout").
    model: str = "u2netp"
    u2net_home: Path | None = None  # rembg's cache, as rembg reads it
    model_workers: int = Field(1, gt=0)
    model_threads: int = Field(2, gt=0)
    model_thread_spinning: bool = False  # onnxruntime's busy-waiting intra-op threads
    # Batches run as this many single-thread runs side by side (1: one run, MODEL_THREADS).
    model_parallel_runs: int = Field(1, gt=0)
    api_worker_nice: int = Field(0, ge=0, le=19)  # lower the API worker's CPU priority
    max_batch_size: int = Field(8, gt=0)
    # Images per onnxruntime run inside a batch: 1 on CPU (see segmentation/session.py).
    inference_run_batch: int = Field(1, gt=0)
    # A deadline, not a batching window: BentoML drops queued work past it with a 503.
    max_latency_ms: int = Field(60_000, gt=0)
    request_timeout_s: int = Field(120, gt=0)
    # The model service apart (a model pool, k8s/components/model-pool): how long the API
    # waits at start for it to answer, and how often its connection is renewed (0: never) so
    # that new model pods get a share of the calls.
    model_service_wait_s: float = Field(60.0, ge=0)
    model_connection_max_age_s: float = Field(0.0, ge=0)

    @field_validator("api_keys", "loadtest_keys", "cors_origins", "image_url_ports", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _network_list(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_networks(value)
        return value

    @property
    def limits_redis(self) -> str | None:
        """Where the budgets live: RATE_LIMIT_REDIS_URL, else REDIS_URL."""
        return self.rate_limit_redis_url or self.redis_url

    @property
    def cache_redis(self) -> str | None:
        """Where cached results live: CACHE_REDIS_URL, else REDIS_URL."""
        return self.cache_redis_url or self.redis_url

    @property
    def hourly_limits(self) -> dict[str, int]:
        """Budget per rate-limited endpoint, keyed by the endpoint's limit name."""
        return {
            "remove-background": self.rate_limit_remove_bg_per_hour,
            "remove-background-preview": self.rate_limit_preview_per_hour,
            "remove-background-base64": self.rate_limit_base64_per_hour,
            "remove-background-batch": self.rate_limit_batch_per_hour,
            "read-file": self.rate_limit_read_file_per_hour,
            "improve": self.rate_limit_improve_per_hour,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
