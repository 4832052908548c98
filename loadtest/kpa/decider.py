"""One decision of Knative's autoscaler, as ``Scale()`` in ``pkg/autoscaler/scaling/autoscaler.go``.

The decider turns the stable- and panic-window averages of the revision's metric into a desired
pod count and an excess burst capacity. It keeps two pieces of state between ticks: when panic
mode was last confirmed, and the most pods asked for while panicking (no scale-down in panic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadtest.kpa.windows import MaxWindow

# The decider runs every 2 s (tickInterval, pkg/autoscaler/scaling/multiscaler.go).
TICK_S = 2


@dataclass(frozen=True)
class DeciderSpec:
    """The fields of DeciderSpec (multiscaler.go) that Scale() reads."""

    target: float  # metric per pod to aim for: total x target utilization
    total: float  # metric per pod at full capacity (for the excess burst capacity)
    target_burst_capacity: float
    panic_threshold: float  # a fraction: 2.0 is 200 %
    max_scale_up_rate: float
    max_scale_down_rate: float
    stable_window_s: float
    scale_down_delay_s: float = 0.0
    activation_scale: int = 0
    reachable: bool = True


@dataclass(frozen=True)
class ScaleResult:
    desired: int
    excess_burst_capacity: int
    valid: bool = True


INVALID = ScaleResult(0, 0, valid=False)


class Decider:
    """The per-revision autoscaler (``autoscaler`` in autoscaler.go)."""

    def __init__(self, spec: DeciderSpec, ready_at_start: int = 0, now: float = 0.0) -> None:
        self.spec = spec
        # newAutoscaler: an autoscaler that (re)starts over more than one ready pod starts in
        # panic mode, holding the current scale until it has seen enough data.
        self.panic_since: float | None = now if ready_at_start > 1 else None
        self.max_panic_pods = ready_at_start
        self._delay = (
            MaxWindow(spec.scale_down_delay_s, TICK_S) if spec.scale_down_delay_s > 0 else None
        )

    @property
    def panicking(self) -> bool:
        return self.panic_since is not None

    def update(self, spec: DeciderSpec) -> None:
        """A new spec for the next ticks (Update); the delay window stays as it was built."""
        self.spec = spec

    def scale(
        self, now: float, ready_pods: int, observed: tuple[float, float] | None
    ) -> ScaleResult:
        """Decide at ``now`` from ``observed`` = (stable, panic) averages; None means no data."""
        if observed is None:
            return INVALID
        stable, panic = observed
        spec = self.spec
        ready = max(1.0, float(ready_pods))  # zero ready pods count as one

        # Grow by at least one pod even when the rate times the pods rounds to the pods.
        max_up = math.ceil(spec.max_scale_up_rate * ready)
        max_down = math.floor(ready / spec.max_scale_down_rate) if spec.reachable else 0

        stable_pods = math.ceil(stable / spec.target)
        panic_pods = math.ceil(panic / spec.target)
        desired_stable = int(min(max(stable_pods, max_down), max_up))
        desired_panic = int(min(max(panic_pods, max_down), max_up))
        if spec.activation_scale > 1:
            if stable_pods > 0:
                desired_stable = max(desired_stable, spec.activation_scale)
            if panic_pods > 0:
                desired_panic = max(desired_panic, spec.activation_scale)

        over_threshold = panic_pods / ready >= spec.panic_threshold
        if over_threshold:
            self.panic_since = now  # starts or extends panic mode
        elif self.panic_since is not None and self.panic_since + spec.stable_window_s < now:
            # The surge has had a whole stable window to reach the stable average.
            self.panic_since = None
            self.max_panic_pods = 0

        desired = desired_stable
        if self.panic_since is not None:
            # In panic, provision for the larger of the two and never scale down.
            desired = max(desired, desired_panic)
            self.max_panic_pods = max(self.max_panic_pods, desired)
            desired = self.max_panic_pods

        if spec.reachable and self._delay is not None:
            self._delay.record(now, desired)
            desired = self._delay.current()

        return ScaleResult(desired, self.excess_burst_capacity(ready_pods, panic))

    def excess_burst_capacity(self, ready_pods: int, panic: float) -> int:
        """Spare capacity beyond the burst to absorb; negative keeps the activator in the path."""
        tbc = self.spec.target_burst_capacity
        if tbc == 0:
            return 0
        if tbc < 0:
            return -1
        return math.floor(ready_pods * self.spec.total - tbc - panic)
