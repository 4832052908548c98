"""Bad input is answered with a JSON error and the right status, and never stores anything."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .conftest import error_of

MIB = 1024 * 1024
JSON_HEADERS = {"Content-Type": "application/json"}


def assert_rejected(
    client: httpx.Client, path: str, response: httpx.Response, status: int, code: str
) -> None:
    assert response.status_code == status, response.text
    assert error_of(response) == code
    assert client.get(path).status_code == 404, "a rejected PUT stored something"


@pytest.mark.parametrize(
    "body",
    [b"{", b"{'a': 1}", b'{"a": 1,}', b"", b"   ", b'{"a": NaN}', b'{"a": Infinity}',
     b'{"a": 1e400}', b'{"a": 1} trailing', b'\xff\xfe{"a": 1}', b'{"a": "\xc3\x28"}'],
)  # fmt: skip
def test_invalid_json_is_a_400(client: httpx.Client, path: str, body: bytes) -> None:
    response = client.put(path, content=body, headers=JSON_HEADERS)
    assert_rejected(client, path, response, 400, "invalid_json")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_a_body_that_is_not_an_object_is_a_400(
    client: httpx.Client, path: str, body: bytes
) -> None:
    response = client.put(path, content=body, headers=JSON_HEADERS)
    assert_rejected(client, path, response, 400, "not_an_object")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/xml",
     "application/json; charset=latin-1"],
)  # fmt: skip
def test_a_body_that_is_not_json_is_a_415(
    client: httpx.Client, path: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.put(path, content=b'{"a": 1}', headers=headers)
    assert_rejected(client, path, response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=UTF-8", "application/merge-patch+json"]
)
def test_json_media_types_are_accepted(client: httpx.Client, path: str, content_type: str) -> None:
    response = client.put(path, content=b'{"a": 1}', headers={"Content-Type": content_type})
    assert response.status_code == 201


def _oversized_document() -> bytes:
    return b'{"blob": "' + b"x" * MIB + b'"}'


def test_a_body_over_the_limit_is_a_413(client: httpx.Client, path: str) -> None:
    response = client.put(path, content=_oversized_document(), headers=JSON_HEADERS)
    assert_rejected(client, path, response, 413, "payload_too_large")


def test_a_chunked_body_over_the_limit_is_a_413(client: httpx.Client, path: str) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        document = _oversized_document()
        for start in range(0, len(document), 64 * 1024):
            yield document[start : start + 64 * 1024]

    response = client.put(path, content=chunks(), headers=JSON_HEADERS)
    assert_rejected(client, path, response, 413, "payload_too_large")


def test_a_body_of_exactly_the_limit_is_stored(client: httpx.Client, path: str) -> None:
    body = b'{"blob": "' + b"x" * (MIB - 12) + b'"}'
    assert len(body) == MIB
    assert client.put(path, content=body, headers=JSON_HEADERS).status_code == 201
    assert len(client.get(path).json()["blob"]) == MIB - 12


def test_a_path_over_the_limit_is_a_414(client: httpx.Client, path: str) -> None:
    long_path = f"{path}/{'p' * 1100}"
    response = client.put(long_path, json={"a": 1})
    assert response.status_code == 414
    assert error_of(response) == "uri_too_long"
    assert client.get(long_path).status_code == 414


@pytest.mark.parametrize("depth", [33, 100, 200_000])
def test_nesting_deeper_than_the_limit_is_a_400(
    client: httpx.Client, path: str, depth: int
) -> None:
    # depth 1 is the object itself; each list adds one level
    body = b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    response = client.put(path, content=body, headers=JSON_HEADERS)
    assert_rejected(client, path, response, 400, "too_deep")


def test_nesting_at_the_limit_is_stored(client: httpx.Client, path: str) -> None:
    body = b'{"a": ' + b"[" * 31 + b"]" * 31 + b"}"
    assert client.put(path, content=body, headers=JSON_HEADERS).status_code == 201


@pytest.mark.parametrize("field", ["ttl", "last_updated"])
def test_fields_the_service_sets_are_ignored(client: httpx.Client, path: str, field: str) -> None:
    # Output-only fields (AIP-203): a document read with GET can be sent back as it is.
    response = client.put(path, json={field: 5, "a": 1})
    assert response.status_code == 201
    stored = client.get(path).json()
    assert stored["a"] == 1
    assert stored["ttl"] > 5 if field == "ttl" else stored["last_updated"] > 5


def test_a_rejected_replacement_keeps_the_stored_document(client: httpx.Client, path: str) -> None:
    client.put(path, json={"kept": True})
    for body, headers in ((b"{", JSON_HEADERS), (b'{"a": 1}', {"Content-Type": "text/plain"})):
        assert client.put(path, content=body, headers=headers).status_code >= 400
    assert client.put(path, params={"ttl": "0"}, json={"kept": False}).status_code == 400
    assert client.get(path).json()["kept"] is True
