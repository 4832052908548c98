"""One generator process: the profile's stages on an asyncio loop, every request recorded.

Rate stages are an open model (like vegeta, wrk2 and k6's arrival-rate executors): request i of a
stage is due at ``start + i / rate`` whatever the answers do, and its latency is measured from
that due time, so a stall shows as the delay every waiting request saw. The time from the actual
send to the answer (service time) is kept beside it. The scheduler wakes at most once per tick
(``SEND_TICK_S``) and sends everything due by then, so a request may wait up to a tick, and that
wait is in its latency. At most ``max_in_flight`` requests are outstanding; a request due while
the cap is reached is dropped and counted, never sent late.

Users stages are a closed model: each user sends its next request when the last one is answered.
At a stage change nothing is cancelled: users finish the request they have out, rate stages stop
scheduling, and every request sent is waited for (up to its timeout), so sent = answered + failed.

With ``--processes N`` each process runs the same stages with a share of the load: user j of M
runs in process j mod N, and request i of a rate stage in process i mod N, so together they keep
exactly the schedule one process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psutil

from loadtest.httpclient import ConnectionPool
from loadtest.mix import RequestMix
from loadtest.profiles import Profile

RESOURCE_TTL_S = 3600
FAILURE_KINDS = ("timeout", "connection", "other")
# After a request that got no answer, a user pauses this long, so a dead target does not turn
# the generator into a busy loop.
PAUSE_AFTER_FAILURE_S = 0.1
# The event loop's own delay is measured by a timer that should fire this often.
LAG_PROBE_S = 0.02
# Longest wait of a rate stage's scheduler, so that Ctrl-C is noticed promptly.
MAX_NAP_S = 0.1
# A rate stage wakes at most once per tick and sends every request due by then. On a virtual
# machine a wakeup costs several times the CPU of the request it sends; at high rates one wakeup
# sends several. The tick is the event loop's own timer resolution: a coarser one would cut CPU
# at low rates but add its wait to every latency reported (from the due time).
SEND_TICK_S = 0.001


@dataclass(frozen=True)
class EngineSpec:
    url: str
    profile: Profile
    mix: RequestMix
    run_prefix: str
    timeout_s: float
    resource_count: int
    max_in_flight: int
    host_header: str | None
    token: str | None = field(default=None, repr=False)
    process_index: int = 0
    process_count: int = 1


@dataclass
class LiveSecond:
    """What one process did in one second, for the progress line."""

    process_index: int
    second: int
    sent: int
    answered: int
    errors: int
    dropped: int
    latencies_ms: list[float]
    in_flight_mean: float
    cpu_percent: float | None


@dataclass
class EngineResult:
    """Every request of one process (parallel arrays) and its per-second measurements."""

    process_index: int
    started_at: float
    kind: array[int] = field(default_factory=lambda: array("B"))
    due: array[float] = field(default_factory=lambda: array("d"))
    sent: array[float] = field(default_factory=lambda: array("d"))
    end: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("H"))
    failure: array[int] = field(default_factory=lambda: array("B"))  # 0, else FAILURE_KINDS + 1
    dropped: list[int] = field(default_factory=list)  # by the second they were due
    in_flight_mean: list[float] = field(default_factory=list)
    in_flight_max: list[int] = field(default_factory=list)
    lag_mean_ms: list[float | None] = field(default_factory=list)
    lag_max_ms: list[float | None] = field(default_factory=list)
    cpu_percent: list[float | None] = field(default_factory=list)
    cpu_seconds: float = 0.0
    created: list[str] = field(default_factory=list)
    connections_opened: int = 0
    unfinished: int = 0
    interrupted: bool = False


class InFlightGauge:
    """Requests started and not yet answered: exact time-weighted mean and maximum per second."""

    def __init__(self, started_at: float, seconds: int) -> None:
        self.started_at = started_at
        self.seconds = seconds
        self.area = [0.0] * seconds
        self.maximum = [0] * seconds
        self.value = 0
        self.last = started_at
        # The second that ``last`` lies in, for the fast path of ``advance``.
        self.second = 0
        self.second_start = started_at
        self.second_end = started_at + 1 if seconds > 1 else started_at + seconds

    def _index(self, at: float) -> int:
        return min(max(int(at - self.started_at), 0), self.seconds - 1)

    def advance(self, now: float) -> None:
        last = self.last
        if self.second_start <= last < now < self.second_end:
            # Within the second already being summed: the common case, once per request.
            self.area[self.second] += self.value * (now - last)
            self.last = now
            return
        # Time after the run's last second (answers still coming in) belongs to no second.
        now = min(now, self.started_at + self.seconds)
        moment = max(last, self.started_at)
        while moment < now:
            index = self._index(moment)
            boundary = self.started_at + index + 1
            if index == self.seconds - 1 or now < boundary:
                self.area[index] += self.value * (now - moment)
                break
            self.area[index] += self.value * (boundary - moment)
            moment = boundary
            following = self.maximum[index + 1]
            self.maximum[index + 1] = max(following, self.value)
        self.last = max(last, now)
        if self.last >= self.started_at:
            self.second = self._index(self.last)
            self.second_start = self.started_at + self.second
            self.second_end = min(self.second_start + 1, self.started_at + self.seconds)

    def change(self, now: float, delta: int) -> None:
        self.advance(now)
        self.last = max(self.last, now)
        self.value += delta
        index = self.second if self.second_start <= now < self.second_end else self._index(now)
        if self.value > self.maximum[index]:
            self.maximum[index] = self.value

    def means(self) -> list[float]:
        return list(self.area)


def _share(total: int, index: int, count: int) -> int:
    """Process ``index``'s part of ``total`` users: user j runs in process j mod count."""
    return total // count + (1 if index < total % count else 0)


def _wake(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)


class Engine:
    def __init__(
        self,
        spec: EngineSpec,
        started_at: float,
        live: Callable[[LiveSecond], None] | None = None,
    ) -> None:
        self.spec = spec
        self.started_at = started_at
        self.live = live
        self.duration = spec.profile.duration_s
        self.result = EngineResult(spec.process_index, started_at)
        self.result.dropped = [0] * self.duration
        self.sent_per_second = [0] * self.duration
        self.gauge = InFlightGauge(started_at, self.duration)
        self.rng = random.Random()
        self.stopping = False
        self.idle = asyncio.Event()
        self.idle.set()
        self._created: set[str] = set()
        self._sequence = 0
        self._lags: list[float] = []
        self._probe: asyncio.TimerHandle | None = None
        self._sleepers: set[asyncio.Future[None]] = set()
        self.cap = max(1, spec.max_in_flight // spec.process_count)
        parts = urlsplit(spec.url)
        self.base_path = parts.path.rstrip("/")
        host = spec.host_header or parts.netloc
        self._head = f" HTTP/1.1\r\nHost: {host}\r\nUser-Agent: loadtest\r\n"
        if spec.token:
            self._head += f"Authorization: Bearer {spec.token}\r\n"
        self._count_request = self._get(self.base_path + "/")
        self.pool = ConnectionPool(spec.url, spec.timeout_s)

    # requests

    def _get(self, path: str) -> bytes:
        return f"GET {path}{self._head}\r\n".encode()

    def _put(self, path: str) -> bytes:
        self._sequence += 1
        body = json.dumps(
            {"writer": self.spec.process_index, "sequence": self._sequence, "note": "load test"}
        ).encode()
        head = (
            f"PUT {path}?ttl={RESOURCE_TTL_S}{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def _resource_path(self) -> str:
        index = self.rng.randrange(self.spec.resource_count)
        return f"{self.base_path}/loadtest/{self.spec.run_prefix}/item-{index}"

    def _next_request(self) -> tuple[int, bytes, str | None]:
        kind = self.spec.mix.pick(self.rng)
        if kind == "count":
            return 0, self._count_request, None
        if kind == "get" and self.result.created:
            return 1, self._get(self.rng.choice(self.result.created)), None
        # A read before anything was written becomes a write: reads never ask for what is not
        # there.
        path = self._resource_path()
        return 2, self._put(path), path

    def fire(
        self, due: float, waiter: asyncio.Future[int] | None = None, sent: float | None = None
    ) -> None:
        """Send one request; ``sent`` is the moment it is counted as sent (default: now)."""
        kind, payload, written = self._next_request()
        sent = time.time() if sent is None else sent
        self.gauge.change(sent, 1)
        self.sent_per_second[min(max(int(sent - self.started_at), 0), self.duration - 1)] += 1
        self.idle.clear()
        result = self.result

        def on_done(status: int, failure: str | None) -> None:
            end = time.time()
            result.kind.append(kind)
            result.due.append(due)
            result.sent.append(sent)
            result.end.append(end)
            result.status.append(status)
            result.failure.append(0 if failure is None else FAILURE_KINDS.index(failure) + 1)
            self.gauge.change(end, -1)
            if written is not None and status in (200, 201) and written not in self._created:
                self._created.add(written)
                result.created.append(written)
            if self.gauge.value == 0:
                self.idle.set()
            if waiter is not None and not waiter.done():
                waiter.set_result(status)

        self.pool.start(payload, on_done)

    # stages

    async def _sleep_until(self, moment: float) -> None:
        """Wait until ``moment`` (wall clock) or until stopped: one wakeup, not one per nap."""
        loop = asyncio.get_running_loop()
        while not self.stopping:
            left = moment - time.time()
            if left <= 0:
                return
            waker: asyncio.Future[None] = loop.create_future()
            self._sleepers.add(waker)
            timer = loop.call_later(left, _wake, waker)
            try:
                await waker
            finally:
                timer.cancel()
                self._sleepers.discard(waker)

    async def _rate_stage(self, rate: float, start: float, duration_s: int) -> None:
        total = math.ceil(rate * duration_s - 1e-9)
        step = self.spec.process_count
        index = self.spec.process_index
        dropped = self.result.dropped
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        # The scheduler's own wakeups measure the loop's lag while it runs: the probe's would
        # only add wakeups.
        self._stop_probe()
        planned = loop.time()

        # A timer callback, not a coroutine that sleeps: one wakeup sends everything due by
        # then, with no future or task step per wakeup.
        def send_due() -> None:
            nonlocal index, planned
            self._lags.append(max(0.0, loop.time() - planned) * 1000)
            now = time.time()
            due = start + index / rate
            while due <= now and index < total:
                if self.gauge.value >= self.cap:
                    dropped[min(max(int(due - self.started_at), 0), self.duration - 1)] += 1
                else:
                    self.fire(due)
                index += step
                due = start + index / rate
            if index >= total or self.stopping:
                self._start_probe()
                finished.set_result(None)
                return
            # At most one wakeup per tick, and never shorter than the loop's millisecond timers
            # (a shorter wait would return at once and spin). Latency counts from the due time,
            # so the wait for the tick is in it; service time, from the send, is not.
            wait = min(max(SEND_TICK_S, due - time.time()), MAX_NAP_S)
            planned = loop.time() + wait
            loop.call_at(planned, send_due)

        send_due()
        await finished

    async def _user(self, end: float) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            # One reading of the clock decides and stamps the send: a request let through
            # before the stage's end is counted in the stage, never in the second after it.
            now = time.time()
            if now >= end:
                return
            waiter: asyncio.Future[int] = loop.create_future()
            self.fire(now, waiter, now)
            status = await waiter
            if status == 0:
                await asyncio.sleep(PAUSE_AFTER_FAILURE_S)

    async def _stages(self) -> None:
        start = self.started_at
        users: list[asyncio.Task[None]] = []
        for stage in self.spec.profile.stages:
            await self._sleep_until(start)
            end = start + stage.duration_s
            if stage.rate:
                await self._rate_stage(stage.rate, start, stage.duration_s)
            elif stage.users:
                count = _share(stage.users, self.spec.process_index, self.spec.process_count)
                users.extend(asyncio.create_task(self._user(end)) for _ in range(count))
            await self._sleep_until(end)
            start = end
        # Users finish the request they have out; answers are waited for up to their timeout.
        if users:
            await asyncio.gather(*users)
        if not self.stopping:
            with contextlib.suppress(TimeoutError):
                # A timeout is found up to one sweep of the pool late.
                wait_s = self.spec.timeout_s + self.pool.sweep_s + 1
                await asyncio.wait_for(self.idle.wait(), wait_s)

    # measurements

    def _start_probe(self) -> None:
        loop = asyncio.get_running_loop()
        expected = loop.time() + LAG_PROBE_S

        def probe() -> None:
            self._lags.append(max(0.0, loop.time() - expected) * 1000)
            self._start_probe()

        self._probe = loop.call_at(expected, probe)

    def _stop_probe(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    async def _every_second(self) -> None:
        process = psutil.Process()
        times = process.cpu_times()
        cpu_before, wall_before = times.user + times.system, time.time()
        cpu_start = cpu_before
        done_before = 0
        result = self.result
        for second in range(self.duration):
            await self._sleep_until(self.started_at + second + 1)
            if self.stopping:
                break
            now = time.time()
            self.gauge.advance(now)
            times = process.cpu_times()
            cpu_now = times.user + times.system
            result.cpu_percent.append(100 * (cpu_now - cpu_before) / max(1e-6, now - wall_before))
            cpu_before, wall_before = cpu_now, now
            lags, self._lags = self._lags, []
            result.lag_mean_ms.append(sum(lags) / len(lags) if lags else None)
            result.lag_max_ms.append(max(lags) if lags else None)
            if self.live is not None:
                done = len(result.end)
                statuses = result.status[done_before:done]
                self.live(
                    LiveSecond(
                        process_index=self.spec.process_index,
                        second=second,
                        sent=self.sent_per_second[second],
                        answered=sum(1 for s in statuses if s),
                        errors=sum(1 for s in statuses if s == 0 or s >= 400),
                        dropped=result.dropped[second],
                        latencies_ms=[
                            (result.end[i] - result.due[i]) * 1000 for i in range(done_before, done)
                        ],
                        in_flight_mean=self.gauge.area[second],
                        cpu_percent=result.cpu_percent[-1],
                    )
                )
                done_before = done
        times = process.cpu_times()
        result.cpu_seconds = times.user + times.system - cpu_start

    async def run(self) -> EngineResult:
        self._start_probe()
        sampler = asyncio.create_task(self._every_second())
        try:
            await self._stages()
        finally:
            await asyncio.sleep(0)
            if not self.stopping:
                await sampler
            self._stop_probe()
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            self.result.unfinished = self.gauge.value
            self.result.interrupted = self.stopping
            self.result.connections_opened = self.pool.opened
            self.pool.close()
        now = time.time()
        self.gauge.advance(now)
        result = self.result
        # Seconds the sampler did not reach (an interrupted run) stay unmeasured.
        for values in (result.cpu_percent, result.lag_mean_ms, result.lag_max_ms):
            values.extend([None] * (self.duration - len(values)))
        result.in_flight_mean = self.gauge.means()
        result.in_flight_max = list(self.gauge.maximum)
        return result

    def stop(self) -> None:
        self.stopping = True
        for waker in list(self._sleepers):
            _wake(waker)
