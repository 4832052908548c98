"""Write protection: WRITE_TOKEN guards PUT and DELETE, READ_TOKEN guards reads; health paths stay
open; tokens are compared in constant time and appear in no answer and no log line."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from function import access
from function.settings import ConfigError, Settings
from tests.conftest import RunningFunction
from tests.contract.conftest import error_of

WRITE_TOKEN = "w-" + secrets.token_urlsafe(24)
READ_TOKEN = "r-" + secrets.token_urlsafe(24)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    if response.request.method != "HEAD":
        assert error_of(response) == "unauthorized"


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    if response.request.method != "HEAD":
        assert error_of(response) == "forbidden"


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_write_token_guards_put_and_delete_only(start_function: Any, entry_point: str) -> None:
    running: RunningFunction = start_function(entry_point, env={"WRITE_TOKEN": WRITE_TOKEN})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        path = f"/guarded/{secrets.token_hex(8)}"
        assert_unauthorized(http.put(path, json={"a": 1}))
        assert_unauthorized(http.put(path, json={"a": 1}, headers={"Authorization": "Basic eDp5"}))
        assert_forbidden(http.put(path, json={"a": 1}, headers=bearer(WRITE_TOKEN[:-1])))
        assert_forbidden(http.put(path, json={"a": 1}, headers=bearer(READ_TOKEN)))
        assert http.get(path).status_code == 404  # nothing was written by the refused PUTs

        assert http.put(path, json={"a": 1}, headers=bearer(WRITE_TOKEN)).status_code == 201
        # The scheme is case-insensitive (RFC 7235).
        lower = {"Authorization": f"bearer {WRITE_TOKEN}"}
        assert http.put(path, json={"a": 2}, headers=lower).status_code == 200
        assert http.get(path).json()["a"] == 2  # reads stay open without READ_TOKEN
        assert http.get("/").status_code == 200

        assert_unauthorized(http.delete(path))
        assert_forbidden(http.delete(path, headers=bearer("x" * 40)))
        assert http.get(path).status_code == 200
        assert http.delete(path, headers=bearer(WRITE_TOKEN)).status_code == 204
        assert http.get("/health/readiness").status_code == 200
    log = running.log()
    assert WRITE_TOKEN not in log and WRITE_TOKEN[:-1] not in log


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_read_token_guards_reads_and_the_counter(start_function: Any, entry_point: str) -> None:
    env = {"WRITE_TOKEN": WRITE_TOKEN, "READ_TOKEN": READ_TOKEN}
    running: RunningFunction = start_function(entry_point, env=env)
    with httpx.Client(base_url=running.url, timeout=10) as http:
        path = f"/guarded/{secrets.token_hex(8)}"
        assert http.put(path, json={"a": 1}, headers=bearer(WRITE_TOKEN)).status_code == 201
        for method in ("GET", "HEAD"):
            assert_unauthorized(http.request(method, path))
            assert_forbidden(http.request(method, path, headers=bearer(WRITE_TOKEN)))
            assert_unauthorized(http.request(method, "/"))
            assert_forbidden(http.request(method, "/", headers=bearer(READ_TOKEN + "x")))
        assert http.get(path, headers=bearer(READ_TOKEN)).json()["a"] == 1
        assert http.head(path, headers=bearer(READ_TOKEN)).status_code == 200
        assert http.get("/", headers=bearer(READ_TOKEN)).status_code == 200
        # The read token does not allow writes.
        assert_forbidden(http.put(path, json={"a": 2}, headers=bearer(READ_TOKEN)))
        # Probes carry no token: an orchestrator must always be able to ask.
        for health in ("/health/liveness", "/health/readiness"):
            assert http.get(health).status_code == 200
        # A method that is not allowed is 405 before any token question.
        assert http.post(path, json={}).status_code == 405
    log = running.log()
    assert WRITE_TOKEN not in log and READ_TOKEN not in log


def test_tokens_are_checked_when_configured_and_never_shown() -> None:
    settings = Settings(write_token=WRITE_TOKEN, read_token=READ_TOKEN)
    assert WRITE_TOKEN not in repr(settings) and READ_TOKEN not in repr(settings)
    for bad in ("short", "has space in it, long enough", "ümlaut-is-not-a-b64-token"):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env({"WRITE_TOKEN": bad})
        assert bad not in str(raised.value)
    with pytest.raises(access.Forbidden) as refused:
        access.authorize("PUT", "Bearer " + "y" * 30, settings)
    assert WRITE_TOKEN not in refused.value.message
    assert access.bearer_token("Bearer   abc  ") == "abc"
    assert access.bearer_token("Bearer") is None
    assert access.required_token("POST", settings) == ""
