"""The service's answers where no real server can provoke the case: a write Redis accepted whose
full answer cannot be built, and the fallback of an adapter's response builder."""

from __future__ import annotations

from typing import Any

from function import service
from function.messages import RedisCall, Response


def _broken(_reply: Any) -> Response:
    raise RuntimeError("building the answer failed")


def test_an_accepted_write_is_answered_as_a_success() -> None:
    accepted = Response(204, content_type=None, headers={"ETag": '"x"'})
    call = RedisCall(("SET", "k", "v"), _broken, accepted=accepted)
    assert service.finish(call, [1, 60]) is accepted


def test_a_failed_read_answer_is_a_500() -> None:
    answer = service.finish(RedisCall(("GET", "k"), _broken), b"{}")
    assert answer.status == 500 and b'"internal"' in answer.body


def test_safe_response_keeps_a_success_a_success() -> None:
    built: list[Response] = []

    def build(response: Response) -> int:
        if response.headers:
            raise ValueError("unencodable header")
        built.append(response)
        return response.status

    ok = Response(201, b"{}", headers={"Location": "\u20ac"})
    assert service.safe_response(ok, build) == 201
    failed = Response(404, b"{}", headers={"X": "\u20ac"})
    assert service.safe_response(failed, build) == 500
