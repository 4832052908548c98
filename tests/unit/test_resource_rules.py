"""The pure resource rules, without a server: paths, keys, ttl, media types, storage format."""

from __future__ import annotations

import json

import pytest

from function import resources
from function.errors import BadRequest, UnsupportedMediaType, UriTooLong
from function.settings import Settings

SETTINGS = Settings()


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("/a/b", "/a/b"), ("/a/b/", "/a/b"), ("//a///b//", "/a/b"), ("/", "/"), ("//", "/"),
     ("/A/b", "/A/b"), ("/café", "/café")],
)  # fmt: skip
def test_normalize_path(raw: str, canonical: str) -> None:
    assert resources.normalize_path(raw, SETTINGS) == canonical


def test_path_limit_counts_utf8_bytes() -> None:
    settings = Settings(max_path_bytes=10)
    assert resources.normalize_path("/" + "a" * 9, settings) == "/" + "a" * 9
    with pytest.raises(UriTooLong):
        resources.normalize_path("/" + "é" * 5, settings)  # 11 bytes


def test_no_resource_key_is_the_counter_key() -> None:
    counter = resources.counter_key(SETTINGS)
    for path in ("/count", "/" + counter, "/kv:count", "/r:", "/"):
        assert resources.resource_key(SETTINGS, path) != counter
    assert resources.resource_key(SETTINGS, "/a") != resources.resource_key(SETTINGS, "/b")


@pytest.mark.parametrize(("query", "ttl"), [(b"", 31_536_000), (b"ttl=60", 60), (b"x=1&ttl=1", 1)])
def test_parse_ttl(query: bytes, ttl: int) -> None:
    assert resources.parse_ttl(query, SETTINGS) == ttl


@pytest.mark.parametrize("content_type", ["text/json", "application/jsonx", "", "json"])
def test_content_types_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        resources.check_content_type(content_type)


def test_stored_form_renders_with_ttl() -> None:
    stored = resources.encode_stored({"a": [1, {"b": None}]}, 1_700_000_000)
    rendered = json.loads(resources.render_stored(stored, 42))
    assert rendered == {"a": [1, {"b": None}], "last_updated": 1_700_000_000, "ttl": 42}
    empty = json.loads(resources.render_stored(resources.encode_stored({}, 5), 1))
    assert empty == {"last_updated": 5, "ttl": 1}


def test_lone_surrogates_survive_storage() -> None:
    document = resources.parse_document(b'{"s": "\\ud800"}', SETTINGS)
    stored = resources.encode_stored(document, 1)
    assert json.loads(resources.render_stored(stored, 1))["s"] == "\ud800"


def test_depth_is_counted_without_recursion() -> None:
    settings = Settings(max_json_depth=3)
    resources.parse_document(b'{"a": {"b": [1]}}', settings)
    with pytest.raises(BadRequest, match="deeper than 3"):
        resources.parse_document(b'{"a": {"b": [[1]]}}', settings)
