"""Scenarios worked out by hand from Knative's rules, second by second.

The project's Service: target 10 x 70 % = 7 in flight per pod, containerConcurrency 40,
max-scale 10, Knative's defaults otherwise (stable window 60 s, panic window 6 s, panic at
200 %, scale down at most halving per tick, target burst capacity 211, grace period 30 s).
The load: nothing for 10 s, 40 in flight for 20 s (seconds 10-29), then nothing.
"""

from __future__ import annotations

from loadtest.kpa.simulation import Prediction, Start, predict

from .conftest import service_settings, spike

POD_START_S = 4


def segments(values: list[int] | list[bool]) -> list[tuple[int, int, int | bool]]:
    """(first second, last second, value) for each run of equal values."""
    runs: list[tuple[int, int, int | bool]] = []
    for second, value in enumerate(values):
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], second, value)
        else:
            runs.append((second, second, value))
    return runs


def column(prediction: Prediction, name: str) -> list[int]:
    return [int(getattr(row, name)) for row in prediction.rows]


def test_spike_with_the_service_settings() -> None:
    prediction = predict(spike(), service_settings(), POD_START_S)
    # 10 s: the activator's first report, a concurrency of 1, pokes the decider: ceil(1 / 7) =
    # 1 pod. The tick at 12 sees the whole load: the stable and panic averages over 10-12 are
    # 40, ceil(40 / 7) = 6 pods, and 6 / max(1, 0 ready) >= 2: panic. The first pod is ready at
    # 14 (asked for at 10, 4 s start), so the tick at 14 still sees 6 / 1 and extends panic;
    # the other 5 are ready at 16, where 6 / 6 < 2. Panic ends at the first tick more than a
    # stable window after 14: 76. Then the stable average over [17, 76] is 520 / 60 = 8.7,
    # 2 pods, but one tick may at most halve 6: 3. At 78 [19, 78] holds 440: 2 pods; at 80
    # [21, 80] holds 360: 1 pod; at 90 the window [31, 90] is empty of load: 0 pods. The PA
    # has been active since 14, longer than the stable window, so it turns Inactive at 90; the
    # activator has been in the path all along (211 burst capacity exceeds 6 x 10), so the
    # grace period is already served and the last pod goes at 91.
    assert segments(column(prediction, "desired_pods")) == [
        (0, 9, 0),
        (10, 11, 1),
        (12, 75, 6),
        (76, 77, 3),
        (78, 79, 2),
        (80, 89, 1),
        (90, 100, 0),
    ]
    assert segments(column(prediction, "ready_pods")) == [
        (0, 13, 0),
        (14, 15, 1),
        (16, 75, 6),
        (76, 77, 3),
        (78, 79, 2),
        (80, 90, 1),
        (91, 100, 0),
    ]
    assert segments(column(prediction, "panic")) == [(0, 11, 0), (12, 75, 1), (76, 100, 0)]
    assert segments(column(prediction, "activator_in_path")) == [(0, 100, 1)]
    assert [(c.second, c.first_ready) for c in prediction.cold_starts] == [(10, 14)]
    # After the timeline's 100 s the model goes on without load until no pod is left: here
    # that is already so at 100.
    assert len(prediction.rows) == 101


def test_zero_burst_capacity_takes_the_activator_out_once_pods_are_ready() -> None:
    prediction = predict(spike(), service_settings(target_burst_capacity="0"), POD_START_S)
    # TBC 0: excess burst capacity is 0, so Serve mode whenever pods are wanted, but with no
    # ready pod the activator stays (10-13). At 90 no pod is wanted: Proxy again, and the
    # grace period (30 s) starts only then, so the last pod goes at 120, not 91.
    assert segments(column(prediction, "activator_in_path")) == [
        (0, 13, 1),
        (14, 89, 0),
        (90, 120, 1),
    ]
    assert segments(column(prediction, "ready_pods"))[-2:] == [(80, 119, 1), (120, 120, 0)]


def test_target_above_container_concurrency_is_capped_by_it() -> None:
    settings = service_settings(target="50")
    # target.go: with containerConcurrency 40 the target is min(50, 40) = 40, x 70 % = 28.
    assert (settings.total, settings.target) == (40.0, 28.0)
    prediction = predict(spike(), settings, POD_START_S)
    assert max(column(prediction, "desired_pods")) == 2  # ceil(40 / 28)


def test_pod_retention_keeps_the_last_pod() -> None:
    prediction = predict(
        spike(after=200), service_settings(scale_to_zero_pod_retention_period="90s"), POD_START_S
    )
    # Inactive at 90 as above; zero only after 90 s of inactivity: 180.
    ready = column(prediction, "ready_pods")
    assert ready[179] == 1
    assert ready[180] == 0


def test_scale_down_delay_holds_the_peak() -> None:
    prediction = predict(spike(after=200), service_settings(scale_down_delay="30s"), POD_START_S)
    desired = column(prediction, "desired_pods")
    # Without the delay the first step down (to 3) comes at 76; with it the decider keeps the
    # largest decision of the last 30 s (15 two-second buckets), so the 6 of the last panic
    # tick, 74, leaves the window at 74 + 30 = 104.
    assert desired[103] == 6
    assert desired[104] == 3


def test_activation_scale_starts_with_that_many_pods() -> None:
    prediction = predict([0.0] * 4 + [1.0] * 10, service_settings(activation_scale="3"), 4)
    # The first report (1 in flight) needs ceil(1 / 7) = 1 pod; activation-scale lifts it to 3.
    assert prediction.rows[4].desired_pods == 3
    assert prediction.rows[8].ready_pods == 3


def test_min_scale_keeps_pods_and_the_model_stops_after_its_tail() -> None:
    settings = service_settings(min_scale="2")
    prediction = predict([0.0] * 20, settings, 4, Start(pods=2))
    assert set(column(prediction, "ready_pods")) == {2}
    assert prediction.rows[-1].second > 20  # kept going for the quiet tail


def test_new_revision_starts_at_initial_scale() -> None:
    prediction = predict(
        [0.0] * 70, service_settings(initial_scale="3"), 4, Start(new_revision=True)
    )
    # 3 pods asked for at creation, ready at 4. The first decision (tick 4, average 0) may
    # only halve 3 to 1, but until the revision has reached its initial scale the reconciler
    # holds 3; it has at 4, so 1 from 5. No traffic: 0 wanted from tick 6, held at 1 until
    # the PA has been active (since 4) for a stable window, Inactive at 64, and the activator
    # has been in the path since creation: zero pods at 65.
    replicas = column(prediction, "replicas")
    assert segments(replicas) == [(0, 4, 3), (5, 64, 1), (65, 70, 0)]
    assert segments(column(prediction, "ready_pods")) == [
        (0, 3, 0),
        (4, 4, 3),
        (5, 64, 1),
        (65, 70, 0),
    ]


def test_scale_to_zero_disabled_keeps_one_pod() -> None:
    from loadtest.kpa.settings import AutoscalerConfig, resolve

    from .conftest import SERVICE_ANNOTATIONS

    settings = resolve(SERVICE_ANNOTATIONS, 40, AutoscalerConfig(enable_scale_to_zero=False))
    prediction = predict(spike(), settings, POD_START_S)
    assert column(prediction, "ready_pods")[-1] == 1


def test_weighted_exponential_average_follows_a_drop_sooner() -> None:
    load = [40.0] * 120 + [10.0] * 60
    linear = predict(load, service_settings(), POD_START_S, Start(pods=6))
    weighted = predict(
        load,
        service_settings(metric_aggregation_algorithm="weighted-exponential"),
        POD_START_S,
        Start(pods=6),
    )
    # Without history the autoscaler starts in panic over 6 pods and holds them until the
    # first tick more than a stable window later, 62. 40 in flight on 6 pods is not over the
    # threshold (6 / 6 < 2). Ten seconds after the drop to 10 at 120, the linear one-minute
    # average is (50 x 40 + 10 x 10) / 60 = 35: ceil(35 / 7) = 5 pods. The weighted one (decay
    # 0.2 per second for a 60-bucket window) is within 0.1 of 10 by then: 2 pods, reached by
    # halving 6 -> 3 -> 2 over two ticks.
    for prediction in (linear, weighted):
        panic = column(prediction, "panic")
        assert panic[:62] == [1] * 62
        assert not any(panic[62:])
        assert prediction.rows[119].desired_pods == 6
    assert linear.rows[130].desired_pods == 5
    assert weighted.rows[130].desired_pods == 2


def test_start_with_pods_holds_them_in_panic_for_a_stable_window() -> None:
    prediction = predict([0.0] * 100, service_settings(), POD_START_S, Start(pods=4))
    # newAutoscaler: 4 ready pods and no history: panic with 4 held until 62, then the empty
    # load halves them per tick: 2 at 62, 1 at 64, and 0 wanted from 66.
    desired = column(prediction, "desired_pods")
    assert desired[61] == 4
    assert desired[62:67] == [2, 2, 1, 1, 0]
