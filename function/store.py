"""Redis clients and the one place a ``RedisCall`` meets Redis.

The ASGI entry point shares one connection per process (``redis_conn``): commands are written as
they come and replies parsed by hiredis (by redis-py's Python parser where hiredis cannot be
imported: ``resp``), about a tenth of the CPU per command of a connection pool (the figures are in
the README). The Flask entry point serves one request per thread, so it keeps
redis-py's thread-safe pool, which parses with hiredis too once hiredis is installed.

Every request waits at most about ``redis_timeout_seconds`` on Redis: to connect and for its
reply. At most ``redis_max_connections`` requests of a process wait on Redis at once; one more is
answered 503 at once rather than queued.

Both clients follow one rule: a command is written to Redis once. A timeout or a dropped
connection after it left is answered 503, never by sending it again (it may have run: a hit
counted twice, a write applied after a later one); only ``NOSCRIPT`` (the script did not run) is
followed by the same call as ``EVAL``. The 503 says whether the command surely did not run
(``redis_unavailable``) or, for a change, may have (``outcome_unknown``); ``redis_errors`` holds
the table. A pooled connection that died with a restarted Redis is replaced as it is taken from
the pool, before anything is written (redis-py checks that it is still open).
Other Redis errors (a wrong type, a refused command) are faults, answered as a 500 by the adapter.

With ``REDIS_CLUSTER=1`` both entry points use redis-py's cluster clients: slot routing, ``MOVED``
and ``ASK`` redirects, a topology refresh after a node fails. Every request touches one key, so
every command and script runs on the one node that owns its slot.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    SlotNotCoveredError,
    TimeoutError,
)
from redis.retry import Retry

from .messages import Command, RedisCall, Response
from .redis_conn import SharedConnection
from .redis_errors import Failure, NotSent, classify
from .service import (
    finish,
    overloaded,
    redis_unavailable,
    storage_full,
    unconfirmed,
)
from .settings import Settings

# What Redis's CLIENT LIST shows for every connection the function makes.
CLIENT_NAME = "kv-store"
# A cluster client may retry these alone: each says the command did not run.
CLUSTER_RETRY_ERRORS = (ClusterDownError, SlotNotCoveredError)
CLUSTER_RETRIES = 2


class AsyncCommands(Protocol):
    async def execute_command(self, *args: Any) -> Any: ...

    async def aclose(self) -> None: ...


class SyncCommands(Protocol):
    def execute_command(self, *args: Any) -> Any: ...


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        "max_connections": settings.redis_max_connections,
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "health_check_interval": 0,
        "client_name": CLIENT_NAME,
    }


class _AsyncCluster(redis.asyncio.RedisCluster):
    # redis-py would also resend after a timeout or a dropped connection (the command may have
    # run); a failure there is answered 503 and the next request refreshes the topology.
    ERRORS_ALLOW_RETRY = CLUSTER_RETRY_ERRORS  # type: ignore[assignment]

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except RuntimeError as error:
            # While a node dies, redis-py can write to a transport uvloop has already closed
            # ("the handler is closed"): the node is not answering, which is a 503, not a fault.
            raise ConnectionError(f"Redis Cluster node connection lost: {error}") from error
        except AttributeError as error:
            # The same race one step earlier: the handshake a new connection sends (AUTH,
            # CLIENT SETNAME) finds the connection already torn down, its writer gone (None).
            if "'NoneType'" not in str(error):
                raise
            raise ConnectionError(f"Redis Cluster node connection lost: {error}") from error


class _SyncCluster(redis.RedisCluster):
    ERRORS_ALLOW_RETRY = CLUSTER_RETRY_ERRORS  # type: ignore[assignment]


def _cluster_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.1), CLUSTER_RETRIES)


def async_client(settings: Settings) -> AsyncCommands:
    if settings.redis_cluster:
        return _AsyncCluster.from_url(
            settings.redis_url,
            retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.1), CLUSTER_RETRIES),
            max_connections=settings.redis_max_connections,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
            client_name=CLIENT_NAME,
        )
    return SharedConnection.from_url(
        settings.redis_url,
        timeout=settings.redis_timeout_seconds,
        max_pending=settings.redis_max_connections,
        client_name=CLIENT_NAME,
    )


class _Pool(redis.ConnectionPool):
    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        # A connection that cannot be made or readied sent nothing: a write is known not done.
        try:
            return super().get_connection(*args, **kwargs)
        except (ConnectionError, TimeoutError) as error:
            if classify(error) is Failure.OVERLOADED:
                raise
            raise NotSent(str(error)) from error


def sync_client(settings: Settings) -> SyncCommands:
    if settings.redis_cluster:
        return _SyncCluster.from_url(
            settings.redis_url, retry=_cluster_retry(), **_pool_options(settings)
        )
    # The pool is built here, not by redis.Redis, whose default Retry it would take: a pool's
    # connections send each command once (tests/unit/test_store.py drops one to check).
    pool = _Pool.from_url(settings.redis_url, **_pool_options(settings))
    return redis.Redis(connection_pool=pool)


# The commands one request sends, one at a time: a driver sends each to Redis and sends back its
# reply, or throws in the error it met; what the generator returns is the answer.
Steps = Generator[Command, Any, Response]


def steps(call: RedisCall) -> Steps:
    """The one exchange with Redis both I/O styles drive (``run_async``, ``run_sync``)."""
    outcome: Response | RedisCall = call
    while isinstance(outcome, RedisCall):  # a value in the format before is read again
        outcome = yield from _step(outcome)
    return outcome


def _step(call: RedisCall) -> Generator[Command, Any, Response | RedisCall]:
    try:
        try:
            reply = yield call.command
        except NoScriptError:
            if call.fallback is None:
                raise
            reply = yield call.fallback
    except Exception as error:
        return _failure_answer(call, error)
    return finish(call, reply)


async def run_async(client: AsyncCommands, call: RedisCall) -> Response:
    exchange = steps(call)
    try:
        command = next(exchange)
        while True:
            try:
                reply = await client.execute_command(*command)
            except Exception as error:
                command = exchange.throw(error)
            else:
                command = exchange.send(reply)
    except StopIteration as done:
        answer: Response = done.value
        return answer


def run_sync(client: SyncCommands, call: RedisCall) -> Response:
    exchange = steps(call)
    try:
        command = next(exchange)
        while True:
            try:
                reply = client.execute_command(*command)
            except Exception as error:
                command = exchange.throw(error)
            else:
                command = exchange.send(reply)
    except StopIteration as done:
        answer: Response = done.value
        return answer


def _failure_answer(call: RedisCall, error: Exception) -> Response:
    """The answer to a Redis failure that has one (redis_errors): busy, away, full, or a change
    whose outcome is not known. Any other error is a fault, raised again for the adapter's 500."""
    failure = classify(error)
    if failure is Failure.OVERLOADED:
        return overloaded(error)
    if failure is Failure.FULL:
        return storage_full(error)
    if failure is Failure.UNCONFIRMED and call.unconfirmed is not None:
        return unconfirmed(call.unconfirmed, error)
    if failure is not None:
        return redis_unavailable(error)
    raise error
