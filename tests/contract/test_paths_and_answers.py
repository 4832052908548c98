"""Hostile and unusual paths, methods and numbers: every answer is the documented JSON, a stored
write is never answered as a failure, and no two spellings alias one resource."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import RunningFunction

from .conftest import error_of, get_head, put_head, raw_request

BODY = b'{"a": 1}'


def fresh() -> bytes:
    return f"/paths/{uuid.uuid4().hex}".encode()


@pytest.mark.parametrize(
    ("segment", "decoded"),
    [(b"%E2%82%AC", "€"), (b"%E4%B8%AD%E6%96%87", "中文"), (b"%F0%9F%98%80", "😀"),
     (b"a%20b", "a b"), (b"q%3Fx", "q?x"), (b"h%23x", "h#x"), (b"p%25x", "p%x"),
     (b"caf%C3%A9", "café")],
)  # fmt: skip
def test_location_is_the_percent_encoded_path(
    client: httpx.Client, function: RunningFunction, segment: bytes, decoded: str
) -> None:
    base = fresh()
    created = raw_request(function.url, put_head(base + b"/" + segment, BODY), BODY)
    assert created.status == 201, created.body
    assert created.headers["content-type"] == "application/json"
    location = created.headers["location"]
    assert location.isascii() and " " not in location and "?" not in location
    assert "#" not in location
    # The Location names the resource just written: reading it finds the document.
    assert client.get(location).json()["a"] == 1
    assert location == base.decode() + "/" + quote(decoded, safe="")


@pytest.mark.parametrize(
    "segment",
    [b"%ff", b"%c0%af", b"%ed%a0%80", b"a%00b", b"%1b%5b31m", b"%7f", b"%c2%85",
     b".", b"..", b"%2e%2e", b"a%2F..%2Fb"],
)  # fmt: skip
@pytest.mark.parametrize("method", [b"PUT", b"GET", b"DELETE"])
def test_unnameable_paths_are_refused_before_redis(
    function: RunningFunction, segment: bytes, method: bytes
) -> None:
    target = fresh() + b"/" + segment + b"/x"
    if method == b"PUT":
        answer = raw_request(function.url, put_head(target, BODY), BODY)
    else:
        answer = raw_request(function.url, get_head(target, method))
    assert answer.status == 400, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "invalid_path"


def test_undecodable_escapes_do_not_alias(function: RunningFunction) -> None:
    base = fresh()
    raw_request(function.url, put_head(base + b"/%ff", BODY), BODY)
    answer = raw_request(function.url, get_head(base + b"/%fe"))
    assert answer.status == 400
    # Nothing was stored under the replacement character either.
    assert raw_request(function.url, get_head(base + b"/%EF%BF%BD")).status == 404


def test_invalid_paths_store_nothing(function: RunningFunction, redis_client: object) -> None:
    import redis

    assert isinstance(redis_client, redis.Redis)
    base = fresh()
    for segment in (b"%00", b"%1b", b"%ff", b".."):
        raw_request(function.url, put_head(base + b"/" + segment, BODY), BODY)
    assert redis_client.keys(f"*{base.decode()}*") == []


def test_path_limit_applies_after_normalisation(client: httpx.Client) -> None:
    base = f"/paths/{uuid.uuid4().hex}"
    padded = base + "/" * 1100 + "x"  # over 1024 bytes as sent, short once slashes collapse
    assert client.put(padded, json={"a": 1}).status_code == 201
    assert client.get(base + "/x").json()["a"] == 1


@pytest.mark.parametrize(
    "method", [b"TRACE", b"CONNECT", b"PROPFIND", b"PATCH", b"POST", b"OPTIONS", b"MKCOL"]
)
@pytest.mark.parametrize(
    ("target", "allow"),
    [(b"/x/y", "GET, HEAD, PUT, DELETE"), (b"/", "GET, HEAD"), (b"/health/liveness", "GET, HEAD")],
)
def test_every_other_method_is_a_json_405_with_a_true_allow(
    function: RunningFunction, method: bytes, target: bytes, allow: str
) -> None:
    answer = raw_request(function.url, get_head(target, method))
    assert answer.status == 405, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "method_not_allowed"
    assert answer.headers["allow"] == allow
    for listed in allow.split(", "):  # what Allow lists is itself allowed
        probe = raw_request(function.url, get_head(target, listed.encode()))
        assert probe.status != 405


@pytest.mark.parametrize("target", [b"/robots.txt", b"/favicon.ico", b"/robots.txt/"])
@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"PUT", b"DELETE"])
def test_framework_paths_answer_json_404(
    function: RunningFunction, target: bytes, method: bytes
) -> None:
    if method == b"PUT":
        answer = raw_request(function.url, put_head(target, BODY), BODY)
    else:
        answer = raw_request(function.url, get_head(target, method))
    assert answer.status == 404
    assert answer.headers["content-type"] == "application/json"
    if method != b"HEAD":
        assert answer.json()["error"] == "not_found"


def test_an_integer_of_4300_digits_round_trips(client: httpx.Client, path: str) -> None:
    digits = "9" * 4300
    body = b'{"n": ' + digits.encode() + b', "m": -' + digits.encode() + b"}"
    put = client.put(path, content=body, headers={"Content-Type": "application/json"})
    assert put.status_code == 201
    got = client.get(path).content
    assert b'"n":' + digits.encode() in got and b'"m":-' + digits.encode() in got


@pytest.mark.parametrize("sign", ["", "-"])
def test_a_longer_integer_is_refused_clearly(client: httpx.Client, path: str, sign: str) -> None:
    body = b'{"n": ' + (sign + "1" * 4301).encode() + b"}"
    response = client.put(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response) == "invalid_number"
    assert "4300 digits" in response.json()["message"]
    assert "sys." not in response.text and "set_int_max_str_digits" not in response.text
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("content_type", ["application/+json", "application/json+", "+json"])
def test_malformed_json_media_types_are_a_415(
    client: httpx.Client, path: str, content_type: str
) -> None:
    response = client.put(path, content=BODY, headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert error_of(response) == "unsupported_media_type"
