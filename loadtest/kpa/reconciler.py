"""One scale() of the PodAutoscaler reconciler: ``pkg/reconciler/autoscaling/kpa/scaler.go``.

Given the decider's desired scale and the PA's state, it returns the scale the reconciler wants
and whether it patches the Deployment with it: min/max bounds, initial scale until the revision
first reached it, and handleScaleToZero(): one pod held until the PA has been active for a
stable window, then zero pods once the activator is in the path and the PA has been inactive for
max(grace period, pod retention), or the activator has been in the path for the grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from loadtest.kpa.settings import Settings

# scaler.go: activationTimeoutBuffer; the Deployment's progress deadline comes from
# config-deployment (progress-deadline, 600 s by default).
ACTIVATION_TIMEOUT_BUFFER_S = 30.0
DEFAULT_PROGRESS_DEADLINE_S = 600.0


class Activity(Enum):
    """The PA's Active condition: True, Unknown (activating) or False."""

    ACTIVE = "Active"
    ACTIVATING = "Activating"
    INACTIVE = "Inactive"


@dataclass(frozen=True)
class PodAutoscalerState:
    activity: Activity
    for_s: float  # since the Active condition last changed
    initialized: bool  # ScaleTargetInitialized: the revision has reached its initial scale
    reachable: bool = True  # False: no route sends traffic here (routingState "reserve")


@dataclass(frozen=True)
class Decision:
    want: int  # the scale the reconciler wants (-1: unknown)
    apply: bool  # whether it patches the Deployment's replicas to it


def scale(
    settings: Settings,
    desired: int,
    pa: PodAutoscalerState,
    activator_probe_ok: bool,
    proxied_for_s: float,
    progress_deadline_s: float = DEFAULT_PROGRESS_DEADLINE_S,
) -> Decision:
    """scaler.scale() for the decider's ``desired`` scale.

    ``activator_probe_ok``: the activator answers at the revision's public service (it is in
    the path); ``proxied_for_s``: how long the ServerlessService has had the activator in the
    path (ProxyFor).
    """
    s = settings
    if desired < 0 and pa.activity is not Activity.ACTIVATING:
        return Decision(desired, False)
    low = s.min_scale if pa.reachable else 0  # ScaleBounds: no minimum when unreachable
    if s.initial_scale > 1 and not pa.initialized and pa.reachable:
        low = max(low, s.initial_scale)
    if desired < low:
        desired = low
    elif s.max_scale != 0 and desired > s.max_scale:
        desired = s.max_scale
    return _scale_to_zero(s, desired, pa, activator_probe_ok, proxied_for_s, progress_deadline_s)


def _scale_to_zero(
    s: Settings,
    desired: int,
    pa: PodAutoscalerState,
    probe_ok: bool,
    proxied_for_s: float,
    progress_deadline_s: float,
) -> Decision:
    """handleScaleToZero()."""
    if desired != 0:
        return Decision(desired, True)
    if not s.enable_scale_to_zero:
        return Decision(1, True)
    if pa.activity is Activity.ACTIVATING:
        # A revision that cannot activate within its progress deadline goes to zero.
        if pa.for_s >= progress_deadline_s + ACTIVATION_TIMEOUT_BUFFER_S:
            return Decision(desired, True)
        return Decision(-1, False)
    if pa.activity is Activity.ACTIVE:
        if pa.for_s >= s.stable_window_s:
            return Decision(desired, False)  # the PA turns Inactive; the pods stay for now
        return Decision(1, True)
    # Inactive. With TBC -1 the activator is in the path by construction; otherwise it is
    # probed through the revision's public service.
    if s.target_burst_capacity != -1 and not probe_ok:
        return Decision(desired, False)
    retention = s.scale_to_zero_pod_retention_period_s if pa.reachable else 0.0
    if pa.for_s >= max(s.scale_to_zero_grace_period_s, retention):
        return Decision(desired, True)
    if retention > 0 and pa.for_s < retention:
        return Decision(desired, False)
    if proxied_for_s >= s.scale_to_zero_grace_period_s:
        return Decision(desired, True)  # the activator has been in the path long enough
    return Decision(desired, False)
