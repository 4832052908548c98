"""Cases the fuzzer found, kept as plain tests."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import RunningFunction


def test_creating_a_resource_whose_path_is_not_latin_1(function: RunningFunction) -> None:
    # The Location header was the raw path: outside Latin-1 the ASGI server could not send it
    # and answered 500 after the document had been stored.
    with httpx.Client(base_url=function.url, timeout=10) as http:
        path = f"/日本/{uuid.uuid4().hex}"
        created = http.put(path, json={"a": 1})
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        assert location.isascii() and "%E6%97%A5%E6%9C%AC" in location
        assert http.get(location).json()["a"] == 1
        assert http.put(path, json={"a": 2}).status_code == 200
