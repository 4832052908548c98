"""The tool as users run it (``python -m loadtest``) against the real function and Redis.

The function's hit counter is the ground truth for ``count`` requests: every ``GET /`` it answers
adds one, so the counter moves by exactly the number of 200s the timeline recorded (plus one for
our own read). Runs are a few seconds each and load only 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from loadtest.timeline import BASE_COLUMNS
from scripts.local_redis import free_port
from scripts.serve import ROOT
from tests.conftest import RunningFunction, StartFunction
from tests.loadtest.kube_stub import ClusterState, StubKubeApi, fixture, serve

RUN_TIMEOUT_S = 60


def run_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadtest", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def hit_count(url: str) -> int:
    """The counter after this read (reading it counts as one hit)."""
    response = httpx.get(f"{url}/", headers={"Accept": "application/json"}, timeout=10)
    response.raise_for_status()
    return int(response.json()["count"])


def outputs(out: Path, seconds: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The timeline rows and summary, checked for shape and for agreeing with each other."""
    with (out / "timeline.csv").open() as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    assert columns[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert all(name.startswith("status_") for name in columns[len(BASE_COLUMNS) :])
    assert [int(row["second"]) for row in rows] == list(range(seconds))
    summary = json.loads((out / "summary.json").read_text())
    assert sum(int(row["sent"]) for row in rows) == summary["requests_sent"]
    assert sum(int(row["answered"]) for row in rows) == summary["requests_answered"]
    for code, count in summary["responses"].items():
        assert sum(int(row[f"status_{code}"]) for row in rows) == count
    with Image.open(out / "timeline.png") as image:
        assert image.format == "PNG"
        assert image.width > 0 and image.height > 0
    return rows, summary


def assert_clean(result: subprocess.CompletedProcess[str], summary: dict[str, Any]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert summary["errors_total"] == 0
    assert summary["requests_unfinished"] == 0
    assert summary["internal_errors"] == {}


@pytest.fixture
def served(start_function: StartFunction) -> RunningFunction:
    """The function as deployed (ASGI), on a free port, against the test run's Redis."""
    return start_function()


def test_steady_users_hit_counter_agrees(served: RunningFunction, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = hit_count(served.url)
    result = run_tool(
        "--url", served.url, "--profile", "steady", "--duration", "4", "--users", "3",
        "--mix", "count=1", "--out", str(out),
    )  # fmt: skip
    after = hit_count(served.url)
    rows, summary = outputs(out, 4)
    assert_clean(result, summary)

    answered = summary["by_kind"]["count"]["responses"]["200"]
    assert after - before - 1 == answered == summary["requests_answered"]
    assert all(int(row["sent"]) > 0 and row["users"] == "3" for row in rows)
    assert summary["knative"] is None
    assert "steady profile, 4 s, users mode" in result.stdout
    assert "[   4/4 s] users" in result.stdout
    assert "no pod panel" in result.stdout


def test_step_rate_mode_mix_and_resources(served: RunningFunction, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = hit_count(served.url)
    result = run_tool(
        "--url", served.url, "--profile", "step", "--duration", "5", "--rate", "40",
        "--mix", "count=2,get=6,put=2", "--resources", "12", "--out", str(out),
    )  # fmt: skip
    after = hit_count(served.url)
    rows, summary = outputs(out, 5)
    assert_clean(result, summary)

    assert after - before - 1 == summary["by_kind"]["count"]["responses"]["200"]
    assert [float(row["asked_rate"]) for row in rows] == [8.0, 16.0, 24.0, 32.0, 40.0]
    assert summary["mode"] == "rate"
    assert [row["users"] for row in rows] == ["8", "16", "24", "32", "40"]
    # 120 asked in all (8 + 16 + 24 + 32 + 40). Each user paces itself, so the tool never sends
    # more than asked plus one per user; how close it comes is the summary's verdict.
    rate = summary["rate"]
    assert rate["asked_requests"] == 120.0
    assert rate["sent_when_asked"] == summary["requests_sent"]
    assert 0 < summary["requests_sent"] <= 120 + 40
    assert rate["reached"] == (summary["requests_sent"] >= 0.95 * 120)
    # Reads only ask for what this run wrote: never a 404.
    assert set(summary["by_kind"]["get"]["responses"]) <= {"200"}
    # The PUTs created exactly the paths the summary claims, under the run's prefix.
    prefix = summary["run_prefix"]
    found = sum(
        httpx.get(f"{served.url}{prefix}item-{index}", timeout=10).status_code == 200
        for index in range(12)
    )
    assert found == summary["resources_created"] > 0


def test_spike_is_idle_then_a_burst_then_idle(served: RunningFunction, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = hit_count(served.url)
    result = run_tool(
        "--url", served.url, "--profile", "spike", "--duration", "6", "--users", "4",
        "--out", str(out),
    )  # fmt: skip
    after = hit_count(served.url)
    rows, summary = outputs(out, 6)
    assert_clean(result, summary)

    sent = [int(row["sent"]) for row in rows]
    assert sent[0] == 0
    assert sent[1] > 0
    assert sent[2:] == [0, 0, 0, 0]
    assert after - before - 1 == summary["by_kind"]["count"]["responses"].get("200", 0)


def test_profile_file_mixing_rate_and_users(served: RunningFunction, tmp_path: Path) -> None:
    profile = tmp_path / "mixed.yaml"
    profile.write_text(
        "stages:\n"
        "  - {duration: 1, rate: 20}\n"
        "  - {duration: 2, users: 2}\n"
        "  - {duration: 1, users: 0}\n"
    )
    out = tmp_path / "out"
    before = hit_count(served.url)
    result = run_tool("--url", served.url, "--profile", str(profile), "--out", str(out))
    after = hit_count(served.url)
    rows, summary = outputs(out, 4)
    assert_clean(result, summary)

    assert [row["asked_rate"] for row in rows] == ["20.0", "", "", ""]
    assert [row["users"] for row in rows] == ["20", "2", "2", "0"]
    assert int(rows[3]["sent"]) == 0
    assert summary["mode"] == "mixed"
    assert after - before - 1 == summary["by_kind"]["count"]["responses"]["200"]


def test_unreachable_url_is_one_line_and_no_run(tmp_path: Path) -> None:
    port = free_port()  # bound and closed again: nothing listens there
    out = tmp_path / "out"
    result = run_tool("--url", f"http://127.0.0.1:{port}", "--duration", "3", "--out", str(out))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"loadtest: http://127.0.0.1:{port} is unreachable: ")
    assert "connection refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mix", "count=1,post=3"], "loadtest: bad --mix part 'post=3'"),
        (["--profile", "no-such-file.yaml"], "loadtest: unknown profile 'no-such-file.yaml'"),
        (["--url", "127.0.0.1:8080"], "is not an http(s) URL"),
        (["--namespace", "default"], "needs --service NAME"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_tool("--url", "http://127.0.0.1:9", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


class MisbehavingServer(socketserver.ThreadingTCPServer):
    """One of every failure: ``GET /`` gets 503; a PUT of an even item 201, of an odd one a
    closed connection; a GET of a resource no answer at all (a timeout)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), MisbehavingHandler)
        self.hosts: set[str] = set()


class MisbehavingHandler(socketserver.StreamRequestHandler):
    server: MisbehavingServer

    def answer(self, status: str, body: bytes) -> None:
        self.wfile.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def handle(self) -> None:
        while request_line := self.rfile.readline():
            method, target, _ = request_line.decode("latin-1").split(" ", 2)
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
                if name.strip().lower() == "host":
                    self.server.hosts.add(value.strip())
            self.rfile.read(length)
            item = target.split("?")[0].rsplit("-", 1)[-1]
            if method == "GET" and target == "/":
                self.answer("503 Service Unavailable", b'{"error": "unavailable"}')
            elif method == "PUT" and int(item) % 2 == 0:
                self.answer("201 Created", b'{"stored": true}')
            elif method == "PUT":
                return  # closed without an answer
            else:
                time.sleep(3)  # longer than the client waits
                return


def test_error_kinds_are_told_apart_and_host_header_is_sent(tmp_path: Path) -> None:
    server = MisbehavingServer()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    out = tmp_path / "out"
    try:
        result = run_tool(
            "--url", url, "--duration", "3", "--users", "4", "--mix", "count=1,get=1,put=1",
            "--timeout", "1", "--host-header", "kv-store.kv-store.example.com", "--out", str(out),
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert server.hosts == {"kv-store.kv-store.example.com"}
    rows, summary = outputs(out, 3)
    errors = summary["errors"]
    assert errors["http_503"] > 0 and errors["timeout"] > 0 and errors["connection"] > 0
    assert errors["other"] == 0
    assert set(summary["responses"]) == {"201", "503"}
    assert summary["errors_total"] == sum(errors.values())
    finished = summary["requests_answered"] + errors["timeout"] + errors["connection"]
    assert finished + summary["requests_unfinished"] == summary["requests_sent"]
    assert sum(int(row["errors_timeout"]) for row in rows) == errors["timeout"]
    assert sum(int(row["errors_connection"]) for row in rows) == errors["connection"]
    assert sum(int(row["errors_http"]) for row in rows) == errors["http_503"]
    assert 0 < summary["resources_created"] <= summary["by_kind"]["put"]["responses"]["201"]


# Knative state: the official client against a stand-in API server, load against the function.


def knative_phases() -> list[tuple[int, ClusterState]]:
    """Poll by poll (0 is the check before the run, n the sample in second n - 1): at zero; a pod
    asked for as the burst begins; ready and served directly; back to zero two seconds after."""
    ready_pod, pending_pod = fixture("pods-scaling.json")["items"][:2]

    def state(autoscaler: str, mode: str, pods: list[dict[str, Any]]) -> ClusterState:
        cluster = ClusterState(pods=pods).put(fixture("service-ready.json"), "services")
        cluster.put(fixture(autoscaler), "podautoscalers")
        return cluster.put(fixture(f"serverlessservice-{mode}.json"), "serverlessservices")

    return [
        (0, state("podautoscaler-idle.json", "proxy", [])),
        (2, state("podautoscaler-no-metrics.json", "proxy", [pending_pod])),
        (3, state("podautoscaler-scaling.json", "serve", [ready_pod])),
        (6, state("podautoscaler-idle.json", "proxy", [])),
    ]


def test_spike_with_knative_state(served: RunningFunction, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with serve(StubKubeApi(phases=knative_phases())) as api:
        env = {"KUBECONFIG": str(api.kubeconfig(tmp_path, context="minikube"))}
        result = run_tool(
            "--url", served.url, "--profile", "spike", "--duration", "10", "--users", "2",
            "--kube-context", "minikube", "--service", "resources", "--out", str(out),
            env=env,
        )  # fmt: skip
    rows, summary = outputs(out, 10)
    assert_clean(result, summary)

    knative = summary["knative"]
    assert knative["namespace"] == "default" and knative["service"] == "resources"
    assert knative["revisions"] == ["resources-00001"]
    assert knative["poll_failures"] == 0 and knative["polls"] >= 8
    assert knative["peak_pods_ready"] == 1
    # The burst (seconds 1-2) met zero pods; a poll is late at most by a second or so.
    assert [cold["at_s"] for cold in knative["cold_starts"]] == [1]
    assert knative["first_scale_up"]["pods_ready_at_start"] == 0
    assert 0 <= knative["first_scale_up"]["ready_rose_after_s"] <= 3
    assert knative["idle_to_zero"]["idle_from_s"] == 3
    assert 1 <= knative["idle_to_zero"]["after_s"] <= 4
    assert {row["sks_mode"] for row in rows} == {"Proxy", "Serve"}
    assert {row["activator_in_path"] for row in rows} == {"0", "1"}
    assert all(row["revision"] == "resources-00001" for row in rows)
    assert "cold start: the first request after zero pods took" in result.stdout
    assert "watching Knative service default/resources" in result.stdout
    with Image.open(out / "timeline.png") as image:
        assert image.height > 3 * 280  # three panels: load, latency, pods


@pytest.mark.parametrize(
    ("service", "denied", "message"),
    [
        (
            "resources",
            {"pods"},
            "loadtest: access denied (403) to list pods in namespace 'default'",
        ),
        ("other", set(), "loadtest: Knative service 'other' not found in namespace 'default'"),
    ],
)
def test_knative_errors_stop_before_the_run(
    tmp_path: Path, service: str, denied: set[str], message: str
) -> None:
    with serve(StubKubeApi(phases=knative_phases(), denied=denied)) as api:
        env = {"KUBECONFIG": str(api.kubeconfig(tmp_path))}
        result = run_tool("--url", "http://127.0.0.1:9", "--service", service, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_no_kubeconfig_is_one_line(tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "absent"), "HOME": str(tmp_path)}
    result = run_tool("--url", "http://127.0.0.1:9", "--service", "resources", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("loadtest: no kubeconfig found")
    assert result.stderr.count("\n") == 1
