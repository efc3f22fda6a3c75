"""The committed API description and the migrations match the code."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import service.models  # noqa: F401  (every table on the metadata)
from service.api.schema_export import render_graphql, render_openapi
from service.core.db import metadata, sync_url

ROOT = Path(__file__).resolve().parent.parent


def test_committed_openapi_matches_the_app():
    committed = (ROOT / "openapi" / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(render_openapi()), (
        "openapi/openapi.json is stale: run 'silospan export-schema'"
    )


def test_committed_graphql_schema_matches_the_app():
    committed = (ROOT / "openapi" / "schema.graphql").read_text()
    assert committed == render_graphql(), (
        "openapi/schema.graphql is stale: run 'silospan export-schema'"
    )


def test_migrations_at_head_match_the_models(test_database):
    engine = create_engine(sync_url(test_database.url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "target_metadata": metadata}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == [], f"models and migrations differ: {differences}"
