"""PUT, GET, HEAD and DELETE of resources, their expiry, and the path rules."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import RunningFunction

from .conftest import error_of

DOCUMENTS: list[dict[str, Any]] = [
    {},
    {"int": 7, "negative": -3, "big": 2**70, "float": 1.5, "exp": 1e-7, "zero": 0.0},
    {"yes": True, "no": False, "nothing": None},
    {
        "nested": {"deeper": {"list": [1, "two", [3.0], {"four": None}]}},
        "empty": {"a": [], "b": {}},
    },
    {
        "text": "naïve café ✓ 𝄞",
        "escapes": 'quote " backslash \\ tab \t newline \n',
        "": "empty key",
    },
    {"last_updated_by": "x", "TTL": 1, "records": [{"id": i} for i in range(100)]},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_documents_round_trip_exactly(
    client: httpx.Client, path: str, document: dict[str, Any]
) -> None:
    put = client.put(path, json=document)
    assert put.status_code == 201
    got = client.get(path).json()
    assert isinstance(got.pop("ttl"), int)
    assert isinstance(got.pop("last_updated"), int)
    assert got == document
    # Equality in Python hides 1 == 1.0 == True: the JSON types must match too.
    assert _types(got) == _types(document)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


def test_put_answers_201_then_200_and_replaces_the_whole_document(
    client: httpx.Client, path: str
) -> None:
    created = client.put(path, json={"a": 1, "b": 2})
    assert created.status_code == 201
    assert created.headers["location"] == path
    replaced = client.put(path, json={"c": 3})
    assert replaced.status_code == 200
    body = client.get(path).json()
    assert {key: body[key] for key in body if key not in ("ttl", "last_updated")} == {"c": 3}


def test_get_of_a_missing_resource_is_a_json_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response) == "not_found"


def test_ttl_query_sets_the_expiry(client: httpx.Client, path: str) -> None:
    put = client.put(path, params={"ttl": "3600"}, json={"a": 1})
    assert put.json()["ttl"] == 3600
    assert 3590 <= client.get(path).json()["ttl"] <= 3600


def test_resources_expire(client: httpx.Client, path: str) -> None:
    assert client.put(path, params={"ttl": "1"}, json={"short": "lived"}).status_code == 201
    time.sleep(1.6)
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response) == "not_found"


@pytest.mark.parametrize("ttl", ["abc", "0", "-5", "1.5", "", "315360001", "1e3", "٣"])
def test_bad_ttl_is_a_400_and_stores_nothing(client: httpx.Client, path: str, ttl: str) -> None:
    response = client.put(path, params={"ttl": ttl}, json={"a": 1})
    assert response.status_code == 400
    assert error_of(response) == "invalid_ttl"
    assert client.get(path).status_code == 404


def test_two_ttl_values_are_a_400(client: httpx.Client, path: str) -> None:
    response = client.put(f"{path}?ttl=5&ttl=6", json={"a": 1})
    assert response.status_code == 400
    assert error_of(response) == "invalid_ttl"


def test_default_ttl_is_configurable(start_function: Any) -> None:
    running: RunningFunction = start_function("handle", env={"TTL_DEFAULT_SECONDS": "120"})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        assert http.put("/configured/ttl", json={}).json()["ttl"] == 120


def test_delete(client: httpx.Client, path: str) -> None:
    client.put(path, json={"a": 1})
    deleted = client.delete(path)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get(path).status_code == 404
    again = client.delete(path)
    assert again.status_code == 404
    assert error_of(again) == "not_found"


def test_head(client: httpx.Client, path: str) -> None:
    client.put(path, json={"a": 1})
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == get.headers["content-length"]
    assert client.head(f"{path}/missing").status_code == 404


@pytest.mark.parametrize("method", ["POST", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(client: httpx.Client, path: str, method: str) -> None:
    response = client.request(method, path, json={"a": 1})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, PUT, DELETE"
    assert error_of(response) == "method_not_allowed"
    assert client.get(path).status_code == 404


def test_trailing_and_repeated_slashes_name_the_same_resource(
    client: httpx.Client, path: str
) -> None:
    client.put(f"{path}/a/b", json={"v": 1})
    for alias in (f"{path}/a/b/", f"{path}//a//b"):
        # functions-framework's Flask mode redirects (308) repeated slashes; follow it.
        response = client.get(alias, follow_redirects=True)
        assert response.status_code == 200, alias
        assert response.json()["v"] == 1


def test_percent_encoded_slash_is_a_slash(client: httpx.Client, path: str) -> None:
    client.put(f"{path}/a%2Fb", json={"v": 2})
    assert client.get(f"{path}/a/b").json()["v"] == 2


def test_percent_encoded_unicode_and_spaces(client: httpx.Client, path: str) -> None:
    client.put(f"{path}/caf%C3%A9%20bar", json={"v": 3})
    assert client.get(f"{path}/café bar").json()["v"] == 3


def test_paths_are_case_sensitive(client: httpx.Client, path: str) -> None:
    client.put(f"{path}/Name", json={"v": "upper"})
    assert client.get(f"{path}/name").status_code == 404
    assert client.get(f"{path}/Name").json()["v"] == "upper"


def test_health_paths_answer_without_touching_data(
    client: httpx.Client, function: RunningFunction, redis_client: Any
) -> None:
    keys_before = sorted(redis_client.keys("*"))
    counter_before = redis_client.get("kv:count")
    for probe in ("/health/liveness", "/health/readiness"):
        response = client.get(probe)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        put = client.put(probe, json={"a": 1})
        assert put.status_code == 405
        assert put.headers["allow"] == "GET, HEAD"
    assert sorted(redis_client.keys("*")) == keys_before
    assert redis_client.get("kv:count") == counter_before


@pytest.mark.parametrize("reserved", ["/robots.txt", "/favicon.ico"])
def test_framework_paths_are_never_resources(client: httpx.Client, reserved: str) -> None:
    assert client.put(reserved, json={"a": 1}).status_code == 404
    assert client.get(reserved).status_code == 404
