"""Every setting of the service, read once at start-up from `OBSERVER_*`.

The README lists each one with its default; keep the two in step.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBSERVER_", extra="ignore")

    # --- server -----------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8400, ge=1, le=65535)
    log_level: str = "INFO"
    data_dir: Path = Path("data")

    # --- the Django backend -------------------------------------------------
    # Empty: run the reference backend in-process (see django_integration/embedded.py).
    backend_url: str = ""
    backend_token: str = ""
    backend_connect_timeout: float = Field(2.0, gt=0)
    backend_read_timeout: float = Field(10.0, gt=0)
    backend_write_timeout: float = Field(10.0, gt=0)
    backend_pool_timeout: float = Field(2.0, gt=0)
    backend_max_connections: int = Field(100, ge=1)
    backend_retry_attempts: int = Field(3, ge=1)
    backend_retry_max_wait: float = Field(1.0, ge=0)
    backend_call_budget: float = Field(15.0, gt=0)
    breaker_window_size: int = Field(20, ge=1)
    breaker_minimum_calls: int = Field(10, ge=1)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    breaker_open_seconds: float = Field(10.0, gt=0)
    breaker_half_open_calls: int = Field(3, ge=1)

    # --- the middleware's own database ---------------------------------------
    # Empty: a SQLite file in the data directory.
    database_url: str = ""
    database_health_timeout: float = Field(2.0, gt=0)

    # --- telemetry -------------------------------------------------------------
    telemetry_batch_max_items: int = Field(10_000, ge=1)
    telemetry_queue_max_items: int = Field(200_000, ge=1)
    telemetry_worker_batch_size: int = Field(2_000, ge=1)
    telemetry_dedup_window_seconds: float = Field(300.0, ge=0)
    telemetry_dedup_max_entries: int = Field(1_000_000, ge=1)
    telemetry_rate_limit: str = "100000/second"
    telemetry_max_future_seconds: float = Field(600.0, ge=0)
    telemetry_max_age_seconds: float | None = Field(None, gt=0)
    telemetry_correlation_window_seconds: float = Field(60.0, gt=0)
    telemetry_anomalies_per_series: int = Field(10_000, ge=1)
    telemetry_service_facts_ttl_seconds: float = Field(300.0, gt=0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _remote_backend_needs_token(self) -> Settings:
        if self.backend_url and not self.backend_token:
            raise ValueError("OBSERVER_BACKEND_TOKEN is required when OBSERVER_BACKEND_URL is set")
        if self.breaker_minimum_calls > self.breaker_window_size:
            raise ValueError("breaker_minimum_calls cannot exceed breaker_window_size")
        return self

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'observer.db').resolve()}"

    @property
    def embedded_backend(self) -> bool:
        return not self.backend_url
