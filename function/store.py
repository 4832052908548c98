"""Redis clients and the one place a ``RedisCall`` meets Redis.

The ASGI entry point shares one connection per process (``redis_conn``): commands are written as
they come and replies parsed by hiredis, about a tenth of the CPU per command of a connection pool
(the figures are in the README). The Flask entry point serves one request per thread, so it keeps
redis-py's thread-safe pool, which parses with hiredis too once hiredis is installed.

Every request waits at most about ``redis_timeout_seconds`` on Redis: to connect and for its
reply. At most ``redis_max_connections`` requests of a process wait on Redis at once; one more is
answered 503 at once rather than queued.

No command is sent twice where it might have run: a timeout or a dropped connection is answered
503, and only ``NOSCRIPT`` (the script did not run) is followed by the same call as ``EVAL``.
The redis-py pool retries a dropped connection once at once, before the command reached Redis
(a pooled connection may have died with a restarted Redis). Other Redis errors (a wrong type, a
refused command) are faults, answered as a 500 by the adapter.

With ``REDIS_CLUSTER=1`` both entry points use redis-py's cluster clients: slot routing, ``MOVED``
and ``ASK`` redirects, a topology refresh after a node fails. Every request touches one key, so
every command and script runs on the one node that owns its slot.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    MaxConnectionsError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)
from redis.retry import Retry

from .redis_conn import Overloaded, SharedConnection
from .service import RedisCall, Response, finish, overloaded, redis_unavailable, storage_full
from .settings import Settings

# Answered 503: Redis is away, slow, or (in a cluster) between owners of a slot.
UNAVAILABLE = (
    ConnectionError,
    TimeoutError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
    ReadOnlyError,
)
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
        )
    return SharedConnection.from_url(
        settings.redis_url,
        timeout=settings.redis_timeout_seconds,
        max_pending=settings.redis_max_connections,
    )


def sync_client(settings: Settings) -> SyncCommands:
    if settings.redis_cluster:
        return _SyncCluster.from_url(
            settings.redis_url, retry=_cluster_retry(), **_pool_options(settings)
        )
    pool = redis.ConnectionPool.from_url(
        settings.redis_url,
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        **_pool_options(settings),
    )
    return redis.Redis(connection_pool=pool)


def _out_of_memory(error: ResponseError) -> bool:
    # Redis 7 answers a script's refused write as OOM; Redis 6 wraps it in a script error.
    return isinstance(error, OutOfMemoryError) or "-OOM command not allowed" in str(error)


async def run_async(client: AsyncCommands, call: RedisCall) -> Response:
    outcome = await _run_one_async(client, call)
    while isinstance(outcome, RedisCall):  # a value in the format before is read again
        outcome = await _run_one_async(client, outcome)
    return outcome


async def _run_one_async(client: AsyncCommands, call: RedisCall) -> Response | RedisCall:
    try:
        try:
            reply = await client.execute_command(*call.command)
        except NoScriptError:
            if call.fallback is None:
                raise
            reply = await client.execute_command(*call.fallback)
    except Exception as error:
        return _failure_answer(error)
    return finish(call, reply)


def run_sync(client: SyncCommands, call: RedisCall) -> Response:
    outcome = _run_one_sync(client, call)
    while isinstance(outcome, RedisCall):  # a value in the format before is read again
        outcome = _run_one_sync(client, outcome)
    return outcome


def _run_one_sync(client: SyncCommands, call: RedisCall) -> Response | RedisCall:
    try:
        try:
            reply = client.execute_command(*call.command)
        except NoScriptError:
            if call.fallback is None:
                raise
            reply = client.execute_command(*call.fallback)
    except Exception as error:
        return _failure_answer(error)
    return finish(call, reply)


def _failure_answer(error: Exception) -> Response:
    """The answer to a Redis error that has one: busy, away or full. Any other error is a fault,
    raised again for the adapter to answer 500."""
    if isinstance(error, MaxConnectionsError | Overloaded):
        return overloaded(error)
    if isinstance(error, UNAVAILABLE):  # before ResponseError: a cluster's "down" replies are ones
        return redis_unavailable(error)
    if isinstance(error, ResponseError) and _out_of_memory(error):
        return storage_full(error)
    raise error
