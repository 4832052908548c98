"""A header field that carries one value, sent twice (RFC 9110 §5.3): which one counts is not
known, so both entry points refuse the request alike, whatever the two values are."""

from __future__ import annotations

import pytest
import redis

from tests.conftest import FUNCTION_URL, RunningFunction, skip_for_mode

from .conftest import auth_headers, put_head, raw_request

BODY = b'{"a": 1}'
TYPES = [b"application/json", b"text/plain", b"application/json; charset=utf-8", b""]


def _refused_as_repeated(function: RunningFunction, head: bytes, name: str) -> None:
    answer = raw_request(function.url, head, BODY)
    assert answer.status == 400, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": "bad_request",
        "message": f"the {name} header field must be sent once",
    }


@pytest.mark.parametrize("first", TYPES)
@pytest.mark.parametrize("second", TYPES)
def test_a_repeated_content_type_is_refused(
    function: RunningFunction, redis_client: redis.Redis, first: bytes, second: bytes
) -> None:
    target = b"/repeated/%d-%d" % (TYPES.index(first), TYPES.index(second))
    head = put_head(target, BODY, b"Content-Type: " + second + b"\r\n")
    _refused_as_repeated(function, head.replace(b"application/json", first, 1), "Content-Type")
    assert redis_client.get(b"kv:r:" + target) is None


def test_a_repeated_host_is_refused(function: RunningFunction) -> None:
    head = put_head(b"/repeated/host", BODY, b"Host: test\r\n")
    if FUNCTION_URL:
        # The server in front (an ingress, or func's own uvicorn) may refuse it first, its way.
        answer = raw_request(function.url, head, BODY)
        assert answer.status == 400, answer.body
        if answer.headers.get("content-type") == "application/json":
            assert answer.json()["error"] == "bad_request"
        return
    _refused_as_repeated(function, head, "Host")


def test_a_repeated_authorization_is_refused(function: RunningFunction) -> None:
    if FUNCTION_URL:
        skip_for_mode(f"a proxy may answer a repeated Authorization first; {FUNCTION_URL}")
    token = auth_headers().get("Authorization", "Bearer x").encode()
    extra = b"Authorization: " + token + b"\r\n"
    head = put_head(b"/repeated/auth", BODY, extra + (b"" if auth_headers() else extra))
    _refused_as_repeated(function, head, "Authorization")
