"""timeline.png: stacked panels on one time axis, stage changes marked across all of them.

1. load: asked, sent and answered per second, dropped and errors as bars
2. latency from the due time: p50, p95, p99 (log scale, plain numbers); seconds in which
   requests were out and none came back are shaded as stalls, so a stall is never a blank
3. requests in flight (mean and the second's maximum) against the autoscaler's line, target x
   utilization x ready pods (with Knative state)
4. pods (with Knative state): desired, ready, pending, terminating, one line each, drawn at the
   watch events' own times; a thin band under them while the activator is in the request path

Legends sit to the right of the panels, outside the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator

from loadtest.knative import KnativeState
from loadtest.profiles import Profile
from loadtest.timeline import TimelineRow

COLORS = {
    "asked": "black",
    "sent": "#1f77b4",
    "answered": "#2ca02c",
    "dropped": "#9467bd",
    "errors": "#d62728",
    "p50": "#2ca02c",
    "p95": "#ff7f0e",
    "p99": "#d62728",
    "stall": "#d62728",
    "in_flight": "#1f77b4",
    "target": "#7f7f7f",
    "desired": "#9467bd",
    "ready": "#2ca02c",
    "pending": "#ff7f0e",
    "terminating": "#8c564b",
    "activator": "#17becf",
    "stage": "#555555",
}
ACTIVATOR_LABEL = "activator in the path (SKS ActivatorEndpointsPopulated)"
STALL_LABEL = "stall: requests out, no answers"
PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


def _steps(axes: Axes, x: Sequence[int], y: Sequence[float | None], **style: object) -> None:
    """Each second's value held across that second, the last one included."""
    if not x:
        return
    values = [math.nan if v is None else v for v in y]
    axes.step([*x, x[-1] + 1], [*values, values[-1]], where="post", **style)  # type: ignore[arg-type]


def _legend(
    axes: Axes, handles: list[Artist] | None = None, labels: list[str] | None = None
) -> None:
    if handles is None or labels is None:
        handles, labels = axes.get_legend_handles_labels()
    if labels:
        axes.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
            frameon=False,
        )  # fmt: skip


def _load_panel(axes: Axes, rows: Sequence[TimelineRow]) -> None:
    x = [row.second for row in rows]
    errors = [row.errors for row in rows]
    dropped = [row.dropped for row in rows]
    if any(row.asked_rate for row in rows):
        _steps(axes, x, [row.asked_rate for row in rows], color=COLORS["asked"], ls="--",
               lw=1.2, label="asked/s")  # fmt: skip
    _steps(axes, x, [row.sent for row in rows], color=COLORS["sent"], label="sent/s")
    _steps(axes, x, [row.answered for row in rows], color=COLORS["answered"], label="answered/s")
    if any(dropped):
        axes.bar(x, dropped, width=1.0, align="edge", color=COLORS["dropped"], alpha=0.5,
                 label="dropped/s (in-flight cap)")  # fmt: skip
    if any(errors):
        axes.bar(x, errors, width=1.0, align="edge", color=COLORS["errors"], alpha=0.5,
                 label="errors/s")  # fmt: skip
    axes.set_ylabel("requests / s")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(PLAIN)
    _legend(axes)


def _stalls(rows: Sequence[TimelineRow]) -> list[int]:
    return [row.second for row in rows if row.in_flight_mean > 0 and row.answered == 0
            and sum(row.failures.values()) == 0]  # fmt: skip


def _latency_panel(axes: Axes, rows: Sequence[TimelineRow]) -> None:
    x = [row.second for row in rows]
    series = {
        "p50": [row.p50_ms for row in rows],
        "p95": [row.p95_ms for row in rows],
        "p99": [row.p99_ms for row in rows],
    }
    for name, values in series.items():
        _steps(axes, x, values, color=COLORS[name], label=name)
    for second in _stalls(rows):
        axes.axvspan(second, second + 1, color=COLORS["stall"], alpha=0.15, lw=0)
    present = [v for values in series.values() for v in values if v is not None and v > 0]
    # Cold starts next to millisecond answers need a log scale to show both.
    if present and max(present) / min(present) > 20:
        axes.set_yscale("log")
        axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    axes.yaxis.set_major_formatter(PLAIN)
    axes.set_ylabel("latency from due (ms)")
    handles, labels = axes.get_legend_handles_labels()
    if _stalls(rows):
        handles.append(Patch(color=COLORS["stall"], alpha=0.15))
        labels.append(STALL_LABEL)
    _legend(axes, handles, labels)


def _in_flight_panel(
    axes: Axes, rows: Sequence[TimelineRow], changes: Sequence[tuple[float, KnativeState]]
) -> None:
    x = [row.second for row in rows]
    _steps(axes, x, [row.in_flight_max for row in rows], color=COLORS["in_flight"], lw=0.8,
           alpha=0.4, label="in flight, max in the second")  # fmt: skip
    _steps(axes, x, [row.in_flight_mean for row in rows], color=COLORS["in_flight"],
           label="in flight, mean")  # fmt: skip
    if any(state.target_per_pod is not None for _, state in changes):
        # At the watch events' own times, like the pods it counts.
        times = [at for at, _ in changes] + [float(len(rows))]
        line = [
            math.nan if state.target_per_pod is None else state.target_per_pod * state.pods_ready
            for _, state in changes
        ]
        axes.step(times, [*line, line[-1]], where="post", color=COLORS["target"], ls="--",
                  label="autoscaler's line: target x utilization x ready pods")  # fmt: skip
    axes.set_ylabel("requests in flight")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(PLAIN)
    _legend(axes)


def _pods_panel(axes: Axes, changes: Sequence[tuple[float, KnativeState]], end: float) -> None:
    """Pods as the watch events left them, at the events' own times (not per second)."""
    times = [at for at, _ in changes] + [end]

    def field(name: str) -> list[float]:
        values = [float(getattr(state, name) if getattr(state, name) is not None else math.nan)
                  for _, state in changes]  # fmt: skip
        return [*values, values[-1]]

    series: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("desired_scale", "desired", {"ls": "--"}),
        ("pods_ready", "ready", {"lw": 2}),
        ("pods_pending", "pending", {}),
        ("pods_terminating", "terminating", {"ls": ":"}),
    )
    counts: list[float] = []
    for name, label, style in series:
        values = field(name)
        counts.extend(v for v in values if not math.isnan(v))
        axes.step(times, values, where="post", color=COLORS[label], label=label, **style)
    top = max(counts or [1.0]) + 1
    # The activator band lies below zero pods, apart from the lines.
    axes.set_ylim(-0.12 * top, top)
    spans = [
        (at, following - at)
        for (at, state), following in zip(changes, times[1:], strict=True)
        if state.activator_in_path and following > at
    ]
    if spans:
        axes.broken_barh(spans, (-0.1 * top, 0.06 * top), color=COLORS["activator"],
                         label=ACTIVATOR_LABEL)  # fmt: skip
    axes.set_ylabel("pods")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_yticks([tick for tick in axes.get_yticks() if 0 <= tick <= top])
    axes.yaxis.set_major_formatter(PLAIN)
    _legend(axes)


def _changes_of(rows: Sequence[TimelineRow]) -> list[tuple[float, KnativeState]]:
    """Per-second states, for a timeline without its events: one change per second."""
    return [(float(row.second), row.knative) for row in rows if row.knative is not None]


def _stage_marks(panels: Sequence[Axes], profile: Profile | None) -> None:
    if profile is None:
        return
    start = 0
    top = panels[0]
    for index, stage in enumerate(profile.stages):
        if index:
            for axes in panels:
                axes.axvline(start, color=COLORS["stage"], lw=0.8, ls=(0, (4, 3)), alpha=0.7)
        if stage.rate:
            text = f"{stage.rate:g} req/s"
        elif stage.users:
            text = f"{stage.users} users"
        else:
            text = "idle"
        top.annotate(
            text, xy=(start + stage.duration_s / 2, 1.0), xycoords=("data", "axes fraction"),
            xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize="small",
            color=COLORS["stage"],
        )  # fmt: skip
        start += stage.duration_s


def figure(
    rows: Sequence[TimelineRow],
    title: str,
    profile: Profile | None = None,
    changes: Sequence[tuple[float, KnativeState]] | None = None,
) -> Figure:
    """``changes``: (seconds since the start, state) from the watch events; else the rows'."""
    with_pods = any(row.knative is not None for row in rows)
    panels = 4 if with_pods else 3
    result = Figure(figsize=(13, 2.5 * panels + 0.8), layout="constrained")
    axes = list(result.subplots(panels, 1, sharex=True))
    _load_panel(axes[0], rows)
    _latency_panel(axes[1], rows)
    pods = [c for c in (changes or []) if c[0] < len(rows)] or _changes_of(rows)
    # The state the run began with (the last one before it) holds from its start.
    before = [state for at, state in pods if at <= 0]
    pods = ([(0.0, before[-1])] if before else []) + [c for c in pods if c[0] > 0]
    _in_flight_panel(axes[2], rows, pods)
    if with_pods:
        _pods_panel(axes[3], pods, float(len(rows)))
    _stage_marks(axes, profile)
    for panel in axes:
        panel.grid(True, alpha=0.3)
    axes[-1].set_xlabel("seconds since start")
    axes[-1].set_xlim(0, max(len(rows), 1))
    axes[-1].xaxis.set_major_formatter(PLAIN)
    result.suptitle(title)
    return result


def draw(
    rows: Sequence[TimelineRow],
    path: Path,
    title: str,
    profile: Profile | None = None,
    changes: Sequence[tuple[float, KnativeState]] | None = None,
) -> bool:
    """Writes the PNG; returns whether it has the pod panel (only when Knative was read)."""
    drawn = figure(rows, title, profile, changes)
    drawn.savefig(path, dpi=100)
    return len(drawn.axes) == 4
