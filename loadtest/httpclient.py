"""A lean HTTP/1.1 client for the generator: keep-alive connections from a pool, no coroutine per
request, responses parsed by httptools (the parser uvicorn uses).

A general client (aiohttp, httpx) spends most of its time per request on features a load
generator does not need (cookies, redirects, header objects, a task per request); here a request
is one write and one parser pass, and its answer comes back through a callback. Bodies are read
and dropped: the generator needs only the status.

A request that went out on a reused connection which the server had already closed (a keep-alive
timeout racing the write) and got no byte back is sent once more on a new connection, the way
Go's and curl's clients do; every other failure is reported as it happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

# ``on_done(status, failure)``: an HTTP status (failure None), or 0 and one of
# "timeout", "connection", "other".
Done = Callable[[int, str | None], None]


class _Connection(asyncio.Protocol):
    """One TCP connection with at most one request on it at a time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.got_bytes = False
        self.payload = b""
        self.on_done: Done | None = None
        self.status = 0
        self.deadline = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes, but have their methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("other")
        except httptools.HttpParserError:
            self._fail("other")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.on_done is None:
            return
        if self.reused and not self.got_bytes:
            # The server closed an idle keep-alive connection as we wrote: send again, once.
            on_done, payload = self.on_done, self.payload
            self.on_done = None
            self.pool.resend(payload, on_done, self.deadline)
            return
        self._finish(0, "connection")

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        self._finish(self.status, None)
        if keep_alive and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    # the pool's side
    def send(self, payload: bytes, on_done: Done, deadline: float) -> None:
        assert self.transport is not None
        self.payload, self.on_done, self.deadline = payload, on_done, deadline
        self.got_bytes = False
        self.status = 0
        self.transport.write(payload)
        self.pool.watch()

    def time_out(self) -> None:
        self._fail("timeout")

    def close(self) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, failure: str) -> None:
        self._finish(0, failure)
        self.close()

    def _finish(self, status: int, failure: str | None) -> None:
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(status, failure)


class ConnectionPool:
    """Keep-alive connections to one host:port, opened on demand and reused last-in first-out.

    Timeouts are found by one timer for the whole pool that looks at the requests out every tenth
    of the timeout (at most a second), not by a timer per request: arming and cancelling one per
    request cost more than the request's own bookkeeping. A request that times out is failed at
    most that tenth late.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.ssl = parts.scheme == "https"
        self.port = parts.port or (443 if self.ssl else 80)
        self.timeout_s = timeout_s
        self.sweep_s = min(1.0, max(0.01, timeout_s / 10))
        self._sweeper: asyncio.TimerHandle | None = None
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.opened = 0

    def start(self, payload: bytes, on_done: Done) -> None:
        """Send ``payload`` (a whole request); ``on_done`` runs once, with the outcome."""
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        self._dispatch(payload, on_done, deadline, reuse=True)

    def resend(self, payload: bytes, on_done: Done, deadline: float) -> None:
        self._dispatch(payload, on_done, deadline, reuse=False)

    def _dispatch(self, payload: bytes, on_done: Done, deadline: float, reuse: bool) -> None:
        loop = asyncio.get_running_loop()
        while reuse and self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                connection.reused = True
                connection.send(payload, on_done, deadline)
                return
        task = loop.create_task(self._open_and_send(payload, on_done, deadline))
        task.add_done_callback(_consume)

    async def _open_and_send(self, payload: bytes, on_done: Done, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl or None
                ),
                timeout=max(0.0, deadline - loop.time()),
            )
        except TimeoutError:
            on_done(0, "timeout")
            return
        except OSError:
            on_done(0, "connection")
            return
        self.opened += 1
        self._all.add(connection)
        connection.send(payload, on_done, deadline)

    def release(self, connection: _Connection) -> None:
        self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        self._all.discard(connection)

    def watch(self) -> None:
        """A request went out: make sure its deadline is looked at."""
        if self._sweeper is None:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_at(loop.time() + self.sweep_s, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for connection in list(self._all):
            if connection.on_done is not None and connection.deadline <= now:
                connection.time_out()
        if any(connection.on_done is not None for connection in self._all):
            self.watch()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._all):
            connection.close()
        self._all.clear()
        self._idle.clear()


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
