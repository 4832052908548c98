"""The Locust side: the user that sends the request mix, and the shape that follows the profile.

Resources live under a prefix unique to the run (``/loadtest/<run id>/item-N``, a bounded set of
N paths) and expire after an hour. A GET reads a path some PUT of this run has created; before
any exists it becomes a PUT, so reads never ask for what is not there.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gevent
from geventhttpclient.response import HTTPConnectionClosed
from locust import FastHttpUser, LoadTestShape, task

from loadtest.mix import RequestMix
from loadtest.profiles import Profile, Stage
from loadtest.timeline import TimelineRecorder

RESOURCE_TTL_S = 3600
# After a request that got no answer, a users-mode user pauses this long, so a dead target
# does not turn the generator into a busy loop.
PAUSE_AFTER_FAILURE_S = 0.1
# In an idle stage, users still being stopped look again after this long instead of sending.
IDLE_RECHECK_S = 0.25


def failure_kind(exception: BaseException | None) -> str:
    """How a request without an HTTP status failed: timeout, connection or other."""
    # geventhttpclient wraps the last error in RetriesExceeded(original=...) for retriable ones.
    exception = getattr(exception, "original", None) or exception
    if isinstance(exception, TimeoutError | socket.timeout | gevent.Timeout):
        return "timeout"
    if isinstance(exception, ConnectionError | socket.gaierror | HTTPConnectionClosed):
        return "connection"
    if isinstance(exception, OSError) and "timed out" in str(exception):
        return "timeout"
    return "other"


@dataclass
class Workload:
    """What every simulated user of one run shares."""

    profile: Profile
    mix: RequestMix
    recorder: TimelineRecorder
    run_prefix: str
    resource_count: int
    host_header: str | None = None
    started_at: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    created: list[str] = field(default_factory=list)
    _created_set: set[str] = field(default_factory=set)

    def current_stage(self) -> Stage | None:
        return self.profile.stage_at(time.time() - self.started_at)

    def asked_rate(self, at: float) -> float | None:
        stage = self.profile.stage_at(at - self.started_at)
        return stage.rate if stage is not None else None

    def resource_path(self, index: int) -> str:
        return f"/loadtest/{self.run_prefix}/item-{index}"

    def path_to_write(self) -> str:
        return self.resource_path(self.rng.randrange(self.resource_count))

    def path_to_read(self) -> str | None:
        return self.rng.choice(self.created) if self.created else None

    def mark_created(self, path: str) -> None:
        if path not in self._created_set:
            self._created_set.add(path)
            self.created.append(path)

    def headers(self, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if self.host_header:
            headers["Host"] = self.host_header
        return headers


class FunctionUser(FastHttpUser):
    """One simulated client; ``user_class_for`` binds it to a run's ``Workload``."""

    abstract = True
    workload: ClassVar[Workload]
    max_retries = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_start = 0.0
        self._last_failed = False
        self._sequence = 0

    def on_start(self) -> None:
        # Users of a rate stage start at random points of their pacing interval, so requests
        # arrive spread over the second instead of in lockstep.
        stage = self.workload.current_stage()
        interval = stage.seconds_between_requests_per_user if stage else None
        if interval:
            gevent.sleep(self.workload.rng.uniform(0, interval))

    def wait_time(self) -> float:
        stage = self.workload.current_stage()
        if stage is None or stage.user_count == 0:
            return IDLE_RECHECK_S
        interval = stage.seconds_between_requests_per_user
        if interval is None:
            return PAUSE_AFTER_FAILURE_S if self._last_failed else 0.0
        # Keep this user's starts ``interval`` apart; a late answer is not made up for later.
        return max(0.0, self._last_start + interval - time.time())

    @task
    def one_request(self) -> None:
        workload = self.workload
        stage = workload.current_stage()
        if stage is None or stage.user_count == 0:
            return
        kind = workload.mix.pick(workload.rng)
        path = workload.path_to_read() if kind == "get" else None
        if kind == "get" and path is None:
            kind = "put"
        self._last_start = time.time()
        workload.recorder.record_sent(self._last_start, kind)
        context = {"kind": kind}
        if kind == "count":
            response = self.client.get(
                "/", name="GET /", headers=workload.headers(), context=context
            )
        elif kind == "get":
            response = self.client.get(
                path or "/",
                name=f"GET /loadtest/{workload.run_prefix}/item-N",
                headers=workload.headers(),
                context=context,
            )
        else:
            path = workload.path_to_write()
            self._sequence += 1
            body = {"writer": id(self) % 100_000, "sequence": self._sequence, "note": "load test"}
            response = self.client.put(
                f"{path}?ttl={RESOURCE_TTL_S}",
                name=f"PUT /loadtest/{workload.run_prefix}/item-N",
                json=body,
                headers=workload.headers(),
                context=context,
            )
            if response.status_code in (200, 201):
                workload.mark_created(path)
        self._last_failed = response.status_code == 0


def user_class_for(workload: Workload, timeout_s: float) -> type[FunctionUser]:
    """A concrete user class bound to one run (Locust instantiates users from a class)."""
    attributes: dict[str, Any] = {
        "abstract": False,
        "workload": workload,
        "network_timeout": timeout_s,
        "connection_timeout": timeout_s,
    }
    return type("FunctionUserOfRun", (FunctionUser,), attributes)


class ProfileShape(LoadTestShape):
    """Sets the user count of each stage; users start or stop within the stage's first second."""

    def __init__(self, profile: Profile, clock: Callable[[], float]) -> None:
        super().__init__()
        self.profile = profile
        self.clock = clock

    def tick(self) -> tuple[int, float] | None:
        stage = self.profile.stage_at(self.clock())
        if stage is None:
            return None
        users = stage.user_count
        # Locust adds or removes ``spawn_rate`` users per second: make it the whole change.
        current = self.runner.user_count if self.runner is not None else 0
        return users, float(max(users, current, 1))
