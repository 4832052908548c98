"""Each documented default, probed at its boundary on servers started with no settings but the
Redis to use: the last value accepted and the first refused, the exact header, and the timeouts
where the server cannot honestly answer sooner. The values are written here as the documents
state them, not read from function/settings.py, so that a changed default fails here.

The timeout tests wait for the defaults themselves (10, 30 and 40 s); they bound each wait from
below by the documented value and from above with generous room, so they do not measure speed."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import redis

from function.settings import Settings
from scripts.serve import function_command, port_in_use
from tests.conftest import RunningFunction, _starter, launch
from tests.delaying_proxy import DelayingProxy
from tests.support.local_redis import RedisServer, free_port

from .conftest import error_of, read_until_close

ENTRY_POINTS = ["handle", "handle_flask"]

# As docs/configuration.md and docs/http-api.md state them.
MAX_PATH_BYTES = 1024
MAX_BODY_BYTES = 1_048_576
TTL_MIN_SECONDS = 1
TTL_MAX_SECONDS = 315_360_000
TTL_DEFAULT_SECONDS = 31_536_000
MAX_JSON_DEPTH = 32
KEY_PREFIX = "kv:"
RETRY_AFTER = "1"
REDIS_TIMEOUT_SECONDS = 1.0
HEAD_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0
KEEPALIVE_SECONDS = 5.0
REDIS_MAX_CONNECTIONS = 256
QUOTED_CHARACTERS = 40  # of anything the client sent, in an error message
THREADS_PER_CORE = 4  # Flask mode's worker threads: functions-framework's default
# Room above a timeout for a loaded machine: catches a doubled default, not a slow answer.
ROOM_SECONDS = 4.0


def no_settings(redis_url: str) -> dict[str, str]:
    """Every setting blank (blank keeps the default, whatever this process's environment holds)
    but the Redis to use."""
    return {**{field.name.upper(): "" for field in fields(Settings)}, "REDIS_URL": redis_url}


@pytest.fixture(scope="module", params=ENTRY_POINTS)
def plain(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningFunction]:
    start, started = _starter(redis_server, tmp_path_factory)
    yield start(request.param, env=no_settings(redis_server.function_url))
    for running in started:
        running.stop()


@pytest.fixture
def http(plain: RunningFunction) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plain.url, timeout=30) as client:
        yield client


@pytest.fixture
def name() -> str:
    return f"/defaults/{uuid.uuid4().hex}"


# The probes take a client on any server with the defaults: func's runtime runs them too.


def probe_path_length(http: httpx.Client) -> None:
    last = "/" + "p" * (MAX_PATH_BYTES - 1)  # the name as the function counts it, "/" included
    assert http.put(last, json={}).status_code in (200, 201)
    assert http.get(last).status_code == 200
    too_long = http.put(last + "p", json={})
    assert too_long.status_code == 414, too_long.text
    assert error_of(too_long) == "uri_too_long"
    # Counted in UTF-8 bytes: one two-byte character in place of one byte is over.
    assert http.put("/" + "p" * (MAX_PATH_BYTES - 2) + "é", json={}).status_code == 414


def _body_of(size: int) -> bytes:
    body = b'{"v":"' + b"x" * (size - 8) + b'"}'
    assert len(body) == size
    return body


def probe_body_size(http: httpx.Client, name: str) -> None:
    headers = {"Content-Type": "application/json"}
    largest = http.put(name, content=_body_of(MAX_BODY_BYTES), headers=headers)
    assert largest.status_code == 201, largest.text
    assert len(http.get(name).json()["v"]) == MAX_BODY_BYTES - 8
    over = http.put(name + "-over", content=_body_of(MAX_BODY_BYTES + 1), headers=headers)
    assert over.status_code == 413, over.text
    assert error_of(over) == "payload_too_large"
    assert http.get(name + "-over").status_code == 404


def probe_ttl_bounds(http: httpx.Client, name: str) -> None:
    for ttl in (TTL_MIN_SECONDS, TTL_MAX_SECONDS):
        answer = http.put(f"{name}/{ttl}", params={"ttl": str(ttl)}, json={})
        assert answer.status_code == 201, answer.text
        assert answer.json()["ttl"] == ttl
    for ttl in (TTL_MIN_SECONDS - 1, TTL_MAX_SECONDS + 1):
        refused = http.put(f"{name}/{ttl}", params={"ttl": str(ttl)}, json={})
        assert refused.status_code == 400, refused.text
        assert error_of(refused) == "invalid_ttl"
        assert http.get(f"{name}/{ttl}").status_code == 404


def probe_default_ttl(http: httpx.Client, name: str) -> None:
    put = http.put(name, json={})
    assert put.status_code == 201
    assert put.json()["ttl"] == TTL_DEFAULT_SECONDS
    # A few seconds may pass on a loaded machine; a default a day off is far outside.
    assert TTL_DEFAULT_SECONDS - 10 <= http.get(name).json()["ttl"] <= TTL_DEFAULT_SECONDS
    # ?ttl=keep on a new resource gives it the default too.
    kept = http.put(name + "-kept", params={"ttl": "keep"}, json={})
    assert kept.status_code == 201 and kept.json()["ttl"] == TTL_DEFAULT_SECONDS


def _nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth - 1):  # the outer object is level 1
        document = {"d": document}
    return document


def probe_json_depth(http: httpx.Client, name: str) -> None:
    deepest = http.put(name, json=_nested(MAX_JSON_DEPTH))
    assert deepest.status_code == 201, deepest.text
    assert http.get(name).status_code == 200
    too_deep = http.put(name + "-deeper", json=_nested(MAX_JSON_DEPTH + 1))
    assert too_deep.status_code == 400, too_deep.text
    assert error_of(too_deep) == "too_deep"
    # Arrays count as levels too.
    array_deep: Any = [_nested(MAX_JSON_DEPTH - 1)]
    assert http.put(name + "-array", json={"a": array_deep}).status_code == 400


def probe_quoted_characters(http: httpx.Client, name: str) -> None:
    for length in (QUOTED_CHARACTERS, QUOTED_CHARACTERS + 1):
        sent = "text/" + "q" * (length - len("text/"))
        refused = http.put(name, content=b"{}", headers={"Content-Type": sent})
        assert refused.status_code == 415, refused.text
        message = refused.json()["message"]
        if length == QUOTED_CHARACTERS:
            assert message.endswith(f"not {sent}"), message  # whole
        else:
            assert message.endswith(f"not {sent[:-1]}... ({length} characters)"), message


def test_path_length(http: httpx.Client) -> None:
    probe_path_length(http)


def test_body_size(http: httpx.Client, name: str) -> None:
    probe_body_size(http, name)


def test_ttl_bounds(http: httpx.Client, name: str) -> None:
    probe_ttl_bounds(http, name)


def test_default_ttl(
    http: httpx.Client, name: str, redis_client: redis.Redis, plain: RunningFunction
) -> None:
    probe_default_ttl(http, name)
    # Redis expires the key at that moment, under the default prefix.
    pttl = redis_client.pttl(f"{KEY_PREFIX}r:{name}")
    assert (TTL_DEFAULT_SECONDS - 10) * 1000 <= pttl <= TTL_DEFAULT_SECONDS * 1000


def test_json_depth(http: httpx.Client, name: str) -> None:
    probe_json_depth(http, name)


def test_quoted_characters(http: httpx.Client, name: str) -> None:
    probe_quoted_characters(http, name)


def test_key_prefix(http: httpx.Client, name: str, redis_client: redis.Redis) -> None:
    assert http.put(name, json={"v": 1}).status_code == 201
    assert redis_client.exists(f"{KEY_PREFIX}r:{name}") == 1


def assert_retry_later(answer: httpx.Response, code: str) -> None:
    assert answer.status_code == 503, answer.text
    assert error_of(answer) == code
    assert answer.headers["retry-after"] == RETRY_AFTER


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_retry_after_when_redis_is_down(
    start_function: Any, redis_server: RedisServer, entry_point: str
) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    running: RunningFunction = start_function(entry_point, env=no_settings(nothing_listens))
    with httpx.Client(base_url=running.url, timeout=30) as http:
        answer = http.get("/down")
    assert_retry_later(answer, "redis_unavailable")


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_frozen_redis_is_answered_after_the_redis_timeout(
    start_function: Any, redis_server: RedisServer, entry_point: str
) -> None:
    with DelayingProxy(redis_server.port) as proxy:
        running: RunningFunction = start_function(entry_point, env=no_settings(proxy.url))
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.get("/frozen").status_code == 404  # connected, Redis answers
            proxy.delay_all(REDIS_TIMEOUT_SECONDS * 10)
            began = time.monotonic()
            answer = http.get("/frozen")
            waited = time.monotonic() - began
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == RETRY_AFTER
    # The reply cannot come sooner than the timeout; a doubled timeout overruns the room.
    assert REDIS_TIMEOUT_SECONDS <= waited < REDIS_TIMEOUT_SECONDS * 2, waited


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=120)


def _seconds_until_answer_or_close(sock: socket.socket, began: float) -> tuple[float, bytes]:
    answer = read_until_close(sock)
    return time.monotonic() - began, answer


def test_head_and_body_timeouts(plain: RunningFunction) -> None:
    """A head that never ends is closed after HEAD_TIMEOUT_SECONDS, a body that never comes is a
    408 after BODY_TIMEOUT_SECONDS; Flask mode bounds both by their sum, from the connection's
    start. Both connections wait side by side."""
    results: dict[str, tuple[float, bytes]] = {}

    def wait(kind: str, sent: bytes) -> None:
        with _connect(plain.url) as sock:
            began = time.monotonic()
            sock.sendall(sent)
            results[kind] = _seconds_until_answer_or_close(sock, began)

    head = b"GET /slow-head HTTP/1.1\r\nHost: test\r\nX-Never-Ends: "
    body = (b"PUT /slow-body HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10\r\n\r\n{}")  # fmt: skip
    threads = [threading.Thread(target=wait, args=("head", head)),
               threading.Thread(target=wait, args=("body", body))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    head_seconds, head_answer = results["head"]
    body_seconds, body_answer = results["body"]
    assert body_answer.startswith(b"HTTP/1.1 408"), body_answer[:200]
    assert b'"request_timeout"' in body_answer
    assert not head_answer.startswith(b"HTTP/1.1 2"), head_answer[:200]
    if plain.entry_point == "handle":
        assert HEAD_TIMEOUT_SECONDS <= head_seconds < HEAD_TIMEOUT_SECONDS + ROOM_SECONDS
        assert BODY_TIMEOUT_SECONDS <= body_seconds < BODY_TIMEOUT_SECONDS + ROOM_SECONDS
    else:
        both = HEAD_TIMEOUT_SECONDS + BODY_TIMEOUT_SECONDS
        for seconds in (head_seconds, body_seconds):
            assert both <= seconds < both + ROOM_SECONDS, (head_seconds, body_seconds)


def test_an_idle_keep_alive_connection_closes_after_its_time(plain: RunningFunction) -> None:
    with _connect(plain.url) as sock:
        sock.sendall(b"GET /health/liveness HTTP/1.1\r\nHost: test\r\n\r\n")
        # The whole answer first: a server may send its head and its body in two writes.
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"(?i)content-length: *(\d+)", answer.partition(b"\r\n\r\n")[0])[1]
        ):
            answer += sock.recv(65536)
        began = time.monotonic()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        seconds, more = _seconds_until_answer_or_close(sock, began)
    assert more == b""
    # The server's clock starts when it has sent the answer, a moment before this read ends.
    assert KEEPALIVE_SECONDS - 0.1 <= seconds < KEEPALIVE_SECONDS + ROOM_SECONDS, seconds


# A pile of requests waiting on held Redis replies. The server's Redis timeout is raised far above
# the time the pile takes to build (its default is probed above), so that none gives up first.
PILE_REDIS_TIMEOUT = "300"
PILE_SECONDS = 120.0


def _commands_run(direct: redis.Redis) -> int:
    """The commands Redis has run that a waiting request sends first: its GET, or on a new
    connection the handshake before it (HELLO, or CLIENT SETNAME where a client sends no HELLO).
    ``direct`` keeps one connection, so that it adds none of these itself."""
    stats = direct.info("commandstats")
    names = ("get", "hello", "client", "client|setname")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)


async def _until(
    holds: Callable[[], bool], what: str, waiting: list[asyncio.Task[httpx.Response]]
) -> None:
    deadline = time.monotonic() + PILE_SECONDS
    while not await asyncio.to_thread(holds):
        answered = [task.result().status_code for task in waiting if task.done()]
        assert not answered, f"answered while Redis's replies are held: {answered[:5]}"
        assert time.monotonic() < deadline, f"not within {PILE_SECONDS} s: {what}"
        await asyncio.sleep(0.05)


async def _answer_while_held(http: httpx.AsyncClient, name: str) -> httpx.Response | None:
    """None where no answer came: queued behind the others, it waits for replies that are held."""
    try:
        return await http.get(name, timeout=PILE_SECONDS / 4)
    except httpx.TimeoutException:
        return None


def _pile_client(url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(base_url=url, timeout=PILE_SECONDS, limits=limits)


def _stored(url: str) -> str:
    name = f"/defaults/pile-{uuid.uuid4().hex}"
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.put(name, json={"v": 1}).status_code == 201  # the connection is open
        assert http.get(name).status_code == 200
    return name


def probe_waiting_requests(
    url: str, proxy: DelayingProxy, redis_url: str, bound: int
) -> tuple[list[httpx.Response], httpx.Response | None]:
    """With Redis's replies held, ``bound`` GETs of one resource wait on Redis; one more is sent
    and answered while they still wait. Returns the ``bound`` answers (once replies flow again)
    and the one more."""
    name = _stored(url)

    async def pile() -> tuple[list[httpx.Response], httpx.Response | None]:
        async with _pile_client(url) as http:
            before = await asyncio.to_thread(_commands_run, direct)
            proxy.hold_replies()
            try:
                waiting = [asyncio.create_task(http.get(name)) for _ in range(bound)]
                await _until(
                    lambda: _commands_run(direct) - before >= bound, f"{bound} waiting", waiting
                )
                one_more = await _answer_while_held(http, name)
                assert _commands_run(direct) - before == bound, "one more reached Redis"
            finally:
                proxy.release_replies()
            return list(await asyncio.gather(*waiting)), one_more

    with redis.Redis.from_url(redis_url, single_connection_client=True) as direct:
        return asyncio.run(pile())


def assert_one_more_is_refused(
    answers: list[httpx.Response], one_more: httpx.Response | None
) -> None:
    assert one_more is not None, "one more request waited too, unanswered while replies were held"
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    assert_retry_later(one_more, "overloaded")


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_redis_max_connections_wait_on_redis_and_one_more_is_refused(
    start_function: Any, redis_server: RedisServer, entry_point: str
) -> None:
    """handle: replies awaited on its shared connection. handle_flask: pooled connections, which
    only a THREADS above the default can fill (the next test)."""
    threads = {"handle_flask": {"THREADS": str(REDIS_MAX_CONNECTIONS + 8)}}.get(entry_point, {})
    with DelayingProxy(redis_server.port) as proxy:
        env = {**no_settings(proxy.url), "REDIS_TIMEOUT_SECONDS": PILE_REDIS_TIMEOUT, **threads}
        running: RunningFunction = start_function(entry_point, env=env)
        answers, one_more = probe_waiting_requests(
            running.url, proxy, redis_server.url, REDIS_MAX_CONNECTIONS
        )
    assert_one_more_is_refused(answers, one_more)


def test_flask_threads_bound_the_requests_waiting_on_redis(
    start_function: Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Flask mode a request holds a worker thread (4 per core by default) while it waits: with
    every thread waiting on Redis, more requests wait for a thread, not on Redis, and are served
    once Redis answers; at the default THREADS none is answered 503 overloaded."""
    monkeypatch.delenv("THREADS", raising=False)
    threads = THREADS_PER_CORE * (os.cpu_count() or 1)
    with DelayingProxy(redis_server.port) as proxy:
        env = {**no_settings(proxy.url), "REDIS_TIMEOUT_SECONDS": PILE_REDIS_TIMEOUT}
        running: RunningFunction = start_function("handle_flask", env=env)
        name = _stored(running.url)

        async def pile() -> tuple[list[httpx.Response], int]:
            async with _pile_client(running.url) as http:
                before = await asyncio.to_thread(_commands_run, direct)
                proxy.hold_replies()
                try:
                    waiting = [asyncio.create_task(http.get(name)) for _ in range(threads * 2)]
                    await _until(
                        lambda: _commands_run(direct) - before >= threads, "threads", waiting
                    )
                    # One thread more would have taken its request to Redis by now. An absence
                    # is seen only over a while: a slow machine may miss a raised default, but
                    # cannot fail the right one.
                    await asyncio.sleep(3)
                    reached = await asyncio.to_thread(_commands_run, direct) - before
                    assert not any(task.done() for task in waiting), "answered while held"
                finally:
                    proxy.release_replies()
                return list(await asyncio.gather(*waiting)), reached

        with redis.Redis.from_url(redis_server.url, single_connection_client=True) as direct:
            answers, reached = asyncio.run(pile())
    assert reached == threads
    assert [answer.status_code for answer in answers] == [200] * len(answers)


# functions-framework's own defaults, as docs/configuration.md states them.
FRAMEWORK_PORT = 8080
FRAMEWORK_HOST_ELSEWHERE = "127.0.0.2"  # 0.0.0.0 serves every local IPv4 address, not just one
WORKERS = 1


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_port_host_and_workers_defaults(
    entry_point: str,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Started with no PORT, HOST or WORKERS (and no --host or --port), the server listens on
    port 8080 of every IPv4 address, in one worker process."""
    for variable in ("PORT", "HOST", "WORKERS"):
        monkeypatch.delenv(variable, raising=False)
    if port_in_use("0.0.0.0", FRAMEWORK_PORT):
        pytest.skip(f"another server on this machine holds port {FRAMEWORK_PORT}")
    command = function_command(entry_point, FRAMEWORK_PORT)
    for option in ("--host", "--port"):
        at = command.index(option)
        del command[at : at + 2]
    env = {**no_settings(redis_server.function_url), "XDG_RUNTIME_DIR": str(tmp_path)}
    log_path = tmp_path / "server.log"
    process, url = launch(command, env, log_path, FRAMEWORK_PORT)  # ready on 127.0.0.1:8080
    running = RunningFunction(entry_point, url, process, log_path, env)
    try:
        elsewhere = f"http://{FRAMEWORK_HOST_ELSEWHERE}:{FRAMEWORK_PORT}/health/liveness"
        assert httpx.get(elsewhere, timeout=30).status_code == 200
        # gunicorn forks its workers one after another at most 0.1 s apart, and one may serve
        # before the next is forked: a second worker would show within a second.
        counts = set()
        for _ in range(20):
            counts.add(len(psutil.Process(process.pid).children()))
            time.sleep(0.05)
        assert counts == {WORKERS}, counts
    finally:
        running.stop()


# As docs/http-api.md states it: a refused write is logged at most once per this many seconds.
STORAGE_FULL_LOG_SECONDS = 10.0
TEXT_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING [\w.]+: \S")


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_storage_full_is_logged_at_most_once_per_interval(
    start_function: Any, tmp_path: Path, entry_point: str
) -> None:
    """Refused writes one after another, until a second log line comes. The log line of a write
    is written before its answer, so each bound below follows from the order of events alone:
    the interval is at most the time from sending the first write to answering the one logged
    again, and more than the time from answering the first to sending any write not logged."""
    with RedisServer(tmp_path / "redis") as own:
        running: RunningFunction = start_function(entry_point, env=no_settings(own.url))
        with (
            httpx.Client(base_url=running.url, timeout=30) as http,
            redis.Redis.from_url(own.url) as direct,
        ):
            assert http.put("/full/kept", json={}).status_code == 201  # connected
            direct.config_set("maxmemory-policy", "noeviction")
            direct.config_set("maxmemory", 1)  # below what is in use: every write is refused
            writes: list[tuple[float, float, int]] = []  # sent, answered, log lines by then
            deadline = time.monotonic() + STORAGE_FULL_LOG_SECONDS + ROOM_SECONDS * 5
            while not writes or writes[-1][2] < 2:
                assert time.monotonic() < deadline, "no second log line"
                sent = time.monotonic()
                answer = http.put(f"/full/{len(writes)}", json={})
                answered = time.monotonic()
                assert error_of(answer) == "storage_full"
                writes.append((sent, answered, running.log().count("out of memory")))
                time.sleep(0.1)
    (first_sent, first_answered, first_lines), *later = writes
    assert first_lines == 1
    *quiet, (_, again_answered, _) = later
    assert again_answered - first_sent >= STORAGE_FULL_LOG_SECONDS
    assert all(sent - first_answered < STORAGE_FULL_LOG_SECONDS for sent, _, _ in quiet)
    logged = [line for line in running.log().splitlines() if "out of memory" in line]
    assert "more like it" in logged[1]
    # In LOG_FORMAT's default, text: time, level, logger, then the message.
    assert TEXT_LOG_LINE.match(logged[0]), logged[0]


# As docs/configuration.md states it: REDIS_URL's default.
REDIS_DEFAULT_PORT, REDIS_DEFAULT_DB = 6379, 0


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_redis_url_default(start_function: Any, tmp_path: Path, entry_point: str) -> None:
    """With no REDIS_URL the function stores in database 0 of the Redis on localhost:6379."""
    if port_in_use("127.0.0.1", REDIS_DEFAULT_PORT):
        pytest.skip(f"another server on this machine holds port {REDIS_DEFAULT_PORT}")
    with RedisServer(tmp_path / "redis", port=REDIS_DEFAULT_PORT) as default_redis:
        running: RunningFunction = start_function(entry_point, env=no_settings(""))
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.put("/defaults/url", json={}).status_code == 201
        with redis.Redis.from_url(default_redis.url, db=REDIS_DEFAULT_DB) as direct:
            assert direct.exists(f"{KEY_PREFIX}r:/defaults/url") == 1
