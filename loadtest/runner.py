"""One run: the generator process(es) on a shared clock, the Knative watch beside them, and one
merged timeline.

With one process the generator runs on this process's event loop. With ``--processes N`` it runs
in N child processes (each one core at most); they start together at a moment this process
names, send a line of figures per second for the progress line, and hand back every request at
the end, which is merged here into one timeline and one summary.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import uvloop

from loadtest.engine import FAILURE_KINDS, Engine, EngineResult, EngineSpec, LiveSecond
from loadtest.mix import REQUEST_KINDS
from loadtest.pod_stats import concurrency_per_second
from loadtest.record import RunRecord, RunSettings
from loadtest.timeline import TimelineRecorder
from loadtest.watcher import KnativeWatcher

# Children need this long to import and connect before the shared start.
CHILD_START_MARGIN_S = 0.3
PROCESS_START_TIMEOUT_S = 60.0

Progress = Callable[[int, list[LiveSecond], int, Any], None]


def _spec(settings: RunSettings, index: int, count: int) -> EngineSpec:
    return EngineSpec(
        url=settings.url,
        profile=settings.profile,
        mix=settings.mix,
        run_prefix=settings.run_prefix,
        timeout_s=settings.timeout_s,
        resource_count=settings.resource_count,
        max_in_flight=settings.max_in_flight,
        host_header=settings.host_header,
        token=settings.token,
        process_index=index,
        process_count=count,
    )


def _in_process(
    settings: RunSettings, started_at: float, live: Callable[[LiveSecond], None]
) -> EngineResult:
    async def main() -> EngineResult:
        engine = Engine(_spec(settings, 0, 1), started_at, live)
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, engine.stop)
        return await engine.run()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def child_main(spec: EngineSpec, connection: multiprocessing.connection.Connection) -> None:
    """A generator process: ready, wait for the start time, run, send the result."""
    connection.send("ready")
    started_at = connection.recv()

    async def main() -> EngineResult:
        engine = Engine(spec, started_at, lambda live: connection.send(("live", live)))
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, engine.stop)
        return await engine.run()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(main())
    connection.send(("result", result))
    connection.close()


def _in_children(
    settings: RunSettings, count: int, on_start: Callable[[float], None],
    live: Callable[[LiveSecond], None],
) -> tuple[float, list[EngineResult]]:  # fmt: skip
    context = multiprocessing.get_context("spawn")
    pipes = []
    processes = []
    for index in range(count):
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=child_main, args=(_spec(settings, index, count), child_end), daemon=True
        )
        process.start()
        pipes.append(parent_end)
        processes.append(process)
    for pipe in pipes:
        if not pipe.poll(PROCESS_START_TIMEOUT_S):
            raise RuntimeError("a generator process did not start")
        pipe.recv()
    started_at = time.time() + CHILD_START_MARGIN_S
    on_start(started_at)

    def forward(signum: int, _: object) -> None:
        # Ctrl-C in a terminal reaches the children too; a signal sent to this process alone
        # is passed on, so that they stop and send what they recorded.
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    previous = signal.signal(signal.SIGINT, forward)
    try:
        for pipe in pipes:
            pipe.send(started_at)
        results = _collect(pipes, live)
    finally:
        signal.signal(signal.SIGINT, previous)
    for process in processes:
        process.join(5)
    if len(results) != count:
        raise RuntimeError(f"{count - len(results)} generator process(es) ended without a result")
    return started_at, [results[index] for index in sorted(results)]


def _collect(
    pipes: list[multiprocessing.connection.Connection], live: Callable[[LiveSecond], None]
) -> dict[int, EngineResult]:
    results: dict[int, EngineResult] = {}
    waiting = list(pipes)
    while waiting:
        ready = multiprocessing.connection.wait(waiting)
        for pipe in pipes:
            if pipe not in ready or pipe not in waiting:
                continue
            try:
                tag, payload = pipe.recv()
            except EOFError:
                waiting.remove(pipe)
                continue
            if tag == "live":
                live(payload)
            else:
                results[payload.process_index] = payload
                waiting.remove(pipe)
    return results


class _LiveMerger:
    """Joins each second's figures from every process, then prints the progress line."""

    def __init__(
        self, count: int, duration: int, progress: Progress, watcher: KnativeWatcher | None
    ) -> None:
        self.count = count
        self.duration = duration
        self.progress = progress
        self.watcher = watcher
        self.pending: dict[int, list[LiveSecond]] = {}

    def __call__(self, live: LiveSecond) -> None:
        parts = self.pending.setdefault(live.second, [])
        parts.append(live)
        if len(parts) == self.count:
            del self.pending[live.second]
            state = self.watcher.last_state if self.watcher else None
            self.progress(live.second, parts, self.duration, state)


def run(settings: RunSettings, watcher: KnativeWatcher | None, progress: Progress) -> RunRecord:
    count = settings.processes
    merger = _LiveMerger(count, settings.profile.duration_s, progress, watcher)
    psutil.cpu_percent(None)
    host_cpu: list[float] = []

    def note_host(live: LiveSecond) -> None:
        if live.process_index == 0:
            host_cpu.append(psutil.cpu_percent(None))
        merger(live)

    if watcher is not None:
        watcher.start()
    try:
        if count == 1:
            started_at = time.time()
            results = [_in_process(settings, started_at, note_host)]
        else:
            started_at, results = _in_children(settings, count, lambda _: None, note_host)
    finally:
        if watcher is not None:
            watcher.stop()
    return merge(settings, started_at, results, watcher, host_cpu)


def merge(
    settings: RunSettings,
    started_at: float,
    results: list[EngineResult],
    watcher: KnativeWatcher | None,
    host_cpu: list[float],
) -> RunRecord:
    profile = settings.profile
    duration = profile.duration_s
    recorder = TimelineRecorder(started_at, duration)
    for result in results:
        for kind, due, sent, end, status, failure in zip(
            result.kind, result.due, result.sent, result.end, result.status, result.failure,
            strict=True,
        ):  # fmt: skip
            recorder.record_request(
                REQUEST_KINDS[kind],
                due,
                sent,
                end,
                status or None,
                FAILURE_KINDS[failure - 1] if failure else None,
            )
    for second in range(duration):
        stage = profile.stage_at(second)
        cpus = [v for r in results if (v := r.cpu_percent[second]) is not None]
        lags = [v for r in results if (v := r.lag_max_ms[second]) is not None]
        recorder.record_load(
            second,
            None if stage is None or stage.is_rate else stage.users,
            stage.rate if stage is not None and stage.is_rate else None,
            sum(cpus) if cpus else None,
            host_cpu[second] if second < len(host_cpu) else None,
            loop_lag_max_ms=max(lags) if lags else None,
            dropped=sum(r.dropped[second] for r in results),
            in_flight_mean=sum(r.in_flight_mean[second] for r in results),
            # Each process's own maximum, added: exact with one process, an upper bound with more.
            in_flight_max=sum(r.in_flight_max[second] for r in results),
        )
    if watcher is not None:
        for at, state in list(watcher.states):
            recorder.record_knative(max(at, started_at), state)
        recorder.record_in_pods(
            concurrency_per_second(list(watcher.pod_samples), started_at, recorder.duration_s)
        )
    interrupted = any(r.interrupted for r in results)
    if interrupted:
        recorder.truncate(int(time.time() - started_at) + 1)
    return RunRecord(
        settings=settings,
        started_at=started_at,
        rows=recorder.rows(),
        by_kind=recorder.by_kind,
        latencies_ms=recorder.all_latencies_ms(),
        service_ms=recorder.all_service_ms(),
        results=results,
        interrupted=interrupted,
        knative=watcher,
        initial_state=watcher.states[0][1] if watcher and watcher.states else None,
    )
