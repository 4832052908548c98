"""What running without hiredis costs: the shared connection's CPU per Redis command, and the
function's per request, on hiredis and on the pure-Python codec (``function/resp.py``), in one
process against one real Redis, alternating rounds so both see the same machine.

    python -m bench.codec [--rounds 5] [--requests 20000]

Client CPU (``time.process_time``), not wall time: Redis and the loop's waiting are the same for
both; the codec only changes how much CPU this process spends per reply. The requests are the
tutorial's GET of a stored resource, answered by ``function.asgi.respond`` without a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from function import resp, store
from function.asgi import respond
from function.settings import Settings
from tests.support.local_redis import RedisServer

CONCURRENCY = 32


async def _cpu_per_call(call: Callable[[], Awaitable[Any]], count: int) -> float:
    """Microseconds of this process's CPU per call, ``CONCURRENCY`` calls in flight."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(worker(50) for _ in range(CONCURRENCY)))  # warm-up, connect
    started = time.process_time()
    await asyncio.gather(*(worker(count // CONCURRENCY) for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / count * 1e6


def _scope(method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": "/testurl",
        "query_string": b"",
        "headers": headers,
    }


async def _round(url: str, codec: resp.Codec, count: int) -> tuple[float, float]:
    resp.CODEC = codec  # read by each connection as it opens
    settings = Settings.from_env({"REDIS_URL": url})
    client = store.async_client(settings)
    try:
        command = await _cpu_per_call(lambda: client.execute_command("GET", "resource"), count)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = _scope("GET", [])
        answer = await respond(scope, receive, settings, lambda: client)
        assert answer.status == 200, answer
        request = await _cpu_per_call(
            lambda: respond(scope, receive, settings, lambda: client), count
        )
    finally:
        await client.aclose()
    return command, request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    if resp.HIREDIS is None:
        raise SystemExit(f"hiredis is needed for the comparison: {resp.HIREDIS_MISSING}")
    codecs = {"hiredis": resp.HIREDIS, "pure-Python": resp.PYTHON}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in codecs}
    with RedisServer(Path(tempfile.mkdtemp(prefix="bench-codec-"))) as server:
        # The tutorial's resource, written through the function so that it is stored as it does.
        settings = Settings.from_env({"REDIS_URL": server.url})

        async def put() -> None:
            client = store.async_client(settings)
            body = json.dumps({"hello": 999, "text": "x" * 200}).encode()

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            headers = [(b"content-type", b"application/json")]
            scope = _scope("PUT", headers)
            answer = await respond(scope, receive, settings, lambda: client)
            assert answer.status == 201, answer
            await client.execute_command("SET", "resource", body)
            await client.aclose()

        asyncio.run(put())
        for _ in range(args.rounds):
            for name, codec in codecs.items():
                samples[name].append(asyncio.run(_round(server.url, codec, args.requests)))
    medians = {
        name: tuple(statistics.median(s[i] for s in runs) for i in range(2))
        for name, runs in samples.items()
    }
    print(f"client CPU, median of {args.rounds} rounds, {args.requests} calls each")
    for name, (command, request) in medians.items():
        print(f"{name:12} {command:7.1f} µs per GET command  {request:7.1f} µs per GET request")
    (hi_command, hi_request), (py_command, py_request) = medians.values()
    print(
        f"pure-Python / hiredis: {py_command / hi_command:.2f}x per command, "
        f"{py_request / hi_request:.2f}x per request"
    )


if __name__ == "__main__":
    main()
