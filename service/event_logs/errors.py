from __future__ import annotations

from service.core.errors import NotFoundFor
from service.core.permissions import Principal

RESOURCE = "event log"


def hidden_from_partners(principal: Principal, key: str | None) -> None:
    """Event logs are the company's own records of its cases: a partner key sees none, and
    is answered as if they did not exist."""
    if principal.is_partner:
        raise NotFoundFor(RESOURCE, key if key is not None else "")
