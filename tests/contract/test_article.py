"""The article's own session, and its hit counter."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import RunningFunction

ONE_YEAR = 31_536_000


def count(client: httpx.Client) -> int:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    return int(response.json()["count"])


def test_the_articles_curl_session(client: httpx.Client, function: RunningFunction) -> None:
    before = time.time()
    put = client.put(
        "/testurl", content=b'{"hello":999}', headers={"Content-Type": "application/json"}
    )
    assert put.status_code in (200, 201)  # 201 the first time, 200 when the session runs again
    stored = put.json()
    assert stored["hello"] == 999
    assert before - 1 <= stored["last_updated"] <= time.time() + 1
    assert stored["ttl"] == ONE_YEAR

    got = client.get("/testurl")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    body = got.json()
    assert body["hello"] == 999  # a number, as it was sent
    assert body["last_updated"] == stored["last_updated"]
    assert ONE_YEAR - 5 <= body["ttl"] <= ONE_YEAR

    first = client.get("/")
    second = client.get("/")
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"].startswith("text/plain")
    match_first = re.fullmatch(r"Count is (\d+)\.", first.text)
    match_second = re.fullmatch(r"Count is (\d+)\.", second.text)
    assert match_first and match_second
    assert int(match_second[1]) == int(match_first[1]) + 1


def test_count_as_json_when_asked(client: httpx.Client) -> None:
    first = count(client)
    response = client.get("/", headers={"Accept": "text/html;q=0.5, application/json"})
    assert response.json() == {"count": first + 1}
    plain = client.get("/", headers={"Accept": "*/*"})
    assert plain.text == f"Count is {first + 2}."


def test_head_reports_the_count_without_adding_a_hit(client: httpx.Client) -> None:
    first = count(client)
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert count(client) == first + 1


def test_counter_cannot_be_overwritten_by_a_resource(client: httpx.Client) -> None:
    # In the article, PUT /count turned the counter into a hash and broke GET /.
    for path in ("/count", "/kv:count", "/kv:r:/count", "/r:/count"):
        response = client.put(path, json={"not": "the counter"})
        assert response.status_code in (200, 201)
    first = count(client)
    assert count(client) == first + 1
    assert client.get("/count").json()["not"] == "the counter"


def test_other_methods_on_the_counter(client: httpx.Client) -> None:
    for method in ("PUT", "DELETE", "POST", "PATCH"):
        response = client.request(method, "/", json={"a": 1})
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
