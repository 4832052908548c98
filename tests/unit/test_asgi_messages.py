"""The two ASGI messages an answer becomes: the header fields Starlette would add, no more."""

from __future__ import annotations

import pytest

from function.asgi import _asgi_messages
from function.messages import Response


def test_a_json_answer_carries_its_length_type_and_own_fields() -> None:
    start, body = _asgi_messages(
        Response(201, b'{"a":1}', headers={"ETag": '"x"', "Location": "/a"})
    )
    assert start == {
        "type": "http.response.start",
        "status": 201,
        "headers": [
            (b"content-length", b"7"),
            (b"content-type", b"application/json"),
            (b"etag", b'"x"'),
            (b"location", b"/a"),
        ],
    }
    assert body == {"type": "http.response.body", "body": b'{"a":1}'}


@pytest.mark.parametrize("status", [204, 304])
def test_answers_without_a_body_carry_no_length(status: int) -> None:
    start, body = _asgi_messages(Response(status, content_type=None, headers={"ETag": '"x"'}))
    assert start["headers"] == [(b"etag", b'"x"')]
    assert body["body"] == b""
