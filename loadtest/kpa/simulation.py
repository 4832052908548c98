"""Second by second: metrics, decider ticks, the PodAutoscaler reconciler and the pods.

Follows knative/serving (knative-v1.23.0):
- ``pkg/autoscaler/metrics/collector.go``: each second's revision-wide concurrency (pods and
  activator together, proxied requests counted once) goes into the stable and panic windows;
  no data in the stable window means no decision (ErrNoData), unless TBC = -1, where the
  activator alone reports;
- ``pkg/autoscaler/scaling/multiscaler.go`` and ``pkg/activator/handler/concurrency_reporter.go``:
  a tick every 2 s, plus an immediate one (Poke) when the activator's first report, a
  concurrency of 1, arrives for a revision whose last decision was 0 pods;
- ``pkg/reconciler/autoscaling/kpa/scaler.go``: ``reconciler.scale`` every second;
- ``pkg/reconciler/autoscaling/kpa/kpa.go``: the ServerlessService is in Serve mode (activator
  out of the path) only when pods are wanted and the excess burst capacity is >= 0;
  computeActiveCondition() for Active/Activating/Inactive;
- ``pkg/reconciler/serverlessservice/serverlessservice.go``: without a ready pod the activator
  stays in the path even in Serve mode.

The pods are a model of the Deployment: a pod asked for at second t is ready at
t + pod_start_s; on scale-down, pods that are not ready yet go first, and a removed pod stops
counting as ready at once (Knative takes it out of the endpoints before it drains).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.kpa.decider import TICK_S, Decider
from loadtest.kpa.reconciler import Activity, PodAutoscalerState, scale
from loadtest.kpa.settings import Settings
from loadtest.kpa.windows import AveragingWindow, WeightedAveragingWindow

LONG_AGO = -math.inf


@dataclass(frozen=True)
class Start:
    """The revision's state at second 0.

    ``pods`` ready pods of a revision that has served before (0: scaled to zero, idle for long);
    ``new_revision``: the revision has just been created, with ``initial-scale`` pods starting.
    The model has no metric history from before second 0, so its autoscaler starts as Knative's
    does after a restart (newAutoscaler): over more than one ready pod, in panic mode, holding
    them until a stable window has shown the load.
    """

    pods: int = 0
    new_revision: bool = False


@dataclass(frozen=True)
class Row:
    second: int
    in_flight_mean: float
    desired_pods: int  # the PodAutoscaler's desiredScale (-1: no decision yet)
    ready_pods: int
    panic: bool
    activator_in_path: bool
    replicas: int  # the Deployment's spec.replicas
    decided: int  # the decider's last desired scale, before min/max-scale (-1: none yet)


@dataclass(frozen=True)
class ColdStart:
    second: int  # when pods were asked for with none running
    first_ready: int | None  # when the first of them was ready


@dataclass(frozen=True)
class Prediction:
    rows: tuple[Row, ...]
    cold_starts: tuple[ColdStart, ...]
    timeline_seconds: int  # rows after these are the quiet tail the model added


class Simulation:
    def __init__(self, settings: Settings, pod_start_s: float, start: Start) -> None:
        if pod_start_s < 0:
            raise ValueError("the pod start time cannot be negative")
        self.settings = settings
        self.pod_start_s = pod_start_s
        ready_at_start = 0 if start.new_revision else start.pods
        self.decider = Decider(settings.decider_spec(), ready_at_start)
        # collector.go: the aggregation algorithm picks the kind of window.
        window = WeightedAveragingWindow if settings.weighted_average else AveragingWindow
        self.stable = window(int(settings.stable_window_s))
        self.panic = window(int(settings.panic_window_s))
        self.pods: list[float] = []  # the second each pod is (or will be) ready
        if start.new_revision:
            self.activity, self.activity_since = Activity.ACTIVATING, 0.0
            self.initialized = False
            self.decided = -1
            self.replicas = settings.initial_scale
            self.pods = [pod_start_s] * self.replicas
        else:
            has_pods = start.pods > 0
            self.activity = Activity.ACTIVE if has_pods else Activity.INACTIVE
            self.activity_since = LONG_AGO
            self.initialized = True
            self.decided = start.pods
            self.replicas = start.pods
            self.pods = [LONG_AGO] * start.pods
        self.excess_burst_capacity = self.decider.excess_burst_capacity(self.ready(0), 0.0)
        self.status_desired = self.decided
        serving = self.decided > 0 and self.excess_burst_capacity >= 0 and self.ready(0) > 0
        self.proxy = not serving
        self.mode_since = 0.0 if start.new_revision else LONG_AGO
        self.cold_starts: list[ColdStart] = []
        self.previous_load = 0.0

    def ready(self, now: float) -> int:
        return sum(1 for ready_at in self.pods if ready_at <= now)

    def step(self, second: int, load: float) -> Row:
        ready = self.ready(second)
        # concurrency_reporter.go: the activator's first request for a revision it has no
        # stats for (none in its last report period) is reported at once as concurrency 1;
        # the rest of the second's average follows with the next report. When the last
        # decision was 0 pods, that first report pokes the decider (multiscaler.go): this tick
        # sees the 1, the regular ticks after it see the whole load.
        first_report = load > 0 and self.previous_load == 0
        if first_report and self.decided == 0:
            self._record(second, 1.0)
            self._tick(second, ready)
            self._record(second, max(load - 1.0, 0.0))
        else:
            if ready > 0 or load > 0:
                self._record(second, load)
            if second % TICK_S == 0:
                self._tick(second, ready)
        self.previous_load = load
        self._reconcile(second)
        self._cold_start_progress(second)
        return Row(
            second=second,
            in_flight_mean=load,
            desired_pods=self.status_desired,
            ready_pods=self.ready(second),
            panic=self.decider.panicking,
            activator_in_path=self.proxy,
            replicas=self.replicas,
            decided=self.decided,
        )

    def _record(self, second: int, value: float) -> None:
        self.stable.record(second, value)
        self.panic.record(second, value)

    def _tick(self, now: float, ready: int) -> None:
        tbc = self.settings.target_burst_capacity
        observed: tuple[float, float] | None = None
        if not self.stable.is_empty(now) or tbc == -1:
            observed = (self.stable.average(now), self.panic.average(now))
        result = self.decider.scale(now, ready, observed)
        if result.valid:
            self.decided = result.desired
            self.excess_burst_capacity = result.excess_burst_capacity

    def _reconcile(self, now: float) -> None:
        want = self._scale(now)
        # kpa.go: Serve mode (activator out of the path) only when pods are wanted and the
        # excess burst capacity is >= 0; serverlessservice.go: with no ready pod the public
        # endpoints stay the activator's whatever the mode.
        serve = want > 0 and self.excess_burst_capacity >= 0
        proxy = not serve or self.ready(now) == 0
        if proxy != self.proxy:
            self.proxy, self.mode_since = proxy, now
        if not (want == -1 and self.status_desired >= 0):
            self.status_desired = want
        self._update_activity(now, want, self.ready(now))

    def _scale(self, now: float) -> int:
        pa = PodAutoscalerState(self.activity, now - self.activity_since, self.initialized)
        proxied_for = now - self.mode_since if self.proxy else 0.0
        decision = scale(self.settings, self.decided, pa, self.proxy, proxied_for)
        if decision.apply:
            self._set_replicas(now, decision.want)
        return decision.want

    def _update_activity(self, now: float, want: int, ready: int) -> None:
        """computeActiveCondition() in kpa.go."""
        s = self.settings
        min_ready = max(s.min_scale, s.initial_scale if not self.initialized else 1)
        if ready >= min_ready:
            self.initialized = True
        activity = self.activity
        if want == 0 or min_ready == 0:
            activity = Activity.INACTIVE
        elif ready < min_ready:
            if want > 0 or self.activity is not Activity.INACTIVE:
                activity = Activity.ACTIVATING
        elif want > 0 or self.activity is not Activity.INACTIVE:
            activity = Activity.ACTIVE
        if activity is not self.activity:
            self.activity, self.activity_since = activity, now

    def _set_replicas(self, now: float, replicas: int) -> None:
        if replicas > self.replicas and not self.pods:
            self.cold_starts.append(ColdStart(int(now), None))
        self.replicas = replicas
        if replicas > len(self.pods):
            self.pods.extend([now + self.pod_start_s] * (replicas - len(self.pods)))
        elif replicas < len(self.pods):
            # Pods that are not ready yet go first (the ReplicaSet's choice), newest first.
            self.pods.sort()
            del self.pods[replicas:]

    def _cold_start_progress(self, now: int) -> None:
        if self.cold_starts and self.cold_starts[-1].first_ready is None and self.ready(now):
            last = self.cold_starts[-1]
            self.cold_starts[-1] = ColdStart(last.second, now)


def quiet_tail_s(settings: Settings, pod_start_s: float) -> int:
    """How long after the timeline the model keeps going, so that scale to zero can show."""
    return int(
        settings.stable_window_s
        + settings.scale_down_delay_s
        + max(settings.scale_to_zero_grace_period_s, settings.scale_to_zero_pod_retention_period_s)
        + pod_start_s
        + 4 * TICK_S
    )


def predict(
    in_flight: Sequence[float], settings: Settings, pod_start_s: float, start: Start | None = None
) -> Prediction:
    """What the KPA would do for this per-second in-flight concurrency, second 0 onwards.

    After the timeline, the model continues without load until no pod is left, or for
    ``quiet_tail_s`` seconds when pods stay (min-scale, or scale to zero disabled).
    """
    simulation = Simulation(settings, pod_start_s, start or Start())
    rows: list[Row] = []
    end = len(in_flight) + quiet_tail_s(settings, pod_start_s)
    for second in range(end):
        load = float(in_flight[second]) if second < len(in_flight) else 0.0
        row = simulation.step(second, load)
        rows.append(row)
        if second >= len(in_flight) and row.replicas == 0 and not simulation.pods:
            break
    return Prediction(tuple(rows), tuple(simulation.cold_starts), len(in_flight))
