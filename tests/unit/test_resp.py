"""The pure-Python codec (``function/resp.py``) against hiredis, its model: the same replies from
the same bytes however they are cut, the same commands packed; and a process whose hiredis cannot
be imported serves on it against a real Redis and warns once."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import Any

import hiredis
import pytest
from redis.exceptions import ResponseError

from function import resp
from scripts.serve import ROOT
from tests.support.local_redis import RedisServer

# Every RESP2 reply kind, nested, errors inside arrays (EXEC), a value larger than a read.
REPLIES = (
    b"+OK\r\n"
    b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    b":-42\r\n"
    b"$-1\r\n"
    b"$0\r\n\r\n"
    b"$12\r\nline\r\nbreaks\r\n"
    b"*-1\r\n"
    b"*0\r\n"
    b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n-ERR inside\r\n" + b"$70000\r\n" + b"x" * 70000 + b"\r\n"
)


def read_all(reader: Any, chunks: list[bytes]) -> list[Any]:
    replies: list[Any] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            replies.append(reply)
    return replies


def comparable(reply: Any) -> Any:
    if isinstance(reply, Exception):
        return (type(reply), str(reply))
    if isinstance(reply, list):
        return [comparable(item) for item in reply]
    return reply


@pytest.mark.parametrize("size", [1, 7, 4096, len(REPLIES)])
def test_replies_are_hiredis_replies_however_the_bytes_are_cut(size: int) -> None:
    chunks = [REPLIES[i : i + size] for i in range(0, len(REPLIES), size)]
    expected = read_all(hiredis.Reader(replyError=ResponseError), chunks)
    assert len(expected) == 10
    got = read_all(resp.PythonReader(ResponseError), chunks)
    assert [comparable(reply) for reply in got] == [comparable(reply) for reply in expected]


@pytest.mark.parametrize(
    ("garbage", "python_says"),
    [(b"?what\r\n", "Protocol Error: b'?what'"),
     (b"$x\r\n", "invalid literal for int() with base 10: b'x'"),
     (b"*2x\r\n", "invalid literal for int() with base 10: b'2x'"),
     (b"\r\n", "Connection closed by server.")],
)  # fmt: skip
def test_bytes_that_are_no_reply_raise_the_codecs_protocol_error(
    garbage: bytes, python_says: str
) -> None:
    """The error says what redis-py's parser found: the words that close the connection."""
    for codec in (resp.PYTHON, resp.HIREDIS):
        assert codec is not None
        reader = codec.reader(ResponseError)
        reader.feed(garbage)
        with pytest.raises(codec.protocol_error) as raised:
            reader.gets()
        if codec is resp.PYTHON:
            assert str(raised.value) == python_says


@pytest.mark.parametrize(
    "command",
    [
        ("GET", "key"),
        ("SET", "ké", b"\x00\xff" * 5000, "PXAT", 1795772497000, "GET"),
        ("EVALSHA", "a" * 40, 1, "key", -1, 2.5),
    ],
)
def test_commands_are_packed_as_hiredis_packs_them(command: tuple[Any, ...]) -> None:
    assert resp.python_pack(command) == hiredis.pack_command(command)


def test_without_hiredis_the_shared_connection_serves_and_warns_once(server: RedisServer) -> None:
    # A process of its own: hiredis cannot be imported there, as with a layer of another CPU.
    script = textwrap.dedent(
        f"""
        import asyncio, logging, sys
        sys.modules["hiredis"] = None  # import hiredis raises ImportError
        from function import redis_conn, resp
        logging.basicConfig(format="%(levelname)s %(message)s")
        resp.warn_if_slow()
        resp.warn_if_slow()

        async def main():
            shared = redis_conn.SharedConnection.from_url(
                {server.url!r}, timeout=5, max_pending=100
            )
            keys = [f"k{{i}}" for i in range(50)]
            await asyncio.gather(*(shared.execute_command("SET", k, k * 999) for k in keys))
            got = await asyncio.gather(*(shared.execute_command("GET", k) for k in keys))
            assert got == [k.encode() * 999 for k in keys], got
            print(resp.CODEC.name, type(shared._link.reader).__name__)

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis-py", "PythonReader"]
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("WARNING hiredis cannot be imported ("), (
        result.stderr
    )


def test_the_missing_hiredis_warning_is_one_line_naming_the_cause_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same warning in this process (the test above sees it only from outside)."""
    monkeypatch.setattr(resp, "HIREDIS_MISSING", ImportError("wrong ELF class"))
    monkeypatch.setattr(resp, "_warned", False)
    with caplog.at_level(logging.WARNING, logger=resp.log.name):
        resp.warn_if_slow()
        resp.warn_if_slow()
    assert [(r.name, r.levelno) for r in caplog.records] == [(resp.log.name, logging.WARNING)]
    assert caplog.records[0].getMessage() == (
        "hiredis cannot be imported (wrong ELF class): Redis replies are parsed by redis-py's "
        "pure-Python parser, which costs more CPU per request (docs/func.md, 'Host builder'). "
        "Install hiredis built for this platform."
    )


def test_with_hiredis_it_is_the_codec_and_nothing_is_said(caplog: pytest.LogCaptureFixture) -> None:
    assert resp.CODEC is resp.HIREDIS and resp.HIREDIS_MISSING is None
    resp.warn_if_slow()
    assert not caplog.records
