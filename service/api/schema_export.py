"""The committed API descriptions in ``openapi/``, rendered from the code."""

from __future__ import annotations

import json

from service.core.config import Settings


def render_openapi() -> str:
    from service.main import create_app

    # Default settings, so the document does not depend on the caller's environment.
    schema = create_app(Settings(_env_file=None)).openapi()
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def render_graphql() -> str:
    from service.graphql.schema import build_schema

    return build_schema(Settings(_env_file=None)).as_str() + "\n"
