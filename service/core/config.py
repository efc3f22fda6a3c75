"""Settings, read once from the environment (prefix ``SILOSPAN_``)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    demo = "demo"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SILOSPAN_", extra="ignore")

    environment: Environment = Environment.development
    database_url: str = "sqlite:///./silospan.db"
    # Optional read replica for GET requests and GraphQL queries (PostgreSQL only).
    read_database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)

    # Errors: problem ``type`` URIs are this base plus the error code.
    problem_type_base: str = "https://silospan.dev/problems/"

    # Limits (documented in the README; each has a test).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    bulk_max_json_bytes: int = Field(default=32 * 1_048_576, ge=1024)
    bulk_max_ndjson_bytes: int = Field(default=1024 * 1_048_576, ge=1024)
    bulk_max_items: int = Field(default=1_000_000, ge=1)
    bulk_max_reported_errors: int = Field(default=1000, ge=1)
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

    log_level: str = "INFO"
    log_json: bool = True

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
