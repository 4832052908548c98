"""``handle`` as it was before the shared connection, for a before/after comparison in one run.

It differs from ``handle`` in three ways (docs/benchmark.md names them too): redis-py's asyncio
connection pool (connections unnamed) instead of the shared connection; redis-py's pure-Python
reply parser instead of hiredis; and, since this file and not ``function/main.py`` is the source,
``function.serving`` is not installed: functions-framework's own Starlette router serves it.

Served with `functions-framework --asgi --source bench/pool_function.py --target handle`.
"""

import functools

import redis.asyncio
from redis._parsers import _AsyncRESP2Parser
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError

from function import asgi
from function.settings import loaded


@functools.cache
def _pool_client() -> redis.asyncio.Redis:
    settings = loaded()
    pool = redis.asyncio.ConnectionPool.from_url(
        settings.redis_url,
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        max_connections=settings.redis_max_connections,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=0,
        parser_class=_AsyncRESP2Parser,
    )
    return redis.asyncio.Redis(connection_pool=pool)


asgi._redis = _pool_client
handle = asgi.handle
