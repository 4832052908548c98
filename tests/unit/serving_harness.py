"""The function's servers in this process, on real loopback sockets, as ``function/serving.py``
configures them: uvicorn's protocol on an asyncio server in the test's event loop (ASGI mode),
gunicorn's thread worker running in a thread (Flask mode); and a few words of HTTP/1.1 to speak to
them. The framework builds its apps from ``function/main.py`` exactly as its command line does.
Timeouts are a fraction of a second; waits are generous bounds that catch a hang.

The fixtures are made available to ``tests/unit`` by its conftest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import selectors
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import functions_framework.aio
import pytest
import pytest_asyncio
import redis
from functions_framework._http import gunicorn as framework_gunicorn
from gunicorn.glogging import Logger
from uvicorn.server import ServerState

from function import asgi, serving, wsgi
from function import settings as function_settings
from function.settings import Settings
from tests.support.local_redis import RedisServer

MAIN = Path(serving.__file__).with_name("main.py")
TIMEOUT = 0.5  # HEAD_TIMEOUT_SECONDS and BODY_TIMEOUT_SECONDS of these tests: short, and
# long enough that a loaded machine (mutation testing on every core) sends a head in time
PATIENCE = 5.0  # seconds a client waits before calling the server hung


@pytest.fixture
def framework(
    server: RedisServer, direct: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """functions-framework as ``function/main.py`` leaves it, undone afterwards; both adapters
    on this module's Redis with short timeouts."""
    for module, name in [
        (functions_framework.aio, "_create_asgi_app_with_function"),
        (functions_framework, "_configure_app"),
        (framework_gunicorn, "UvicornApplication"),
        (framework_gunicorn, "GunicornApplication"),
    ]:
        monkeypatch.setattr(module, name, getattr(module, name))
    chosen = Settings(
        redis_url=server.url, key_prefix="serving:",
        head_timeout_seconds=TIMEOUT, body_timeout_seconds=TIMEOUT,
    )  # fmt: skip
    monkeypatch.setattr(function_settings, "loaded", lambda: chosen)
    asgi._redis.cache_clear()
    wsgi._redis.cache_clear()
    loggers = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name in ("", "uvicorn.error", "uvicorn.access")
        for logger in [logging.getLogger(name)]
    }  # main.py configures logging, a uvicorn worker its loggers: both are put back
    yield
    for name, (handlers, level, propagate) in loggers.items():
        logger = logging.getLogger(name)
        logger.handlers, logger.propagate = handlers, propagate
        logger.setLevel(level)
    wsgi._redis.cache_clear()
    asgi._redis.cache_clear()


def answer_of(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in fields:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def error_of(raw: bytes) -> tuple[int, str, str]:
    """Status, error code and connection header of a JSON error answer, checking its shape."""
    status, headers, body = answer_of(raw)
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    document = json.loads(body)
    assert set(document) == {"error", "message"}
    return status, document["error"], headers.get("connection", "")


def request_bytes(path: str = "/health/readiness", fields: int = 0, field_bytes: int = 0) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: test\r\n"
    head += "".join(f"X-Field-{n}: {'v' * field_bytes}\r\n" for n in range(fields))
    return (head + "\r\n").encode()


def worker_for(application: Any) -> Any:
    """The worker gunicorn would fork for ``application``, built from its configuration."""
    cfg = application.cfg
    return cfg.worker_class(0, os.getppid(), [], application, 30, cfg, Logger(cfg))


@pytest_asyncio.fixture
async def asgi_address(
    framework: None, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[tuple[str, int]]:
    app = functions_framework.aio.create_asgi_app(target="handle", source=str(MAIN))
    application = framework_gunicorn.UvicornApplication(app, "127.0.0.1", 0, False)
    worker = worker_for(application)
    assert isinstance(worker, serving.BoundedUvicornWorker)
    config = worker.config

    async def served(scope: Any, receive: Any, send: Any) -> None:
        # uvicorn calls the app with no arguments to tell a factory; mutmut's wrapper of
        # asgi.app would take that call, this function refuses it as the app itself does.
        await app(scope, receive, send)

    config.app = served
    config.load()
    state = ServerState()
    listener = await asyncio.get_running_loop().create_server(
        lambda: config.http_protocol_class(config=config, server_state=state, app_state={}),
        "127.0.0.1",
        0,
    )
    yield listener.sockets[0].getsockname()[:2]
    for connection in list(state.connections):
        connection.shutdown()
    listener.close()
    await listener.wait_closed()
    await asgi._redis().aclose()
    # No callback of the protocol failed: asyncio would only have logged it.
    records = caplog.get_records("call") + caplog.get_records("teardown")
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> Client:
        return cls(*await asyncio.open_connection(*address))

    async def send(self, data: bytes, pause: float = 0.02) -> None:
        """Sends ``data`` and gives the server time to take it as one piece."""
        self.writer.write(data)
        await self.writer.drain()
        await asyncio.sleep(pause)

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), PATIENCE)
        _, headers, _ = answer_of(head)
        body = await self.reader.readexactly(int(headers["content-length"]))
        return answer_of(head + body)

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        return await asyncio.wait_for(self.reader.read(), PATIENCE)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
def flask_address(framework: None) -> Iterator[tuple[str, int]]:
    app = functions_framework.create_app(target="handle_flask", source=str(MAIN))
    with thread_worker(app) as address:
        yield address


@contextlib.contextmanager
def thread_worker(app: Any) -> Iterator[tuple[str, int]]:
    application = framework_gunicorn.GunicornApplication(app, "127.0.0.1", 0, False, threads=2)
    worker = worker_for(application)
    assert isinstance(worker, serving.BoundedThreadWorker)
    listener = socket.create_server(("127.0.0.1", 0))
    # What the worker's init_process does before run(), less signals and the arbiter's pipe.
    worker.sockets = [listener]
    worker.tpool = worker.get_thread_pool()
    worker.poller = selectors.DefaultSelector()
    worker.method_queue.init()
    worker.load_wsgi()
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()
    yield listener.getsockname()[:2]
    worker.handle_exit(None, None)
    running.join(PATIENCE)
    wsgi._redis().close()


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=PATIENCE)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {raw!r}"
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(answer_of(head + b"\r\n\r\n")[1]["content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return answer_of(head + b"\r\n\r\n" + body)


def read_to_close(sock: socket.socket) -> bytes:
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    return raw
