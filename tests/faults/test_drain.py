"""SIGTERM to a serving process under steady load, as Knative sends it when it removes a pod.

To be sure requests are in flight inside the server when SIGTERM comes, Redis is frozen just
before it (SIGSTOP) and thawed just after: every request the server had taken in then waits on
Redis. Those must all be answered; the process must exit well within the grace period (Knative's
is the revision's timeoutSeconds, 60 s in k8s/); once it has stopped listening, every new
connection must be refused, not accepted and dropped.

Requests sent in the instant between SIGTERM and the listener closing can still be reset (the
kernel had queued the connection, or the server closed an idle keep-alive connection as the
request went out). On Knative none are sent then: the queue-proxy drains before the container
gets SIGTERM. The test counts them and checks that none of them got an HTTP error instead.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningFunction
from tests.support.local_redis import RedisServer

from .conftest import Record
from .load import Outcome, steady_load, wait_for

GRACE_SECONDS = 60  # timeoutSeconds in k8s/knative-service.yaml: Knative's termination grace
CLIENTS = 6  # below the Flask mode's thread count: each request held has a thread
HELD_SECONDS = 0.4  # how long requests wait on the frozen Redis before SIGTERM


def put_and_get(client: int, sequence: int) -> tuple[str, str, dict[str, object] | None]:
    path = f"/drain/{client}"
    return ("PUT", path, {"sequence": sequence}) if sequence % 2 else ("GET", path, None)


def kind(outcome: Outcome) -> str:
    if outcome.status in (200, 201, 404):
        return "answered"
    if outcome.refused:
        return "refused"
    if outcome.status is None:
        return "reset"
    return f"failed ({outcome.status})"


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
@pytest.mark.parametrize("connections", ["keep-alive", "fresh"])
def test_sigterm_under_load_drops_nothing_in_flight(
    start_function: Any,
    tmp_path: Path,
    entry_point: str,
    connections: str,
    record_figures: Record,
) -> None:
    with RedisServer(tmp_path / "redis") as own_redis:
        assert own_redis.process is not None
        redis_pid = own_redis.process.pid
        env = {"REDIS_URL": own_redis.function_url, "REDIS_TIMEOUT_SECONDS": "5"}
        running: RunningFunction = start_function(entry_point, env=env)
        assert running.process is not None
        fresh = connections == "fresh"
        with steady_load(running.url, put_and_get, CLIENTS, fresh_connections=fresh) as load:
            wait_for(load, 200)
            os.kill(redis_pid, signal.SIGSTOP)
            try:
                time.sleep(HELD_SECONDS)
                terminated_at = time.monotonic()
                running.process.send_signal(signal.SIGTERM)
                time.sleep(0.3)
            finally:
                os.kill(redis_pid, signal.SIGCONT)
            running.process.wait(timeout=GRACE_SECONDS)
            exited_at = time.monotonic()
            time.sleep(0.3)  # the clients go on: each new connection must be refused

    # Sent at least 0.2 s before SIGTERM and still unanswered: held inside the server.
    in_flight = [
        o for o in load.outcomes if o.started < terminated_at - 0.2 < terminated_at < o.ended
    ]
    between = load.between(terminated_at, exited_at)
    after = load.between(exited_at, float("inf"))
    kinds = Counter(kind(o) for o in load.outcomes)
    record_figures(
        f"{entry_point}, {connections} connections: {len(load.outcomes)} requests, "
        f"{len(in_flight)} held in flight at SIGTERM, all answered; exit after "
        f"{exited_at - terminated_at:.2f} s (status {running.process.returncode}); sent between "
        f"SIGTERM and exit: {dict(Counter(map(kind, between)))}; after exit: "
        f"{len(after)} refused; overall {dict(kinds)}"
    )
    assert in_flight, "no request was in flight at SIGTERM"
    assert all(kind(o) == "answered" for o in in_flight), Counter(map(kind, in_flight))
    assert running.process.returncode == 0, running.log()
    assert exited_at - terminated_at < GRACE_SECONDS / 2
    assert after and all(o.refused for o in after)
    # Before SIGTERM everything is answered; after it nothing is answered with an HTTP error.
    assert all(kind(o) == "answered" for o in load.outcomes if o.ended < terminated_at)
    assert not [k for k in kinds if k.startswith("failed")], kinds
