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


#: The request media types that client generators (openapi-python-client among them) turn
#: into typed bodies; any other makes them warn, skip the variant or skip the operation.
GENERATOR_MEDIA_TYPES = {"application/json", "application/octet-stream"}


def test_every_request_body_is_one_client_generators_understand():
    spec = json.loads(render_openapi())
    schemas = spec["components"]["schemas"]
    bulk = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            assert set(body["content"]) <= GENERATOR_MEDIA_TYPES, (method, path, body["content"])
            if "x-ndjson" in body:
                bulk.append(path)
                item = body["x-ndjson"]["itemSchema"]["$ref"].rsplit("/", 1)[-1]
                assert item in schemas
                assert body["content"]["application/json"]["schema"]["items"] == {
                    "$ref": f"#/components/schemas/{item}"
                }
                assert "application/x-ndjson" in body["x-ndjson"]["mediaTypes"]
    assert sorted(bulk) == ["/v1/feedback/bulk", "/v1/handoff-events/bulk"]


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
