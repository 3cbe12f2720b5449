"""The admin bearer token: ``Authorization: Bearer <token>``, compared in constant time.

The scheme name is case-insensitive (RFC 7235 §2.1, https://www.rfc-editor.org/rfc/rfc7235);
the token is compared with :func:`hmac.compare_digest`, so the time an answer takes says
nothing about how much of a guess was right. A wrong token is the caller's to log and to
charge to the client like a malformed request, so guessing costs the guesser.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterable


class Bearer(enum.Enum):
    """What a request's credentials say about the admin token."""

    OK = "ok"
    """A ``Bearer`` credential equal to the configured token."""
    ABSENT = "absent"
    """No ``Bearer`` credential (another scheme counts as none), or no token configured."""
    WRONG = "wrong"
    """A ``Bearer`` credential, but not the token (or empty)."""


def check_bearer(headers: Iterable[tuple[bytes, bytes]], token: str | None) -> Bearer:
    """Check the ``Authorization`` headers against ``token`` (None or empty: no admin token).

    Any matching ``Bearer`` credential is OK, even beside wrong ones; none matching
    among one or more is WRONG.
    """
    if not token:
        return Bearer.ABSENT
    expected = token.encode()
    verdict = Bearer.ABSENT
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        parts = value.split(None, 1)
        if not parts or parts[0].lower() != b"bearer":
            continue
        if hmac.compare_digest(parts[-1].strip() if len(parts) == 2 else b"", expected):
            return Bearer.OK
        verdict = Bearer.WRONG
    return verdict
