"""Properties of the core, checked on generated input (hypothesis, derandomized so CI repeats).

- Any JSON object within the limits round-trips: through the core's encode/render, and through
  both entry points over HTTP against a real Redis.
- Path normalisation is idempotent, and two paths name one resource exactly when they have the
  same non-empty segments: nothing else is folded together, so no two distinct paths alias.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from function import resources
from function.settings import Settings
from tests.conftest import RunningFunction

SETTINGS = Settings()
# Control characters and "." / ".." segments are refused as invalid paths; everything else in a
# segment is data, case and escapes included.
SEGMENT_CHARACTERS = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/"
)
SEGMENT = st.text(SEGMENT_CHARACTERS, min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)
SEPARATOR = st.text(st.just("/"), min_size=1, max_size=3)

# JSON scalars as a client may send them; integers within 64 bits, finite floats.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=40,
)
# ttl and last_updated are the service's own fields in an answer, so a client does not send them.
DOCUMENTS = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k not in resources.SERVER_FIELDS), JSON_VALUES, max_size=8
)
PROPERTY_SETTINGS = settings(
    derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def paths(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A raw path with random runs of slashes around its segments, and those segments."""
    segments = draw(st.lists(SEGMENT, max_size=6))
    path = draw(SEPARATOR)
    for segment in segments:
        path += segment + draw(SEPARATOR)
    if segments and draw(st.booleans()):
        path = path.rstrip("/")
    return path, segments


@PROPERTY_SETTINGS
@given(paths())
def test_normalising_is_idempotent_and_keeps_every_segment(drawn: tuple[str, list[str]]) -> None:
    path, segments = drawn
    name = resources.normalize_path(path, SETTINGS)
    assert resources.normalize_path(name, SETTINGS) == name
    assert name == "/" + "/".join(segments)
    assert name.split("/")[1:] == (segments or [""])


@PROPERTY_SETTINGS
@given(paths(), paths())
def test_two_paths_share_a_resource_only_with_the_same_segments(
    first: tuple[str, list[str]], second: tuple[str, list[str]]
) -> None:
    same_name = resources.normalize_path(first[0], SETTINGS) == resources.normalize_path(
        second[0], SETTINGS
    )
    assert same_name == (first[1] == second[1])
    first_key = resources.resource_key(SETTINGS, resources.normalize_path(first[0], SETTINGS))
    assert first_key != resources.counter_key(SETTINGS)


@PROPERTY_SETTINGS
@given(DOCUMENTS)
def test_any_object_round_trips_through_the_core(document: dict[str, Any]) -> None:
    body = json.dumps(document).encode()
    parsed = resources.parse_document(body, SETTINGS)
    rendered = json.loads(resources.render_stored(resources.stored_json(parsed, 7), 60))
    assert rendered == {**document, "last_updated": 7, "ttl": 60}


@settings(PROPERTY_SETTINGS, max_examples=40, suppress_health_check=list(HealthCheck))
@given(document=DOCUMENTS)
def test_any_object_round_trips_over_http(
    function: RunningFunction, document: dict[str, Any]
) -> None:
    path = f"/properties/{uuid.uuid4().hex}"
    with httpx.Client(base_url=function.url, timeout=10) as http:
        put = http.put(path, json=document)
        assert put.status_code == 201, put.text
        got = http.get(path)
        assert got.status_code == 200
        answered = got.json()
        assert {k: v for k, v in answered.items() if k not in resources.SERVER_FIELDS} == document
        assert put.json() == answered | {"ttl": put.json()["ttl"]}
        http.delete(path)
