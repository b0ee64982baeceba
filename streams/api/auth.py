"""The optional bearer token (``LEADPULSE_API_TOKEN``), compared in constant time and never logged."""

from __future__ import annotations

import hmac


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token (always, when no token is set)."""
    if token is None:
        return True
    scheme, _, credentials = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        given = credentials.strip().encode()
    except UnicodeEncodeError:  # a header no token can equal
        return False
    return hmac.compare_digest(given, token.encode())
