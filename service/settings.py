"""Every setting of the service, read once at start-up from `OBSERVER_*`.

The README lists each one with its default; keep the two in step.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Shortest admin key and JWT HMAC secret accepted: a guessable one would defeat both.
MIN_SECRET_LENGTH = 32

# A browser's Origin header: scheme, host and an optional port, nothing else.
ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBSERVER_", extra="ignore")

    # --- server -----------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8400, ge=1, le=65535)
    log_level: str = "INFO"
    data_dir: Path = Path("data")
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client. Empty:
    # none, so no caller can choose the address the failure limit and the audit trail see.
    trusted_proxies: list[str] = Field(default_factory=list)

    # --- the Django backend -------------------------------------------------
    # Empty: run the reference backend in-process (see django_integration/embedded.py).
    backend_url: str = ""
    backend_token: str = ""
    # The sockets under the httpx client, fastest first (see django_integration/transport.py);
    # http1 falls back to aiohttp for an https backend.
    backend_http_transport: Literal["http1", "aiohttp", "httpcore"] = "http1"
    backend_connect_timeout: float = Field(2.0, gt=0)
    backend_read_timeout: float = Field(10.0, gt=0)
    backend_write_timeout: float = Field(10.0, gt=0)
    backend_pool_timeout: float = Field(2.0, gt=0)
    backend_max_connections: int = Field(100, ge=1)
    backend_retry_attempts: int = Field(3, ge=1)
    backend_retry_max_wait: float = Field(1.0, ge=0)
    backend_call_budget: float = Field(15.0, gt=0)
    # /django/health's own probe, outside retries and breaker: an operator asking "is it up?"
    # gets an answer this soon.
    backend_health_budget: float = Field(3.0, gt=0)
    breaker_window_size: int = Field(20, ge=1)
    breaker_minimum_calls: int = Field(10, ge=1)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    breaker_open_seconds: float = Field(10.0, gt=0)
    breaker_half_open_calls: int = Field(3, ge=1)
    # A call slower than this counts as a failure in the breaker's window; unset: never.
    breaker_slow_call_seconds: float | None = Field(None, gt=0)
    backend_retry_base_wait: float = Field(0.05, ge=0)
    # Send the caller's own `Authorization: Bearer` to the backend instead of our token.
    backend_forward_bearer: bool = False
    discovery_interval_seconds: float = Field(60.0, gt=0)

    # --- the middleware's own database ---------------------------------------
    # Empty: a SQLite file in the data directory.
    database_url: str = ""
    database_health_timeout: float = Field(2.0, gt=0)
    database_pool_size: int = Field(5, ge=1)
    database_max_overflow: int = Field(10, ge=0)
    database_pool_timeout: float = Field(5.0, gt=0)
    database_pool_recycle: float = Field(1800.0, gt=0)
    database_pool_pre_ping: bool = True
    # Off: run `python -m django_integration.migrate` (or `alembic upgrade head`) yourself.
    database_migrate_on_start: bool = True

    # --- authentication (issue #7; see auth/) ---------------------------------------
    # A key given here is an admin key. Unset, and no key in the database: the first start
    # creates an admin key and prints it once. Nothing turns authentication off.
    admin_api_key: SecretStr = SecretStr("")
    # How often every key is read again, so a key created or revoked through another instance
    # takes effect here within this many seconds (at once through this instance).
    auth_key_recheck_seconds: float = Field(5.0, gt=0, le=300)
    # Failed authentications and authorizations per client address (`limits` notation);
    # beyond, failures get 429 with Retry-After and are no longer audited (valid keys still
    # get in: the limit guards the audit trail, not the 256-bit keys).
    auth_failure_rate_limit: str = "20/minute"
    # JWT bearer tokens: an HMAC secret or a PEM public key file (RSA or EC), not both.
    auth_jwt_secret: SecretStr = SecretStr("")
    auth_jwt_public_key_file: Path | None = None
    # Empty: HS256 with a secret, RS256 or ES256 as the public key's type says.
    auth_jwt_algorithms: list[str] = Field(default_factory=list)
    auth_jwt_issuer: str = ""
    auth_jwt_audience: str = ""
    auth_jwt_leeway_seconds: float = Field(30.0, ge=0, le=600)
    # The claim that carries scopes: a space-separated string (OAuth 2.0) or a list.
    auth_jwt_scope_claim: str = Field("scope", min_length=1)
    # Off: `GET /metrics` answers without a credential (for scrapers that cannot send one).
    metrics_require_key: bool = True

    @field_validator("auth_failure_rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '20/minute': {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _authentication_is_sound(self) -> Settings:
        # Weak secrets would make the constant-time comparisons and signatures pointless.
        if 0 < len(self.admin_api_key.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"OBSERVER_ADMIN_API_KEY needs {MIN_SECRET_LENGTH} characters or more")
        if 0 < len(self.auth_jwt_secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"OBSERVER_AUTH_JWT_SECRET needs {MIN_SECRET_LENGTH} characters or more"
            )
        if self.auth_jwt_secret.get_secret_value() and self.auth_jwt_public_key_file:
            raise ValueError("set OBSERVER_AUTH_JWT_SECRET or _PUBLIC_KEY_FILE, not both")
        if self.jwt_enabled and not (self.auth_jwt_issuer and self.auth_jwt_audience):
            raise ValueError("JWT needs OBSERVER_AUTH_JWT_ISSUER and OBSERVER_AUTH_JWT_AUDIENCE")
        if any(name.lower() == "none" for name in self.auth_jwt_algorithms):
            # An unsigned token would prove nothing about who sent it.
            raise ValueError("'none' cannot be among OBSERVER_AUTH_JWT_ALGORITHMS")
        hmac_algorithms = [name for name in self.auth_jwt_algorithms if name.startswith("HS")]
        if self.auth_jwt_public_key_file and hmac_algorithms:
            # Verifying HS256 with a public key as the secret lets anyone sign tokens.
            raise ValueError("a JWT public key cannot verify HMAC algorithms like HS256")
        if self.auth_jwt_secret.get_secret_value() and hmac_algorithms != self.auth_jwt_algorithms:
            raise ValueError("a JWT secret verifies only HMAC algorithms (HS256, HS384, HS512)")
        return self

    @property
    def jwt_enabled(self) -> bool:
        return bool(self.auth_jwt_secret.get_secret_value() or self.auth_jwt_public_key_file)

    # --- CRUD -------------------------------------------------------------------
    # A JSON file laid over the discovered entity schemas (fields, conditional_writes).
    entity_overrides_file: Path | None = None
    idempotency_ttl_seconds: float = Field(86_400.0, gt=0)
    # Field names (matched case-insensitively as parts of a name) whose values the audit
    # trail never stores; added to the built-in ones.
    audit_sensitive_fields: list[str] = Field(default_factory=list)
    # The read cache: TTL per entity type (0 disables it for a type), e.g.
    # OBSERVER_CACHE_TTL_OVERRIDES='{"core.configurations": 300}'.
    cache_ttl_seconds: float = Field(30.0, ge=0)
    cache_ttl_overrides: dict[str, float] = Field(default_factory=dict)
    # How long past its TTL an answer may still be served while the backend fails.
    cache_stale_seconds: float = Field(300.0, ge=0)
    cache_max_entries: int = Field(10_000, ge=1)
    # Set: the cache lives in Redis, shared with every instance using the same URL and prefix.
    redis_url: str = ""
    cache_key_prefix: str = "observer:cache:"
    cache_redis_timeout: float = Field(0.5, gt=0)
    # After a Redis failure, reads skip Redis for this long before trying it again.
    cache_redis_retry_seconds: float = Field(1.0, ge=0)

    # --- telemetry -------------------------------------------------------------
    telemetry_batch_max_items: int = Field(10_000, ge=1)
    telemetry_queue_max_items: int = Field(200_000, ge=1)
    telemetry_worker_batch_size: int = Field(1_000, ge=1)
    telemetry_dedup_window_seconds: float = Field(300.0, ge=0)
    telemetry_dedup_max_entries: int = Field(1_000_000, ge=1)
    telemetry_rate_limit: str = "100000/second"
    telemetry_max_future_seconds: float = Field(600.0, ge=0)
    telemetry_max_age_seconds: float | None = Field(None, gt=0)
    telemetry_correlation_window_seconds: float = Field(60.0, gt=0)
    telemetry_anomalies_per_series: int = Field(10_000, ge=1)
    telemetry_service_facts_ttl_seconds: float = Field(300.0, gt=0)
    # Ingestion limits (issue #5): each one a refusal the agent can act on.
    telemetry_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    telemetry_max_name_length: int = Field(255, ge=1)
    telemetry_max_text_length: int = Field(255, ge=1)
    telemetry_max_message_length: int = Field(8_192, ge=1)
    telemetry_max_attributes: int = Field(64, ge=0)
    telemetry_queue_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    telemetry_worker_max_wait_seconds: float = Field(0.05, ge=0)
    # How long the worker lets accepts in progress (younger than this) finish before its next
    # batch; 0: no wait.
    telemetry_accept_priority_seconds: float = Field(0.01, ge=0)
    telemetry_drain_timeout_seconds: float = Field(10.0, gt=0)
    # Processing, enrichment, correlation and analysis (issue #5 part B).
    # Cardinality: past these, points join an overflow series (`otel.metric.overflow`).
    telemetry_max_series: int = Field(20_000, ge=1)
    telemetry_max_attribute_values: int = Field(1_000, ge=1)
    # A JSON file `{service: {team, tier, environment, version}}` used instead of the backend.
    telemetry_service_map_file: Path | None = None
    # A MaxMind-format (.mmdb) database to geolocate public client addresses.
    telemetry_geoip_database: Path | None = None
    telemetry_time_zone: str = "UTC"  # for hour_of_day and weekday
    telemetry_max_traces: int = Field(10_000, ge=1)
    telemetry_max_spans_per_trace: int = Field(1_000, ge=1)
    telemetry_max_service_edges: int = Field(10_000, ge=1)
    telemetry_cascade_burst_errors: int = Field(3, ge=1)
    telemetry_series_points: int = Field(256, ge=16)  # recent points kept per series
    telemetry_comovement_bucket_seconds: float = Field(60.0, gt=0)
    telemetry_comovement_max_series: int = Field(50, ge=2, le=500)
    # Out-of-order points this much older than their series' newest are put back in order.
    telemetry_lateness_seconds: float = Field(0.0, ge=0)
    telemetry_reorder_max_points: int = Field(1_000, ge=1)
    telemetry_trend_window: int = Field(64, ge=10)
    telemetry_trend_p_value: float = Field(0.01, gt=0, lt=1)
    telemetry_max_rules: int = Field(1_000, ge=1)
    telemetry_max_active_alerts: int = Field(10_000, ge=1)
    # How far past the threshold, as a fraction of it, a firing alert's value must go back.
    telemetry_alert_hysteresis: float = Field(0.05, ge=0)
    telemetry_alerts_to_backend: bool = True

    # --- hostile input (issue #7) ------------------------------------------------
    # JSON bodies of the CRUD, bulk, REST and rule routes; telemetry has its own limits above.
    request_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Python's parser gives up near 1,000 levels; a limit above 256 would never be reached.
    request_max_json_depth: int = Field(32, ge=2, le=256)
    request_max_string_length: int = Field(10_000, ge=1)
    request_max_list_length: int = Field(1_000, ge=1)
    request_max_object_keys: int = Field(256, ge=1)
    # The reference backend pages at most 1,000 rows; a larger page could not be served.
    request_max_page_size: int = Field(1_000, ge=1, le=1_000)
    # Origins (scheme://host[:port]) whose pages may call the API; empty: none may.
    cors_allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        bad = [origin for origin in value if not ORIGIN.fullmatch(origin)]
        if bad:
            raise ValueError(
                "CORS origins are scheme://host[:port] without a path or wildcard, not "
                + ", ".join(repr(origin) for origin in bad)
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        bad = [proxy for proxy in value if not _is_address_or_network(proxy)]
        if bad:
            raise ValueError(
                "trusted proxies are IP addresses or networks like 10.0.0.0/8, not "
                + ", ".join(repr(proxy) for proxy in bad)
            )
        return value

    @field_validator("cache_ttl_overrides")
    @classmethod
    def _ttls_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(name for name, ttl in value.items() if ttl < 0)
        if negative:
            raise ValueError(f"cache TTLs cannot be negative: {', '.join(negative)}")
        return value

    @field_validator("telemetry_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

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

    @property
    def sensitive_field_words(self) -> tuple[str, ...]:
        builtin = (
            "password",
            "passwd",
            "token",
            "secret",
            "api_key",
            "apikey",
            "authorization",
            "credential",
            "private_key",
            "routing_key",  # PagerDuty's integration key, also called so:
            "integration_key",
            "service_key",
            "webhook",  # a Slack or Teams webhook URL is its own secret
        )
        return builtin + tuple(word.lower() for word in self.audit_sensitive_fields)

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'observer.db').resolve()}"

    @property
    def embedded_backend(self) -> bool:
        return not self.backend_url


def _is_address_or_network(text: str) -> bool:
    # Strict, as uvicorn reads them: a network with host bits set would match nothing there.
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=True)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
