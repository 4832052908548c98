"""Optional bearer tokens: ``WRITE_TOKEN`` guards PUT and DELETE, ``READ_TOKEN`` guards reads.

A request for a guarded method must carry ``Authorization: Bearer <token>``. None at all is a
401 with ``WWW-Authenticate: Bearer`` (RFC 6750); a token that does not match is a 403. Tokens are
compared in constant time and never echoed in an answer or a log line. Health paths never reach
this check.
"""

from __future__ import annotations

import hmac

from .errors import ApiError
from .settings import Settings

WRITE_METHODS = ("PUT", "DELETE")
READ_METHODS = ("GET", "HEAD")
REALM = "kv-store"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


class Forbidden(ApiError):
    status, code = 403, "forbidden"


def required_token(method: str, settings: Settings) -> str:
    """The token a request with ``method`` must present; empty when none is configured."""
    if method in WRITE_METHODS:
        return settings.write_token
    if method in READ_METHODS:
        return settings.read_token
    return ""


def authorize(method: str, authorization: str | None, settings: Settings) -> None:
    """Raise ``Unauthorized`` or ``Forbidden`` unless the request may use ``method``."""
    expected = required_token(method, settings)
    if not expected:
        return
    presented = bearer_token(authorization)
    if presented is None:
        kind = "write" if method in WRITE_METHODS else "read"
        raise Unauthorized(f"{method} needs the {kind} token: send Authorization: Bearer <token>")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Forbidden(f"the token sent does not allow {method}")


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header, or None when there is none."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()
