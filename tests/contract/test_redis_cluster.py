"""``REDIS_CLUSTER=1``: the function on a real local Redis Cluster (three masters, a replica each).

The whole black-box contract suite runs against the function in cluster mode; then a master is
killed under load: its replica takes over, requests recover within seconds without a restart of
the function, and what was acknowledged is still there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.exceptions import AskError, MovedError

from scripts.serve import ROOT
from tests.conftest import FUNCTION_URL, RunningFunction, skip_for_mode
from tests.support.local_cluster import LocalCluster

COUNTER_KEY = "kv:count"  # the default KEY_PREFIX's counter: the master killed below owns it
# Between the kill and the first answers from the promoted replica: node timeout (1 s), the
# election, and the client's topology refresh. Generous on a busy machine.
RECOVERY_LIMIT_SECONDS = 10.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    if FUNCTION_URL:
        skip_for_mode(f"starts its own Redis Cluster and function; {FUNCTION_URL} is outside")
    with LocalCluster(tmp_path / "cluster") as running:
        yield running


def test_contract_suite_in_cluster_mode(start_function: Any, cluster: LocalCluster) -> None:
    running: RunningFunction = start_function(
        "handle", env={"REDIS_URL": cluster.url, "REDIS_CLUSTER": "1"}
    )
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract", "-q", "-x", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "FUNCTION_URL": running.url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout[-4000:] + suite.stderr[-2000:] + running.log()
    assert " passed" in suite.stdout


@dataclass
class LoadRecord:
    acknowledged: dict[str, int] = field(default_factory=dict)  # path -> value answered 2xx
    counted: int = 0  # GET / answered 200: increments Redis confirmed
    uncertain: int = 0  # GET / answered 503: the increment may or may not have run
    answers: list[tuple[float, int]] = field(default_factory=list)  # (time, status)
    unexpected: list[str] = field(default_factory=list)  # answers neither 2xx nor 503
    lock: threading.Lock = field(default_factory=threading.Lock)


def _drive(url: str, worker: int, stop: threading.Event, record: LoadRecord) -> None:
    with httpx.Client(base_url=url, timeout=5) as http:
        index = 0
        while not stop.is_set():
            index += 1
            path = f"/failover/{worker}-{index}"
            put = http.put(path, json={"n": index})
            counter = http.get("/", headers={"Accept": "application/json"})
            with record.lock:
                now = time.monotonic()
                record.answers += [(now, put.status_code), (now, counter.status_code)]
                record.unexpected += [
                    f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                    for r in (put, counter)
                    if r.status_code not in (200, 201, 503)
                ]
                if put.status_code in (200, 201):
                    record.acknowledged[path] = index
                if counter.status_code == 200:
                    record.counted += 1
                elif counter.status_code == 503:
                    record.uncertain += 1


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_master_killed_under_load(
    start_function: Any, cluster: LocalCluster, entry_point: str
) -> None:
    running: RunningFunction = start_function(
        entry_point, env={"REDIS_URL": cluster.url, "REDIS_CLUSTER": "1"}
    )
    record, stop = LoadRecord(), threading.Event()
    workers = [
        threading.Thread(target=_drive, args=(running.url, n, stop, record)) for n in range(4)
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.5)
        victim = cluster.master_of(COUNTER_KEY)
        killed_at = time.monotonic()
        cluster.kill(victim)
        time.sleep(RECOVERY_LIMIT_SECONDS + 3)
    finally:
        stop.set()
        for worker in workers:
            worker.join()

    statuses = {status for _, status in record.answers}
    assert statuses <= {200, 201, 503}, f"{record.unexpected[:5]}\n{running.log()[-3000:]}"
    failed = [at - killed_at for at, status in record.answers if status == 503]
    window = max(failed, default=0.0)
    after = [status for at, status in record.answers if at > killed_at + window]
    print(
        f"\n{entry_point}: 503s from kill to recovery: {len(failed)}, window {window:.2f} s, "
        f"answers after it: {len(after)}; documents acknowledged: {len(record.acknowledged)}"
    )
    assert failed, "the killed master's slots never failed: was the right node killed?"
    assert window < RECOVERY_LIMIT_SECONDS, f"still failing {window:.1f} s after the kill"
    assert len(after) > 20, "too few answers after the failover to call it recovered"

    # Acknowledged writes survive the failover; the counter holds every confirmed increment.
    with httpx.Client(base_url=running.url, timeout=5) as http:
        lost = [
            path
            for path, value in record.acknowledged.items()
            if http.get(path).json().get("n") != value
        ]
        count = http.get("/", headers={"Accept": "application/json"}).json()["count"]
    assert not lost, f"{len(lost)} acknowledged documents lost: {lost[:5]}"
    # +1: the GET / just above counted itself.
    assert record.counted + 1 <= count <= record.counted + record.uncertain + 1
    print(
        f"{entry_point}: counter {count}, confirmed increments {record.counted}, "
        f"unconfirmed (503) {record.uncertain}"
    )


def _key_elsewhere(cluster: LocalCluster, template: str, node: int) -> str:
    """The first of ``template.format(n)`` whose slot a master other than ``node`` serves."""
    return next(
        template.format(n) for n in range(1000) if cluster.master_of(template.format(n)) != node
    )


def _key_here(cluster: LocalCluster, template: str, node: int) -> str:
    return next(
        template.format(n) for n in range(1000) if cluster.master_of(template.format(n)) == node
    )


def _assert_redirect_is_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "redis_unavailable"
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_a_cluster_node_without_cluster_mode_is_a_503_not_a_fault(
    start_function: Any, cluster: LocalCluster, entry_point: str
) -> None:
    """REDIS_URL names one node and REDIS_CLUSTER is unset: a key of another node's slot is
    answered MOVED, a key of a slot being migrated away ASK; the client cannot follow either."""
    node = cluster.ports[0]
    prefix = _key_elsewhere(cluster, "kv:p{}:count", node).removesuffix("count")
    env = {"REDIS_URL": cluster.url, "KEY_PREFIX": prefix}
    running: RunningFunction = start_function(entry_point, env=env)
    moved = _key_elsewhere(cluster, prefix + "r:/moved/{}", node).removeprefix(prefix + "r:")
    asked = _key_here(cluster, prefix + "r:/asked/{}", node).removeprefix(prefix + "r:")
    with redis.Redis(port=node) as direct:
        slot = direct.execute_command("CLUSTER KEYSLOT", prefix + "r:" + asked)
        other = redis.Redis(port=cluster.ports[1])
        target = other.execute_command("CLUSTER MYID").decode()
        other.close()
        direct.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target)
        # What the function will meet: redis-py names each reply by its class.
        for key, reply in ((moved, MovedError), (asked, AskError)):
            with pytest.raises(reply):
                direct.execute_command("GET", prefix + "r:" + key)
    with httpx.Client(base_url=running.url, timeout=10) as http:
        for path in (moved, asked):
            _assert_redirect_is_unavailable(http.get(path))
            _assert_redirect_is_unavailable(http.put(path, json={"a": 1}))
            _assert_redirect_is_unavailable(http.delete(path))
        _assert_redirect_is_unavailable(http.get("/"))  # the counter's slot is elsewhere too
    assert "Traceback" not in running.log()
