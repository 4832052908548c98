"""Steady load from concurrent clients, with every request's outcome and times on one clock."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

CLIENT_TIMEOUT = httpx.Timeout(10.0)

# (client number, sequence number) -> (method, path, JSON body or None)
RequestMaker = Callable[[int, int], tuple[str, str, dict[str, object] | None]]


@dataclass
class Outcome:
    method: str
    path: str
    started: float  # time.monotonic()
    ended: float
    status: int | None = None  # None: no HTTP answer
    body: bytes = b""
    error: str = ""  # the transport error's class name when there was no answer
    refused: bool = False  # the connection was refused: nothing was sent

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)

    def between(self, start: float, end: float) -> list[Outcome]:
        """Requests that started in [start, end)."""
        return [o for o in self.outcomes if start <= o.started < end]


async def _client(
    url: str,
    number: int,
    make: RequestMaker,
    stop: threading.Event,
    load: Load,
    fresh_connections: bool,
) -> None:
    # Idle connections dropped before the servers' 2 s keep-alive ends (see scripts/soak.py).
    limits = httpx.Limits(
        max_keepalive_connections=0 if fresh_connections else 1, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        for sequence in itertools.count():
            if stop.is_set():
                return
            method, path, body = make(number, sequence)
            outcome = Outcome(method, path, time.monotonic(), 0.0)
            try:
                response = await http.request(method, path, json=body)
                outcome.status, outcome.body = response.status_code, response.content
            except httpx.ConnectError as error:
                outcome.error, outcome.refused = type(error).__name__, True
                await asyncio.sleep(0.01)  # nothing listens: do not spin
            except httpx.TransportError as error:
                outcome.error = type(error).__name__
            outcome.ended = time.monotonic()
            load.outcomes.append(outcome)


@contextmanager
def steady_load(
    url: str, make: RequestMaker, clients: int = 8, *, fresh_connections: bool = False
) -> Iterator[Load]:
    """Runs ``clients`` concurrent request loops in a background thread while the block runs."""
    load, stop = Load(), threading.Event()

    async def run_all() -> None:
        await asyncio.gather(
            *(_client(url, n, make, stop, load, fresh_connections) for n in range(clients))
        )

    thread = threading.Thread(target=asyncio.run, args=(run_all(),), daemon=True)
    thread.start()
    try:
        yield load
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "a load client hung"


def wait_for(load: Load, count: int, timeout: float = 30.0) -> None:
    """Until the load has ``count`` answered requests (the server is busy, not just started)."""
    deadline = time.monotonic() + timeout
    while sum(o.status is not None for o in load.outcomes) < count:
        assert time.monotonic() < deadline, f"fewer than {count} answers in {timeout} s"
        time.sleep(0.02)
