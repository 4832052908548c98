"""``python -m loadtest predict`` end to end: files, summary, pictures, errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.kpa.predict import main

from .conftest import FIXTURES, ROOT, SERVICE, spike, write_timeline
from .pictures import Picture

HEADER = ["second", "in_flight_mean", "desired_pods", "ready_pods", "panic", "activator_in_path"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_the_command_writes_csv_png_and_summary(tmp_path: Path, spike_timeline: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest",
            "predict",
            "--timeline",
            str(spike_timeline),
            "--service",
            str(SERVICE),
            "--out",
            str(out),
            "--pod-start-seconds",
            "4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with (out / "prediction.csv").open() as file:
        assert next(csv.reader(file)) == HEADER
    rows = read_rows(out / "prediction.csv")
    assert [row["second"] for row in rows[:3]] == ["0", "1", "2"]
    assert rows[10] == {
        "second": "10",
        "in_flight_mean": "40",
        "desired_pods": "1",
        "ready_pods": "0",
        "panic": "0",
        "activator_in_path": "1",
    }
    assert {row["panic"] for row in rows} == {"0", "1"}
    summary = (out / "summary.txt").read_text()
    assert summary in done.stdout
    assert rows[12]["desired_pods"] == "6"
    assert "Peak desired pods: 6 at 12 s" in summary
    assert "Panic mode: 12-75 s (64 s in all)" in summary
    assert "Last request at 29 s; zero pods at 91 s: 62 s later" in summary
    assert "Cold starts: 1: 10 s (first pod ready at 14 s)" in summary


def test_picture_shows_each_series_where_it_happened(tmp_path: Path, spike_timeline: Path) -> None:
    assert (
        main(
            [
                "--timeline",
                str(spike_timeline),
                "--out",
                str(tmp_path),
                "--service",
                str(SERVICE),
                "--pod-start-seconds",
                "4",
            ]
        )
        == 0
    )
    picture = Picture(tmp_path / "prediction.png")
    busy = picture.seconds("in_flight", "load")
    assert busy >= set(range(11, 29))
    ready = picture.seconds("ready", "pods", above_zero=True)
    assert set(range(15, 90)) <= ready
    assert not ready & (set(range(0, 12)) | set(range(93, 100)))
    assert picture.seconds("desired", "pods")
    # Panic shading covers 10-73 and nothing well outside it.
    panic = picture.seconds("panic", "pods")
    assert set(range(12, 72)) <= panic
    assert not panic & (set(range(0, 8)) | set(range(76, 100)))
    assert set(range(2, 98)) <= picture.seconds("activator", "activator")
    assert not picture.columns("recorded_ready", "pods")
    assert not picture.columns("recorded_activator", "activator")


def test_zero_burst_capacity_picture_leaves_a_gap_in_the_activator_band(
    tmp_path: Path, spike_timeline: Path
) -> None:
    assert (
        main(
            [
                "--timeline",
                str(spike_timeline),
                "--out",
                str(tmp_path),
                "--service",
                str(SERVICE),
                "--pod-start-seconds",
                "4",
                "--annotation",
                "target-burst-capacity=0",
            ]
        )
        == 0
    )
    band = Picture(tmp_path / "prediction.png").seconds("activator", "activator")
    assert set(range(1, 12)) <= band
    assert not band & set(range(16, 88))
    assert set(range(92, 118)) <= band


def test_no_panic_no_shading(tmp_path: Path) -> None:
    timeline = write_timeline(tmp_path / "t.csv", [1.0] * 30)
    assert (
        main(
            [
                "--timeline",
                str(timeline),
                "--out",
                str(tmp_path / "o"),
                "--service",
                str(SERVICE),
                "--start-pods",
                "1",
            ]
        )
        == 0
    )
    assert "Panic mode: never" in (tmp_path / "o" / "summary.txt").read_text()
    assert not Picture(tmp_path / "o" / "prediction.png").columns("panic", "pods")


def test_recorded_run_is_drawn_and_compared(tmp_path: Path) -> None:
    assert (
        main(
            [
                "--timeline",
                str(FIXTURES / "timeline-cluster-spike.csv"),
                "--out",
                str(tmp_path),
                "--service",
                str(SERVICE),
                "--pod-start-seconds",
                "4",
            ]
        )
        == 0
    )
    summary = (tmp_path / "summary.txt").read_text()
    # Recorded: pods ready at 19, not 14 (5 s); 3 pods at 78-79 where the model has 2 (2 s);
    # the last pod gone at 96, not 91 (5 s); seconds 50-52 not recorded.
    assert "Against the recorded Knative state:" in summary
    assert (
        "ready pods: equal in 85 of 97 recorded seconds; they differ at 14-18 s, 78-79 s, 91-95 s\n"
    ) in summary
    assert "largest difference at 16 s: predicted 6, recorded 0" in summary
    assert "first ready pod: predicted at 14 s, recorded at 19 s" in summary
    assert "zero pods after the last request: predicted at 91 s, recorded at 96 s" in summary
    assert "activator in the path: agrees in 97 of 97 recorded seconds" in summary
    picture = Picture(tmp_path / "prediction.png")
    recorded = picture.seconds("recorded_ready", "pods")
    assert set(range(21, 48)) <= recorded
    assert set(range(54, 94)) <= recorded
    assert not recorded & set(range(0, 18))  # no pod yet
    assert 51 not in recorded  # nothing recorded at 50-52
    assert 98 not in recorded  # none left
    assert picture.columns("recorded_activator", "activator")


def test_profile_instead_of_a_timeline(tmp_path: Path) -> None:
    assert (
        main(
            [
                "--profile",
                "spike",
                "--users",
                "40",
                "--duration",
                "100",
                "--out",
                str(tmp_path),
                "--service",
                str(SERVICE),
                "--pod-start-seconds",
                "4",
            ]
        )
        == 0
    )
    rows = read_rows(tmp_path / "prediction.csv")
    # spike: idle 10 %, 40 users for 20 %, idle: the same load as the hand-worked timeline.
    assert [float(row["in_flight_mean"]) for row in rows[:100]] == spike()
    assert "the spike profile at 40 users, 100 s" in (tmp_path / "summary.txt").read_text()


def test_recommendation(tmp_path: Path, spike_timeline: Path) -> None:
    args = [
        "--timeline",
        str(spike_timeline),
        "--out",
        str(tmp_path),
        "--service",
        str(SERVICE),
        "--latency-goal-ms",
        "20",
        "--capacity-rps",
        "2000",
        "--request-ms",
        "5",
    ]
    assert main(args) == 0
    text = (tmp_path / "summary.txt").read_text()
    # Busy at 2000 x 0.005 = 10 in flight; 20 ms allows 2000 x 0.02 = 40; peak 40 at 7 per pod.
    assert 'autoscaling.knative.dev/target: "10"' in text
    assert "containerConcurrency: 40 " in text
    assert 'autoscaling.knative.dev/max-scale: "6"' in text
    # Without a figure: one unpipelined command, 9 µs, 111,111/s, 55 pods at 2000 req/s each.
    assert "111,111 req/s at 9 µs" in text
    assert "(one unpipelined command, as the benchmark measures it)" in text
    assert "55 busy pods; max-scale 6 is within it" in text
    assert main([*args, "--redis-us-per-request", "200"]) == 0
    text = (tmp_path / "summary.txt").read_text()
    assert "2 busy pods; max-scale 6 is beyond that" in text


def test_recommendation_from_bench_results(tmp_path: Path, spike_timeline: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(
        '{"cells": [{"server": "handle", "scenario": "GET", "requests_per_second": 4494,'
        ' "p50_ms": 3.2, "redis_us_per_request": 3.3}, {"server": "handle", "scenario": "PUT",'
        ' "requests_per_second": 4117, "p50_ms": 3.6, "redis_us_per_request": 62.5},'
        ' {"server": "noop", "scenario": "GET", "requests_per_second": 12431, "p50_ms": 1.0,'
        ' "redis_us_per_request": 90}]}'
    )
    assert (
        main(
            [
                "--timeline",
                str(spike_timeline),
                "--out",
                str(tmp_path / "o"),
                "--service",
                str(SERVICE),
                "--latency-goal-ms",
                "10",
                "--bench-results",
                str(results),
            ]
        )
        == 0
    )
    text = (tmp_path / "o" / "summary.txt").read_text()
    # PUT is the slower: 4117 x 0.0036 = 14.8 in flight when busy; 10 ms allows 41.
    assert "from 4117 req/s per pod and 3.6 ms per request" in text
    assert 'target: "14"' in text
    assert "containerConcurrency: 41 " in text
    # Redis's cost is handle's costlier scenario (not noop's): 62.5 µs, 16,000/s, 3 pods.
    assert f"16,000 req/s at 62.5 µs of Redis CPU per request ({results}: handle PUT" in text
    assert "3 busy pods" in text


def run_failing(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timeline = tmp_path / "t.csv"
    timeline.write_text("second,sent\n0,1\n")
    err = run_failing(["--timeline", str(timeline), "--out", str(tmp_path / "o")], capsys)
    assert f"predict: error: timeline {timeline} lacks the column(s) in_flight_mean" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("second,in_flight_mean\n0,1\n2,1\n", "line 3: second '2', expected 1"),
        ("second,in_flight_mean\n0,lots\n", "line 2: in_flight_mean 'lots' is not a number"),
        ("second,in_flight_mean\n0,-1\n", "line 2: in_flight_mean must be a number >= 0"),
        ("second,in_flight_mean\n", "has no rows"),
        ("second,in_flight_mean,pods_ready\n0,1,x\n", "line 2: pods_ready 'x' is not valid"),
    ],
)
def test_bad_timelines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    timeline = tmp_path / "t.csv"
    timeline.write_text(content)
    assert message in run_failing(["--timeline", str(timeline), "--out", str(tmp_path)], capsys)


def test_bad_annotation_in_the_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spike_timeline: Path
) -> None:
    service = tmp_path / "service.yaml"
    service.write_text(SERVICE.read_text().replace('target: "10"', 'target: "many"'))
    err = run_failing(
        ["--timeline", str(spike_timeline), "--service", str(service), "--out", str(tmp_path)],
        capsys,
    )
    assert "annotation autoscaling.knative.dev/target: 'many' is not a number" in err


def test_bad_config_autoscaler_and_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spike_timeline: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("kind: ConfigMap\ndata:\n  max-scale-down-rate: '0.5'\n")
    base = ["--timeline", str(spike_timeline), "--service", str(SERVICE), "--out", str(tmp_path)]
    err = run_failing([*base, "--config-autoscaler", str(config)], capsys)
    assert "max-scale-down-rate must be greater than 1" in err
    err = run_failing([*base, "--config-autoscaler", str(tmp_path / "none.yaml")], capsys)
    assert "cannot read config-autoscaler file" in err
    err = run_failing([*base, "--pod-start-seconds", "-1"], capsys)
    assert "--pod-start-seconds cannot be negative" in err
    err = run_failing([*base, "--annotation", "target"], capsys)
    assert "expected KEY=VALUE" in err
    err = run_failing([*base, "--users", "3"], capsys)
    assert "go with --profile" in err


def test_summary_says_when_max_scale_holds_the_autoscaler_back(tmp_path: Path) -> None:
    timeline = write_timeline(tmp_path / "t.csv", [100.0] * 30)
    assert (
        main(["--timeline", str(timeline), "--out", str(tmp_path / "o"), "--service", str(SERVICE)])
        == 0
    )
    summary = (tmp_path / "o" / "summary.txt").read_text()
    # 100 in flight at 7 per pod is ceil(100 / 7) = 15 pods; max-scale is 10.
    assert "Peak desired pods: 10 at 2 s" in summary
    assert "max-scale 10 held the autoscaler back for " in summary
    assert "it wanted up to 15 pods" in summary
    rows = read_rows(tmp_path / "o" / "prediction.csv")
    assert max(int(row["ready_pods"]) for row in rows) == 10
