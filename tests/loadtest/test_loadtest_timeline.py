"""The per-second timeline, the readings drawn from it, and the picture."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from loadtest import analysis, plot
from loadtest.knative import KnativeState
from loadtest.timeline import BASE_COLUMNS, TimelineRecorder, percentile, write_csv

T0 = 1_000_000.0


def pods(
    ready: int, pending: int = 0, desired: int | None = None, mode: str = "Proxy"
) -> KnativeState:
    return KnativeState("r-00001", desired, ready, ready, pending, 0, mode)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_buckets_sent_by_start_and_answered_by_finish() -> None:
    recorder = TimelineRecorder(T0, 3)
    recorder.record_sent(T0 + 0.9, "get")
    recorder.record_result("get", T0 + 0.9, 300.0, 200, None)  # finishes at 1.2 s
    recorder.record_sent(T0 + 1.1, "put")
    recorder.record_result("put", T0 + 1.1, 20.0, 201, None)
    recorder.record_sent(T0 + 1.5, "count")
    recorder.record_result("count", T0 + 1.5, 1000.0, None, "timeout")
    recorder.record_sent(T0 + 2.2, "get")
    recorder.record_result("get", T0 + 2.2, 5.0, 503, None)
    recorder.record_sent(T0 + 2.95, "get")
    recorder.record_result("get", T0 + 2.95, 400.0, 200, None)  # after the end: last second

    rows = recorder.rows()
    assert [row.sent for row in rows] == [1, 2, 2]
    assert [row.answered for row in rows] == [0, 2, 2]
    assert rows[1].statuses == {200: 1, 201: 1}
    assert rows[2].failures == {"timeout": 1}
    assert (rows[2].ok, rows[2].errors_http, rows[2].errors) == (1, 1, 2)
    assert rows[1].p50_ms == 20.0 and rows[1].max_ms == 300.0
    assert rows[0].p50_ms is None
    first = rows[1].first_request
    assert first is not None and first.latency_ms == 20.0 and first.status == 201
    assert recorder.by_kind["get"].statuses == {200: 2, 503: 1}
    assert recorder.by_kind["count"].failures == {"timeout": 1}
    assert recorder.all_latencies_ms() == [5.0, 20.0, 300.0, 400.0]


def test_truncate_keeps_late_answers() -> None:
    recorder = TimelineRecorder(T0, 10)
    recorder.record_sent(T0 + 0.5, "get")
    recorder.record_result("get", T0 + 0.5, 4000.0, 200, None)
    recorder.truncate(2)
    rows = recorder.rows()
    assert len(rows) == 2
    assert rows[1].answered == 1


def test_knative_samples_carry_forward_for_a_few_seconds() -> None:
    recorder = TimelineRecorder(T0, 8)
    recorder.record_knative(T0 + 0.5, pods(0))
    recorder.record_knative(T0 + 0.9, pods(1))
    recorder.record_knative(T0 + 0.7, pods(5))  # older than the one kept: ignored
    recorder.record_knative(T0 + 4.5, pods(2))
    states = [row.knative for row in recorder.rows()]
    assert states[0] == pods(1)
    assert states[1] == states[2] == pods(1)
    assert states[3] is None
    assert states[4] == pods(2)
    assert states[7] is None


def test_csv_has_the_columns_and_one_row_per_second(tmp_path: Path) -> None:
    recorder = TimelineRecorder(T0, 4)
    recorder.record_sent(T0 + 1.2, "get")
    recorder.record_result("get", T0 + 1.2, 10.0, 404, None)
    recorder.record_load(1, 3, 12.0, 41.5, 60.25)
    recorder.record_knative(T0 + 1.5, pods(1, 1, desired=2, mode="Serve"))
    path = tmp_path / "timeline.csv"
    write_csv(recorder.rows(), path)

    with path.open() as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        assert reader.fieldnames == [*BASE_COLUMNS, "status_404"]
    assert [row["second"] for row in rows] == ["0", "1", "2", "3"]
    second = rows[1]
    assert (second["sent"], second["answered"], second["ok"], second["errors_http"]) == (
        "1",
        "1",
        "0",
        "1",
    )
    assert (second["users"], second["asked_rate"], second["generator_cpu_percent"]) == (
        "3",
        "12.0",
        "41.5",
    )
    assert (second["pa_desired"], second["pods_ready"], second["pods_pending"]) == ("2", "1", "1")
    assert (second["sks_mode"], second["activator_in_path"]) == ("Serve", "0")
    assert rows[0]["pods_ready"] == "" and rows[0]["p50_ms"] == ""


def rows_of(seconds: list[tuple[int, KnativeState | None]], latency_ms: float = 5.0) -> list:
    """A timeline with ``sent`` requests and a Knative sample per second."""
    recorder = TimelineRecorder(T0, len(seconds))
    for index, (sent, state) in enumerate(seconds):
        for n in range(sent):
            started = T0 + index + 0.1 + n * 0.001
            recorder.record_sent(started, "get")
            recorder.record_result("get", started, latency_ms if n else 2500.0, 200, None)
        if state is not None:
            recorder.record_knative(T0 + index + 0.5, state)
    return recorder.rows()


def test_scale_up_scale_to_zero_and_cold_start() -> None:
    timeline = [
        (0, pods(0, desired=0)),
        (0, pods(0, desired=0)),
        (10, pods(0, 1, desired=1)),  # burst at zero: cold start
        (10, pods(1, desired=3)),
        (10, pods(3, desired=3, mode="Serve")),
        (0, pods(3, desired=3, mode="Serve")),
        (0, pods(1, desired=1)),
        (0, pods(0, desired=0)),
        (0, pods(0, desired=0)),
    ]
    rows = rows_of(timeline)
    up = analysis.scale_up(rows, initial=pods(0, desired=0))
    assert up is not None
    assert (up.load_started_s, up.pods_ready_at_start, up.desired_at_start) == (2, 0, 0)
    assert (up.desired_rose_after_s, up.ready_rose_after_s) == (0, 1)

    zero = analysis.scale_to_zero(rows)
    assert zero is not None
    assert (zero.idle_from_s, zero.zero_at_s, zero.after_s) == (5, 7, 2)

    colds = analysis.cold_starts(rows, initial=pods(0))
    assert [(c.second, c.latency_ms, c.status) for c in colds] == [(2, 2500.0, 200)]

    assert analysis.peak(rows, "pods_ready") == 3
    assert analysis.peak(rows, "desired_scale") == 3
    assert analysis.activator_seconds(rows) == 7


def test_no_cold_start_when_a_pod_was_ready_and_no_zero_within_the_run() -> None:
    rows = rows_of([(0, pods(1)), (5, pods(1)), (0, pods(1)), (0, pods(1))])
    assert analysis.cold_starts(rows, initial=pods(1)) == []
    zero = analysis.scale_to_zero(rows)
    assert zero is not None and zero.zero_at_s is None and zero.pods_at_end == 1
    up = analysis.scale_up(rows, initial=pods(1))
    assert up is not None and up.ready_rose_after_s is None


def test_readings_without_knative_or_load() -> None:
    rows = rows_of([(3, None), (3, None)])
    assert not analysis.has_knative(rows)
    assert analysis.scale_up(rows, initial=None) is None
    assert analysis.peak(rows, "pods_ready") is None
    assert analysis.scale_up(rows_of([(0, None)]), initial=None) is None


def load_rows(cpu: list[float], sent: list[int], asked: float | None) -> list:
    recorder = TimelineRecorder(T0, len(cpu))
    for index, (percent, count) in enumerate(zip(cpu, sent, strict=True)):
        for _ in range(count):
            recorder.record_sent(T0 + index + 0.2, "get")
        recorder.record_load(index, 10, asked, percent, 50.0)
    return recorder.rows()


def test_generator_saturation_is_reported() -> None:
    health = analysis.generator_health(load_rows([95.0] * 8 + [50.0] * 2, [100] * 10, None), 3.0)
    assert health.saturated
    assert health.cpu_saturated_seconds == 8
    assert "load generator was saturated" in health.notes[0]
    assert health.rate_reached is None

    calm = analysis.generator_health(load_rows([40.0] * 10, [100] * 10, None), 3.0)
    assert not calm.saturated and calm.notes == []


def test_rate_shortfall_is_reported_with_its_cause() -> None:
    rows = load_rows([30.0] * 6, [100, 60, 60, 60, 60, 60], 100.0)
    health = analysis.generator_health(rows, latency_p95_ms=1800.0)
    assert health.asked_requests == 600.0
    assert health.sent_when_asked == 400
    assert health.rate_reached is False
    assert health.rate_shortfall_seconds == 5
    assert "asked rate was not reached: 400 of 600" in health.notes[0]
    assert "answers were slow (p95 1800 ms" in health.notes[0]

    reached = analysis.generator_health(load_rows([30.0] * 4, [100] * 4, 100.0), 3.0)
    assert reached.rate_reached is True


def test_picture_has_a_pod_panel_only_with_knative(tmp_path: Path) -> None:
    with_pods = rows_of([(0, pods(0)), (10, pods(0, 1, desired=1)), (10, pods(1)), (0, pods(1))])
    without = rows_of([(0, None), (10, None), (10, None), (0, None)])
    assert plot.draw(with_pods, tmp_path / "pods.png", "with pods") is True
    assert plot.draw(without, tmp_path / "plain.png", "without") is False
    with Image.open(tmp_path / "pods.png") as tall, Image.open(tmp_path / "plain.png") as short:
        assert tall.format == short.format == "PNG"
        assert tall.width == short.width == 1200
        assert tall.height > short.height > 400
