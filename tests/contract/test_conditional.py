"""Read-modify-write: output-only fields, ?ttl=keep, ETags and conditional requests."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningFunction

from .conftest import error_of, put_head, raw_request


def test_a_document_read_can_be_written_back(client: httpx.Client, path: str) -> None:
    client.put(path, params={"ttl": "600"}, json={"count": 1})
    document = client.get(path).json()
    document["count"] += 1
    response = client.put(path, params={"ttl": "600"}, json=document)
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert response.json()["ttl"] == 600  # the service's value, not the one sent


def test_ttl_keep_keeps_the_current_expiry(client: httpx.Client, path: str) -> None:
    client.put(path, params={"ttl": "100"}, json={"v": 1})
    kept = client.put(path, params={"ttl": "keep"}, json={"v": 2})
    assert kept.status_code == 200
    assert 90 <= kept.json()["ttl"] <= 100
    got = client.get(path).json()
    assert got["v"] == 2 and 90 <= got["ttl"] <= 100
    # Without ?ttl= a PUT sets the default again.
    assert client.put(path, json={"v": 3}).json()["ttl"] == 31_536_000


def test_ttl_keep_on_a_new_resource_sets_the_default(client: httpx.Client, path: str) -> None:
    created = client.put(path, params={"ttl": "keep"}, json={"v": 1})
    assert created.status_code == 201
    assert created.json()["ttl"] == 31_536_000


def test_etag_on_get_head_and_put(client: httpx.Client, path: str) -> None:
    put = client.put(path, json={"v": 1})
    tag = put.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert client.get(path).headers["etag"] == tag
    assert client.head(path).headers["etag"] == tag
    changed = client.put(path, json={"v": 2}).headers["etag"]
    assert changed != tag
    assert client.get(path).headers["etag"] == changed


def test_if_none_match_on_get_is_a_304(client: httpx.Client, path: str) -> None:
    tag = client.put(path, json={"v": 1}).headers["etag"]
    for method in ("GET", "HEAD"):
        response = client.request(method, path, headers={"If-None-Match": tag})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == tag
    weak = client.get(path, headers={"If-None-Match": f"W/{tag}"})
    assert weak.status_code == 304  # If-None-Match compares weakly
    other = client.get(path, headers={"If-None-Match": '"0000"'})
    assert other.status_code == 200 and other.json()["v"] == 1


def test_two_writers_the_second_is_refused(client: httpx.Client, path: str) -> None:
    tag = client.put(path, json={"balance": 10}).headers["etag"]
    first = client.put(path, json={"balance": 15}, headers={"If-Match": tag})
    assert first.status_code == 200
    second = client.put(path, json={"balance": 7}, headers={"If-Match": tag})
    assert second.status_code == 412
    assert error_of(second) == "precondition_failed"
    assert client.get(path).json()["balance"] == 15


def test_if_match_takes_a_list_and_compares_strongly(client: httpx.Client, path: str) -> None:
    tag = client.put(path, json={"v": 1}).headers["etag"]
    weak = client.put(path, json={"v": 2}, headers={"If-Match": f"W/{tag}"})
    assert weak.status_code == 412
    listed = client.put(path, json={"v": 3}, headers={"If-Match": f'"abc", {tag}'})
    assert listed.status_code == 200


def test_if_none_match_star_creates_only(client: httpx.Client, path: str) -> None:
    created = client.put(path, json={"v": 1}, headers={"If-None-Match": "*"})
    assert created.status_code == 201
    again = client.put(path, json={"v": 2}, headers={"If-None-Match": "*"})
    assert again.status_code == 412
    assert error_of(again) == "precondition_failed"
    assert client.get(path).json()["v"] == 1


def test_if_match_star_updates_only(client: httpx.Client, path: str) -> None:
    missing = client.put(path, json={"v": 1}, headers={"If-Match": "*"})
    assert missing.status_code == 412
    assert client.get(path).status_code == 404
    client.put(path, json={"v": 1})
    assert client.put(path, json={"v": 2}, headers={"If-Match": "*"}).status_code == 200


def test_conditional_delete(client: httpx.Client, path: str) -> None:
    tag = client.put(path, json={"v": 1}).headers["etag"]
    stale = client.delete(path, headers={"If-Match": '"' + "0" * 40 + '"'})
    assert stale.status_code == 412
    assert error_of(stale) == "precondition_failed"
    assert client.delete(path, headers={"If-None-Match": tag}).status_code == 412
    assert client.get(path).status_code == 200
    assert client.delete(path, headers={"If-Match": tag}).status_code == 204
    assert client.get(path).status_code == 404
    assert client.delete(path, headers={"If-Match": "*"}).status_code == 412
    assert client.delete(path, headers={"If-None-Match": "*"}).status_code == 404


def test_if_match_on_get(client: httpx.Client, path: str) -> None:
    tag = client.put(path, json={"v": 1}).headers["etag"]
    assert client.get(path, headers={"If-Match": tag}).status_code == 200
    assert client.get(path, headers={"If-Match": '"nope"'}).status_code == 412


@pytest.mark.parametrize("writers", [8])
def test_only_one_of_many_conditional_writers_wins(
    client: httpx.Client, path: str, writers: int
) -> None:
    import concurrent.futures

    tag = client.put(path, json={"v": 0}).headers["etag"]

    def write(value: int) -> int:
        return client.put(path, json={"v": value}, headers={"If-Match": tag}).status_code

    with concurrent.futures.ThreadPoolExecutor(writers) as pool:
        statuses = sorted(pool.map(write, range(1, writers + 1)))
    assert statuses == [200] + [412] * (writers - 1)


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("value", ['""', 'W/""', '"", W/"x+#"', '"a,b", , "c"'])
def test_odd_entity_tags_are_compared_not_a_fault(
    client: httpx.Client, path: str, header: str, value: str
) -> None:
    """Empty or unknown tags name no stored document: If-Match fails, If-None-Match holds."""
    tag = client.put(path, json={"v": 1}).headers["etag"]
    answer = client.put(path, json={"v": 2}, headers={header: value})
    if header == "If-Match":
        assert answer.status_code == 412 and error_of(answer) == "precondition_failed"
        assert client.get(path).headers["etag"] == tag
    else:
        assert answer.status_code == 200
        assert answer.headers["etag"] != tag


MALFORMED = ["no-quotes", '*, "x"', '"x", *', "", ",", '"x" "y"', '"unterminated', "W/x", 'w/"x"']


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("value", MALFORMED)
@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
def test_a_malformed_condition_is_a_400_that_changes_nothing(
    client: httpx.Client, path: str, header: str, value: str, method: str
) -> None:
    """RFC 9110 §13.1: "*" alone, or a list of quoted entity-tags; anything else is refused,
    never read as no condition (``If-None-Match: *, "x"`` once overwrote a document)."""
    tag = client.put(path, json={"v": 1}).headers["etag"]
    answer = client.request(method, path, json={"v": 2}, headers={header: value})
    assert answer.status_code == 400, answer.text
    assert error_of(answer) == "invalid_precondition"
    assert client.get(path).headers["etag"] == tag


@pytest.mark.parametrize("header", [b"If-Match", b"If-None-Match"])
def test_a_field_on_several_lines_is_one_list(
    function: RunningFunction, client: httpx.Client, path: str, header: bytes
) -> None:
    """Repeated lines are one comma-joined list (RFC 9110 §5.3) in every mode: "*" on one line
    and a tag on another is malformed, and a create-only guard cannot be slipped past."""
    tag = client.put(path, json={"v": 1}).headers["etag"].encode()
    body = b'{"v": 2}'
    target = path.encode()
    for lines in ([b"*", b'"x"'], [b'"x"', b"*"]):
        extra = b"".join(header + b": " + line + b"\r\n" for line in lines)
        answer = raw_request(function.url, put_head(target, body, extra), body)
        assert answer.status == 400, answer.body
        assert answer.json()["error"] == "invalid_precondition"
    # The current tag on a second line counts: If-Match holds, If-None-Match fails.
    extra = header + b': "x"\r\n' + header + b": " + tag + b"\r\n"
    answer = raw_request(function.url, put_head(target, body, extra), body)
    assert answer.status == (200 if header == b"If-Match" else 412), answer.body
