"""Redis clients and the one place a ``RedisCall`` meets Redis.

Every request waits at most about ``redis_timeout_seconds`` on Redis: to connect and for each
reply. A process holds at most ``redis_max_connections``; a request that finds them all busy is
answered 503 at once (a pool that waits for a free connection instead costs every request an
asyncio condition and timer: about 13% of the throughput of ``handle``).

A dropped connection is retried once at once (a pooled connection may have died with a
restarted Redis); a timeout is not retried, since the command may have run. Connections are made
on first use and remade after errors, so Redis can come and go. Other Redis errors (a wrong type,
a refused command) are faults, answered as a 500 by the adapter.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ConnectionError,
    MaxConnectionsError,
    NoScriptError,
    OutOfMemoryError,
    ResponseError,
    TimeoutError,
)
from redis.retry import Retry

from .service import (
    RedisCall,
    Response,
    finish,
    overloaded,
    redis_unavailable,
    storage_full,
)
from .settings import Settings


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        "max_connections": settings.redis_max_connections,
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "health_check_interval": 0,
    }


def async_client(settings: Settings) -> redis.asyncio.Redis:
    pool = redis.asyncio.ConnectionPool.from_url(
        settings.redis_url,
        retry=AsyncRetry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        **_pool_options(settings),
    )
    return redis.asyncio.Redis(connection_pool=pool)


def sync_client(settings: Settings) -> redis.Redis:
    pool = redis.ConnectionPool.from_url(
        settings.redis_url,
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        **_pool_options(settings),
    )
    return redis.Redis(connection_pool=pool)


def _out_of_memory(error: ResponseError) -> bool:
    # Redis 7 answers a script's refused write as OOM; Redis 6 wraps it in a script error.
    return isinstance(error, OutOfMemoryError) or "-OOM command not allowed" in str(error)


async def run_async(client: redis.asyncio.Redis, call: RedisCall) -> Response:
    try:
        try:
            reply = await client.execute_command(*call.command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            if call.fallback is None:
                raise
            reply = await client.execute_command(*call.fallback)  # type: ignore[no-untyped-call]
    except MaxConnectionsError as error:
        return overloaded(error)
    except ResponseError as error:
        if not _out_of_memory(error):
            raise
        return storage_full(error)
    except (ConnectionError, TimeoutError) as error:
        return redis_unavailable(error)
    return finish(call, reply)


def run_sync(client: redis.Redis, call: RedisCall) -> Response:
    try:
        try:
            reply = client.execute_command(*call.command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            if call.fallback is None:
                raise
            reply = client.execute_command(*call.fallback)  # type: ignore[no-untyped-call]
    except MaxConnectionsError as error:
        return overloaded(error)
    except ResponseError as error:
        if not _out_of_memory(error):
            raise
        return storage_full(error)
    except (ConnectionError, TimeoutError) as error:
        return redis_unavailable(error)
    return finish(call, reply)
