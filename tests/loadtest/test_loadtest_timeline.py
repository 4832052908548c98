"""The per-second timeline, the generator's own measurements, the readings and the picture."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from PIL import Image

from loadtest import analysis, plot
from loadtest.engine import InFlightGauge
from loadtest.knative import KnativeState
from loadtest.profiles import Profile, Stage
from loadtest.timeline import BASE_COLUMNS, TimelineRecorder, TimelineRow, percentile, write_csv

T0 = 1_000_000.0


def pods(
    ready: int, pending: int = 0, desired: int | None = None, activator: bool = True
) -> KnativeState:
    return KnativeState(
        "r-00001", desired, ready, ready, pending, 0, "Proxy", activator, 7.0, ready + pending
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None


def test_latency_from_due_service_from_send_buckets_by_send_and_finish() -> None:
    recorder = TimelineRecorder(T0, 3)
    # Due at 0.5 s, sent 0.9 s (the generator was late), answered at 1.2 s.
    recorder.record_request("get", T0 + 0.5, T0 + 0.9, T0 + 1.2, 200, None)
    recorder.record_request("put", T0 + 1.1, T0 + 1.1, T0 + 1.12, 201, None)
    recorder.record_request("count", T0 + 1.5, T0 + 1.5, T0 + 2.5, None, "timeout")
    recorder.record_request("get", T0 + 2.2, T0 + 2.2, T0 + 2.205, 503, None)
    recorder.record_request("get", T0 + 2.95, T0 + 2.95, T0 + 3.35, 200, None)  # after the end
    rows = recorder.rows()
    assert [row.sent for row in rows] == [1, 2, 2]
    assert [row.answered for row in rows] == [0, 2, 2]
    assert rows[1].statuses == {200: 1, 201: 1}
    assert rows[2].failures == {"timeout": 1}
    assert (rows[2].ok, rows[2].errors_http, rows[2].errors) == (1, 1, 2)
    assert rows[1].max_ms == pytest.approx(700.0)  # from the due time
    assert rows[1].service_p95_ms == pytest.approx(300.0)  # from the send
    assert rows[0].p50_ms is None
    assert recorder.by_kind["get"].statuses == {200: 2, 503: 1}
    assert recorder.by_kind["count"].failures == {"timeout": 1}


def test_in_flight_gauge_is_time_weighted_per_second() -> None:
    gauge = InFlightGauge(T0, 3)
    gauge.change(T0 + 0.25, 1)  # one out from 0.25 s
    gauge.change(T0 + 0.5, 1)  # two from 0.5 s
    gauge.change(T0 + 1.5, -1)  # one from 1.5 s
    gauge.change(T0 + 1.75, -1)  # none from 1.75 s
    gauge.advance(T0 + 9.0)  # answers after the run add nothing
    assert gauge.means() == pytest.approx([0.25 * 1 + 0.5 * 2, 0.5 * 2 + 0.25 * 1, 0.0])
    assert gauge.maximum == [2, 2, 0]


def test_knative_state_holds_until_the_next_event() -> None:
    recorder = TimelineRecorder(T0, 8)
    recorder.record_knative(T0 + 0.5, pods(0))
    recorder.record_knative(T0 + 0.9, pods(1))
    recorder.record_knative(T0 + 0.7, pods(5))  # older than the one kept: ignored
    recorder.record_knative(T0 + 4.5, pods(2))
    states = [row.knative for row in recorder.rows()]
    assert states[:4] == [pods(1)] * 4
    assert states[4:] == [pods(2)] * 4


def test_csv_columns_and_values(tmp_path: Path) -> None:
    recorder = TimelineRecorder(T0, 4)
    recorder.record_request("get", T0 + 1.2, T0 + 1.2, T0 + 1.21, 404, None)
    recorder.record_load(1, None, 12.0, 41.5, 60.25, loop_lag_max_ms=3.5, dropped=2,
                         in_flight_mean=1.25, in_flight_max=3)  # fmt: skip
    recorder.record_knative(T0 + 1.5, pods(2, 1, desired=3, activator=False))
    path = tmp_path / "timeline.csv"
    write_csv(recorder.rows(), path)
    with path.open() as file:
        reader = csv.DictReader(file)
        rows = list(reader)
        assert reader.fieldnames == [*BASE_COLUMNS, "status_404"]
    assert {"second", "in_flight_mean", "in_flight_max"} <= set(BASE_COLUMNS)
    second = rows[1]
    assert (second["sent"], second["answered"], second["ok"], second["errors_http"]) == (
        "1", "1", "0", "1",
    )  # fmt: skip
    assert (second["asked_rate"], second["generator_cpu_percent"], second["dropped"]) == (
        "12.0", "41.5", "2",
    )  # fmt: skip
    assert (second["in_flight_mean"], second["in_flight_max"], second["loop_lag_max_ms"]) == (
        "1.25", "3", "3.5",
    )  # fmt: skip
    assert (second["pa_desired"], second["pods_ready"], second["target_in_flight"]) == (
        "3", "2", "14.0",
    )  # fmt: skip
    assert (second["sks_mode"], second["activator_in_path"]) == ("Proxy", "0")
    assert rows[0]["pods_ready"] == "" and rows[0]["p50_ms"] == ""


def load_rows(cpu: list[float], lag: list[float], sent: int = 100) -> list[TimelineRow]:
    recorder = TimelineRecorder(T0, len(cpu))
    for index, (percent, late) in enumerate(zip(cpu, lag, strict=True)):
        for _ in range(sent):
            at = T0 + index + 0.2
            recorder.record_request("get", at, at, at + 0.001, 200, None)
        recorder.record_load(index, 64, None, percent, 50.0, loop_lag_max_ms=late)
    return recorder.rows()


def test_saturation_counts_cpu_and_loop_lag() -> None:
    # A 64-user run at 82 % of a core: saturated.
    busy = analysis.generator_health(load_rows([82.0] * 10, [2.0] * 10))
    assert busy.saturated and busy.cpu_saturated_seconds == 10
    assert "load generator was saturated" in busy.notes[0]
    # Low CPU but the loop is late: saturated too.
    lagging = analysis.generator_health(load_rows([30.0] * 10, [40.0] * 3 + [1.0] * 7))
    assert lagging.saturated and lagging.lag_saturated_seconds == 3
    # Two processes at 80 % together are 40 % each.
    calm = analysis.generator_health(load_rows([80.0] * 10, [1.0] * 10), processes=2)
    assert not calm.saturated and calm.notes == []


def picture_rows() -> list[TimelineRow]:
    recorder = TimelineRecorder(T0, 8)
    states = [pods(0, desired=0), pods(0, 1, desired=1), pods(1, desired=1, activator=False)]
    for index, state in enumerate([states[0]] * 2 + [states[1]] + [states[2]] * 5):
        recorder.record_knative(T0 + index + 0.5, state)
    for index in (2, 3, 5, 6):
        for n in range(10):
            at = T0 + index + n * 0.05
            recorder.record_request("get", at, at, at + 0.004, 200 if n else 503, None)
    # Second 4: a stall, requests out and none back until second 5.
    recorder.record_request("get", T0 + 4.0, T0 + 4.0, T0 + 5.5, 200, None)
    for index in range(8):
        stall = 1.0 if index == 4 else 0.0
        recorder.record_load(index, None, 10.0, 5.0, 20.0, dropped=1 if index == 6 else 0,
                             in_flight_mean=stall, in_flight_max=int(stall))  # fmt: skip
    return recorder.rows()


def labels(axes: object) -> list[str]:
    legend = axes.get_legend()  # type: ignore[attr-defined]
    return [text.get_text() for text in legend.get_texts()]


def test_picture_panels_series_and_marks(tmp_path: Path) -> None:
    profile = Profile("p", (Stage(2, rate=0.0), Stage(4, rate=10.0), Stage(2, users=0)))
    rows = picture_rows()
    figure = plot.figure(rows, "title", profile)
    load, latency, in_flight, pod_panel = figure.axes
    assert labels(load) == [
        "asked/s", "sent/s", "answered/s", "dropped/s (in-flight cap)", "errors/s",
    ]  # fmt: skip
    assert labels(latency) == ["p50", "p95", "p99", plot.STALL_LABEL]
    assert labels(in_flight) == [
        "in flight, max in the second", "in flight, mean",
        "autoscaler's line: target x utilization x ready pods",
    ]  # fmt: skip
    assert labels(pod_panel) == ["desired", "ready", "pending", "terminating", plot.ACTIVATOR_LABEL]
    # One line per pod series: nothing drawn twice (actual = ready is not repeated).
    pod_lines = [line for line in pod_panel.get_lines() if line.get_label()[0] != "_"]
    assert len(pod_lines) == 4
    # The activator band: the seconds it was in the path, below zero pods.
    band = [c for c in pod_panel.collections if c.get_label() == plot.ACTIVATOR_LABEL]
    assert len(band) == 1 and isinstance(band[0], PolyCollection)
    extents = band[0].get_paths()
    assert len(extents) == 3  # seconds 0, 1 and 2
    assert all(path.vertices[:, 1].max() < 0 for path in extents)
    # Legends outside the data, to the right of each panel.
    for axes in figure.axes:
        assert axes.get_legend().get_bbox_to_anchor().x0 > axes.get_window_extent().x1 - 1
    # Stage changes at 2 s and 6 s, on every panel.
    for axes in figure.axes:
        marks = [
            line.get_xdata()[0] for line in axes.get_lines()
            if isinstance(line, Line2D) and line.get_label().startswith("_") and
            len(set(line.get_xdata())) == 1
        ]  # fmt: skip
        assert marks == [2, 6]
    # The stall is shaded, not a blank: second 4.
    stall = [p for p in latency.patches if p.get_facecolor()[0] > 0.8]
    assert [round(p.get_x()) for p in stall] == [4]
    # The autoscaler's line: 7 requests per ready pod.
    target = in_flight.get_lines()[2].get_ydata()
    assert list(target[:8]) == [0, 0, 0, 7, 7, 7, 7, 7]
    # Plain tick labels, no 10^x notation.
    figure.canvas.draw()
    ticks = [t.get_text() for axes in figure.axes for t in axes.get_yticklabels()]
    assert ticks and not any("10^" in t or "times" in t or "\u00d7" in t for t in ticks)
    path = tmp_path / "timeline.png"
    assert plot.draw(rows, path, "title", profile) is True
    with Image.open(path) as image:
        assert image.size == (1300, 1080)


def test_picture_without_knative_has_three_panels(tmp_path: Path) -> None:
    rows = picture_rows()
    plain = [TimelineRow(**{**row.__dict__, "knative": None}) for row in rows]
    figure = plot.figure(plain, "t")
    assert len(figure.axes) == 3
    assert "autoscaler's line" not in " ".join(labels(figure.axes[2]))
    assert plot.draw(plain, tmp_path / "p.png", "t") is False


def test_pods_and_the_autoscalers_line_follow_the_watch_events_times() -> None:
    rows = picture_rows()
    changes = [
        (-2.0, pods(0, desired=0)),  # listed before the run: holds from its start
        (2.25, pods(0, 1, desired=1)),
        (3.5, pods(1, desired=1, activator=False)),
        (6.75, pods(0, desired=0)),
    ]
    figure = plot.figure(rows, "events", None, changes)
    _, _, in_flight, pod_panel = figure.axes
    ready = next(line for line in pod_panel.get_lines() if line.get_label() == "ready")
    assert list(ready.get_xdata()) == [0.0, 2.25, 3.5, 6.75, 8.0]
    assert list(ready.get_ydata()) == [0, 0, 1, 0, 0]
    (band,) = [c for c in pod_panel.collections if c.get_label() == plot.ACTIVATOR_LABEL]
    spans = sorted((p.vertices[:, 0].min(), p.vertices[:, 0].max()) for p in band.get_paths())
    assert spans == [(0.0, 2.25), (2.25, 3.5), (6.75, 8.0)]
    line = next(ln for ln in in_flight.get_lines() if ln.get_label().startswith("autoscaler"))
    assert list(line.get_xdata()) == [0.0, 2.25, 3.5, 6.75, 8.0]
    assert list(line.get_ydata()) == [0, 0, 7, 0, 0]
