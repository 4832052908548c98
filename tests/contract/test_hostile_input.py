"""Hostile paths and numbers: each refused with its JSON error, never stored under a second name,
never a 500, never echoed whole."""

from __future__ import annotations

import unicodedata
import uuid

import httpx
import pytest

from tests.conftest import RunningFunction

from .conftest import error_of, get_head, put_head, raw_request

BODY = b'{"a": 1}'


@pytest.mark.parametrize(
    "escape", [b"%zz", b"%", b"%2", b"%g1", b"100%", b"%%41", b"a%2-b", b"%+1", b"%-1"]
)
def test_a_malformed_percent_escape_is_an_invalid_path(
    function: RunningFunction, client: httpx.Client, escape: bytes
) -> None:
    target = f"/bad/{uuid.uuid4().hex}/".encode() + escape
    put = raw_request(function.url, put_head(target, BODY), BODY)
    read = raw_request(function.url, get_head(target))
    assert put.status == read.status == 400, put.body
    # A proxy in front written in Go (Knative's, Traefik) refuses such a target itself, with a
    # plain-text 400, before the function sees it; the function's own servers answer JSON.
    if function.process is not None or put.headers["content-type"] == "application/json":
        assert put.json()["error"] == read.json()["error"] == "invalid_path"
    # Nothing was stored under the literal text either, which %25 spells.
    literal = target.replace(b"%", b"%25")
    assert raw_request(function.url, get_head(literal)).status == 404


def test_a_percent_sign_is_named_only_by_its_escape(client: httpx.Client) -> None:
    base = f"/pct/{uuid.uuid4().hex}"
    assert client.put(f"{base}/100%25", json={"a": 1}).status_code == 201
    assert client.get(f"{base}/100%25").json()["a"] == 1


@pytest.mark.parametrize(
    "ttl", ["9" * 4301, "1" + "0" * 30, "9" * 19, "0" * 4301 + "400000000"]
)  # fmt: skip
def test_a_ttl_of_many_digits_is_an_invalid_ttl(client: httpx.Client, ttl: str) -> None:
    path = f"/ttl/{uuid.uuid4().hex}"
    answer = client.put(path, params={"ttl": ttl}, json={"a": 1})
    assert answer.status_code == 400, answer.text
    assert error_of(answer) == "invalid_ttl"
    assert client.get(path).status_code == 404


def test_leading_zeros_of_a_ttl_are_its_value(client: httpx.Client) -> None:
    path = f"/ttl/{uuid.uuid4().hex}"
    answer = client.put(path, params={"ttl": "0" * 4301 + "60"}, json={"a": 1})
    assert (answer.status_code, answer.json()["ttl"]) == (201, 60)


@pytest.mark.parametrize(
    "body",
    [b'{"a": ' + b"9" * 1_000_000 + b".5e9}", b'{"a": 1e' + b"9" * 100_000 + b"}",
     b'{"a": ' + b"9" * 1_000_000 + b"}"],
)  # fmt: skip
def test_a_refused_number_is_not_echoed_whole(client: httpx.Client, body: bytes) -> None:
    path = f"/num/{uuid.uuid4().hex}"
    answer = client.put(
        path, content=body, headers={"Content-Type": "application/json"}, params={"ttl": "60"}
    )
    assert answer.status_code in (400, 413), answer.text[:200]
    assert error_of(answer) in ("invalid_json", "invalid_number", "payload_too_large")
    assert len(answer.content) < 300
    assert client.get(path).status_code == 404


def test_a_long_content_type_is_not_echoed_whole(client: httpx.Client) -> None:
    answer = client.put("/ct/long", content=BODY, headers={"Content-Type": "text/" + "x" * 7000})
    assert answer.status_code == 415
    assert len(answer.content) < 300


def test_nfc_and_nfd_spellings_are_two_resources(client: httpx.Client) -> None:
    """Names are compared as the bytes sent: no Unicode normalisation (documented)."""
    base = f"/nf/{uuid.uuid4().hex}/"
    composed = base + unicodedata.normalize("NFC", "café")
    decomposed = base + unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    assert client.put(composed, json={"form": "nfc"}).status_code == 201
    assert client.put(decomposed, json={"form": "nfd"}).status_code == 201
    assert client.get(composed).json()["form"] == "nfc"
    assert client.get(decomposed).json()["form"] == "nfd"
