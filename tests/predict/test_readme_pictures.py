"""The prediction's document (docs/predict.md): its figures are what the command computes, and its
pictures show the series it describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.kpa.predict import main

from .conftest import ROOT, SERVICE
from .pictures import Picture

README = (ROOT / "docs" / "predict.md").read_text()
SPIKE = ["--profile", "spike", "--users", "40", "--duration", "240", "--service", str(SERVICE)]
VARIANTS = {
    "predict-spike": [],
    "predict-spike-tbc0": ["--annotation", "target-burst-capacity=0"],
    "predict-spike-target50": ["--annotation", "target=50"],
}


def summary_of(tmp_path: Path, name: str, *extra: str) -> str:
    out = tmp_path / name
    assert main([*SPIKE, *VARIANTS[name], "--out", str(out), *extra]) == 0
    return (out / "summary.txt").read_text()


@pytest.mark.parametrize("name", VARIANTS)
def test_readme_shows_each_picture(name: str) -> None:
    assert f"]({name}.png)" in README
    assert (ROOT / "docs" / f"{name}.png").is_file()


def test_spike_figures(tmp_path: Path) -> None:
    summary = summary_of(tmp_path, "predict-spike")
    assert "Peak desired pods: 6 at 26 s" in summary
    assert "Panic mode: 26-91 s" in summary
    assert "Cold starts: 1: 24 s (first pod ready at 29 s)" in summary
    assert "Last request at 71 s; zero pods at 133 s: 62 s later" in summary
    assert "Activator in the request path: 48 of the 48 s with requests" in summary
    for claim in ("at once: 1 pod", "is 6 pods", "26-91 s", "ready at 29 s", "133 s, 62 s later"):
        assert claim in README
    picture = Picture(ROOT / "docs" / "predict-spike.png")
    assert set(range(26, 70)) <= picture.seconds("in_flight", "load")
    ready = picture.seconds("ready", "pods", above_zero=True)
    assert set(range(31, 130)) <= ready
    assert not ready & (set(range(0, 27)) | set(range(136, 240)))
    panic = picture.seconds("panic", "pods")
    assert set(range(28, 90)) <= panic
    assert not panic & (set(range(0, 24)) | set(range(94, 240)))
    assert set(range(2, 238)) <= picture.seconds("activator", "activator")


def test_zero_burst_capacity_figures(tmp_path: Path) -> None:
    summary = summary_of(tmp_path, "predict-spike-tbc0")
    assert "Activator in the request path: 5 of the 48 s with requests" in summary
    assert "zero pods at 162 s: 91 s later" in summary
    assert "in the path for 5 of the 48 s" in README
    assert "zero pods 91 s after the\nlast request instead of 62" in README
    band = Picture(ROOT / "docs" / "predict-spike-tbc0.png").seconds("activator", "activator")
    assert set(range(2, 26)) <= band
    assert not band & set(range(33, 130))
    assert set(range(136, 238)) <= band


def test_target_50_figures(tmp_path: Path) -> None:
    summary = summary_of(tmp_path, "predict-spike-target50")
    assert "Peak desired pods: 2 at 26 s" in summary
    assert "target 28 in flight per pod (40 x 70%)" in summary
    assert "40 x 70 % = 28 in flight per pod: 2 pods" in README
    picture = Picture(ROOT / "docs" / "predict-spike-target50.png")
    # The pods panel's scale tops out at 2 pods: the ready line runs near the panel's top.
    left, top, right, bottom = picture.meta["panels"]["pods"]
    ready_rows = [
        y
        for y in range(top, bottom)
        if picture.image.getpixel(((left + right) // 3, y)) == (0x2C, 0xA0, 0x2C)
    ]
    assert ready_rows and min(ready_rows) < top + (bottom - top) * 0.2


def test_recommendation_figures(tmp_path: Path) -> None:
    summary = summary_of(tmp_path, "predict-spike", "--latency-goal-ms", "20")
    assert 'autoscaling.knative.dev/target: "10"' in summary
    assert "containerConcurrency: 40 " in summary
    assert 'autoscaling.knative.dev/max-scale: "6"' in summary
    assert "55 busy pods; max-scale 6 is within it" in summary
    assert "target 10,\n`containerConcurrency` 40, `max-scale` 6, within the 55 busy pods" in README
