"""The autoscaling settings of one revision: config-autoscaler defaults, then the annotations.

Follows knative/serving (knative-v1.23.0):
- ``pkg/autoscaler/config/config.go``: config-autoscaler's keys, defaults and validation;
- ``pkg/apis/autoscaling/register.go`` and ``annotation_validation.go``: the annotation keys
  (with their legacy camelCase spellings) and the webhook's ranges;
- ``pkg/reconciler/autoscaling/resources/target.go`` (ResolveMetricTarget) and ``metric.go``
  (MakeMetric: the panic window), ``kpa/resources/decider.go`` (MakeDecider, GetInitialScale),
  ``pkg/apis/autoscaling/v1alpha1/pa_lifecycle.go`` (ScaleBounds).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadtest.kpa.decider import DeciderSpec

GROUP = "autoscaling.knative.dev/"
KPA_CLASS = "kpa.autoscaling.knative.dev"
TARGET_MIN = 0.01
WINDOW_MIN_S, WINDOW_MAX_S = 6.0, 3600.0
BUCKET_S = 1.0
INT32_MAX = 2**31 - 1


class SettingsError(ValueError):
    """A setting that Knative would reject, or one this model cannot follow."""


@dataclass(frozen=True)
class AutoscalerConfig:
    """config-autoscaler, with Knative's defaults (defaultConfig in config.go)."""

    enable_scale_to_zero: bool = True
    container_concurrency_target_fraction: float = 0.7
    container_concurrency_target_default: float = 100.0
    rps_target_default: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    target_burst_capacity: float = 211.0
    panic_window_percentage: float = 10.0
    activator_capacity: float = 100.0
    panic_threshold_percentage: float = 200.0
    stable_window_s: float = 60.0
    scale_to_zero_grace_period_s: float = 30.0
    scale_to_zero_pod_retention_period_s: float = 0.0
    scale_down_delay_s: float = 0.0
    pod_autoscaler_class: str = KPA_CLASS
    allow_zero_initial_scale: bool = False
    initial_scale: int = 1
    min_scale: int = 0
    max_scale: int = 0
    max_scale_limit: int = 0


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_UNIT_S["h"] = 3600.0


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as ``60s``, ``1m30s`` or ``0`` (time.ParseDuration)."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    position, seconds = 0, 0.0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            raise ValueError(f"not a duration: {text!r}")
        seconds += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if not body:
        raise ValueError(f"not a duration: {text!r}")
    return sign * seconds


def _parse_bool(text: str) -> bool:
    # strconv.ParseBool's spellings.
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ValueError(f"not a whole number: {text!r}")
    value = int(text)
    if not -(2**31) <= value <= INT32_MAX:
        raise ValueError(f"out of range: {text!r}")
    return value


def _parse_float(text: str) -> float:
    value = float(text)  # raises ValueError with the text
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


_CONFIG_KEYS: dict[str, tuple[str, Any]] = {
    "pod-autoscaler-class": ("pod_autoscaler_class", str),
    "enable-scale-to-zero": ("enable_scale_to_zero", _parse_bool),
    "allow-zero-initial-scale": ("allow_zero_initial_scale", _parse_bool),
    "max-scale-up-rate": ("max_scale_up_rate", _parse_float),
    "max-scale-down-rate": ("max_scale_down_rate", _parse_float),
    "container-concurrency-target-percentage": (
        "container_concurrency_target_fraction",
        _parse_float,
    ),
    "container-concurrency-target-default": ("container_concurrency_target_default", _parse_float),
    "requests-per-second-target-default": ("rps_target_default", _parse_float),
    "target-burst-capacity": ("target_burst_capacity", _parse_float),
    "panic-window-percentage": ("panic_window_percentage", _parse_float),
    "activator-capacity": ("activator_capacity", _parse_float),
    "panic-threshold-percentage": ("panic_threshold_percentage", _parse_float),
    "initial-scale": ("initial_scale", _parse_int32),
    "min-scale": ("min_scale", _parse_int32),
    "max-scale": ("max_scale", _parse_int32),
    "max-scale-limit": ("max_scale_limit", _parse_int32),
    "stable-window": ("stable_window_s", parse_duration),
    "scale-down-delay": ("scale_down_delay_s", parse_duration),
    "scale-to-zero-grace-period": ("scale_to_zero_grace_period_s", parse_duration),
    "scale-to-zero-pod-retention-period": ("scale_to_zero_pod_retention_period_s", parse_duration),
}


def config_from_data(data: dict[str, Any]) -> AutoscalerConfig:
    """config-autoscaler's ``data`` (NewConfigFromMap): known keys parsed, others ignored."""
    values: dict[str, Any] = {}
    for key, (field, parse) in _CONFIG_KEYS.items():
        if key not in data:
            continue
        raw = data[key]
        if isinstance(raw, bool):
            raw = str(raw).lower()
        try:
            values[field] = parse(str(raw))
        except ValueError:
            raise SettingsError(f"config-autoscaler: {key}: cannot parse {raw!r}") from None
    fraction = values.get("container_concurrency_target_fraction")
    if fraction is not None and fraction > 1.0:
        # Percentages above 1 are divided by 100; (0, 1] is taken as a fraction (legacy).
        values["container_concurrency_target_fraction"] = fraction / 100.0
    config = AutoscalerConfig(**values)
    _validate_config(config)
    return config


def _validate_config(c: AutoscalerConfig) -> None:
    problems = []
    if c.scale_to_zero_grace_period_s <= 0:
        problems.append("scale-to-zero-grace-period must be positive")
    if c.scale_down_delay_s < 0 or c.scale_down_delay_s != round(c.scale_down_delay_s):
        problems.append("scale-down-delay must be whole seconds, not negative")
    if c.scale_to_zero_pod_retention_period_s < 0:
        problems.append("scale-to-zero-pod-retention-period cannot be negative")
    if c.target_burst_capacity < 0 and c.target_burst_capacity != -1:
        problems.append("target-burst-capacity must be non-negative or -1")
    if not 0 < c.container_concurrency_target_fraction <= 1:
        problems.append("container-concurrency-target-percentage must be in (0, 100]")
    elif c.container_concurrency_target_fraction * c.container_concurrency_target_default < (
        TARGET_MIN
    ):
        problems.append("the default target concurrency comes out below 0.01")
    if c.rps_target_default < TARGET_MIN:
        problems.append("requests-per-second-target-default must be at least 0.01")
    if c.activator_capacity < 1:
        problems.append("activator-capacity must be at least 1")
    if c.max_scale_up_rate <= 1 or c.max_scale_down_rate <= 1:
        problems.append("max-scale-up-rate and max-scale-down-rate must be greater than 1")
    if not WINDOW_MIN_S <= c.stable_window_s <= WINDOW_MAX_S or c.stable_window_s != round(
        c.stable_window_s
    ):
        problems.append("stable-window must be whole seconds in [6s, 1h]")
    if not 1 <= c.panic_window_percentage <= 100:
        problems.append("panic-window-percentage must be in [1, 100]")
    if c.initial_scale < 0 or (c.initial_scale == 0 and not c.allow_zero_initial_scale):
        problems.append("initial-scale must be at least 1 (0 only with allow-zero-initial-scale)")
    if c.min_scale < 0:
        problems.append("min-scale must be at least 0")
    if c.max_scale_limit < 0:
        problems.append("max-scale-limit must be at least 0")
    elif c.max_scale < (1 if c.max_scale_limit > 0 else 0) or (
        c.max_scale_limit > 0 and c.max_scale > c.max_scale_limit
    ):
        problems.append("max-scale must be within [0 or 1, max-scale-limit]")
    if c.max_scale > 0 and c.min_scale > c.max_scale:
        problems.append("min-scale must not exceed max-scale")
    if problems:
        raise SettingsError("config-autoscaler: " + "; ".join(problems))


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as error:
        raise SettingsError(f"cannot read {what} {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0]
        raise SettingsError(f"{what} {path} is not valid YAML: {first_line}") from None


def load_config_autoscaler(path: Path) -> AutoscalerConfig:
    """A config-autoscaler ConfigMap file: its ``data`` over Knative's defaults."""
    document = _load_yaml(path, "config-autoscaler file")
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise SettingsError(f"config-autoscaler file {path}: expected a ConfigMap with data")
    return config_from_data(document["data"])


@dataclass(frozen=True)
class Settings:
    """Everything the model needs about one revision, resolved as Knative resolves it."""

    container_concurrency: int
    target: float  # per pod, after utilization
    total: float  # per pod, before utilization
    target_utilization: float
    stable_window_s: float
    panic_window_s: float
    panic_threshold: float  # a fraction
    max_scale_up_rate: float
    max_scale_down_rate: float
    target_burst_capacity: float
    activator_capacity: float
    scale_down_delay_s: float
    activation_scale: int
    min_scale: int
    max_scale: int  # 0: unlimited
    initial_scale: int
    enable_scale_to_zero: bool
    scale_to_zero_grace_period_s: float
    scale_to_zero_pod_retention_period_s: float
    weighted_average: bool = False  # metric-aggregation-algorithm: weighted-exponential

    def decider_spec(self) -> DeciderSpec:
        return DeciderSpec(
            target=self.target,
            total=self.total,
            target_burst_capacity=self.target_burst_capacity,
            panic_threshold=self.panic_threshold,
            max_scale_up_rate=self.max_scale_up_rate,
            max_scale_down_rate=self.max_scale_down_rate,
            stable_window_s=self.stable_window_s,
            scale_down_delay_s=self.scale_down_delay_s,
            activation_scale=self.activation_scale,
            reachable=True,
        )


def _annotation(annotations: dict[str, str], name: str, *legacy: str) -> tuple[str, str] | None:
    """The first of the key and its legacy spellings that is set (kmap.KeyPriority)."""
    for key in (GROUP + name, *(GROUP + old for old in legacy)):
        if key in annotations:
            return key, annotations[key]
    return None


def _bad(key: str, value: str, why: str) -> SettingsError:
    return SettingsError(f"annotation {key}: {value!r} {why}")


def resolve(
    annotations: dict[str, str], container_concurrency: int, config: AutoscalerConfig
) -> Settings:
    """The revision's settings from its template annotations, over ``config``."""
    a = annotations

    def number(name: str, *legacy: str, low: float, high: float = math.inf) -> float | None:
        found = _annotation(a, name, *legacy)
        if found is None:
            return None
        key, raw = found
        try:
            value = _parse_float(raw)
        except ValueError:
            raise _bad(key, raw, "is not a number") from None
        if not low <= value <= high:
            bounds = f"at least {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
            raise _bad(key, raw, f"must be {bounds}")
        return value

    def whole(name: str, *legacy: str) -> int | None:
        found = _annotation(a, name, *legacy)
        if found is None:
            return None
        key, raw = found
        try:
            value = _parse_int32(raw)
        except ValueError:
            raise _bad(key, raw, "is not a whole number") from None
        if value < 0:
            raise _bad(key, raw, "must be at least 0")
        return value

    def duration(name: str, *legacy: str, low: float, whole_seconds: bool) -> float | None:
        found = _annotation(a, name, *legacy)
        if found is None:
            return None
        key, raw = found
        try:
            value = parse_duration(raw)
        except ValueError:
            raise _bad(key, raw, "is not a duration such as 60s or 1m30s") from None
        if not low <= value <= WINDOW_MAX_S:
            raise _bad(key, raw, f"must be between {low:g}s and 1h")
        if whole_seconds and value != round(value):
            raise _bad(key, raw, "must be whole seconds")
        return value

    found = _annotation(a, "class")
    if found is not None and found[1] != KPA_CLASS:
        raise _bad(*found, "is not the KPA: the model follows the KPA only")
    if found is None and config.pod_autoscaler_class != KPA_CLASS:
        raise SettingsError("config-autoscaler: pod-autoscaler-class is not the KPA")
    found = _annotation(a, "metric")
    if found is not None and found[1] != "concurrency":
        why = (
            "needs requests per second, which the timeline does not hold: the model follows "
            "the concurrency metric"
            if found[1] == "rps"
            else "is not a KPA metric (concurrency or rps)"
        )
        raise _bad(*found, why)
    # Knative checks this value only when the class annotation names the KPA, and averages
    # linearly on anything it does not know; a typo is refused here rather than ignored.
    weighted = False
    found = _annotation(a, "metric-aggregation-algorithm", "metricAggregationAlgorithm")
    if found is not None:
        if found[1] not in ("linear", "weighted-exponential", "weightedExponential"):
            raise _bad(*found, "is not linear or weighted-exponential")
        weighted = found[1] != "linear"

    if not 0 <= container_concurrency <= 1000:
        raise SettingsError(f"containerConcurrency {container_concurrency} must be in [0, 1000]")

    target_annotation = number("target", low=TARGET_MIN)
    utilization = number("target-utilization-percentage", "targetUtilizationPercentage", low=1)
    if utilization is not None and utilization > 100:
        raise _bad(GROUP + "target-utilization-percentage", str(utilization), "must be <= 100")
    tbc = number("target-burst-capacity", "targetBurstCapacity", low=-1)
    if tbc is not None and -1 < tbc < 0:
        raise _bad(GROUP + "target-burst-capacity", str(tbc), "must be at least 0, or -1")
    panic_window_pct = number(
        "panic-window-percentage", "panicWindowPercentage", low=1.0, high=100.0
    )
    panic_threshold_pct = number(
        "panic-threshold-percentage", "panicThresholdPercentage", low=110.0, high=1000.0
    )
    window = duration("window", low=WINDOW_MIN_S, whole_seconds=True)
    delay = duration("scale-down-delay", "scaleDownDelay", low=0.0, whole_seconds=True)
    retention = duration(
        "scale-to-zero-pod-retention-period",
        "scaleToZeroPodRetentionPeriod",
        low=0.0,
        whole_seconds=False,
    )

    min_annotation = whole("min-scale", "minScale")
    max_annotation = whole("max-scale", "maxScale")
    min_scale = config.min_scale if min_annotation is None else min_annotation
    max_scale = config.max_scale if max_annotation is None else max_annotation
    if max_scale != 0 and max_scale < min_scale:
        raise SettingsError(f"annotation max-scale={max_scale} is less than min-scale={min_scale}")
    if (
        config.max_scale_limit > 0
        and max_annotation is not None
        and (max_annotation == 0 or max_annotation > config.max_scale_limit)
    ):
        raise SettingsError(
            f"annotation max-scale={max_annotation} must be in [1, max-scale-limit "
            f"{config.max_scale_limit}]"
        )
    activation = 0
    found = _annotation(a, "activation-scale")
    if found is not None:
        try:
            activation = _parse_int32(found[1])
        except ValueError:
            raise _bad(*found, "is not a whole number") from None
        if activation < min_scale:
            raise _bad(*found, f"is less than min-scale={min_scale}")
        if max_scale != 0 and activation > max_scale:
            raise _bad(*found, f"is more than max-scale={max_scale}")
        if activation < 2:
            raise _bad(*found, "must be greater than 1")

    initial_scale = config.initial_scale
    found = _annotation(a, "initial-scale", "initialScale")
    if found is not None:
        try:
            revision_initial = _parse_int32(found[1])
        except ValueError:
            raise _bad(*found, "is not a whole number") from None
        if revision_initial < 0:
            raise _bad(*found, "must be at least 0")
        if revision_initial == 0 and not config.allow_zero_initial_scale:
            raise _bad(*found, "is not allowed: the cluster sets no allow-zero-initial-scale")
        initial_scale = revision_initial

    # ResolveMetricTarget (target.go), for the concurrency metric.
    total = float(container_concurrency) or config.container_concurrency_target_default
    if target_annotation is not None:
        total = target_annotation
        if container_concurrency != 0:
            total = min(target_annotation, float(container_concurrency))
    fraction = (
        utilization / 100.0
        if utilization is not None
        else config.container_concurrency_target_fraction
    )
    target = max(TARGET_MIN, total * fraction)

    # MakeMetric (metric.go): the panic window is rounded to whole seconds, at least one bucket.
    stable_window = config.stable_window_s if window is None else window
    pct = config.panic_window_percentage if panic_window_pct is None else panic_window_pct
    panic_window = max(BUCKET_S, _round_half_away(stable_window * pct / 100.0))

    return Settings(
        container_concurrency=container_concurrency,
        target=target,
        total=total,
        target_utilization=fraction,
        stable_window_s=stable_window,
        panic_window_s=panic_window,
        panic_threshold=(
            config.panic_threshold_percentage
            if panic_threshold_pct is None
            else panic_threshold_pct
        )
        / 100.0,
        max_scale_up_rate=config.max_scale_up_rate,
        max_scale_down_rate=config.max_scale_down_rate,
        target_burst_capacity=config.target_burst_capacity if tbc is None else tbc,
        activator_capacity=config.activator_capacity,
        scale_down_delay_s=config.scale_down_delay_s if delay is None else delay,
        activation_scale=activation,
        min_scale=min_scale,
        max_scale=max_scale,
        initial_scale=initial_scale,
        enable_scale_to_zero=config.enable_scale_to_zero,
        scale_to_zero_grace_period_s=config.scale_to_zero_grace_period_s,
        scale_to_zero_pod_retention_period_s=(
            config.scale_to_zero_pod_retention_period_s if retention is None else retention
        ),
        weighted_average=weighted,
    )


def _round_half_away(value: float) -> float:
    """time.Duration.Round(time.Second): halves round away from zero."""
    return float(math.floor(value + 0.5)) if value >= 0 else -float(math.floor(-value + 0.5))


def load_service(
    path: Path, config: AutoscalerConfig, overrides: dict[str, str] | None = None
) -> Settings:
    """A Knative Service manifest: its revision template's annotations and containerConcurrency.

    ``overrides`` replace or add template annotations (full keys), for what-if predictions.
    """
    document = _load_yaml(path, "Service file")
    if isinstance(document, dict) and document.get("kind") == "List":
        document = next(iter(document.get("items") or []), None)
    if not isinstance(document, dict) or document.get("kind") != "Service":
        raise SettingsError(f"Service file {path}: expected a Knative Service (kind: Service)")
    template = (document.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    if not isinstance(annotations, dict):
        raise SettingsError(f"Service file {path}: template annotations must be a mapping")
    own = (document.get("metadata") or {}).get("annotations") or {}
    misplaced = sorted(key for key in own if str(key).startswith(GROUP))
    if misplaced:
        raise SettingsError(
            f"Service file {path}: {misplaced[0]} is on the Service's metadata; autoscaling "
            "annotations must be put under spec.template.metadata.annotations"
        )
    concurrency = (template.get("spec") or {}).get("containerConcurrency", 0)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool):
        raise SettingsError(f"Service file {path}: containerConcurrency must be a whole number")
    merged = {str(k): str(v) for k, v in annotations.items()} | (overrides or {})
    return resolve(merged, concurrency, config)
