"""The generator itself, in this process, against real HTTP servers: the open model's promises."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from loadtest.engine import SEND_TICK_S, Engine, EngineResult, EngineSpec
from loadtest.mix import RequestMix
from loadtest.profiles import Profile, Stage
from tests.conftest import RunningFunction, StartFunction
from tests.loadtest.test_loadtest_runs import StallingServer


def spec(url: str, stages: tuple[Stage, ...], cap: int = 1000) -> EngineSpec:
    return EngineSpec(
        url=url,
        profile=Profile("p", stages),
        mix=RequestMix.parse("count=1"),
        run_prefix="engine-test",
        timeout_s=10.0,
        resource_count=10,
        max_in_flight=cap,
        host_header=None,
    )


def run(engine_spec: EngineSpec, block_at_s: float | None = None) -> EngineResult:
    async def main() -> EngineResult:
        started_at = time.time()
        engine = Engine(engine_spec, started_at)
        if block_at_s is not None:
            # The generator's own loop stops for 0.3 s: requests falling due meanwhile go late.
            asyncio.get_running_loop().call_at(
                asyncio.get_running_loop().time() + block_at_s, time.sleep, 0.3
            )
        return await engine.run()

    return asyncio.run(main())


def test_a_late_send_counts_from_its_due_time(start_function: StartFunction) -> None:
    served: RunningFunction = start_function()
    result = run(spec(served.url, (Stage(2, rate=50.0),)), block_at_s=0.5)
    assert len(result.due) == 100  # ceil(50 x 2), every one sent
    late = [
        (sent - due, end - due, end - sent)
        for due, sent, end in zip(result.due, result.sent, result.end, strict=True)
        if sent - due >= 0.2
    ]
    # Requests due in the first part of the block went out at least 0.2 s late; their latency
    # includes that wait, their service time does not.
    assert len(late) >= 5
    assert all(latency >= wait and latency - service >= 0.2 for wait, latency, service in late)
    assert all(status == 200 for status in result.status)
    assert_in_flight_matches_the_requests(result)


def assert_in_flight_matches_the_requests(result: EngineResult) -> None:
    """The per-second mean equals the requests' own [sent, end) intervals, second by second."""
    t0 = result.started_at
    for second, mean in enumerate(result.in_flight_mean):
        start, stop = t0 + second, t0 + second + 1
        area = sum(
            max(0.0, min(end, stop) - max(sent, start))
            for sent, end in zip(result.sent, result.end, strict=True)
        )
        assert mean == pytest.approx(area, abs=1e-6)


def test_the_in_flight_cap_drops_and_counts() -> None:
    server = StallingServer()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = run(spec(url, (Stage(3, rate=40.0),), cap=5))
    finally:
        server.shutdown()
        server.server_close()
    dropped = sum(result.dropped)
    # During the one-second stall five requests are out and the rest due then are dropped.
    assert dropped > 0
    assert len(result.due) + dropped == 120
    assert max(result.in_flight_max) == 5
    assert result.unfinished == 0
    # Keep-alive: never more connections than requests out at once.
    assert result.connections_opened <= 5
    assert_in_flight_matches_the_requests(result)


def test_requests_released_together_keep_their_own_due_times(
    start_function: StartFunction,
) -> None:
    served: RunningFunction = start_function()
    rate = 4 / SEND_TICK_S  # four requests fall due in every tick
    result = run(spec(served.url, (Stage(1, rate=rate),)))
    count = len(result.due)
    assert count == round(rate) and sum(result.dropped) == 0
    # Each request keeps the moment the schedule gave it, not the moment of the wakeup that
    # sent it: latency counts from there, service time from the send.
    assert sorted(result.due) == pytest.approx(
        [result.started_at + i / rate for i in range(count)], abs=1e-9
    )
    order = sorted(range(count), key=lambda i: result.due[i])
    sent = [result.sent[i] for i in order]
    assert all(s >= d for s, d in zip(sent, sorted(result.due), strict=True))
    assert all(
        end - due >= end - sent_at
        for due, sent_at, end in zip(result.due, result.sent, result.end, strict=True)
    )
    # Requests go out in batches, one wakeup for all due by then: most are sent in the same
    # instant as the one before them, though due a quarter of a tick later.
    together = sum(1 for a, b in itertools.pairwise(sent) if b - a < SEND_TICK_S / 8)
    assert together >= count / 2
    assert all(status == 200 for status in result.status)
    assert_in_flight_matches_the_requests(result)
