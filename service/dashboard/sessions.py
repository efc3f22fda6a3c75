"""Dashboard sign-in: a session cookie bound to one API key, with no table and no shared secret.

The cookie is ``v1.<key id>.<issued at>.<mac>``, where the MAC is HMAC-SHA256 keyed with the
key's stored hash. Verifying it loads the key, so revoking the key ends every session made
with it, and any number of worker processes or replicas agree without sharing anything but
the database. The secret itself is never stored, logged or put in the cookie. (Whoever can
read the ``api_keys`` table can therefore mint sessions, as they could with a shared secret
kept beside it; signing out clears the browser's cookie, while a copied cookie stays good
until it expires or the key is revoked.)

Only the dashboard's own same-origin calls may use the cookie: the API honours it when the
request carries :data:`HEADER` (a custom header a cross-site form or image cannot send, and
a cross-site script could only send after a CORS preflight this service never grants), and
never when the browser says the request comes from another site (``Sec-Fetch-Site``).
Nothing here knows about HTTP frameworks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.api_keys import service as api_keys_service
from service.api_keys.models import ApiKey
from service.core.errors import Unauthenticated
from service.core.permissions import Principal, Role

COOKIE = "silospan_session"
HEADER = "x-silospan-session"
#: How long a session lasts without signing in again (the key's revocation ends it sooner).
LIFETIME_SECONDS = 12 * 3600
#: Clocks of replicas may disagree a little; a session "issued" further ahead is refused.
CLOCK_SKEW_SECONDS = 300
_VERSION = "v1"
_REFUSED = "the dashboard session is not valid, has expired, or its key has been revoked"


def _mac(key: ApiKey, issued_at: int) -> str:
    message = f"silospan-dashboard:{_VERSION}:{key.id}:{issued_at}".encode()
    digest = hmac.new(key.secret_hash.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(key: ApiKey, now: float | None = None) -> str:
    """The cookie value for a session of ``key`` (already authenticated by its secret)."""
    issued_at = int(time.time() if now is None else now)
    return f"{_VERSION}.{key.id.hex}.{issued_at}.{_mac(key, issued_at)}"


async def start(session: AsyncSession, secret: str, now: float | None = None) -> tuple[str, ApiKey]:
    """Authenticate ``secret`` as the API does; the session cookie for its key, and the key."""
    principal = await api_keys_service.authenticate(session, secret)
    key = await session.get(ApiKey, principal.key_id)
    if key is None:  # deleted between the two reads
        raise Unauthenticated(_REFUSED)
    return issue(key, now), key


def token_of(cookies: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The session cookie of a request that may use it, else None.

    A request without :data:`HEADER`, or one a browser marks as cross-site, does not use
    the cookie at all (it is then as unauthenticated as a request without a key).
    """
    token = cookies.get(COOKIE)
    if not token or headers.get(HEADER) != "1":
        return None
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return None
    return token


async def authenticate(session: AsyncSession, token: str, now: float | None = None) -> Principal:
    """The principal of a valid session (its key not revoked), else :class:`Unauthenticated`."""
    key = await load_key(session, token, now)
    return Principal(
        key_id=key.id, name=key.name, role=Role(key.role), partner_unit_id=key.partner_unit_id
    )


async def load_key(session: AsyncSession, token: str, now: float | None = None) -> ApiKey:
    parts = token.split(".") if len(token) <= 200 else []
    if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit():
        raise Unauthenticated(_REFUSED)
    try:
        key_id = UUID(hex=parts[1])
    except ValueError:
        raise Unauthenticated(_REFUSED) from None
    issued_at = int(parts[2])
    current = time.time() if now is None else now
    if not (current - LIFETIME_SECONDS < issued_at <= current + CLOCK_SKEW_SECONDS):
        raise Unauthenticated(_REFUSED)
    key = await session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise Unauthenticated(_REFUSED)
    if not hmac.compare_digest(_mac(key, issued_at), parts[3]):
        raise Unauthenticated(_REFUSED)
    return key
