"""The pure resource rules, without a server: paths, keys, ttl, media types, storage format."""

from __future__ import annotations

import json

import pytest

from function import resources, storage
from function.errors import ApiError, BadRequest, InvalidPath, UnsupportedMediaType, UriTooLong
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


@pytest.mark.parametrize(
    ("query", "ttl"),
    [(b"", 31_536_000), (b"ttl=60", 60), (b"x=1&ttl=1", 1), (b"ttl=" + b"0" * 30 + b"5", 5)],
)
def test_parse_ttl(query: bytes, ttl: int) -> None:
    assert resources.parse_ttl(query, SETTINGS) == ttl


@pytest.mark.parametrize("digits", ["0", "000", "9" * 19, "9" * 5000])
def test_a_ttl_out_of_range_is_refused_however_it_is_written(digits: str) -> None:
    with pytest.raises(ApiError) as refused:
        resources.parse_ttl(b"ttl=" + digits.encode(), SETTINGS)
    assert (refused.value.code, refused.value.message) == (
        "invalid_ttl",
        "ttl must lie between 1 and 315360000",
    )


@pytest.mark.parametrize("content_type", ["text/json", "application/jsonx", "", "json"])
def test_content_types_refused(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        resources.check_content_type(content_type)


def test_stored_form_renders_with_ttl() -> None:
    document = resources.stored_json({"a": [1, {"b": None}]}, 1_700_000_000)
    rendered = json.loads(resources.render_stored(document, 42))
    assert rendered == {"a": [1, {"b": None}], "last_updated": 1_700_000_000, "ttl": 42}
    empty = json.loads(resources.render_stored(resources.stored_json({}, 5), 1))
    assert empty == {"last_updated": 5, "ttl": 1}


def test_stored_value_keeps_the_expiry_before_the_json() -> None:
    document = resources.stored_json({"a": 1}, 5)
    assert document == b'{"a":1,"last_updated":5}'
    stored = storage.stored_value(document, 1_700_000_040_000)
    assert stored == b'1700000040000 {"a":1,"last_updated":5}'
    assert storage.split_stored(stored) == (1_700_000_040_000, document)
    assert storage.split_stored(document) == (None, document)  # bare JSON, from before
    # The first space ends the expiry; the JSON may hold spaces of its own.
    spaced = resources.stored_json({"a b": "c d"}, 5)
    assert storage.split_stored(storage.stored_value(spaced, 7)) == (7, spaced)


@pytest.mark.parametrize(
    ("left_ms", "seconds"),
    [(40_000, 40), (39_500, 40), (39_499, 39), (499, 0), (500, 1), (0, 0), (-2, 0), (-5_000, 0)],
)
def test_seconds_left_round_as_redis_ttl_does(left_ms: int, seconds: int) -> None:
    assert resources.seconds_left(left_ms) == seconds


def test_lone_surrogates_survive_storage() -> None:
    document = resources.parse_document(b'{"s": "\\ud800"}', SETTINGS)
    stored = resources.stored_json(document, 1)
    assert json.loads(resources.render_stored(stored, 1))["s"] == "\ud800"


def test_depth_is_counted_without_recursion() -> None:
    settings = Settings(max_json_depth=3)
    resources.parse_document(b'{"a": {"b": [1]}}', settings)
    with pytest.raises(BadRequest, match="deeper than 3"):
        resources.parse_document(b'{"a": {"b": [[1]]}}', settings)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [(b"/a%2Fb", "/a/b"), (b"/caf%C3%A9", "/café"), (b"/%E2%82%AC", "/€"), (b"/a%20b", "/a b"),
     (b"/.a/a./...", "/.a/a./...")],
)  # fmt: skip
def test_decode_path(raw: bytes, decoded: str) -> None:
    assert resources.decode_path(raw) == decoded


@pytest.mark.parametrize(
    "raw",
    [b"/%ff", b"/%c0%af", b"/%ed%a0%80", b"/a%00", b"/%1b", b"/%7f", b"/%c2%9b", b"/./a",
     b"/a/..", b"/%2e", b"/a%2f%2e%2e%2fb", b"/\xff"],
)  # fmt: skip
def test_decode_path_refuses(raw: bytes) -> None:
    with pytest.raises(InvalidPath):
        resources.decode_path(raw)


@pytest.mark.parametrize("raw", [b"/%zz", b"/100%", b"/a%2"])
def test_decode_path_refuses_a_percent_without_two_hex_digits(raw: bytes) -> None:
    with pytest.raises(InvalidPath) as refused:
        resources.decode_path(raw)
    assert refused.value.message == "the path has a '%' that is not followed by two hex digits"


@pytest.mark.parametrize(
    ("target", "path"),
    [(b"/a/b?x=1", b"/a/b"), (b"/a#f", b"/a"), (b"http://h:1/a%20b?q", b"/a%20b"), (b"*", b"*"),
     (b"example.com:443", b"/"), (b"a/b", b"/")],  # authority form, and no form at all
)  # fmt: skip
def test_path_from_target(target: bytes, path: bytes) -> None:
    assert resources.path_from_target(target) == path


@pytest.mark.parametrize(
    ("path", "encoded"),
    [("/a b", "/a%20b"), ("/q?x#y", "/q%3Fx%23y"), ("/100%", "/100%25"), ("/€", "/%E2%82%AC"),
     ("/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~")],
)  # fmt: skip
def test_location_is_rfc3986(path: str, encoded: str) -> None:
    assert resources.location(path) == encoded
    assert resources.decode_path(encoded.encode()) == path


def test_path_limit_applies_after_normalisation() -> None:
    settings = Settings(max_path_bytes=10)
    assert resources.normalize_path("/" + "/" * 50 + "abc", settings) == "/abc"


@pytest.mark.parametrize("content_type", ["application/+json", "application/json+", "+json"])
def test_malformed_suffix_is_not_json(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        resources.check_content_type(content_type)


def test_output_only_fields_are_dropped() -> None:
    document = resources.parse_document(b'{"a": 1, "ttl": 5, "last_updated": 7}', SETTINGS)
    assert document == {"a": 1}


def test_integers_up_to_the_bound_parse_and_longer_ones_are_refused() -> None:
    digits = "7" * resources.MAX_INTEGER_DIGITS
    assert resources.parse_document(b'{"n": -%s}' % digits.encode(), SETTINGS)["n"] == -int(digits)
    with pytest.raises(BadRequest) as refused:
        resources.parse_document(b'{"n": %s1}' % digits.encode(), SETTINGS)
    assert refused.value.code == "invalid_number"
    assert "set_int_max_str_digits" not in refused.value.message


def test_ttl_keep() -> None:
    assert resources.parse_ttl(b"ttl=keep", SETTINGS) is None
    with pytest.raises(BadRequest):
        resources.parse_ttl(b"ttl=KEEP", SETTINGS)


def test_etag_is_strong_and_follows_the_bytes() -> None:
    tag = storage.etag(b'{"a":1}')
    assert tag.startswith('"') and len(tag) == 42
    assert tag != storage.etag(b'{"a":2}')


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"/%ff", "the path is not valid UTF-8 once percent-decoded"),
     (b"/%c0%af", "the path is not valid UTF-8 once percent-decoded"),
     (b"/a%00b", "the path holds a control character"),
     (b"/a%7f", "the path holds a control character"),
     (b"/a/%2e%2e/b", "the path holds a '.' or '..' segment"),
     (b"/a/./b", "the path holds a '.' or '..' segment")],
)  # fmt: skip
def test_decode_path_refuses_with_a_reason(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidPath) as refused:
        resources.decode_path(raw)
    assert refused.value.message == message


@pytest.mark.parametrize(
    ("target", "path"),
    [(b"/a?b?c", b"/a"), (b"/a#b#c", b"/a"), (b"/a?q#f?g", b"/a"), (b"/a#f?q", b"/a"),
     (b"http://h:1/x/y?q", b"/x/y"), (b"http://h", b"/"), (b"*", b"*"), (b"?q", b"/")],
)  # fmt: skip
def test_path_from_target_cuts_at_the_first_query_or_fragment(target: bytes, path: bytes) -> None:
    assert resources.path_from_target(target) == path
