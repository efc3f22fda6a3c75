"""From the free-text unit names of a log to registered units, and back.

A log's unit names are free text ("V5 3rd, (Ops)"). A name that is already a valid key is
its own key; any other becomes a slug plus six hex digits of the SHA-256 of the exact
name ("v5-3rd-ops-1f0c2a"): readable, stable across imports, and two different names never
share a key (the slug alone would merge "V5 3rd" with "v5-3rd").
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def derive_key(name: str) -> str:
    if _KEY.match(name):
        return name
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NOT_KEY.sub("-", ascii_name.lower()).strip("-")[:50].strip("-") or "unit"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
