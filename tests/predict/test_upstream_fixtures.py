"""Knative Serving's own decider and window tests, replayed against the model.

The tables live in ``fixtures/`` as the upstream tests write them; each case names the upstream
test function and file. A failure here means the model no longer decides as Knative does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.kpa.decider import Decider, DeciderSpec
from loadtest.kpa.reconciler import Activity, PodAutoscalerState, scale
from loadtest.kpa.settings import config_from_data, resolve
from loadtest.kpa.windows import (
    MIN_EXPONENT,
    AveragingWindow,
    MaxWindow,
    WeightedAveragingWindow,
    smoothing_coefficient,
)

FIXTURES = Path(__file__).parent / "fixtures"
DECIDER_CASES = yaml.safe_load((FIXTURES / "upstream_autoscaler_test.yaml").read_text())["cases"]
WINDOWS = yaml.safe_load((FIXTURES / "upstream_windows_test.yaml").read_text())

# autoscaler_test.go: the tests presume 75 % utilization (targetUtilization).
TEST_TARGET_UTILIZATION = 0.75


def expected_ebc(total_capacity: float, target_bc: float, recorded: float, pods: float) -> int:
    """Upstream's expectedEBC(totCap, targetBC, recordedConcurrency, numPods)."""
    return math.floor(total_capacity / TEST_TARGET_UTILIZATION * pods - target_bc - recorded)


def spec_from(raw: dict[str, Any]) -> DeciderSpec:
    target = float(raw["target"])
    total = raw.get("total")
    if total is None:
        total = target / float(raw["total_is_target_over"])
    return DeciderSpec(
        target=target,
        total=float(total),
        target_burst_capacity=float(raw.get("target_burst_capacity", 0)),
        panic_threshold=float(raw.get("panic_threshold", 0)),
        max_scale_up_rate=float(raw.get("max_scale_up_rate", 0)),
        max_scale_down_rate=float(raw.get("max_scale_down_rate", 0)),
        stable_window_s=float(raw.get("stable_window_s", 0)),
        scale_down_delay_s=float(raw.get("scale_down_delay_s", 0)),
        activation_scale=int(raw.get("activation_scale", 0)),
        reachable=bool(raw.get("reachable", False)),
    )


@pytest.mark.parametrize("case", DECIDER_CASES, ids=[case["test"] for case in DECIDER_CASES])
def test_decider_reproduces_autoscaler_test_go(case: dict[str, Any]) -> None:
    decider = Decider(spec_from(case["spec"]), ready_at_start=case.get("ready_at_start", 1))
    if "want_after_start" in case:
        want = case["want_after_start"]
        assert decider.panicking == want["panicking"]
        assert decider.max_panic_pods == want["max_panic_pods"]
    if "prep" in case:
        decider.panic_since = case["prep"]["panic_since"]
        decider.max_panic_pods = case["prep"]["max_panic_pods"]
    for number, step in enumerate(case["steps"], start=1):
        if "update" in step:
            decider.update(spec_from(step["update"]))
        observed = None if step.get("no_data") else (step["stable"], step["panic"])
        result = decider.scale(step["at_s"], step["ready"], observed)
        want_ebc = step["want_ebc"]
        if isinstance(want_ebc, list):
            want_ebc = expected_ebc(*want_ebc)
        where = f"step {number} at {step['at_s']} s"
        assert result.valid == step.get("want_valid", True), where
        assert (result.desired, result.excess_burst_capacity) == (step["want"], want_ebc), where
        if "want_panic_since" in step:
            assert decider.panic_since == step["want_panic_since"], where
        if "want_panicking" in step:
            assert decider.panicking == step["want_panicking"], where


WINDOW_MAX = WINDOWS["window_max"]


@pytest.mark.parametrize(
    "case", WINDOW_MAX["cases"], ids=[case["name"] for case in WINDOW_MAX["cases"]]
)
def test_max_window_reproduces_window_test_go(case: dict[str, Any]) -> None:
    window = MaxWindow(WINDOW_MAX["size"], 1)
    indexes = case.get("indexes", range(len(case["values"])))
    current = []
    for index, value in zip(indexes, case["values"], strict=True):
        window.record(index, value)
        current.append(window.current())
    assert current == case["expect"]


TIMED_MAX = WINDOWS["timed_window_max"]


@pytest.mark.parametrize(
    "case", TIMED_MAX["cases"], ids=[case["name"] for case in TIMED_MAX["cases"]]
)
def test_max_window_reproduces_timewindow_test_go(case: dict[str, Any]) -> None:
    window = MaxWindow(TIMED_MAX["duration_s"], TIMED_MAX["step_s"])
    for at_s, value in case["records"]:
        window.record(TIMED_MAX["start"] + at_s, value)
    assert window.current() == case["expect"]


AVERAGING = WINDOWS["averaging_window"]


@pytest.mark.parametrize(
    "case", AVERAGING["cases"], ids=[case["test"] for case in AVERAGING["cases"]]
)
def test_averaging_window_reproduces_bucketing_test_go(case: dict[str, Any]) -> None:
    window = AveragingWindow(case["window_s"])
    start = AVERAGING["start"]
    for number, (operation, at_s, value) in enumerate(case["ops"], start=1):
        if operation == "record":
            window.record(start + at_s, value)
        else:
            assert window.average(start + at_s) == pytest.approx(value, abs=1e-9), (
                f"operation {number}: average at {at_s} s"
            )


SCALER = yaml.safe_load((FIXTURES / "upstream_scaler_test.yaml").read_text())


@pytest.mark.parametrize("case", SCALER["cases"], ids=[case["test"] for case in SCALER["cases"]])
def test_reconciler_reproduces_scaler_test_go(case: dict[str, Any]) -> None:
    config = config_from_data({**SCALER["config"], **case.get("config", {})})
    annotations = {
        f"autoscaling.knative.dev/{key}": value
        for key, value in case.get("annotations", {}).items()
    }
    settings = resolve(annotations, 0, config)
    pa = {**SCALER["defaults"]["pa"], **case["pa"]}
    state = PodAutoscalerState(
        Activity[pa["activity"].upper()], pa["for_s"], pa["initialized"], pa["reachable"]
    )
    decision = scale(
        settings,
        case["scale_to"],
        state,
        case["probe_ok"],
        case["proxied_for_s"],
        case.get("progress_deadline_s", SCALER["progress_deadline_s"]),
    )
    assert decision.want == case["want"]
    assert (decision.apply and decision.want != case["start"]) == case["scaling"]


# pkg/autoscaler/aggregation/bucketing_test.go, TestComputeDecayMultiplier (upstream compares
# within weightPrecision, 0.9999, which any value passes; the table's 5 digits are checked here).
@pytest.mark.parametrize(
    ("buckets", "want"), [(100, MIN_EXPONENT), (60, MIN_EXPONENT), (40, 0.20567), (6, 0.78456)]
)
def test_smoothing_coefficient_reproduces_compute_decay_multiplier(
    buckets: float, want: float
) -> None:
    assert smoothing_coefficient(buckets) == pytest.approx(want, abs=5e-6)


def test_weighted_window_reproduces_timed_float64_buckets_weighted_average() -> None:
    """bucketing_test.go, TestTimedFloat64BucketsWeightedAverage, step by step."""
    now = AVERAGING["start"]
    window = WeightedAveragingWindow(5)
    m = window.smoothing
    window.record(now, 2)
    want = 2 * m
    assert window.average(now) == want
    want *= 1 - m  # one second later, no writes
    assert window.average(now + 1) == want
    window.record(now + 1, 2)
    want += 2 * m
    assert window.average(now + 1) == want
    for i in range(5):  # fill the whole window with [2, 3, 4, 5, 6]
        window.record(now + 2 + i, i + 2)
    want = (
        6 * m
        + 5 * m * (1 - m)
        + 4 * m * (1 - m) * (1 - m)
        + 3 * m * (1 - m) * (1 - m) * (1 - m)
        + 2 * m * (1 - m) * (1 - m) * (1 - m) * (1 - m)
    )
    # Upstream compares exactly; the sum over the window and this expression associate their
    # products differently, which can round apart in the last bit: compare to 1e-15.
    assert window.average(now + 6) == pytest.approx(want, rel=1e-15, abs=0)
    assert window.average(now + 16) == 0.0  # an empty window


def test_weighted_window_reproduces_resize_window_initial_average() -> None:
    """bucketing_test.go, TestWeightedFloat64BucketsResizeWindow: the average before resizing."""
    start = AVERAGING["start"]
    window = WeightedAveragingWindow(5)
    for second, value in enumerate([1, 2, 3, 4, 5, 6]):
        window.record(start + second, value)
    assert round(window.average(start + 5), 3) == 5.812  # "computed a mano" upstream
