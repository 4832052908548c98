"""Shared pieces of the prediction tests: the project's Service and a timeline writer."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest

from loadtest.kpa.settings import AutoscalerConfig, Settings, resolve

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "k8s" / "knative-service.yaml"
FIXTURES = Path(__file__).parent / "fixtures"

# The project's Service, as k8s/knative-service.yaml sets it (tests read the file too).
SERVICE_ANNOTATIONS = {
    "autoscaling.knative.dev/min-scale": "0",
    "autoscaling.knative.dev/max-scale": "10",
    "autoscaling.knative.dev/metric": "concurrency",
    "autoscaling.knative.dev/target": "10",
    "autoscaling.knative.dev/target-utilization-percentage": "70",
}


def service_settings(**extra: str) -> Settings:
    """The project's Service with some annotations added or replaced (short keys)."""
    annotations = dict(SERVICE_ANNOTATIONS)
    annotations.update(
        {f"autoscaling.knative.dev/{k.replace('_', '-')}": v for k, v in extra.items()}
    )
    return resolve(annotations, 40, AutoscalerConfig())


def write_timeline(path: Path, in_flight: Sequence[float]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["second", "in_flight_mean", "in_flight_max"])
        for second, value in enumerate(in_flight):
            writer.writerow([second, value, value])
    return path


def spike(idle: int = 10, busy: int = 20, after: int = 70, level: float = 40.0) -> list[float]:
    return [0.0] * idle + [level] * busy + [0.0] * after


@pytest.fixture
def spike_timeline(tmp_path: Path) -> Path:
    return write_timeline(tmp_path / "timeline.csv", spike())
