"""One Redis connection shared by all of a process's requests (asyncio), replies parsed by hiredis.

A pool hands each request a connection of its own and pays, per command, for checking it out,
a write and a read system call, and redis-py's Python-level reply parsing. Here every request
writes its command into one connection as it comes (commands of the same event-loop turn, and of
the requests that turn woke, leave in one write, so Redis reads them in one system call too) and
waits for its reply; replies come back in the order the commands went out and ``hiredis.Reader``
(C) parses them; where hiredis cannot be imported, redis-py's pure-Python parser does (``resp``).

What a shared connection must get right, and where it is done:
- every reply is awaited at most ``timeout`` seconds (``_Link._expire``); a reply that comes after
  its request gave up is read and thrown away, so later replies still meet their own requests;
- when the connection drops, every request still waiting is failed at once (``connection_lost``);
- a connection that has said nothing for twice the timeout while replies are overdue is dropped;
- reconnection happens on demand, after a back-off that grows while Redis stays away;
- a command is never sent twice: nothing is retried here (``EVALSHA``'s ``NOSCRIPT`` fallback, in
  the caller, resends a command that did not run);
- at most ``max_pending`` replies awaited and ``max_buffer_bytes`` unsent: beyond, ``QueueFull``;
- a command that could not be sent (no connection) fails with ``NotSent``: known not to have run;
- ``REDIS_URL`` means what it means to redis-py (its own parser reads it): password, user, database,
  ``rediss://`` with its ``ssl_*`` options, ``unix://`` sockets.

Errors are redis-py's exception classes, error replies made by ``redis_errors.reply_error``, so one
caller serves this client and redis-py's alike. The connection names itself (``CLIENT SETNAME``)
so that an operator sees whose it is.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from . import redis_errors, resp
from .redis_errors import NotSent, QueueFull, reply_error

# Back-off between connection attempts after failures: 25 ms, doubling, at most this.
BACKOFF_FIRST_SECONDS = 0.025
BACKOFF_MAX_SECONDS = 0.5


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, from a ``redis://``, ``rediss://`` or ``unix://`` URL."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket
    ssl_context: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0
    client_name: str | None = None

    @classmethod
    def from_url(cls, url: str, client_name: str | None = None) -> Endpoint:
        options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        context = None
        if options.get("connection_class") is SSLConnection:
            context = _ssl_context(options)
        return cls(
            host=options.get("host", "localhost"),
            port=int(options.get("port", 6379)),
            path=options.get("path"),
            ssl_context=context,
            username=options.get("username"),
            password=options.get("password"),
            db=int(options.get("db", 0)),
            client_name=client_name,
        )

    def handshake(self) -> list[tuple[Any, ...]]:
        """Commands that make a fresh connection ready: authenticate, select the database."""
        commands: list[tuple[Any, ...]] = []
        if self.password is not None:
            user = (self.username,) if self.username else ()
            commands.append(("AUTH", *user, self.password))
        if self.db:
            commands.append(("SELECT", self.db))
        if self.client_name:
            commands.append(("CLIENT", "SETNAME", self.client_name))
        return commands


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    # The same ssl_* query options redis-py takes; certificates are verified unless told not to.
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_ca_path"):
        context.load_verify_locations(capath=options["ssl_ca_path"])
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", "0"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif str(options.get("ssl_check_hostname", "true")).lower() in ("false", "0", "no"):
        context.check_hostname = False
    return context


class _Link(asyncio.Protocol):
    """One open connection: the commands written and, in the same order, their waiting requests."""

    def __init__(self, timeout: float, max_pending: int, max_buffer_bytes: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_buffer_bytes = max_buffer_bytes
        codec = resp.CODEC
        self.reader = codec.reader(ResponseError)
        self.pack = codec.pack
        self.protocol_error = codec.protocol_error
        self.transport: asyncio.Transport | None = None
        # (future, deadline) per command written; a future already done was given up on.
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.unsent: list[bytes] = []
        self.unsent_bytes = 0
        self.timer: asyncio.TimerHandle | None = None
        self.last_received = self.loop.time()
        self.closed = False
        self.closed_because: Exception | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        try:
            reply = reader.gets()
            while reply is not False:
                future = pending.popleft()[0]
                if not future.done():  # else it timed out (or was cancelled): discard
                    if isinstance(reply, ResponseError):
                        future.set_exception(reply_error(str(reply)))
                    else:
                        future.set_result(reply)
                reply = reader.gets()
        except (self.protocol_error, IndexError) as error:  # garbage, or a reply nobody asked
            self.close(ConnectionError(f"Redis sent an unreadable reply: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        reason = exc or ConnectionError("Redis closed the connection")
        self.close(reason if isinstance(reason, ConnectionError) else ConnectionError(reason))

    # -- requests ---------------------------------------------------------------------------
    def send(self, command: Sequence[Any]) -> asyncio.Future[Any]:
        if self.closed:
            raise NotSent(f"connection to Redis lost: {self.closed_because}")
        if len(self.pending) >= self.max_pending:
            raise QueueFull(
                f"Too many connections: {len(self.pending)} requests already wait on Redis "
                "(REDIS_MAX_CONNECTIONS)"
            )
        assert self.transport is not None
        if self.transport.get_write_buffer_size() + self.unsent_bytes > self.max_buffer_bytes:
            raise QueueFull("Too many connections: the write buffer to Redis is full")
        packed = self.pack(tuple(command))
        if not self.unsent:
            self.loop.call_soon(self._flush_after_ready)
        self.unsent.append(packed)
        self.unsent_bytes += len(packed)
        future: asyncio.Future[Any] = self.loop.create_future()
        deadline = self.loop.time() + self.timeout
        self.pending.append((future, deadline))
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self._expire)
        return future

    def _flush_after_ready(self) -> None:
        # Runs after what was ready when the first command came; going to the back of the queue
        # once more lets the requests that the same turn's replies and arrivals woke add their
        # commands too: twice the commands per write under load (a third less Redis CPU per
        # command, measured), for one more pass through the loop before they leave.
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        # Everything written since the last write leaves in one write.
        if self.unsent and not self.closed:
            assert self.transport is not None
            self.transport.write(b"".join(self.unsent))
        self.unsent.clear()
        self.unsent_bytes = 0

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        overdue = False
        for future, deadline in self.pending:
            if deadline > now:
                self.timer = self.loop.call_at(deadline, self._expire)
                break
            if not future.done():
                future.set_exception(TimeoutError("Timeout reading from Redis"))
            overdue = True
        if overdue and now - self.last_received >= 2 * self.timeout:
            self.close(ConnectionError("Redis stopped answering; connection dropped"))

    def close(self, reason: Exception) -> None:
        """Fail every waiting request at once and let go of the socket."""
        if self.closed:
            return
        self.closed, self.closed_because = True, reason
        if self.timer is not None:
            self.timer.cancel()
        while self.pending:
            future = self.pending.popleft()[0]
            if not future.done():
                future.set_exception(ConnectionError(f"connection to Redis lost: {reason}"))
        if self.transport is not None:
            self.transport.abort()


class SharedConnection:
    """The process's one connection to Redis, opened on first use and reopened after a loss."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float,
        max_pending: int,
        max_buffer_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_buffer_bytes = max_buffer_bytes
        self._link: _Link | None = None
        self._opening: asyncio.Task[_Link] | None = None
        self._failures = 0
        self._next_attempt = 0.0

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, max_pending: int, client_name: str | None = None
    ) -> SharedConnection:
        return cls(Endpoint.from_url(url, client_name), timeout=timeout, max_pending=max_pending)

    async def execute_command(self, *command: Any) -> Any:
        link = self._link
        if link is None or link.closed:
            link = await self._open()
        return await link.send(command)

    async def aclose(self) -> None:
        if self._link is not None:
            self._link.close(ConnectionError("closed by the client"))
            self._link = None

    async def _open(self) -> _Link:
        # Requests that find no connection share one attempt; a cancelled request leaves it be.
        if self._opening is None or self._opening.done():
            self._opening = asyncio.get_running_loop().create_task(self._attempt())
        return await asyncio.shield(self._opening)

    async def _attempt(self) -> _Link:
        loop = asyncio.get_running_loop()
        delay = self._next_attempt - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            link = await asyncio.wait_for(self._connect(), self.timeout)
        except Exception as error:
            self._failures += 1
            backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (self._failures - 1))
            self._next_attempt = loop.time() + backoff
            if isinstance(error, NotSent):
                raise
            if isinstance(error, asyncio.TimeoutError | TimeoutError):
                raise NotSent("Timeout connecting to Redis") from error
            raise NotSent(f"Error connecting to Redis: {error}") from error
        self._failures = 0
        self._link = link
        return link

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint

        def protocol() -> _Link:
            return _Link(self.timeout, self.max_pending, self.max_buffer_bytes)

        link: _Link
        if endpoint.path is not None:
            _, link = await loop.create_unix_connection(protocol, endpoint.path)
        else:
            _, link = await loop.create_connection(
                protocol, endpoint.host, endpoint.port, ssl=endpoint.ssl_context
            )
        try:
            steps = [link.send(command) for command in endpoint.handshake()]
            replies = await asyncio.gather(*steps, return_exceptions=True)
        except BaseException as error:
            link.close(ConnectionError(f"interrupted while connecting: {error!r}"))
            raise
        refused = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if refused is not None:
            link.close(ConnectionError(str(refused)))
            raise NotSent(f"Redis refused the connection: {redis_errors.describe(refused)}")
        return link
