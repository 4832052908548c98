"""Per-stage judgement of the rate and the CI thresholds, on timelines built by hand."""

from __future__ import annotations

from typing import Any

from loadtest import analysis
from loadtest.analysis import Request
from loadtest.profiles import Profile, Stage
from loadtest.thresholds import Thresholds, violations
from loadtest.timeline import TimelineRecorder

T0 = 1_000_000.0


def judged(
    sent_late_s: float = 0.0, dropped: int = 0, cpu: float = 10.0, lag: float = 1.0
) -> analysis.StageReport:
    """A 2 s stage at 10 req/s: 20 due; ``dropped`` of the last ones not sent."""
    profile = Profile("p", (Stage(2, rate=10.0),))
    recorder = TimelineRecorder(T0, 2)
    requests = []
    for index in range(20 - dropped):
        due = T0 + index / 10
        sent = due + (sent_late_s if index < 5 else 0.0)
        recorder.record_request("get", due, sent, sent + 0.01, 200, None)
        requests.append(Request("get", due, sent, sent + 0.01, 200))
    for second in range(2):
        recorder.record_load(second, None, 10.0, cpu, 20.0, loop_lag_max_ms=lag,
                             dropped=dropped if second == 1 else 0)  # fmt: skip
    (report,) = analysis.stage_reports(profile, recorder.rows(), requests, T0, 1, 8)
    return report


def test_a_kept_rate() -> None:
    report = judged()
    assert (report.asked, report.sent, report.dropped, report.late) == (20, 20, 0, 0)
    assert report.reached is True and report.cause is None


def test_drops_at_the_cap_mean_slow_answers() -> None:
    report = judged(dropped=4)
    assert (report.asked, report.sent, report.dropped) == (20, 16, 4)
    assert report.reached is False
    assert report.cause == "slow answers: 4 requests dropped at the cap of 8 in flight"


def test_late_sends_name_the_generator_cpu_or_the_loop() -> None:
    cpu_bound = judged(sent_late_s=0.2, cpu=90.0)
    assert cpu_bound.reached is False and cpu_bound.late == 5
    assert cpu_bound.cause == "generator CPU: 5 requests sent late, CPU up to 90 %"
    lagging = judged(sent_late_s=0.2, lag=180.0)
    assert lagging.cause == "event-loop lag: 5 requests sent late (up to 180 ms)"
    # Within 50 ms of the due time is on time.
    assert judged(sent_late_s=0.04).reached is True


def summary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "error_rate": 0.0,
        "errors_total": 0,
        "requests_finished": 400,
        "latency_ms": {"p95": 40.0, "p99": 90.0},
        "stages": [
            {
                "index": 0,
                "rate": 100.0,
                "asked": 400,
                "sent": 400,
                "dropped": 0,
                "late": 0,
                "reached": True,
                "cause": None,
            },
            {"index": 1, "users": 5, "asked": None, "sent": 90, "reached": None},
        ],
    }
    return {**base, **changes}


def test_thresholds_pass_and_break_one_line_each() -> None:
    limits = Thresholds(max_error_rate=0.01, max_p95_ms=50, max_p99_ms=100, require_rate=True)
    assert violations(limits, summary()) == []
    short = dict(summary()["stages"][0], sent=380, dropped=20, reached=False, cause="slow answers")
    broken = summary(
        error_rate=0.1, errors_total=40, latency_ms={"p95": 512.0, "p99": 981.0},
        stages=[short, summary()["stages"][1]],
    )  # fmt: skip
    assert violations(limits, broken) == [
        "threshold --max-error-rate 0.01 broken: error rate 0.1 (40 of 400 requests)",
        "threshold --max-p95-ms 50 broken: p95 512 ms",
        "threshold --max-p99-ms 100 broken: p99 981 ms",
        "threshold --require-rate broken: stage 1 (100 req/s): sent 380 of 400, 20 dropped, "
        "0 late: slow answers",
    ]
    assert violations(Thresholds(), broken) == []
