"""up, a second up, status, down: run for real from a stopped cluster, and the machine after
`down` compared with the machine before `up`. Needs the built programs and the cluster stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from localcluster import build, cluster, layout
from tests.conftest import skip_for_mode
from tests.localcluster.machine_state import differences, snapshot


def localcluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localcluster", *args], capture_output=True, text=True, timeout=900
    )


def test_up_twice_status_down_leaves_the_machine_as_it_was() -> None:
    if cluster.running():
        skip_for_mode("the local cluster is running; this test starts and stops its own")
    if build.missing():
        skip_for_mode("the local cluster is not built: `make localcluster-up` builds it")
    before = snapshot()

    started = time.monotonic()
    first = localcluster("up")
    assert first.returncode == 0, first.stdout + first.stderr
    print(f"\nup (warm) took {time.monotonic() - started:.0f}s")
    assert f'context "{layout.NAME}"' in first.stdout and f"http://{layout.NODE_IP}" in first.stdout

    second_started = time.monotonic()
    second = localcluster("up")
    assert second.returncode == 0 and "already running" in second.stdout
    assert time.monotonic() - second_started < 30  # "in seconds": it starts nothing

    status = localcluster("status")
    assert status.returncode == 0, status.stdout
    for daemon in cluster.DAEMONS:
        assert f"{daemon}" in status.stdout and (layout.log_dir() / f"{daemon}.log").exists()

    down = localcluster("down")
    assert down.returncode == 0, down.stderr
    assert "removed:" in down.stdout and "network namespace" in down.stdout
    assert not layout.state_dir().exists()

    after = snapshot()
    assert differences(before, after, ignore_pids={os.getpid()}) == {}
    assert localcluster("status").returncode == 1
