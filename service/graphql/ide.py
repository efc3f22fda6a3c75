"""GraphiQL, the in-browser IDE at ``GET /graphql``, served from the package's own assets.

A browser cannot send an ``Authorization`` header when it opens a page, and keys are never
accepted in a URL, so the page itself needs no key: it holds no data. The user gives the
key in its Headers tab (prefilled with ``{"Authorization": "Bearer "}``), and every query
the page sends is a ``POST /graphql`` with that header, checked like any other.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Protocol

#: The dashboard's journey view on the demo organisation (Harbor Bank), loaded as the
#: first query: journey → touchpoints → owner → upstream handoffs → provider units →
#: their goals → conflicts, with scores on the way.
EXAMPLE_QUERY = """\
# The journey view: each touchpoint of a journey, the
# handoffs that feed it, the goals of the units upstream
# and the conflicts between them.
#
# 1. Put your API key after "Bearer " in the Headers tab
#    below (`silospan demo` prints a reader key).
# 2. Run the query: the ▶ button, or Ctrl-Enter.
query JourneyView {
  journey(key: "multi-issue-enquiry") {
    name
    score { value }
    touchpoints {
      key
      name
      momentOfTruth
      score { value }
      owner { key ring }
      upstream {
        depth
        handoff {
          key
          score { value }
          fromUnit {
            key
            goals { key incentiveWeight conflicts { items { severity reasons } } }
          }
        }
      }
    }
  }
}
"""

HEADERS = '{"Authorization": "Bearer "}'

HINT = (
    "Put your API key after 'Bearer ' in the Headers tab below, then run the query "
    "(Ctrl-Enter). Docs and completion load once a query has worked with the key."
)


class _Request(Protocol):
    method: str

    @property
    def query_params(self) -> Any: ...

    @property
    def headers(self) -> Any: ...


def asks_for_ide(request: _Request) -> bool:
    """Whether a request asks for the IDE page: a GET with no query that accepts HTML.

    Strawberry's own rule, in one place: the router renders the page on it, and the
    GraphQL context lets exactly these requests through without a key.
    """
    accept = request.headers.get("accept", "")
    return (
        request.method == "GET"
        and request.query_params.get("query") is None
        and ("text/html" in accept or "*/*" in accept)
    )


@cache
def _template() -> str:
    return resources.files(__package__).joinpath("graphiql.html").read_text(encoding="utf-8")


def graphiql_page(static_base: str) -> str:
    """The page, its assets under ``static_base`` (e.g. ``/static``)."""
    config = json.dumps({"query": EXAMPLE_QUERY, "headers": HEADERS, "hint": HINT})
    # Inside <script>, "</" could close the element: JSON allows escaping the slash.
    config = config.replace("</", "<\\/")
    return _template().replace("__STATIC__", static_base).replace("__CONFIG__", config)
