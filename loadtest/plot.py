"""timeline.png: stacked panels on one time axis (load, latency, and pods when Knative was read)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from loadtest.timeline import TimelineRow

ACTIVATOR_SHADE = "#f6c27a"


def _steps(axes: Axes, x: Sequence[int], y: Sequence[float | None], **style: object) -> None:
    """Each second's value held across that second, the last one included."""
    if not x:
        return
    values = [math.nan if v is None else v for v in y]
    axes.step([*x, x[-1] + 1], [*values, values[-1]], where="post", **style)  # type: ignore[arg-type]


def _load_panel(axes: Axes, rows: Sequence[TimelineRow]) -> None:
    x = [row.second for row in rows]
    errors = [row.errors for row in rows]
    if any(errors):
        axes.bar(x, errors, width=1.0, align="edge", color="#d62728", alpha=0.6, label="errors/s")
    _steps(axes, x, [row.sent for row in rows], color="#1f77b4", label="sent/s")
    _steps(axes, x, [row.answered for row in rows], color="#2ca02c", label="answered/s")
    if any(row.asked_rate for row in rows):
        _steps(axes, x, [row.asked_rate for row in rows], color="black", ls="--", label="asked/s")
    axes.set_ylabel("requests / s")
    axes.set_ylim(bottom=0)
    users = axes.twinx()
    counts = [row.users for row in rows]
    _steps(users, x, counts, color="grey", alpha=0.7, lw=1, label="users")
    users.set_ylabel("users", color="grey")
    users.set_ylim(0, max([c for c in counts if c is not None] or [1]) * 1.15 + 0.5)
    users.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes.get_legend_handles_labels()
    more_handles, more_labels = users.get_legend_handles_labels()
    axes.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize="small")


def _latency_panel(axes: Axes, rows: Sequence[TimelineRow]) -> None:
    x = [row.second for row in rows]
    series = {
        "p50": ([row.p50_ms for row in rows], "#2ca02c"),
        "p95": ([row.p95_ms for row in rows], "#ff7f0e"),
        "p99": ([row.p99_ms for row in rows], "#d62728"),
    }
    for name, (values, color) in series.items():
        _steps(axes, x, values, color=color, label=name)
    present = [v for values, _ in series.values() for v in values if v is not None and v > 0]
    # Cold starts next to millisecond answers need a log scale to show both.
    if present and max(present) / min(present) > 20:
        axes.set_yscale("log")
    axes.set_ylabel("latency (ms)")
    if present:
        axes.legend(loc="upper left", fontsize="small")


def _pods_panel(axes: Axes, rows: Sequence[TimelineRow]) -> None:
    x = [row.second for row in rows]
    for row in rows:
        if row.knative is not None and row.knative.activator_in_path:
            axes.axvspan(row.second, row.second + 1, color=ACTIVATOR_SHADE, alpha=0.45, lw=0)

    def field(name: str) -> list[float | None]:
        return [getattr(row.knative, name) if row.knative else None for row in rows]

    _steps(axes, x, field("desired_scale"), color="#9467bd", ls="--", label="desired (PA)")
    _steps(axes, x, field("actual_scale"), color="#8c564b", lw=3, alpha=0.5, label="actual (PA)")
    _steps(axes, x, field("pods_ready"), color="#2ca02c", label="pods ready")
    _steps(axes, x, field("pods_pending"), color="#ff7f0e", label="pods pending")
    _steps(axes, x, field("pods_terminating"), color="grey", ls=":", label="pods terminating")
    axes.set_ylabel("pods")
    counts = [
        value
        for name in ("desired_scale", "actual_scale", "pods_ready", "pods_pending")
        for value in field(name)
        if value is not None
    ]
    axes.set_ylim(-0.1, max(counts or [1]) + 1)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes.get_legend_handles_labels()
    handles.append(Patch(color=ACTIVATOR_SHADE, alpha=0.45))
    labels.append("activator in path (SKS Proxy)")
    axes.legend(handles, labels, loc="upper left", fontsize="small")


def draw(rows: Sequence[TimelineRow], path: Path, title: str) -> bool:
    """Writes the PNG; returns whether it has the pod panel (only when Knative was read)."""
    with_pods = any(row.knative is not None for row in rows)
    panels = 3 if with_pods else 2
    figure = Figure(figsize=(12, 2.8 * panels + 0.6), layout="constrained")
    axes = figure.subplots(panels, 1, sharex=True)
    _load_panel(axes[0], rows)
    _latency_panel(axes[1], rows)
    if with_pods:
        _pods_panel(axes[2], rows)
    for panel in axes:
        panel.grid(True, alpha=0.3)
    axes[-1].set_xlabel("seconds since start")
    axes[-1].set_xlim(0, max(len(rows), 1))
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    return with_pods
