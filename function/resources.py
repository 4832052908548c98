"""The resource rules: which path names which resource, what a valid document is.

Pure functions; nothing here talks to Redis or to a web framework.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlsplit

from .errors import (
    BadRequest,
    InvalidPath,
    PayloadTooLarge,
    UnsupportedMediaType,
    UriTooLong,
    excerpt,
)
from .settings import Settings

# Output-only fields (AIP-203): the service writes them; sent in a PUT body they are ignored.
SERVER_FIELDS = ("last_updated", "ttl")
# The interpreter's default bound on converting digits to an int (CVE-2020-10735); a longer
# integer is refused with this message instead of the interpreter's own.
MAX_INTEGER_DIGITS = 4300

_REPEATED_SLASHES = re.compile(r"/{2,}")
# C0 controls, DEL and C1 controls: never part of a resource name.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# application/json, or a structured syntax suffix with a non-empty subtype: application/x+json.
_JSON_MEDIA_TYPE = re.compile(r"application/(?:json|[a-z0-9][a-z0-9!#$&^_.+-]*\+json)")
# RFC 3986 pchar without percent-escapes: what a path segment may hold as it is.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
# A '%' that does not start an escape of two hex digits (RFC 3986 pct-encoded).
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# More digits than any ttl bound has (settings.TTL_CEILING_SECONDS has 16): out of bounds
# without converting (int() of thousands of digits raises).
_MAX_TTL_DIGITS = 18


def path_from_target(target: bytes) -> bytes:
    """The still percent-encoded path of a request target: origin form, absolute form, or the
    asterisk form (``OPTIONS *``), kept as ``*``; any other target is ``/``."""
    if target == b"*":
        return target
    if not target.startswith(b"/"):
        target = urlsplit(target).path if b"://" in target else b"/"
    return target.split(b"?", 1)[0].split(b"#", 1)[0] or b"/"


def decode_path(raw_path: bytes) -> str:
    """The path as text, from the bytes the client sent.

    Malformed (``%zz``, ``100%``) and undecodable percent-escapes (``%ff``, overlong ``%c0%af``),
    control characters and ``.`` or
    ``..`` segments are refused rather than replaced or resolved: each would let two spellings
    name one resource, or name one that no later request can address.
    """
    if b"%" in raw_path and _BAD_ESCAPE.search(raw_path):
        # Kept literally, /%zz would be a second name of /%25zz.
        raise InvalidPath("the path has a '%' that is not followed by two hex digits")
    try:
        path = (unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath("the path is not valid UTF-8 once percent-decoded") from None
    if _CONTROL.search(path):
        raise InvalidPath("the path holds a control character")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidPath("the path holds a '.' or '..' segment")
    return path


def normalize_path(path: str, settings: Settings) -> str:
    """The canonical name of a resource: the decoded path, repeated and trailing slashes removed.

    Paths are case-sensitive. ``/a/b``, ``/a/b/`` and ``//a//b`` name one resource, and so does
    ``/a%2Fb``. The length limit applies to this canonical form, in UTF-8 bytes.
    """
    path = canonical_path(path)
    check_path_length(path, settings)
    return path


def canonical_path(path: str) -> str:
    """The decoded path with repeated and trailing slashes removed; no length limit."""
    if "//" not in path and path[-1:] != "/":
        return path  # already canonical: most paths are
    return _REPEATED_SLASHES.sub("/", path).rstrip("/") or "/"


def check_path_length(path: str, settings: Settings) -> None:
    if len(path.encode()) > settings.max_path_bytes:
        raise UriTooLong(f"the path is longer than {settings.max_path_bytes} bytes")


def location(path: str) -> str:
    """The path as a URI reference (RFC 3986): ``%``, ``?``, ``#``, spaces and non-ASCII escaped."""
    return quote(path, safe=_PATH_SAFE)


def resource_key(settings: Settings, path: str) -> str:
    # Every resource key has "r:" after the prefix and the counter key has not: no path reaches it.
    return f"{settings.key_prefix}r:{path}"


def counter_key(settings: Settings) -> str:
    return f"{settings.key_prefix}count"


KEEP_TTL = "keep"


def parse_ttl(query_string: bytes, settings: Settings) -> int | None:
    """The expiry a PUT asks for with ``?ttl=SECONDS``, the configured default without it, or
    ``None`` for ``?ttl=keep``: keep the current expiry (a new resource gets the default)."""
    if not query_string:
        return settings.ttl_default_seconds
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("ttl")
    if values is None:
        return settings.ttl_default_seconds
    if values == [KEEP_TTL]:
        return None
    if len(values) != 1 or not values[0].isascii() or not values[0].isdigit():
        raise BadRequest("ttl must be one whole number of seconds, or keep", code="invalid_ttl")
    digits = values[0].lstrip("0") or "0"
    ttl = int(digits) if len(digits) <= _MAX_TTL_DIGITS else None
    if ttl is None or not settings.ttl_min_seconds <= ttl <= settings.ttl_max_seconds:
        raise BadRequest(
            f"ttl must lie between {settings.ttl_min_seconds} and {settings.ttl_max_seconds}",
            code="invalid_ttl",
        )
    return ttl


def check_content_type(content_type: str | None) -> None:
    """Accept ``application/json`` and ``application/<name>+json``, in UTF-8."""
    if content_type == "application/json":
        return  # what nearly every client sends
    media_type, _, params = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if not _JSON_MEDIA_TYPE.fullmatch(media_type):
        raise UnsupportedMediaType(
            f"send the document as application/json, not {excerpt(media_type or 'no content type')}"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"the document must be UTF-8, not {excerpt(charset)}")


def check_body_size(size: int, settings: Settings) -> None:
    if size > settings.max_body_bytes:
        raise PayloadTooLarge(f"the body is larger than {settings.max_body_bytes} bytes")


def parse_document(body: bytes, settings: Settings) -> dict[str, Any]:
    """A JSON object from a request body, or the reason it is not one.

    Output-only fields (``ttl``, ``last_updated``) are dropped, so a document read with GET can
    be changed and sent back as it is.
    """
    check_body_size(len(body), settings)
    try:
        document = _DECODER.decode(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8", code="invalid_json") from None
    except RecursionError:
        raise _too_deep(settings) from None
    except _IntegerTooLong:
        raise BadRequest(
            f"integers may have at most {MAX_INTEGER_DIGITS} digits", code="invalid_number"
        ) from None
    except ValueError as error:
        raise BadRequest(f"the body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(document, dict):
        raise BadRequest(
            f"the body must be a JSON object, not {_json_type(document)}", code="not_an_object"
        )
    if _depth(document) > settings.max_json_depth:
        raise _too_deep(settings)
    for name in SERVER_FIELDS:
        document.pop(name, None)
    return document


def stored_json(document: dict[str, Any], last_updated: int) -> bytes:
    """The document with ``last_updated``, as compact JSON."""
    return _ENCODER.encode({**document, "last_updated": last_updated}).encode()


def seconds_left(left_ms: int) -> int:
    """Remaining time to live in whole seconds, rounded as Redis's ``TTL`` rounds it."""
    return max(0, (left_ms + 500) // 1000)


def render_stored(document: bytes, ttl: int) -> bytes:
    """The stored JSON object with ``ttl`` appended, without decoding it again.

    ``document`` always comes from ``stored_json``: a compact object that already holds
    ``last_updated``, so it is never empty and ends with its closing brace.
    """
    return b'%s,"ttl":%d}' % (document[:-1], ttl)


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


class _IntegerTooLong(Exception):
    """Raised inside the JSON parser; not a ValueError, so it is told apart from bad syntax."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _IntegerTooLong
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{excerpt(text)} is too large for a JSON number")
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


# Made once: json.loads and json.dumps with options build a new decoder or encoder per call.
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
)
_ENCODER = json.JSONEncoder(separators=(",", ":"))
