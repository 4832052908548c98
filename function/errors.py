"""The errors a request can end in; each knows its HTTP status and its stable error code."""

from __future__ import annotations

# How much of a value the client sent an error message repeats: enough to recognise it, never
# the whole of a megabyte-long number.
EXCERPT_CHARACTERS = 40


def excerpt(text: str) -> str:
    """``text`` as an error message quotes it: cut to ``EXCERPT_CHARACTERS``, saying so."""
    if len(text) <= EXCERPT_CHARACTERS:
        return text
    return f"{text[:EXCERPT_CHARACTERS]}... ({len(text)} characters)"


class ApiError(Exception):
    """An error answered as ``{"error": code, "message": message}`` with ``status``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class InvalidPath(ApiError):
    status, code = 400, "invalid_path"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        # The method is shown escaped: it may hold any byte a client sent.
        super().__init__(f"{excerpt(repr(method))} is not allowed here; use {', '.join(allowed)}")
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"

    @property
    def headers(self) -> dict[str, str]:
        # The rest of the request may still be on its way: the connection cannot be reused.
        return {"Connection": "close"}


class PreconditionFailed(ApiError):
    status, code = 412, "precondition_failed"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UriTooLong(ApiError):
    status, code = 414, "uri_too_long"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class InternalError(ApiError):
    status, code = 500, "internal"


class _RetryLater(ApiError):
    retry_after_seconds = 1

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceUnavailable(_RetryLater):
    status, code = 503, "redis_unavailable"


class OutcomeUnknown(_RetryLater):
    """A change was sent to Redis and no reply came in time: it may have been applied."""

    status, code = 503, "outcome_unknown"


class Overloaded(_RetryLater):
    """Every Redis connection of this process is busy: Redis is up, this process is saturated."""

    status, code = 503, "overloaded"


class StorageFull(ApiError):
    """Redis refused a write for lack of memory (``maxmemory`` with ``noeviction``)."""

    status, code = 507, "storage_full"
