"""WRITE_TOKEN and READ_TOKEN in-process: which requests need which token, and the 401/403 answers.

``dispatch`` answers a refused request itself; a request let through becomes a Redis call (not
run here). tests/access/test_tokens.py checks the same over real HTTP on both entry points.
"""

from __future__ import annotations

import json

import pytest

from function import access
from function.messages import RedisCall, Request, Response
from function.service import dispatch
from function.settings import Settings

WRITE = "write-token-0123456789"
READ = "read-token-0123456789"
BOTH = Settings(write_token=WRITE, read_token=READ)


def _outcome(
    method: str, path: str, authorization: str | None, settings: Settings = BOTH
) -> Response | RedisCall:
    headers = {"content-type": "application/json", "content-length": "2"}
    if authorization is not None:
        headers["authorization"] = authorization
    body = b"{}" if method == "PUT" else b""
    return dispatch(Request(method, path.encode(), b"", headers, body), settings)


def _refused(outcome: Response | RedisCall) -> tuple[int, str, str]:
    assert isinstance(outcome, Response), outcome
    document = json.loads(outcome.body)
    assert set(document) == {"error", "message"}
    assert WRITE not in document["message"] and READ not in document["message"]
    return outcome.status, document["error"], document["message"]


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [("PUT", "/a", "write"), ("DELETE", "/a", "write"), ("GET", "/a", "read"),
     ("HEAD", "/a", "read"), ("GET", "/", "read"), ("HEAD", "/", "read")],
)  # fmt: skip
def test_a_request_without_its_token_is_401_naming_the_token(
    method: str, path: str, kind: str
) -> None:
    outcome = _outcome(method, path, None)
    message = f"{method} needs the {kind} token: send Authorization: Bearer <token>"
    assert _refused(outcome) == (401, "unauthorized", message)
    assert isinstance(outcome, Response)
    assert outcome.headers["WWW-Authenticate"] == 'Bearer realm="kv-store"'


@pytest.mark.parametrize(
    ("method", "path", "token"),
    [("PUT", "/a", WRITE), ("DELETE", "/a", WRITE), ("GET", "/a", READ), ("HEAD", "/a", READ),
     ("GET", "/", READ)],
)  # fmt: skip
def test_the_right_token_lets_the_request_through(method: str, path: str, token: str) -> None:
    assert isinstance(_outcome(method, path, f"Bearer {token}"), RedisCall)


@pytest.mark.parametrize(
    ("method", "token"), [("PUT", READ), ("DELETE", READ), ("GET", WRITE), ("GET", WRITE[:-1])]
)
def test_another_token_is_403(method: str, token: str) -> None:
    outcome = _outcome(method, "/a", f"Bearer {token}")
    assert _refused(outcome) == (403, "forbidden", f"the token sent does not allow {method}")


@pytest.mark.parametrize(
    "authorization",
    [f"bearer {WRITE}", f"BEARER {WRITE}", f"  Bearer {WRITE}  ", f"Bearer   {WRITE}"],
)
def test_the_scheme_is_case_insensitive_and_spaces_are_ignored(authorization: str) -> None:
    assert isinstance(_outcome("PUT", "/a", authorization), RedisCall)


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Bearer ", "Bearer    ", f"Basic {WRITE}", f"{WRITE}"]
)
def test_no_bearer_credentials_is_401(authorization: str) -> None:
    assert _refused(_outcome("PUT", "/a", authorization))[0] == 401


@pytest.mark.parametrize(
    ("settings", "method", "path"),
    [(Settings(write_token=WRITE), "GET", "/a"), (Settings(write_token=WRITE), "GET", "/"),
     (Settings(read_token=READ), "PUT", "/a"), (Settings(read_token=READ), "DELETE", "/a"),
     (Settings(), "PUT", "/a"), (Settings(), "GET", "/a")],
)  # fmt: skip
def test_a_method_without_a_token_configured_needs_none(
    settings: Settings, method: str, path: str
) -> None:
    assert isinstance(_outcome(method, path, None, settings), RedisCall)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/health/liveness", "/health/readiness"])
def test_health_paths_never_need_a_token(method: str, path: str) -> None:
    outcome = _outcome(method, path, None)
    assert isinstance(outcome, Response) and outcome.status == 200


def test_a_method_no_token_guards_is_refused_for_what_it_is() -> None:
    # POST needs no token: it is answered 405 whatever the tokens, never 401.
    assert _refused(_outcome("POST", "/a", None))[:2] == (405, "method_not_allowed")


@pytest.mark.parametrize("method", ["POST", "OPTIONS", "PATCH"])
def test_methods_neither_reading_nor_writing_need_no_token(method: str) -> None:
    assert access.required_token(method, BOTH) == ""
    access.authorize(method, None, BOTH)  # raises nothing
