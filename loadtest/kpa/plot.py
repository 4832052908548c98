"""prediction.png: the load, the pods, panic mode and the activator, second by second.

Every series has its own colour (``COLOURS``) and the legends sit right of the panels, so a
reader (and the tests) can tell from the pixels which series were drawn and where. The PNG's
``Axes`` text chunk records each panel's pixel box and the seconds its x axis spans.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from loadtest.kpa.load import Recorded
from loadtest.kpa.report import periods
from loadtest.kpa.simulation import Prediction

COLOURS = {
    "in_flight": "#1f77b4",
    "capacity": "#8c564b",
    "desired": "#d62728",
    "ready": "#2ca02c",
    "recorded_ready": "#cdb5e8",
    "recorded_desired": "#ff7f0e",
    "panic": "#ffe680",
    "activator": "#17becf",
    "recorded_activator": "#e377c2",
}
PANELS_RIGHT = 0.78  # the panels end here (fraction of the width); the legends follow
DPI = 100


def _steps(
    ax: Axes,
    values: Sequence[float | None],
    colour: str,
    label: str,
    linewidth: float = 2.2,
    linestyle: str = "-",
) -> None:
    seconds = list(range(len(values)))
    # Seconds without a value (nothing recorded) leave a gap.
    points = [math.nan if value is None else value for value in values]
    ax.step(
        seconds,
        points,
        where="post",
        color=colour,
        label=label,
        linewidth=linewidth,
        linestyle=linestyle,
    )


def _shade_panic(ax: Axes, prediction: Prediction) -> None:
    for first, last in periods(row.panic for row in prediction.rows):
        ax.axvspan(first, last + 1, color=COLOURS["panic"], zorder=0, linewidth=0)


def draw(
    prediction: Prediction,
    recorded: Recorded | None,
    target_per_pod: float,
    title: str,
    path: Path,
) -> None:
    rows = prediction.rows
    figure, (load_ax, pods_ax, path_ax) = plt.subplots(
        3, 1, figsize=(12, 7), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1]}
    )
    figure.subplots_adjust(left=0.07, right=PANELS_RIGHT, top=0.93, bottom=0.08, hspace=0.12)
    figure.suptitle(title, fontsize=11)

    _shade_panic(load_ax, prediction)
    _steps(load_ax, [row.in_flight_mean for row in rows], COLOURS["in_flight"], "in flight")
    _steps(
        load_ax,
        [row.ready_pods * target_per_pod for row in rows],
        COLOURS["capacity"],
        "ready pods x target",
        linestyle="--",
    )
    load_ax.set_ylabel("requests in flight")

    _shade_panic(pods_ax, prediction)
    # Ready pods wide underneath, desired pods narrow on top: both show where they agree.
    _steps(pods_ax, [row.ready_pods for row in rows], COLOURS["ready"], "ready pods", 5.0)
    desired = [max(row.desired_pods, 0) for row in rows]
    _steps(pods_ax, desired, COLOURS["desired"], "desired pods", 1.5)
    if recorded is not None:
        # What happened is an area under the prediction's lines, so it shows where they agree.
        if any(v is not None for v in recorded.ready):
            seen = [0 if v is None else v for v in recorded.ready]
            known = [v is not None for v in recorded.ready]
            pods_ax.fill_between(
                range(len(seen)),
                0,
                seen,
                where=known,
                step="post",
                color=COLOURS["recorded_ready"],
                label="recorded ready pods",
                linewidth=0,
                zorder=0.5,
            )
        if any(v is not None for v in recorded.desired):
            _steps(
                pods_ax,
                list(recorded.desired),
                COLOURS["recorded_desired"],
                "recorded desired pods",
                1.5,
                "--",
            )
    pods_ax.set_ylabel("pods")
    pods_ax.set_ylim(bottom=0)
    pods_ax.yaxis.get_major_locator().set_params(integer=True)

    seconds = range(len(rows))
    path_ax.fill_between(
        seconds,
        0,
        [1 if r.activator_in_path else 0 for r in rows],
        step="post",
        color=COLOURS["activator"],
        label="activator in the path",
        linewidth=0,
    )
    if recorded is not None and any(v is not None for v in recorded.activator_in_path):
        recorded_flags = [
            None if v is None else (0.5 if v else 0) for v in recorded.activator_in_path
        ]
        path_ax.step(
            range(len(recorded_flags)),
            recorded_flags,
            where="post",
            color=COLOURS["recorded_activator"],
            label="recorded: activator",
            linewidth=2.2,
        )
    path_ax.set_yticks([])
    path_ax.set_ylim(0, 1.05)
    path_ax.set_xlabel("second")
    path_ax.set_xlim(0, len(rows))

    for ax in (load_ax, pods_ax, path_ax):
        handles, labels = ax.get_legend_handles_labels()
        if ax is load_ax and any(row.panic for row in rows):
            handles.append(Rectangle((0, 0), 1, 1, color=COLOURS["panic"]))
            labels.append("panic mode")
        ax.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False
        )
        ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)

    height = figure.get_size_inches()[1] * DPI
    boxes = {}
    for name, ax in (("load", load_ax), ("pods", pods_ax), ("activator", path_ax)):
        box = ax.get_position()
        # Pixel box: left, top, right, bottom, with y counted from the top as in the PNG.
        boxes[name] = [
            round(box.x0 * 12 * DPI),
            round(height - box.y1 * height),
            round(box.x1 * 12 * DPI),
            round(height - box.y0 * height),
        ]
    meta = {"seconds": [0, len(rows)], "panels": boxes}
    figure.savefig(path, dpi=DPI, metadata={"Axes": json.dumps(meta)})
    plt.close(figure)
