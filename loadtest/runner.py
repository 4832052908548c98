"""One headless Locust run in this process, with the timeline and the Knative poll beside it.

Three greenlets share the gevent loop with Locust's users: the shape (Locust's own) sets the user
count, a sampler notes users, asked rate and CPU at the end of every second and prints the
progress line, and a watcher reads the Knative state once a second. Nothing here blocks the loop:
the Kubernetes client's sockets are gevent's once the standard library is patched.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import gevent
import psutil
from locust.env import Environment

from loadtest.knative import KnativeState
from loadtest.record import KnativeWatch, RunRecord, RunSettings
from loadtest.timeline import TimelineRecorder, TimelineRow
from loadtest.workload import ProfileShape, Workload, failure_kind, user_class_for

# How long stopping users may wait for answers still in flight when the run ends.
STOP_GRACE_S = 5.0


def poll_knative_forever(
    watch: KnativeWatch, recorder: TimelineRecorder, started_at: float
) -> None:
    """Reads the Knative state once a second, mid-second, so each sample lands in its bucket.

    A slow answer skips the seconds it overran instead of bunching the reads that follow.
    """
    second = 0
    while True:
        gevent.sleep(max(0.0, started_at + second + 0.5 - time.time()))
        try:
            state = watch.reader.read()
            watch.note(state)
            recorder.record_knative(time.time(), state)
        except Exception as error:  # any failure is one lost sample, counted and reported
            watch.note_failure(error)
        second = max(second + 1, int(time.time() - started_at))


ProgressPrinter = Callable[[int, TimelineRow, int, KnativeState | None], None]


def _quiet_locust() -> None:
    # Locust logs its own progress and warnings (e.g. about high spawn rates, which the spike
    # profile asks for on purpose); this tool reports in its own words instead.
    logging.getLogger("locust").setLevel(logging.CRITICAL)
    # Ctrl-C ends the run early and still writes the outputs: gevent need not print it.
    hub = gevent.get_hub()
    hub.NOT_ERROR = (*hub.NOT_ERROR, KeyboardInterrupt)


def run(
    settings: RunSettings,
    watch: KnativeWatch | None,
    initial_state: KnativeState | None,
    progress: ProgressPrinter,
) -> RunRecord:
    _quiet_locust()
    duration = settings.profile.duration_s
    started_at = time.time()
    recorder = TimelineRecorder(started_at, duration)
    if initial_state is not None:
        recorder.record_knative(started_at, initial_state)
    workload = Workload(
        profile=settings.profile,
        mix=settings.mix,
        recorder=recorder,
        run_prefix=settings.run_prefix,
        resource_count=settings.resource_count,
        host_header=settings.host_header,
        started_at=started_at,
    )
    shape = ProfileShape(settings.profile, clock=lambda: time.time() - started_at)
    environment = Environment(
        user_classes=[user_class_for(workload, settings.timeout_s)],
        shape_class=shape,
        host=settings.url.rstrip("/"),
        stop_timeout=STOP_GRACE_S,
    )
    internal_errors: Counter[str] = Counter()

    def on_request(
        response_time: float,
        start_time: float,
        response: Any = None,
        context: dict[str, str] | None = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        kind = (context or {}).get("kind", "other")
        status = int(getattr(response, "status_code", 0) or 0)
        if status > 0:
            recorder.record_result(kind, start_time, response_time, status, None)
        else:
            recorder.record_result(kind, start_time, response_time, None, failure_kind(exception))

    def on_user_error(exception: BaseException, **_: Any) -> None:
        internal_errors[f"{type(exception).__name__}: {exception}"] += 1

    environment.events.request.add_listener(on_request)
    environment.events.user_error.add_listener(on_user_error)
    runner = environment.create_local_runner()

    generator = psutil.Process()

    def sample_every_second() -> None:
        # Both calls measure from their previous call; psutil keys the machine-wide one by
        # thread, which under gevent means by greenlet, so the first call happens here.
        generator.cpu_percent(None)
        psutil.cpu_percent(None)
        for second in range(duration):
            gevent.sleep(max(0.0, started_at + second + 0.98 - time.time()))
            recorder.record_load(
                second,
                runner.user_count,
                workload.asked_rate(started_at + second + 0.5),
                generator.cpu_percent(None),
                psutil.cpu_percent(None),
            )
            last_state = watch.last_state if watch else None
            progress(second, recorder.row(second), duration, last_state)

    side_tasks = [gevent.spawn(sample_every_second)]
    if watch is not None:
        side_tasks.append(gevent.spawn(poll_knative_forever, watch, recorder, started_at))

    interrupted = False
    runner.start_shape()
    try:
        gevent.sleep(max(0.0, started_at + duration - time.time()))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        runner.quit()
        gevent.killall(side_tasks, block=True)

    if interrupted:
        recorder.truncate(int(time.time() - started_at) + 1)
    return RunRecord(
        settings=settings,
        started_at=started_at,
        rows=recorder.rows(),
        by_kind=recorder.by_kind,
        latencies_ms=recorder.all_latencies_ms(),
        resources_created=len(workload.created),
        interrupted=interrupted,
        knative=watch,
        initial_state=initial_state,
        internal_errors=internal_errors,
    )
