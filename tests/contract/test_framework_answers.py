"""Requests the servers' routers once answered themselves, in HTML or with another status: every
one now gets the function's own JSON answer, the same in every mode."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import RunningFunction, skip_for_mode

from .conftest import error_of, get_head, put_head, raw_request


@pytest.mark.parametrize("target", [b"/a%0Ab", b"/a%0Db", b"/%7F"])
def test_a_control_character_is_an_invalid_path(function: RunningFunction, target: bytes) -> None:
    answer = raw_request(function.url, get_head(target))
    assert answer.status == 400, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "invalid_path"


@pytest.mark.parametrize(
    "extra",
    [b"Host: " + b"a" * 200 + b".example\r\n",
     b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"],
)  # fmt: skip
def test_odd_hosts_and_upgrades_get_json(function: RunningFunction, extra: bytes) -> None:
    if function.process is None:
        skip_for_mode(f"the routers functions-framework sets up; {function.url} is another")
    head = get_head(f"/odd/{uuid.uuid4().hex}".encode()).replace(b"Host: test\r\n", b"")
    head = head[:-2] + extra + (b"" if b"Host:" in extra else b"Host: test\r\n") + b"\r\n"
    try:
        answer = raw_request(function.url, head)
    except (ConnectionError, OSError):
        return  # an upgrade the server will not make may be closed unanswered
    assert answer.headers["content-type"] == "application/json", answer.body
    assert answer.status == 404 and answer.json()["error"] == "not_found"


def test_the_asterisk_target_is_for_options_alone(function: RunningFunction) -> None:
    """RFC 9112 §3.2.4: ``PUT *`` is not a valid request (400 in every mode); ``OPTIONS *``
    names the server, ``/``, which does not serve OPTIONS (405)."""
    if function.process is None:
        skip_for_mode(
            f"request targets the function's own servers parse; {function.url} is another"
        )
    answer = raw_request(function.url, put_head(b"*", b"{}"), b"{}")
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == "bad_request"
    options = raw_request(function.url, get_head(b"*", b"OPTIONS"))
    assert options.status == 405, options.body
    assert options.json()["error"] == "method_not_allowed"


def test_an_answer_without_a_body_has_no_content_type(client: httpx.Client) -> None:
    path = f"/nobody/{uuid.uuid4().hex}"
    client.put(path, json={"a": 1})
    deleted = client.delete(path)
    assert deleted.status_code == 204
    assert "content-type" not in deleted.headers


def test_repeated_slashes_are_served_not_redirected(
    function: RunningFunction, client: httpx.Client
) -> None:
    base = uuid.uuid4().hex
    assert client.put(f"/{base}/a/b", json={"a": 1}).status_code == 201
    answer = raw_request(function.url, get_head(f"//{base}//a//b".encode()))
    assert answer.status == 200, answer.body
    assert answer.json()["a"] == 1


def test_a_body_declared_far_over_the_limit_is_refused_unread(function: RunningFunction) -> None:
    """Refused from its Content-Length alone, the connection closing: nothing of it is read or
    held (the framework once read all 300 MB into memory first)."""
    if function.process is None:
        skip_for_mode(f"how the function's own servers read a body; {function.url} is another")
    head = put_head(b"/huge", b"").replace(b"Content-Length: 0", b"Content-Length: 300000000")
    answer = raw_request(function.url, head, b"{" * 1000)
    assert answer.status == 413
    assert answer.json()["error"] == "payload_too_large"
    assert answer.headers["connection"] == "close"
    assert error_of(httpx.get(f"{function.url}/huge")) == "not_found"
