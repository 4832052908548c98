"""The tool as users run it (``python -m loadtest``) against the real function and Redis.

The function's hit counter is the ground truth for ``count`` requests: every ``GET /`` it answers
adds one, so the counter moves by exactly the number of 200s the timeline recorded (plus one for
our own read). Runs are a few seconds each and load only 127.0.0.1.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from loadtest import histograms
from loadtest.timeline import BASE_COLUMNS
from scripts.serve import ROOT
from tests.conftest import RunningFunction, StartFunction
from tests.loadtest.kube_stub import ClusterState, StubKubeApi, fixture, serve
from tests.support.local_redis import free_port

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
        assert image.size == (1300, 1080 if summary["knative"] else 830)
    answered = [r for r in rows if int(r["answered"])]
    latency = histograms.load(out / "histograms.json")
    assert latency["latency"].get_total_count() == summary["requests_answered"]
    kinds = {k: v["answered"] for k, v in summary["by_kind"].items() if v["answered"]}
    assert {k: latency[f"latency.{k}"].get_total_count() for k in kinds} == kinds
    # The generator's CPU is measured every second of the run.
    assert all(r["generator_cpu_percent"] != "" for r in rows)
    assert summary["generator"]["cpu_seconds"] > 0
    assert all(r["in_flight_mean"] != "" and r["in_flight_max"] != "" for r in rows)
    assert len(answered) == 0 or summary["latency_ms"]["p50"] is not None
    return rows, summary


def assert_clean(result: subprocess.CompletedProcess[str], summary: dict[str, Any]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert summary["errors_total"] == 0
    assert summary["requests_unfinished"] == 0


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
    # Three users on keep-alive connections: three connections for the whole run.
    assert 1 <= summary["generator"]["connections_opened"] <= 3
    # Three users: never more than three requests out at once.
    assert {int(row["in_flight_max"]) for row in rows} == {3}
    assert all(0 < float(row["in_flight_mean"]) <= 3 for row in rows)
    assert summary["knative"] is None
    assert "steady profile, 4 s, users mode" in result.stdout
    assert "[   4/4 s] sent" in result.stdout
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
    assert [row["users"] for row in rows] == [""] * 5
    # The schedule: 8, 16, 24, 32 and 40 requests due, one stage a second; each one sent or
    # dropped at the cap, never lost, never more.
    stages = summary["stages"]
    assert [stage["asked"] for stage in stages] == [8, 16, 24, 32, 40]
    assert [stage["sent"] + stage["dropped"] for stage in stages] == [8, 16, 24, 32, 40]
    assert summary["requests_sent"] + summary["requests_dropped"] == 120
    assert summary["requests_dropped"] == 0
    # Reads only ask for what this run wrote: never a 404.
    assert set(summary["by_kind"]["get"]["responses"]) <= {"200"}
    # The PUTs created exactly the paths the summary claims, under the run's prefix.
    prefix = summary["run_prefix"]
    found = sum(
        httpx.get(f"{served.url}{prefix}item-{index}", timeout=10).status_code == 200
        for index in range(12)
    )
    assert found == summary["resources_created"] > 0
    # Written with ?ttl=3600: load-test data removes itself within the hour, not in a year.
    ttls = [
        httpx.get(f"{served.url}{prefix}item-{index}", timeout=10).json().get("ttl")
        for index in range(12)
    ]
    assert all(ttl is None or 3600 - RUN_TIMEOUT_S <= ttl <= 3600 for ttl in ttls)
    assert any(ttl is not None for ttl in ttls)


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
    assert [row["users"] for row in rows] == ["", "2", "2", "0"]
    assert summary["stages"][0]["sent"] == 20
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


def knative_phases() -> list[tuple[float, ClusterState]]:
    """Seconds after the tool opened its watches: at zero; a pod wanted and scheduled 1.5 s in,
    while the burst of seconds 1-2 waits; ready and served directly at 2.0 s; gone at 5 s."""
    ready_pod, pending_pod = fixture("pods-scaling.json")["items"][:2]

    def state(autoscaler: str, sks: str, pods: list[dict[str, Any]]) -> ClusterState:
        cluster = ClusterState().with_pods(pods).put(fixture("service-ready.json"), "services")
        cluster.put(fixture("revision-ready.json"), "revisions")
        cluster.put(fixture(autoscaler), "podautoscalers")
        return cluster.put(fixture(f"serverlessservice-{sks}.json"), "serverlessservices")

    return [
        (0, state("podautoscaler-idle.json", "proxy", [])),
        (1.5, state("podautoscaler-scaling.json", "proxy", [pending_pod])),
        (2.0, state("podautoscaler-scaling.json", "direct", [ready_pod])),
        (5.0, state("podautoscaler-idle.json", "proxy", [])),
    ]


def test_spike_with_knative_state(served: RunningFunction, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ready_pod = fixture("pods-scaling.json")["items"][0]["metadata"]["name"]
    phases = knative_phases()
    with serve(StubKubeApi(phases=phases, pod_concurrency={ready_pod: 1.5})) as api:
        env = {"KUBECONFIG": str(api.kubeconfig(tmp_path, context="minikube"))}
        result = run_tool(
            "--url", served.url, "--profile", "spike", "--duration", "10", "--rate", "20",
            "--kube-context", "minikube", "--service", "resources", "--out", str(out),
            env=env,
        )  # fmt: skip
    rows, summary = outputs(out, 10)
    assert_clean(result, summary)

    knative = summary["knative"]
    assert knative["namespace"] == "default" and knative["service"] == "resources"
    assert knative["revisions"] == ["resources-00001"]
    assert knative["watch_failures"] == 0
    assert knative["peak_pods_ready"] == 1
    # Lists once (resourceVersion=0), then only watches: no polling; the running pod's stat read.
    lists = [q for path, q in api.requests if not q.get("watch") and not path.endswith("/metrics")]
    assert len(lists) == 5 and all(q["resourceVersion"] == "0" for q in lists)
    with (out / "knative-events.csv").open() as file:
        events = list(csv.DictReader(file))
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time_utc"]) for e in events
    )

    # One burst began at zero pods; its milestones are the tool's own event times.
    (cold,) = knative["cold_starts"]
    start = cold["first_request_at_s"]

    def first(column: str) -> float:
        """When the first event after the burst's first request showed ``column`` above 0."""
        return next(
            float(e["second"])
            for e in events
            if float(e["second"]) >= start and e[column] not in ("", "0")
        )

    assert 1.0 <= start < 2.0
    assert cold["desired_above_zero_after_s"] == pytest.approx(
        first("pa_desired") - start, abs=2e-3
    )
    assert cold["pod_scheduled_after_s"] == pytest.approx(first("pods_scheduled") - start, abs=2e-3)
    assert cold["pod_ready_after_s"] == pytest.approx(first("pods_ready") - start, abs=2e-3)
    assert 0 < cold["desired_above_zero_after_s"] <= cold["pod_ready_after_s"]
    assert cold["first_answer_after_s"] is not None and cold["first_answer_status"] in (200, 201)
    # Every request due before the pod was ready: the rate is 20/s from the burst's start.
    waited = cold["latencies_before_ready_ms"]
    assert len(waited) == cold["requests_before_ready"] > 0
    # Due at 1.0 s + k/20, k = 0, 1, ...: the count of those before the ready time is
    # ceil(20 x (ready - 1.0)). The summary's two times are rounded to the millisecond, so the
    # ready time is known to 1 ms, 0.02 of a request: a request due within it may fall either side.
    due_before_ready = 20 * (start - 1.0 + cold["pod_ready_after_s"])
    fewest, most = math.ceil(due_before_ready - 0.02), math.floor(due_before_ready + 0.02) + 1
    assert fewest <= len(waited) <= most, (len(waited), due_before_ready)
    # The activator's effective state follows the SKS condition, not the mode.
    assert {row["activator_in_path"] for row in rows} == {"0", "1"}
    assert {row["sks_mode"] for row in rows} == {"Proxy", "Serve"}
    assert all(row["revision"] == "resources-00001" for row in rows)
    # The autoscaler's line: 70 (the autoscaler's target) x 70 % per ready pod.
    assert {row["target_in_flight"] for row in rows} == {"0.0", "49.0"}
    # What the autoscaler counts: the pod's reports, while it ran (2-5 s), and nothing else.
    assert knative["pod_stats_read"] >= 2
    assert {row["in_pods_mean"] for row in rows} == {"", "1.5"}
    assert all(row["in_pods_mean"] == "" for row in rows[6:])
    assert "cold start at " in result.stdout and "pod scheduled after" in result.stdout
    assert "watching Knative service default/resources" in result.stdout


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


class StallingServer(ThreadingHTTPServer):
    """Answers at once, except that it holds every answer in a one-second stall that begins
    one second after its first request; PUTs get 500."""

    daemon_threads = True

    def __init__(self) -> None:
        self.first: float | None = None
        self.lock = threading.Lock()

        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self, status: int) -> None:
                with server.lock:
                    if server.first is None:
                        server.first = time.monotonic()
                stall_from = server.first + 1.0
                now = time.monotonic()
                if stall_from <= now < stall_from + 1.0:
                    time.sleep(stall_from + 1.0 - now)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:
                self.handle_one(200)

            def do_PUT(self) -> None:
                self.handle_one(500)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_open_model_shows_a_stall_and_thresholds_fail_the_run(tmp_path: Path) -> None:
    server = StallingServer()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    out = tmp_path / "out"
    try:
        result = run_tool(
            "--url", url, "--duration", "4", "--rate", "100", "--mix", "count=9,put=1",
            "--max-p95-ms", "100", "--max-p99-ms", "100", "--max-error-rate", "0.01",
            "--require-rate", "--out", str(out),
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    rows, summary = outputs(out, 4)
    # The schedule was kept through the stall: all 400 due requests went out, none dropped.
    assert summary["requests_sent"] == 400 and summary["requests_dropped"] == 0
    assert summary["requests_unfinished"] == 0
    assert [stage["sent"] for stage in summary["stages"]] == [400]
    # Requests due in the first half of the stall waited at least half a second, from their
    # due time: at 100/s about 50 of them, so the run's p99 shows the stall...
    latency = histograms.load(out / "histograms.json")["latency"]
    slow = sum(
        step.count_added_in_this_iter_step
        for step in latency.get_recorded_iterator()
        if step.value_iterated_to >= 500_000
    )
    assert slow >= 40
    assert summary["latency_ms"]["p99"] >= 500
    # ... and the timeline shows it: many requests out at once, late answers' p99.
    assert max(int(row["in_flight_max"]) for row in rows) >= 40
    assert max(float(row["p99_ms"] or 0) for row in rows) >= 500
    # Three thresholds broken, one line each; exit code 3.
    assert result.returncode == 3, result.stderr
    broken = [line for line in result.stderr.splitlines() if "threshold" in line]
    assert [line.split()[2] for line in broken] == [
        "--max-error-rate", "--max-p95-ms", "--max-p99-ms",
    ]  # fmt: skip
    assert summary["errors"]["http_500"] == summary["by_kind"]["put"]["sent"] > 0


def test_twenty_changes_of_rate_users_and_idle_lose_nothing(
    served: RunningFunction, tmp_path: Path
) -> None:
    cycle = ["{duration: 1, rate: 20}", "{duration: 1, users: 2}", "{duration: 1, users: 0}"]
    profile = tmp_path / "alternate.yaml"
    profile.write_text("".join(f"- {cycle[i % 3]}\n" for i in range(21)))
    out = tmp_path / "out"
    before = hit_count(served.url)
    result = run_tool(
        "--url", served.url, "--profile", str(profile), "--mix", "count=1", "--out", str(out)
    )
    after = hit_count(served.url)
    _, summary = outputs(out, 21)
    assert_clean(result, summary)
    sent = summary["requests_sent"]
    assert sent == summary["requests_answered"] == after - before - 1
    assert summary["requests_unfinished"] == 0
    for stage in summary["stages"]:
        if stage.get("rate"):
            assert stage["sent"] + stage["dropped"] == stage["asked"] == 20


def test_several_processes_merge_into_one_timeline(served: RunningFunction, tmp_path: Path) -> None:
    profile = tmp_path / "two.yaml"
    profile.write_text("- {duration: 1, rate: 30}\n- {duration: 2, users: 3}\n")
    out = tmp_path / "out"
    before = hit_count(served.url)
    result = run_tool(
        "--url", served.url, "--profile", str(profile), "--processes", "2", "--mix", "count=1",
        "--out", str(out),
    )  # fmt: skip
    after = hit_count(served.url)
    rows, summary = outputs(out, 3)
    assert_clean(result, summary)
    assert summary["processes"] == 2
    # Request i of the rate stage went out from process i mod 2: 30 in all, as one would send.
    assert summary["stages"][0]["sent"] + summary["stages"][0]["dropped"] == 30
    assert summary["requests_sent"] == summary["requests_answered"] == after - before - 1
    # Three users split 2 + 1: never more than three out at once (each process's maximum, added).
    assert all(int(row["in_flight_max"]) <= 3 for row in rows[2:])
    assert "2 process(es)" in result.stdout


def test_make_loadtest_runs_a_whole_profile_file(served: RunningFunction, tmp_path: Path) -> None:
    profile = tmp_path / "short.yaml"
    profile.write_text("- {duration: 1, rate: 5}\n- {duration: 2, users: 1}\n")
    out = tmp_path / "out"
    # -o: the virtual environment counts as made (this run is inside it already).
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "-o", ".venv/bin/.installed", "loadtest",
         f"URL={served.url}", f"LOADTEST_ARGS=--profile {profile} --mix count=1 --out {out}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        # Under `make test` this is a sub-make: without the parent's flags, as a user runs it.
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
    )  # fmt: skip
    command = dry.stdout.strip().splitlines()[-1]
    assert "--duration" not in command
    result = subprocess.run(
        command.replace(".venv/bin/python", sys.executable), shell=True, cwd=ROOT,
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    rows, summary = outputs(out, 3)
    assert_clean(result, summary)
    assert [row["asked_rate"] for row in rows] == ["5.0", "", ""]


def test_ctrl_c_stops_every_process_and_writes_what_was_recorded(
    served: RunningFunction, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtest", "--url", served.url, "--duration", "60", "--users",
         "2", "--processes", "2", "--mix", "count=1", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    # The first progress line (every 5 s when not on a terminal) says the run is going.
    while not process.stdout.readline().startswith("["):
        pass
    process.send_signal(signal.SIGINT)  # to this process only: it passes the signal on
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 130, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert 5 <= summary["duration_s"] < 60
    assert summary["requests_sent"] == summary["requests_answered"] > 0
    assert summary["requests_unfinished"] == 0
    assert "(interrupted)" in stdout


def test_loadtest_token_is_sent_and_never_written(
    start_function: StartFunction, tmp_path: Path
) -> None:
    token = "loadtest-token-0123456789abcdef"
    served = start_function(env={"WRITE_TOKEN": token, "READ_TOKEN": token})
    args = ["--url", served.url, "--duration", "2", "--users", "2", "--mix", "get=1,put=1"]
    refused = run_tool(*args, "--out", str(tmp_path / "refused"))
    _, summary = outputs(tmp_path / "refused", 2)
    assert summary["requests_answered"] > 0
    assert set(summary["responses"]) == {"401"}, refused.stdout
    allowed = run_tool(*args, "--out", str(tmp_path / "allowed"), env={"LOADTEST_TOKEN": token})
    _, summary = outputs(tmp_path / "allowed", 2)
    assert_clean(allowed, summary)
    assert set(summary["responses"]) <= {"200", "201", "404"}
    written = "".join(f.read_text(errors="replace") for f in (tmp_path / "allowed").iterdir())
    assert token not in written + allowed.stdout + allowed.stderr
