"""Every setting of the service, in one object.

Values come from the environment or a `.env` file in the working directory; real environment
variables win. An empty value counts as unset (its default applies): container images declare
variables they cannot unset, and Kubernetes cannot remove an image's variable either. Nothing
else in the project reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CommaList = Annotated[list[str], NoDecode]
NetworkList = Annotated[list[IPNetwork], NoDecode]

# Loopback, RFC 1918, unique-local and link-local: where Prometheus scrapers live.
DEFAULT_METRICS_ALLOW = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    # Rate limits
    redis_url: str | None = None
    rate_limit_enabled: bool = True
    rate_limit_remove_bg_per_hour: int = Field(10, ge=0)
    rate_limit_preview_per_hour: int = Field(20, ge=0)
    rate_limit_base64_per_hour: int = Field(30, ge=0)
    rate_limit_read_file_per_hour: int = Field(15, ge=0)
    rate_limit_batch_per_hour: int = Field(50, ge=0)
    rate_limit_fail_open: bool = True
    rate_limit_strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = (
        "moving-window"
    )
    redis_socket_timeout: float = Field(0.25, gt=0)
    redis_retry_interval: float = Field(5.0, gt=0)

    # Client identity and access
    trusted_proxies: NetworkList = []
    api_keys: CommaList = []
    cors_origins: CommaList = []
    metrics_allow: NetworkList = Field(default_factory=lambda: _networks(DEFAULT_METRICS_ALLOW))

    # Limits on what a client controls
    max_content_length: int = Field(16 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(50_000_000, gt=0)
    max_batch_files: int = Field(20, gt=0)
    max_concurrency: int = Field(32, gt=0)
    allow_image_url: bool = False  # remove.bg's image_url parameter (fetches client URLs)
    image_url_timeout_s: float = Field(10.0, gt=0)

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

    # Model and its serving layout. Measured on 2 cores (README, Performance): 1 worker x 2
    # threads serves as many images/s as 2 x 1, halves latency at low load, and uses 0.5 GB less.
    model: str = "u2netp"
    u2net_home: Path | None = None  # rembg's cache, as rembg reads it
    model_workers: int = Field(1, gt=0)
    model_threads: int = Field(2, gt=0)
    max_batch_size: int = Field(8, gt=0)
    # Images per onnxruntime run inside a batch: 1 on CPU (see segmentation/session.py).
    inference_run_batch: int = Field(1, gt=0)
    # A deadline, not a batching window: BentoML drops queued work past it with a 503.
    max_latency_ms: int = Field(60_000, gt=0)
    request_timeout_s: int = Field(120, gt=0)

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _network_list(cls, value: object) -> object:
        if isinstance(value, str):
            return _networks(value)
        return value

    @property
    def hourly_limits(self) -> dict[str, int]:
        """Budget per rate-limited endpoint, keyed by the endpoint's limit name."""
        return {
            "remove-background": self.rate_limit_remove_bg_per_hour,
            "remove-background-preview": self.rate_limit_preview_per_hour,
            "remove-background-base64": self.rate_limit_base64_per_hour,
            "remove-background-batch": self.rate_limit_batch_per_hour,
            "read-file": self.rate_limit_read_file_per_hour,
        }


def _networks(text: str) -> list[IPNetwork]:
    return [ipaddress.ip_network(item, strict=False) for item in _split_commas(text)]  # type: ignore[union-attr]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
