"""The resource rules: which path names which resource, what a valid document is, how it is stored.

Pure functions; nothing here talks to Redis or to a web framework.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qs

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, UriTooLong
from .settings import Settings

# Fields the service writes into every resource; a client may not send them.
SERVER_FIELDS = ("last_updated", "ttl")

_REPEATED_SLASHES = re.compile(r"/{2,}")


def normalize_path(path: str, settings: Settings) -> str:
    """The canonical name of a resource: the decoded path, repeated and trailing slashes removed.

    Paths are case-sensitive. ``/a/b``, ``/a/b/`` and ``//a//b`` name one resource, and so does
    ``/a%2Fb``: servers decode percent-escapes before the function sees the path.
    """
    if len(path.encode("utf-8", "surrogatepass")) > settings.max_path_bytes:
        raise UriTooLong(f"the path is longer than {settings.max_path_bytes} bytes")
    path = _REPEATED_SLASHES.sub("/", path)
    return path.rstrip("/") or "/"


def resource_key(settings: Settings, path: str) -> str:
    # Every resource key has "r:" after the prefix and the counter key has not: no path reaches it.
    return f"{settings.key_prefix}r:{path}"


def counter_key(settings: Settings) -> str:
    return f"{settings.key_prefix}count"


def parse_ttl(query_string: bytes, settings: Settings) -> int:
    """The expiry a PUT asks for with ``?ttl=SECONDS``, or the configured default."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("ttl")
    if values is None:
        return settings.ttl_default_seconds
    if len(values) != 1 or not values[0].isascii() or not values[0].isdigit():
        raise BadRequest("ttl must be one whole number of seconds", code="invalid_ttl")
    ttl = int(values[0])
    if not settings.ttl_min_seconds <= ttl <= settings.ttl_max_seconds:
        raise BadRequest(
            f"ttl must lie between {settings.ttl_min_seconds} and {settings.ttl_max_seconds}",
            code="invalid_ttl",
        )
    return ttl


def check_content_type(content_type: str | None) -> None:
    """Accept ``application/json`` and ``application/*+json``, in UTF-8."""
    media_type, _, params = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"send the document as application/json, not {media_type or 'no content type'}"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"the document must be UTF-8, not {charset}")


def check_body_size(size: int, settings: Settings) -> None:
    if size > settings.max_body_bytes:
        raise PayloadTooLarge(f"the body is larger than {settings.max_body_bytes} bytes")


def parse_document(body: bytes, settings: Settings) -> dict[str, Any]:
    """A JSON object from a request body, or the reason it is not one."""
    check_body_size(len(body), settings)
    try:
        text = body.decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8", code="invalid_json") from None
    except RecursionError:
        raise _too_deep(settings) from None
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(document, dict):
        raise BadRequest(
            f"the body must be a JSON object, not {_json_type(document)}", code="not_an_object"
        )
    if _depth(document) > settings.max_json_depth:
        raise _too_deep(settings)
    reserved = [name for name in SERVER_FIELDS if name in document]
    if reserved:
        raise BadRequest(
            f"{' and '.join(reserved)} are set by the service (use ?ttl=SECONDS for the expiry)",
            code="reserved_field",
        )
    return document


def encode_stored(document: dict[str, Any], last_updated: int) -> bytes:
    """The bytes kept in Redis: the document with ``last_updated``, as compact JSON."""
    return json.dumps({**document, "last_updated": last_updated}, separators=(",", ":")).encode()


def render_stored(stored: bytes, ttl: int) -> bytes:
    """The stored JSON object with ``ttl`` appended, without decoding it again.

    ``stored`` always comes from ``encode_stored``: a compact object that already holds
    ``last_updated``, so it is never empty and ends with its closing brace.
    """
    return b'%s,"ttl":%d}' % (stored[:-1], ttl)


def _depth(value: Any) -> int:
    """Nesting depth of containers, counted without recursion (the object itself is 1)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep(settings: Settings) -> BadRequest:
    return BadRequest(
        f"the document nests deeper than {settings.max_json_depth} levels", code="too_deep"
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large for a JSON number")
    return number


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
