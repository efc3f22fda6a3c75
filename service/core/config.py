"""Settings, read once from the environment (prefix ``SILOSPAN_``)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

#: The embedded database's file name inside the user's data directory.
DATABASE_FILE = "silospan.db"
BACKENDS = ("sqlite", "postgresql")


class Environment(StrEnum):
    development = "development"
    demo = "demo"
    production = "production"


def data_dir() -> Path:
    """The user's data directory for SiloSpan (``~/.local/share/silospan`` on Linux)."""
    return Path(user_data_dir("silospan", appauthor=False))


def default_database_url() -> str:
    """The embedded database: one file per user, whatever the current directory."""
    return f"sqlite:///{data_dir() / DATABASE_FILE}"


def display_url(url: str) -> str:
    """``url`` safe to print: the password is hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<not a database URL>"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (``None`` for PostgreSQL and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # a URI filename (sqlite:///file:x?uri=true)
        return None
    return Path(parsed.database)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SILOSPAN_", extra="ignore")

    environment: Environment = Environment.development
    # Default: the embedded SQLite file in the user's data directory (see data_dir()).
    database_url: str = Field(default_factory=default_database_url)
    # Optional read replica for GET requests and GraphQL queries (PostgreSQL only).
    read_database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Connections opened beyond the pool under bursts, and how long a request waits for one
    # when every connection is in use before it is answered 503 with Retry-After.
    db_pool_overflow: int = Field(default=20, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Errors: problem ``type`` URIs are this base plus the error code.
    problem_type_base: str = "https://silospan.dev/problems/"

    # Limits (documented in the README; each has a test).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    bulk_max_json_bytes: int = Field(default=32 * 1_048_576, ge=1024)
    bulk_max_ndjson_bytes: int = Field(default=1024 * 1_048_576, ge=1024)
    bulk_max_items: int = Field(default=1_000_000, ge=1)
    bulk_max_reported_errors: int = Field(default=1000, ge=1)
    # An event log import (POST /v1/event-logs): its body, and its text after inflating gzip.
    event_log_max_bytes: int = Field(default=16 * 1024**3, ge=1024)
    page_default: int = Field(default=50, ge=1)
    page_max: int = Field(default=500, ge=1)
    idempotency_ttl_hours: int = Field(default=24, ge=24)

    # Timeouts (seconds): a request body that stops arriving for body_timeout_seconds is
    # answered 408 and its connection closed; an idle keep-alive connection is closed after
    # keep_alive_seconds (uvicorn's timeout_keep_alive, for `silospan serve` and `demo`).
    body_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    keep_alive_seconds: int = Field(default=5, ge=1, le=300)

    # GraphQL: the in-browser IDE and GET queries are a development convenience.
    graphql_ide: bool | None = None
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=100)

    # GET /metrics needs an API key (any role) unless this opens it, for a scraper on a
    # network that only trusted hosts reach.
    metrics_public: bool = False

    # Findings: every this many seconds `serve` re-evaluates this many subjects, so findings
    # follow the clock (buffering's window) and cover rows written before they were kept.
    # 0 seconds turns the sweep off.
    findings_sweep_seconds: float = Field(default=10.0, ge=0)
    findings_sweep_batch: int = Field(default=200, ge=1, le=10_000)

    # Webhooks: where they may go, how long a delivery may take, when failures are retried
    # (seconds after each failed attempt; after the last, the delivery fails), and how often
    # `serve` looks for due deliveries (0 turns the dispatcher off, for `silospan worker`).
    webhooks_allow_http: bool = False
    webhooks_allow_private: bool = False
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_retry_seconds: list[float] = Field(
        default=[5, 300, 1800, 7200, 18000, 36000], max_length=20
    )
    webhooks_dispatch_seconds: float = Field(default=1.0, ge=0)
    webhooks_batch: int = Field(default=50, ge=1, le=1000)
    webhooks_lease_seconds: float = Field(default=60.0, gt=0)

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            backend = make_url(url).get_backend_name()
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise ValueError(
                "not a database URL (expected sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST:PORT/DATABASE)"
            ) from None
        if backend not in BACKENDS:
            raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
        return url

    @model_validator(mode="after")
    def _page_bounds(self) -> Settings:
        if self.page_default > self.page_max:
            raise ValueError("page_default must not exceed page_max")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def graphql_ide_enabled(self) -> bool:
        if self.graphql_ide is not None:
            return self.graphql_ide
        return self.environment is not Environment.production


@lru_cache
def get_settings() -> Settings:
    return Settings()
