"""The request rules in-process: ``dispatch`` answers a ``Response`` or names one ``RedisCall``.

No server and no Redis: each test builds a request, checks the answer or the exact Redis command,
and feeds the call a reply of the shape Redis gives. Milliseconds each, so the mutation run uses
them; the contract suite checks the same rules over real HTTP and a real Redis.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from function import redis_errors, service, storage
from function.logs import ThrottledWarning
from function.messages import RedisCall, Request, Response
from function.service import dispatch, finish
from function.settings import Settings

SETTINGS = Settings()
JSON_HEADERS = {"content-type": "application/json"}


def request(
    method: str,
    path: str | bytes,
    body: bytes = b"",
    query: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Request:
    raw_path = path.encode() if isinstance(path, str) else path
    return Request(method, raw_path, query, headers if headers is not None else {}, body)


def answered(outcome: Response | RedisCall) -> Response:
    assert isinstance(outcome, Response), outcome
    return outcome


def call_of(outcome: Response | RedisCall) -> RedisCall:
    assert isinstance(outcome, RedisCall), outcome
    return outcome


def error_of(response: Response) -> tuple[int, str]:
    assert response.content_type == "application/json"
    body = json.loads(response.body)
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str) and body["message"]
    return response.status, body["error"]


def put(path: str, body: bytes, query: bytes = b"", settings: Settings = SETTINGS) -> RedisCall:
    headers = {**JSON_HEADERS, "content-length": str(len(body))}
    return call_of(dispatch(request("PUT", path, body, query, headers), settings))


# --- health and framework paths -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health/liveness", "/health/readiness", "/health/readiness/"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_health_answers_without_redis(path: str, method: str) -> None:
    response = answered(dispatch(request(method, path), SETTINGS))
    assert (response.status, response.body) == (200, b'{"status":"ok"}')
    assert response.content_type == "application/json"
    assert response.headers == {}


@pytest.mark.parametrize("path", ["/health/liveness", "/health/readiness", "//health//readiness/"])
def test_health_answers_whatever_the_path_limit(path: str) -> None:
    # A MAX_PATH_BYTES below the probes' own length must not turn them into 414s.
    settings = Settings(max_path_bytes=2)
    response = answered(dispatch(request("GET", path), settings))
    assert (response.status, response.body) == (200, b'{"status":"ok"}')
    too_long = answered(dispatch(request("GET", "/health"), settings))
    assert error_of(too_long) == (414, "uri_too_long")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_health_refuses_other_methods(method: str) -> None:
    response = answered(dispatch(request(method, "/health/liveness"), SETTINGS))
    assert error_of(response) == (405, "method_not_allowed")
    assert response.headers == {"Allow": "GET, HEAD"}


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_framework_paths_are_not_found(path: str, method: str) -> None:
    response = answered(dispatch(request(method, path, b"{}", headers=JSON_HEADERS), SETTINGS))
    assert error_of(response) == (404, "not_found")
    assert path in json.loads(response.body)["message"]


# --- the counter --------------------------------------------------------------------------------


def test_get_counter_increments_the_counter_key() -> None:
    call = call_of(dispatch(request("GET", "/"), SETTINGS))
    assert call.command == ("INCR", "kv:count")
    assert call.fallback is None
    response = finish(call, 7)
    assert (response.status, response.body) == (200, b"Count is 7.")
    assert response.content_type == "text/plain; charset=utf-8"


def test_head_counter_reads_without_counting() -> None:
    call = call_of(dispatch(request("HEAD", "//"), SETTINGS))
    assert call.command == ("GET", "kv:count")
    assert finish(call, b"12").body == b"Count is 12."
    assert finish(call, None).body == b"Count is 0."  # no hit yet: the key does not exist


def test_counter_key_follows_the_prefix() -> None:
    call = call_of(dispatch(request("GET", "/"), Settings(key_prefix="app:")))
    assert call.command == ("INCR", "app:count")


def _werkzeug_prefers_json(accept: str) -> bool:
    """The ranking the function had from werkzeug, kept as the reference for its own."""
    offered = parse_accept_header(accept, MIMEAccept) if accept else MIMEAccept()
    return offered.best_match(("text/plain", "application/json")) == "application/json"


_MEDIA_RANGE = st.tuples(
    st.sampled_from(["text/plain", "application/json", "*/*", "text/*", "application/*",
                     "*/json", "TEXT/Plain", "text/html", "json", ""]),
    st.sampled_from(["", ";q=0", ";q=1", ";q=0.5", ";q=0.50", ";Q=0.3", ";q=1.5", ";q=-1",
                     ";q=x", " ; q=0.7", ";level=1", ";level=1;q=0.9"]),
).map("".join)  # fmt: skip


# Pieces of malformed fields too: empty elements and parameters, quotes, other white space.
_PIECES = st.sampled_from(["text/plain", "application/json", "*/*", "text/*", "*/json", ";q=0.5",
                           ";q=1", ";q=0", ", ", ";", "=", '"', "\\", "\xa0", "\x0b", " ",
                           "\t", "q", "level=1"])  # fmt: skip


@given(st.one_of(st.lists(_MEDIA_RANGE, max_size=4).map(", ".join),
                 st.lists(_PIECES, max_size=10).map("".join)))  # fmt: skip
def test_accept_is_ranked_as_werkzeug_ranks_it(accept: str) -> None:
    call = call_of(dispatch(request("GET", "/", headers={"accept": accept}), SETTINGS))
    as_json = finish(call, 3).content_type == "application/json"
    assert as_json == _werkzeug_prefers_json(accept)


@pytest.mark.parametrize(
    ("accept", "as_json"),
    [("application/json", True), ("text/plain, application/json;q=0.9", False),
     ("application/json, text/plain;q=0.5", True), ("*/*", False), ("", False),
     ("text/html", False), ("application/*", True),
     ("text/plain;q=0.5, application/json;q=0.4", False),
     # Equal weights: the more specific range wins, then plain text.
     ("text/*;q=0.5, application/json;q=0.5", True), ("application/*, text/plain", False),
     # A weight of 0 refuses; an invalid weight drops its range; parameters must match.
     ("application/json;q=0, */*", False), ("text/plain;q=2, application/json", True),
     ("application/json;level=1, text/plain;q=0.1", False), ("*/json, application/json", True),
     ("text/plain;q=1, application/json", False), ("text/plain;q=1, application/json;q=0.5", False),
     ("application/json;q=0, */*;q=0.5, text/plain;q=0.1", False),
     ("*/json, text/plain;q=0.5", False),
     ("application/json;q=0.1, application/json;q=0.9, text/plain;q=0.5", True),
     ('"application/json", text/plain;q=0.5', True), ('application/json;a="x,y";q=0.1', False),
     ('application/json;q="0.5", text/plain;q=0.4', True), ("application/json\xa0", False),
     # Only spaces and tabs are trimmed, and a range for all types names JSON too.
     ("application/jsonX", False), ("application/json;q=0.5X, text/plain;q=0.4", False),
     ("application/json;q=0.5\x0c, text/plain;q=0.4", True), ("*/*;q=0.5, text/plain;q=0.1", True),
     ('"application\\/json", text/plain;q=0.5', True),
     ('application/json;q="0.7\x0c", text/plain;q=0.6', False),
     # The most specific range names a type's weight; a weight of 0 alone refuses JSON.
     ("application/json;q=0.5, text/*;q=0.9, text/plain;q=0.1", True),
     ("application/json;q=0", False)],
)  # fmt: skip
def test_counter_speaks_json_when_asked(accept: str, as_json: bool) -> None:
    assert _werkzeug_prefers_json(accept) == as_json  # the reference the ranking follows
    call = call_of(dispatch(request("GET", "/", headers={"accept": accept}), SETTINGS))
    response = finish(call, 3)
    if as_json:
        assert (response.body, response.content_type) == (b'{"count":3}', "application/json")
        assert response.status == 200
    else:
        assert (response.body, response.content_type) == (b"Count is 3.", service.TEXT)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_counter_refuses_other_methods(method: str) -> None:
    response = answered(dispatch(request(method, "/"), SETTINGS))
    assert error_of(response) == (405, "method_not_allowed")
    assert response.headers == {"Allow": "GET, HEAD"}
    assert json.loads(response.body)["message"] == f"'{method}' is not allowed here; use GET, HEAD"


# --- reading and deleting -----------------------------------------------------------------------


NOW_MS = 1_700_000_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> int:
    """The service's clock stopped at NOW_MS (Unix milliseconds)."""
    monkeypatch.setattr(service, "_now_ms", lambda: NOW_MS)
    return NOW_MS


def test_get_is_one_plain_get_with_the_expiry_in_the_value(clock: int) -> None:
    call = call_of(dispatch(request("GET", "/a//b/"), SETTINGS))
    assert (call.command, call.fallback) == (("GET", "kv:r:/a/b"), None)
    stored = b'%d {"x":1,"last_updated":5}' % (clock + 39_500)  # 39.5 s: TTL rounds to 40
    response = answered(finish(call, stored))
    assert (response.status, response.body) == (200, b'{"x":1,"last_updated":5,"ttl":40}')
    assert response.content_type == "application/json"
    assert response.headers == {"ETag": f'"{hashlib.sha1(stored).hexdigest()}"'}
    expired_on_our_clock = answered(finish(call, b'%d {"x":1}' % (clock - 5_000)))
    assert expired_on_our_clock.body == b'{"x":1,"ttl":0}'


def test_a_value_without_its_expiry_is_read_again_with_its_ttl() -> None:
    # Values written before the expiry was kept in them are bare JSON; the key's TTL is theirs.
    call = call_of(dispatch(request("GET", "/a"), SETTINGS))
    stored = b'{"x":1,"last_updated":5}'
    again = call_of(finish(call, stored))
    sha = hashlib.sha1(storage.READ_BARE.source.encode()).hexdigest()
    assert again.command == ("EVALSHA", sha, 1, "kv:r:/a")
    assert again.fallback == ("EVAL", storage.READ_BARE.source, 1, "kv:r:/a")
    response = answered(finish(again, [stored, 40_400]))
    assert (response.status, response.body) == (200, b'{"x":1,"last_updated":5,"ttl":40}')
    assert response.headers == {"ETag": f'"{hashlib.sha1(stored).hexdigest()}"'}
    assert error_of(answered(finish(again, [None, -2]))) == (404, "not_found")


def test_head_reads_like_get() -> None:
    get = call_of(dispatch(request("GET", "/a"), SETTINGS))
    head = call_of(dispatch(request("HEAD", "/a"), SETTINGS))
    assert head.command == get.command


def test_get_missing_is_not_found() -> None:
    response = answered(finish(call_of(dispatch(request("GET", "/gone"), SETTINGS)), None))
    assert error_of(response) == (404, "not_found")
    assert json.loads(response.body)["message"] == "no resource at /gone"


def test_resource_keys_follow_the_prefix() -> None:
    settings = Settings(key_prefix="tenant-7:")
    assert call_of(dispatch(request("GET", "/a"), settings)).command == ("GET", "tenant-7:r:/a")
    assert call_of(dispatch(request("DELETE", "/a"), settings)).command == ("DEL", "tenant-7:r:/a")
    assert put("/a", b"{}", settings=settings).command[:2] == ("SET", "tenant-7:r:/a")
    assert put("/a", b"{}", b"ttl=keep", settings).command[3] == "tenant-7:r:/a"


def test_delete() -> None:
    call = call_of(dispatch(request("DELETE", "/a/"), SETTINGS))
    assert call.command == ("DEL", "kv:r:/a")
    deleted = finish(call, 1)
    assert (deleted.status, deleted.body, deleted.content_type) == (204, b"", None)
    missing = finish(call, 0)
    assert error_of(missing) == (404, "not_found")
    assert json.loads(missing.body)["message"] == "no resource at /a"


@pytest.mark.parametrize("method", ["POST", "PATCH", "OPTIONS"])
def test_resources_refuse_other_methods(method: str) -> None:
    response = answered(dispatch(request(method, "/a", b"{}", headers=JSON_HEADERS), SETTINGS))
    assert error_of(response) == (405, "method_not_allowed")
    assert response.headers == {"Allow": "GET, HEAD, PUT, DELETE"}


# --- writing ------------------------------------------------------------------------------------


def test_put_is_one_set_of_document_and_expiry(monkeypatch: pytest.MonkeyPatch, clock: int) -> None:
    monkeypatch.setattr(service.time, "time", lambda: 1_700_000_000.9)
    call = put("/a/b/", b'{"b": [1, 2.5, null], "a": "\xc3\xa9"}', b"ttl=90")
    document = b'{"b":[1,2.5,null],"a":"\\u00e9","last_updated":1700000000}'
    expires_at_ms = clock + 90_000
    stored = b"%d %s" % (expires_at_ms, document)
    # SET ... GET: the old value, sent back, tells a replacement from a new resource.
    assert call.command == ("SET", "kv:r:/a/b", stored, "PXAT", expires_at_ms, "GET")
    assert call.fallback is None
    tag = f'"{hashlib.sha1(stored).hexdigest()}"'

    created = answered(finish(call, None))
    assert created.status == 201
    assert created.headers == {"ETag": tag, "Location": "/a/b"}
    assert created.body == document[:-1] + b',"ttl":90}'
    assert created.content_type == "application/json"
    replaced = answered(finish(call, b"older"))
    assert replaced.status == 200
    assert replaced.headers == {"ETag": tag}
    assert replaced.body == created.body


def test_put_without_ttl_uses_the_default(clock: int) -> None:
    assert put("/a", b"{}").command[4] == clock + 31_536_000_000
    assert put("/a", b"{}", settings=Settings(ttl_default_seconds=77)).command[4] == clock + 77_000


@pytest.mark.parametrize(
    ("query", "ttl"), [(b"ttl=5", 5), (b"ttl=10", 10), (b"a=1&ttl=7", 7)]
)  # fmt: skip
def test_put_ttl_bounds_are_inclusive(query: bytes, ttl: int, clock: int) -> None:
    settings = Settings(ttl_min_seconds=5, ttl_default_seconds=5, ttl_max_seconds=10)
    assert put("/a", b"{}", query, settings).command[4] == clock + ttl * 1000


@pytest.mark.parametrize(
    "query", [b"ttl=4", b"ttl=11", b"ttl=", b"ttl=-5", b"ttl=5.0", b"ttl=5&ttl=6", b"ttl=%D9%A5"]
)
def test_put_ttl_outside_bounds_is_refused(query: bytes) -> None:
    settings = Settings(ttl_min_seconds=5, ttl_default_seconds=5, ttl_max_seconds=10)
    response = answered(dispatch(request("PUT", "/a", b"{}", query, JSON_HEADERS), settings))
    assert error_of(response) == (400, "invalid_ttl")


@pytest.mark.parametrize("query", [b"ttl=x", b"ttl=1&ttl=1"])
def test_ttl_message_asks_for_one_whole_number(query: bytes) -> None:
    response = answered(dispatch(request("PUT", "/a", b"{}", query, JSON_HEADERS), SETTINGS))
    message = json.loads(response.body)["message"]
    assert message == "ttl must be one whole number of seconds, or keep"


def test_ttl_message_names_the_bounds() -> None:
    settings = Settings(ttl_min_seconds=5, ttl_default_seconds=5, ttl_max_seconds=10)
    response = answered(dispatch(request("PUT", "/a", b"{}", b"ttl=11", JSON_HEADERS), settings))
    assert json.loads(response.body)["message"] == "ttl must lie between 5 and 10"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/merge-patch+json",
     "application/json; charset=utf-8", "application/json;charset=UTF8",
     'application/json; charset="utf-8"', "application/json; boundary=x",
     "application/json;charset=utf-8;x=y"],
)  # fmt: skip
def test_put_accepts_json_media_types(content_type: str) -> None:
    headers = {"content-type": content_type}
    call_of(dispatch(request("PUT", "/a", b"{}", headers=headers), SETTINGS))


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/json", "application/jsonx", "application/json+xml", "text/plain+json",
     "application/json; charset=latin-1", "multipart/form-data",
     "application/json; charset=utf-8=x", "application/json; charset=utf-8X"],
)  # fmt: skip
def test_put_refuses_other_media_types(content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = answered(dispatch(request("PUT", "/a", b"{}", headers=headers), SETTINGS))
    assert error_of(response) == (415, "unsupported_media_type")


def test_media_type_messages() -> None:
    def message(content_type: str | None) -> str:
        headers = {} if content_type is None else {"content-type": content_type}
        response = answered(dispatch(request("PUT", "/a", b"{}", headers=headers), SETTINGS))
        return str(json.loads(response.body)["message"])

    assert message(None) == "send the document as application/json, not no content type"
    assert message("Text/Plain") == "send the document as application/json, not text/plain"
    assert message("application/json; charset=Latin-1") == "the document must be UTF-8, not latin-1"


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"", "invalid_json"), (b"{", "invalid_json"), (b"\xff{}", "invalid_json"),
     (b'{"a": NaN}', "invalid_json"), (b'{"a": Infinity}', "invalid_json"),
     (b'{"a": -Infinity}', "invalid_json"), (b'{"a": 1e400}', "invalid_json"),
     (b"[]", "not_an_object"), (b'"s"', "not_an_object"), (b"1", "not_an_object"),
     (b"null", "not_an_object"), (b"true", "not_an_object")],
)  # fmt: skip
def test_put_refuses_what_is_not_a_json_object(body: bytes, code: str) -> None:
    headers = {**JSON_HEADERS, "content-length": str(len(body))}
    response = answered(dispatch(request("PUT", "/a", body, headers=headers), SETTINGS))
    assert error_of(response) == (400, code)


@pytest.mark.parametrize(
    ("body", "named"),
    [(b"[]", "an array"), (b'"s"', "a string"), (b"1", "a number"), (b"1.5", "a number"),
     (b"null", "null"), (b"false", "a boolean")],
)  # fmt: skip
def test_not_an_object_names_what_it_got(body: bytes, named: str) -> None:
    response = answered(dispatch(request("PUT", "/a", body, headers=JSON_HEADERS), SETTINGS))
    assert json.loads(response.body)["message"] == f"the body must be a JSON object, not {named}"


def test_invalid_json_messages() -> None:
    def message(body: bytes) -> str:
        response = answered(dispatch(request("PUT", "/a", body, headers=JSON_HEADERS), SETTINGS))
        return str(json.loads(response.body)["message"])

    assert message(b"\xff") == "the body is not valid UTF-8"
    assert message(b'{"a": NaN}').endswith("NaN is not a JSON number")
    assert message(b'{"a": 1e400}').endswith("1e400 is too large for a JSON number")
    assert message(b"{").startswith("the body is not valid JSON: ")


def test_large_finite_numbers_are_kept() -> None:
    call = put("/a", b'{"a": 1.5e300, "b": -2.5e-300}')
    assert json.loads(call.command[2].partition(b" ")[2]) == {
        "a": 1.5e300,
        "b": -2.5e-300,
        "last_updated": ANY_INT,
    }


class _AnyInt:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int)


ANY_INT: Any = _AnyInt()


def test_depth_limit_is_inclusive() -> None:
    settings = Settings(max_json_depth=3)
    assert put("/a", b'{"a": [{"b": 1}]}', settings=settings)
    too_deep = answered(
        dispatch(request("PUT", "/a", b'{"a": [{"b": []}]}', headers=JSON_HEADERS), settings)
    )
    assert error_of(too_deep) == (400, "too_deep")
    assert json.loads(too_deep.body)["message"] == "the document nests deeper than 3 levels"
    deep_in_list = answered(
        dispatch(request("PUT", "/a", b'{"a": [1, [2, [3]]]}', headers=JSON_HEADERS), settings)
    )
    assert error_of(deep_in_list) == (400, "too_deep")


def test_nesting_deeper_than_the_parser_is_too_deep() -> None:
    body = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    settings = Settings(max_body_bytes=len(body))
    response = answered(dispatch(request("PUT", "/a", body, headers=JSON_HEADERS), settings))
    assert error_of(response) == (400, "too_deep")


def test_body_limit_is_inclusive() -> None:
    settings = Settings(max_body_bytes=10)
    assert put("/a", b'{"a":"12"}', settings=settings)  # 10 bytes
    response = answered(
        dispatch(request("PUT", "/a", b'{"a":"123"}', headers=JSON_HEADERS), settings)
    )
    assert error_of(response) == (413, "payload_too_large")
    assert json.loads(response.body)["message"] == "the body is larger than 10 bytes"


def test_declared_length_over_the_limit_is_refused_before_the_body() -> None:
    settings = Settings(max_body_bytes=10)
    headers = {**JSON_HEADERS, "content-length": "11"}
    response = answered(dispatch(request("PUT", "/a", b"{}", headers=headers), settings))
    assert error_of(response) == (413, "payload_too_large")
    headers = {**JSON_HEADERS, "content-length": "10"}
    call_of(dispatch(request("PUT", "/a", b"{}", headers=headers), settings))


@pytest.mark.parametrize(("method", "limit"), [("PUT", 11), ("GET", 0), ("DELETE", 0)])
def test_body_limit_reads_one_byte_past_the_limit(method: str, limit: int) -> None:
    assert service.body_limit(method, {}, Settings(max_body_bytes=10)) == limit


@pytest.mark.parametrize(
    ("declared", "limit"),
    [("10", 11), ("11", 0), ("x", 11), ("-1", 11), ("", 11), ("0" * 30 + "10", 11),
     ("0" * 30 + "11", 0), ("9" * 5000, 0)],
)  # fmt: skip
def test_body_limit_skips_a_declared_oversize_body(declared: str, limit: int) -> None:
    headers = {"content-length": declared}
    assert service.body_limit("PUT", headers, Settings(max_body_bytes=10)) == limit


@pytest.mark.parametrize("digits", [18, 19, 40])
def test_a_declared_length_of_many_digits_is_over_the_limit(digits: int) -> None:
    headers = {"content-length": "1" + "0" * (digits - 1)}
    assert service.body_limit("PUT", headers, Settings(max_body_bytes=1000)) == 0


def test_reserved_fields_are_never_stored() -> None:
    # Whether they are refused or dropped, the stored document never carries the client's values.
    for body in (b'{"ttl": 5, "a": 1}', b'{"last_updated": 5, "a": 1}'):
        outcome = dispatch(request("PUT", "/a", body, headers=JSON_HEADERS), SETTINGS)
        if isinstance(outcome, RedisCall):
            stored = json.loads(outcome.command[2].partition(b" ")[2])
            assert "ttl" not in stored
            assert stored["last_updated"] != 5
        else:
            assert outcome.status == 400


# --- paths --------------------------------------------------------------------------------------


def test_path_limit_counts_utf8_bytes_inclusively() -> None:
    settings = Settings(max_path_bytes=5)
    call_of(dispatch(request("GET", "/abcd"), settings))
    call_of(dispatch(request("GET", "/é\u00e9"), settings))  # 5 bytes
    for too_long in ("/abcde", "/ééa"):
        response = answered(dispatch(request("GET", too_long), settings))
        assert error_of(response) == (414, "uri_too_long")
        assert json.loads(response.body)["message"] == "the path is longer than 5 bytes"


def test_trailing_slashes_alone_are_stripped() -> None:
    assert call_of(dispatch(request("GET", "/aX/"), SETTINGS)).command == ("GET", "kv:r:/aX")


def test_scripts_are_named_by_their_sha1() -> None:
    script = storage.Script("return 1")
    assert script.sha == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
    call = script.call("k", "v", finish=lambda reply: Response(200))
    assert call.command == ("EVALSHA", script.sha, 1, "k", "v")
    assert call.fallback == ("EVAL", "return 1", 1, "k", "v")


def test_lone_surrogate_path_is_refused() -> None:
    # A lone surrogate's UTF-8 form (CESU) is not valid UTF-8: no resource can be named by it.
    response = answered(dispatch(request("GET", b"/%ED%B3%BF"), SETTINGS))
    assert error_of(response) == (400, "invalid_path")


# --- errors -------------------------------------------------------------------------------------


def test_unavailable_has_retry_after(caplog: pytest.LogCaptureFixture) -> None:
    response = service.redis_unavailable(ConnectionError("refused"))
    assert error_of(response) == (503, "redis_unavailable")
    assert response.headers == {"Retry-After": "1"}


@pytest.mark.parametrize(
    ("error", "logged"),
    [(TimeoutError("Timeout reading from socket"), "Timeout reading from socket"),
     (redis_errors.reply_error("READONLY You can't write against a read only replica."),
      "READONLY You can't write against a read only replica.")],
)  # fmt: skip
def test_an_unconfirmed_change_is_logged_with_its_cause(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    logged: str,
) -> None:
    monkeypatch.setattr(service, "_warn_unavailable", ThrottledWarning(service.log, 10.0))
    with caplog.at_level(logging.WARNING, logger=service.log.name):
        response = service.unconfirmed(service.UNCONFIRMED_DELETE, error)
    assert error_of(response) == (503, "outcome_unknown")
    assert [r.getMessage() for r in caplog.records] == [f"Redis did not confirm a change: {logged}"]


def test_internal_error_keeps_details_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "password=hunter2 at /srv/function/secret.py"
    try:
        raise RuntimeError(secret)
    except RuntimeError:
        response = service.internal_error()
    body = json.loads(response.body)
    assert body["error"] == "internal"
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str) and body["message"]
    assert "hunter2" not in response.body.decode()
    assert "Traceback" not in response.body.decode()
    assert "RuntimeError" not in response.body.decode()
    assert secret in caplog.text
    assert "Traceback" in caplog.text


def test_error_body_is_json_with_code_and_message() -> None:
    from function.errors import BadRequest

    response = service.error_response(BadRequest("no \u00e9", code="x_y"))
    assert response.status == 400
    assert response.content_type == "application/json"
    assert json.loads(response.body) == {"error": "x_y", "message": "no \u00e9"}
    assert response.headers == {}


def test_finish_turns_an_error_of_the_reply_into_its_answer() -> None:
    from function.errors import NotFound

    def fail(reply: Any) -> Response:
        raise NotFound("gone")

    response = finish(RedisCall(("GET", "k"), fail), None)
    assert error_of(response) == (404, "not_found")


# --- conditional requests and kept expiry -------------------------------------------------------

STORED = b'%d {"x":1,"last_updated":5}' % (NOW_MS + 40_000)
SHA = hashlib.sha1(STORED).hexdigest()
TAG = f'"{SHA}"'
OTHER = "b" * 40


def read_with(headers: dict[str, str], reply: bytes | None) -> Response:
    outcome = finish(call_of(dispatch(request("GET", "/a", headers=headers), SETTINGS)), reply)
    return answered(outcome)


@pytest.mark.parametrize("header", [TAG, "*", f'"{OTHER}", {TAG}', f"W/{TAG}"])
def test_if_none_match_on_read_is_not_modified(header: str) -> None:
    response = read_with({"if-none-match": header}, STORED)
    assert (response.status, response.body, response.content_type) == (304, b"", None)
    assert response.headers == {"ETag": TAG}


@pytest.mark.parametrize("header", ['"abcd"', '""', 'W/""'])
def test_if_none_match_names_no_missing_resource(header: str) -> None:
    """A resource that is not there has no tag, not even an empty one: 404, not 304."""
    assert error_of(read_with({"if-none-match": header}, None)) == (404, "not_found")


def test_if_none_match_of_another_tag_reads() -> None:
    response = read_with({"if-none-match": f'"{OTHER}"'}, STORED)
    assert (response.status, response.headers) == (200, {"ETag": TAG})


@pytest.mark.parametrize("header", [TAG, "*", f'"{OTHER}", {TAG}'])
def test_if_match_on_read_that_holds_reads(header: str, clock: int) -> None:
    response = read_with({"if-match": header}, STORED)
    assert (response.status, response.body) == (200, b'{"x":1,"last_updated":5,"ttl":40}')


@pytest.mark.parametrize(
    ("header", "reply"),
    [(f'"{OTHER}"', STORED), (f"W/{TAG}", STORED), ("*", None),
     (TAG, None)],
)  # fmt: skip
def test_if_match_on_read_that_fails_is_412(header: str, reply: bytes | None) -> None:
    response = read_with({"if-match": header}, reply)
    assert error_of(response) == (412, "precondition_failed")
    assert json.loads(response.body)["message"] == "the resource at /a does not match If-Match"


@pytest.mark.parametrize(
    ("headers", "if_match", "if_none_match"),
    [({"if-match": "*"}, "*", ""), ({"if-none-match": "*"}, "", "*"),
     ({"if-match": f'"{OTHER}", {TAG}, "short"'}, f",{SHA},{OTHER},", ""),
     ({"if-match": f"W/{TAG}"}, ",,", ""),
     ({"if-none-match": f'W/{TAG}, "{"A" * 40}"'}, "", f",{SHA},")],
)  # fmt: skip
def test_write_passes_preconditions_to_its_script(
    headers: dict[str, str], if_match: str, if_none_match: str, clock: int
) -> None:
    # Only SHA-1 hex tags can match a stored document; If-Match compares strongly (weak tags
    # dropped), If-None-Match weakly; tags are sorted and framed by commas for string.find.
    headers = {**JSON_HEADERS, **headers}
    call = call_of(dispatch(request("PUT", "/a", b"{}", b"ttl=9", headers), SETTINGS))
    sha = hashlib.sha1(storage.WRITE.source.encode()).hexdigest()
    # ARGV: the document's JSON, its expiry (ms), keep ('' = no), If-Match, If-None-Match ('' =
    # no header), now (ms).
    document = call.command[4]
    assert call.command == ("EVALSHA", sha, 1, "kv:r:/a", document, clock + 9_000, "",
                            if_match, if_none_match, clock)  # fmt: skip
    assert call.fallback == ("EVAL", storage.WRITE.source, *call.command[2:])
    assert json.loads(document)["last_updated"] > 0
    deleted = call_of(dispatch(request("DELETE", "/a", headers=headers), SETTINGS))
    sha = hashlib.sha1(storage.DELETE_IF.source.encode()).hexdigest()
    assert deleted.command == ("EVALSHA", sha, 1, "kv:r:/a", if_match, if_none_match)
    assert deleted.fallback == ("EVAL", storage.DELETE_IF.source, 1, "kv:r:/a", if_match,
                                if_none_match)  # fmt: skip


def test_failed_preconditions_are_412() -> None:
    headers = {**JSON_HEADERS, "if-match": "*"}
    write = call_of(dispatch(request("PUT", "/a", b"{}", headers=headers), SETTINGS))
    refused = finish(write, [-1, 0])
    assert error_of(refused) == (412, "precondition_failed")
    assert json.loads(refused.body)["message"] == (
        "the resource at /a does not meet the preconditions"
    )
    delete = call_of(dispatch(request("DELETE", "/a", headers=headers), SETTINGS))
    assert error_of(finish(delete, -1)) == (412, "precondition_failed")
    assert json.loads(finish(delete, -1).body)["message"] == (
        "the resource at /a does not meet the preconditions"
    )
    assert error_of(finish(delete, 0)) == (404, "not_found")
    assert finish(delete, 1).status == 204


def test_accepted_writes_answer_with_their_tag_if_the_answer_fails() -> None:
    write = put("/a", b"{}")
    assert write.accepted is not None
    assert (write.accepted.status, write.accepted.content_type) == (204, None)
    stored = write.command[2]
    assert write.accepted.headers == {"ETag": f'"{hashlib.sha1(stored).hexdigest()}"'}
    if_match = {**JSON_HEADERS, "if-match": "*"}
    conditional = call_of(dispatch(request("PUT", "/a", b"{}", b"ttl=5", if_match), SETTINGS))
    expires_at_ms, document = conditional.command[5], conditional.command[4]
    assert conditional.accepted is not None
    assert (conditional.accepted.status, conditional.accepted.content_type) == (204, None)
    tag = hashlib.sha1(b"%d %s" % (expires_at_ms, document)).hexdigest()
    assert conditional.accepted.headers == {"ETag": f'"{tag}"'}
    # With ?ttl=keep the tag depends on the expiry Redis keeps: none is promised.
    kept = put("/a", b"{}", b"ttl=keep")
    assert kept.accepted is not None and kept.accepted.headers == {}
    delete = call_of(dispatch(request("DELETE", "/a"), SETTINGS))
    assert delete.accepted is not None
    assert (delete.accepted.status, delete.accepted.body, delete.accepted.content_type) == (
        204, b"", None,
    )  # fmt: skip


def test_ttl_keep_asks_the_script_to_keep_the_expiry(clock: int) -> None:
    settings = Settings(ttl_default_seconds=77)
    call = put("/a", b"{}", b"ttl=keep", settings)
    # The default goes along for a new resource; the script answers the expiry it kept.
    assert call.command[5:] == (clock + 77_000, "1", "", "", clock)
    kept = answered(finish(call, [1, clock + 1_234_000]))
    assert kept.status == 200
    assert kept.body.endswith(b',"ttl":1234}')
    stored = b"%d %s" % (clock + 1_234_000, call.command[4])
    assert kept.headers == {"ETag": f'"{hashlib.sha1(stored).hexdigest()}"'}


@pytest.mark.parametrize("query", [b"ttl=KEEP", b"ttl=keep&ttl=keep", b"ttl=keep&ttl=5"])
def test_only_one_lower_case_keep_keeps(query: bytes) -> None:
    response = answered(dispatch(request("PUT", "/a", b"{}", query, JSON_HEADERS), SETTINGS))
    assert error_of(response) == (400, "invalid_ttl")


def test_overloaded_and_storage_full_answers(caplog: pytest.LogCaptureFixture) -> None:
    busy = service.overloaded(ConnectionError("pool"))
    assert error_of(busy) == (503, "overloaded")
    assert busy.headers == {"Retry-After": "1"}
    assert json.loads(busy.body)["message"] == "the service is busy; try again shortly"
    full = service.storage_full(Exception("OOM"))
    assert error_of(full) == (507, "storage_full")
    assert full.headers == {}
    assert json.loads(full.body)["message"] == "there is no room to store this; nothing was changed"


def test_conditional_delete_accepted_is_204_and_a_plain_one_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delete = call_of(dispatch(request("DELETE", "/a", headers={"if-match": "*"}), SETTINGS))
    assert delete.accepted is not None
    assert (delete.accepted.status, delete.accepted.content_type) == (204, None)
    with caplog.at_level(logging.DEBUG):
        assert finish(delete, 1).status == 204
        plain = call_of(dispatch(request("DELETE", "/a"), SETTINGS))
        assert finish(plain, 1).status == 204
    assert caplog.records == []


def test_tags_of_forty_other_characters_are_dropped() -> None:
    headers = {**JSON_HEADERS, "if-match": f'"{"X" * 40}", "{"g" * 40}"'}
    call = call_of(dispatch(request("PUT", "/a", b"{}", headers=headers), SETTINGS))
    assert call.command[-3:-1] == (",,", "")


def test_a_write_whose_answer_fails_is_answered_accepted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    write = put("/a", b"{}", b"ttl=keep")
    with caplog.at_level(logging.ERROR):
        answer = finish(write, None)  # a reply the answer cannot unpack
    assert answer is write.accepted
    assert [r.getMessage() for r in caplog.records] == [
        "Redis accepted the write; answering without the document"
    ]
    assert caplog.records[0].exc_info is not None


def test_overload_and_full_storage_are_logged_with_the_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_warn_overloaded", ThrottledWarning(service.log, 10.0))
    monkeypatch.setattr(service, "_warn_storage_full", ThrottledWarning(service.log, 10.0))
    with caplog.at_level(logging.WARNING):
        service.overloaded(ConnectionError("pool of 1"))
        service.storage_full(Exception("OOM command not allowed"))
    assert [r.getMessage() for r in caplog.records] == [
        "every Redis connection of this process is busy: pool of 1",
        "Redis is out of memory and refuses writes: OOM command not allowed",
    ]


@pytest.mark.parametrize(("status", "fallback"), [(399, 399), (400, 500), (201, 201)])
def test_safe_response_falls_back_to_a_bare_answer(
    caplog: pytest.LogCaptureFixture, status: int, fallback: int
) -> None:
    built: list[Response] = []

    def build(response: Response) -> Response:
        if not built:
            built.append(response)
            raise ValueError("cannot build")
        return response

    with caplog.at_level(logging.ERROR):
        answer = service.safe_response(Response(status, b"{}"), build)
    assert answer.status == fallback
    if fallback < 400:
        assert (answer.body, answer.content_type, answer.headers) == (b"", None, {})
    else:
        assert error_of(answer) == (500, "internal")
        assert json.loads(answer.body)["message"] == "internal error"
    assert [r.getMessage() for r in caplog.records] == ["could not build the answer"]


def test_the_asterisk_target_is_for_options_alone() -> None:
    refused = answered(dispatch(request("PUT", b"*", b"{}", headers=JSON_HEADERS), SETTINGS))
    assert error_of(refused) == (400, "bad_request")
    assert json.loads(refused.body)["message"] == "the request target * is for OPTIONS only"
    # OPTIONS * names the server, "/": the counter's methods are the ones offered.
    options = answered(dispatch(request("OPTIONS", b"*"), SETTINGS))
    assert error_of(options) == (405, "method_not_allowed")
    assert options.headers == {"Allow": "GET, HEAD"}


@pytest.mark.parametrize(
    ("method", "headers", "said"),
    [("DELETE", {}, service.UNCONFIRMED_DELETE),
     ("DELETE", {"if-match": '"abc"'}, service.UNCONFIRMED_DELETE),
     ("DELETE", {"if-none-match": "*"}, service.UNCONFIRMED_DELETE),
     ("GET", {}, None)],
)  # fmt: skip
def test_what_a_change_without_a_reply_tells_the_client(
    method: str, headers: dict[str, str], said: str | None
) -> None:
    """Sent, and no reply came: a change may have run (the text of a 503), a read did nothing."""
    call = call_of(dispatch(request(method, "/gone", headers=headers), SETTINGS))
    assert call.unconfirmed == said


@pytest.mark.parametrize("name", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_malformed_condition_is_refused_by_its_name(name: str, method: str) -> None:
    headers = {**JSON_HEADERS, name.lower(): "unquoted"}
    response = answered(dispatch(request(method, "/a", b"{}", headers=headers), SETTINGS))
    assert error_of(response) == (400, "invalid_precondition")
    assert json.loads(response.body)["message"] == (
        f'{name} must be "*" or a list of quoted entity-tags'
    )
