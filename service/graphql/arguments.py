"""Arguments many fields share: keys, pages and score windows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from pydantic import TypeAdapter

from service.alignment import service as alignment_service
from service.alignment.constants import Bucket
from service.alignment.repository import Window
from service.core.errors import Invalid
from service.core.fields import ExternalId, Key
from service.core.pagination import PageRequest

TOP_LEVEL_MAX = 500
NESTED_MAX = 100
DEFAULT_PAGE = 50

#: Argument metadata naming the rule its value must pass (a pydantic TypeAdapter); the
#: CheckedArguments extension applies it before execution (service/graphql/security.py).
RULE = "silospan.rule"

# The same rules as REST path keys (KeyPath, the case_ref path): core/fields.py.
KeyArg = Annotated[str, strawberry.argument(metadata={RULE: TypeAdapter(Key)})]
ExternalIdArg = Annotated[str, strawberry.argument(metadata={RULE: TypeAdapter(ExternalId)})]

First = Annotated[
    int | None, strawberry.argument(description="Page size (top level ≤ 500, nested ≤ 100).")
]
After = Annotated[str | None, strawberry.argument(description="nextCursor of the previous page.")]
# "from" and "to", as in REST's query and in every returned window.
From = Annotated[
    datetime | None,
    strawberry.argument(name="from", description="Window start; default: 90 days before to."),
]
To = Annotated[
    datetime | None, strawberry.argument(name="to", description="Window end; default: asOf.")
]
AsOf = Annotated[datetime | None, strawberry.argument(description="Taken at; default now.")]
BucketArg = Annotated[
    Bucket | None, strawberry.argument(description="Also score each day, week or month.")
]


class PageTooLarge(Invalid):
    code = "page_too_large"


def page(first: int | None, after: str | None, *, maximum: int = TOP_LEVEL_MAX) -> PageRequest:
    """A page request, refused before any database work when it asks for too much."""
    size = DEFAULT_PAGE if first is None else first
    if size < 1 or size > maximum:
        raise PageTooLarge(
            f"first must be between 1 and {maximum} here", loc=("first",), maximum=maximum
        )
    return PageRequest(limit=size, cursor=after)


def window(
    info: Any,
    start: datetime | None,
    end: datetime | None,
    as_of: datetime | None,
    bucket: Bucket | None = None,
) -> Window:
    """The score window; ``as_of`` defaults to the request's one moment, so every score in a
    query is taken at the same time (and same-window scores load in one batch)."""
    return alignment_service.make_window(start, end, as_of or info.context.now, bucket)
