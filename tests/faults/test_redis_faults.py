"""Redis restarted and Redis frozen while the function serves steady load.

Bounds (from the function's contract, measured on this test's own clock):
- after Redis is back, 503s stop within 1.5 s, without restarting the function;
- while Redis is frozen (SIGSTOP: connections are accepted, nothing is answered), every request
  is answered 503 within REDIS_TIMEOUT_SECONDS + 0.5 s, and service is full again after SIGCONT;
- no worker hangs or is replaced: the same worker processes serve before, during and after.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import RunningFunction
from tests.support.local_redis import RedisServer

from .conftest import Record
from .load import Load, Outcome, steady_load, wait_for

REDIS_TIMEOUT_SECONDS = 1.0
RECOVERY_BOUND_SECONDS = 1.5
ANSWER_BOUND_SECONDS = REDIS_TIMEOUT_SECONDS + 0.5
CLIENTS = 6  # below the Flask mode's thread count, so no request queues for a thread


def mixed(client: int, sequence: int) -> tuple[str, str, dict[str, object] | None]:
    path = f"/steady/{client}/{sequence % 20}"
    if sequence % 3 == 0:
        return "PUT", path, {"client": client, "sequence": sequence}
    return ("GET", "/" if sequence % 3 == 1 else path, None)


def succeeded(outcome: Outcome) -> bool:
    return outcome.status in (200, 201, 404)


def unavailable(outcome: Outcome) -> bool:
    """A 503 that tells the truth: nothing done, or, for a change (a PUT, the hit of GET /) that
    left for Redis and got no reply, that it may have been done."""
    if outcome.status != 503:
        return False
    code = json.loads(outcome.body)["error"]
    changes = outcome.method == "PUT" or (outcome.method == "GET" and outcome.path == "/")
    return code == "redis_unavailable" or (code == "outcome_unknown" and changes)


def workers(running: RunningFunction) -> set[int]:
    assert running.process is not None
    return {child.pid for child in psutil.Process(running.process.pid).children(recursive=True)}


def assert_only_success_or_503(load: Load) -> None:
    bad = [o for o in load.outcomes if not (succeeded(o) or unavailable(o))]
    assert not bad, [(o.method, o.status, o.error, o.body[:200]) for o in bad[:5]]


def start(start_function: Any, entry_point: str, redis_url: str) -> RunningFunction:
    env = {"REDIS_URL": redis_url, "REDIS_TIMEOUT_SECONDS": str(REDIS_TIMEOUT_SECONDS)}
    running: RunningFunction = start_function(entry_point, env=env)
    return running


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_503_window_after_redis_restarts_under_load(
    start_function: Any, tmp_path: Path, entry_point: str, record_figures: Record
) -> None:
    with RedisServer(tmp_path / "redis") as own_redis:
        running = start(start_function, entry_point, own_redis.function_url)
        before = workers(running)
        with steady_load(running.url, mixed, CLIENTS) as load:
            wait_for(load, 200)
            stopped_at = time.monotonic()
            own_redis.kill()
            time.sleep(1.0)
            restarting_at = time.monotonic()
            own_redis.start()
            back_at = time.monotonic()  # Redis answers PING from here on
            time.sleep(RECOVERY_BOUND_SECONDS + 1.5)
        assert workers(running) == before, "a worker was replaced"

    assert_only_success_or_503(load)
    during = [o for o in load.between(stopped_at + 0.1, back_at) if o.ended < restarting_at]
    assert during and all(unavailable(o) for o in during)
    late = [o for o in load.outcomes if unavailable(o) and o.ended > back_at]
    window = max((o.ended for o in late), default=back_at) - back_at
    after = load.between(back_at + RECOVERY_BOUND_SECONDS, float("inf"))
    record_figures(
        f"{entry_point}: {len(load.outcomes)} requests, {sum(map(unavailable, load.outcomes))} "
        f"answered 503 during a {back_at - stopped_at:.2f} s outage, 503s for {window:.3f} s "
        f"after Redis was back, {len(after)} requests after that all succeeded, 0 failed otherwise"
    )
    assert window < RECOVERY_BOUND_SECONDS
    assert after and all(succeeded(o) for o in after)


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_frozen_redis_gives_prompt_503s_and_full_service_after_thaw(
    start_function: Any, tmp_path: Path, entry_point: str, record_figures: Record
) -> None:
    with RedisServer(tmp_path / "redis") as own_redis:
        assert own_redis.process is not None
        pid = own_redis.process.pid
        running = start(start_function, entry_point, own_redis.function_url)
        before = workers(running)
        with steady_load(running.url, mixed, CLIENTS) as load:
            wait_for(load, 200)
            frozen_at = time.monotonic()
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(ANSWER_BOUND_SECONDS + 1.5)
            finally:
                os.kill(pid, signal.SIGCONT)
            thawed_at = time.monotonic()
            time.sleep(RECOVERY_BOUND_SECONDS + 1.5)
        assert workers(running) == before, "a worker was replaced"

    assert_only_success_or_503(load)
    frozen = load.between(frozen_at, thawed_at - ANSWER_BOUND_SECONDS)
    assert frozen and all(unavailable(o) for o in frozen)
    slowest = max(o.latency for o in load.between(frozen_at, thawed_at))
    first_503 = min(o.ended for o in load.outcomes if unavailable(o)) - frozen_at
    late = [o for o in load.outcomes if unavailable(o) and o.ended > thawed_at]
    window = max((o.ended for o in late), default=thawed_at) - thawed_at
    after = load.between(thawed_at + RECOVERY_BOUND_SECONDS, float("inf"))
    record_figures(
        f"{entry_point}: REDIS_TIMEOUT_SECONDS={REDIS_TIMEOUT_SECONDS}, "
        f"first 503 {first_503:.3f} s after the freeze, "
        f"slowest answer while frozen {slowest:.3f} s, "
        f"{len(frozen)} requests during the freeze all 503, 503s for {window:.3f} s after the "
        f"thaw, {len(after)} requests after that all succeeded"
    )
    assert first_503 <= ANSWER_BOUND_SECONDS
    assert slowest <= ANSWER_BOUND_SECONDS
    assert window < RECOVERY_BOUND_SECONDS
    assert after and all(succeeded(o) for o in after)
