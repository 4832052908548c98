"""Settings as Knative resolves them, and the webhook's refusals as one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.kpa.settings import (
    AutoscalerConfig,
    SettingsError,
    config_from_data,
    load_config_autoscaler,
    load_service,
    parse_duration,
    resolve,
)

from .conftest import SERVICE


def test_the_project_service_resolves_as_knative_would() -> None:
    settings = load_service(SERVICE, AutoscalerConfig())
    assert settings.container_concurrency == 40
    assert (settings.total, settings.target) == (10.0, 7.0)
    assert (settings.stable_window_s, settings.panic_window_s) == (60.0, 6.0)
    assert settings.panic_threshold == 2.0
    assert (settings.min_scale, settings.max_scale, settings.initial_scale) == (0, 10, 1)
    assert settings.target_burst_capacity == 211.0


def test_defaults_without_annotations_follow_config_autoscaler() -> None:
    # No annotations, containerConcurrency 0: container-concurrency-target-default (100) x 70 %.
    settings = resolve({}, 0, AutoscalerConfig())
    assert (settings.total, settings.target) == (100.0, 70.0)
    assert (settings.max_scale, settings.target_burst_capacity) == (0, 211.0)
    # containerConcurrency alone sets the total; a percentage over 1 is divided by 100.
    config = config_from_data({"container-concurrency-target-percentage": "80"})
    assert resolve({}, 40, config).target == 32.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60.0), ("1m30s", 90.0), ("1h", 3600.0), ("0", 0.0), ("1.5s", 1.5), ("500ms", 0.5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "60", "1d", "s", "1m 30s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_panic_window_rounds_to_whole_seconds(tmp_path: Path) -> None:
    settings = load_service(
        SERVICE,
        AutoscalerConfig(),
        {
            "autoscaling.knative.dev/window": "25s",
            "autoscaling.knative.dev/panic-window-percentage": "10",
        },
    )
    assert settings.panic_window_s == 3.0  # 2.5 s rounds half away from zero (Duration.Round)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("target", "ten", "annotation autoscaling.knative.dev/target: 'ten' is not a number"),
        ("target", "0.001", "must be at least 0.01"),
        ("target-utilization-percentage", "120", "must be <= 100"),
        ("window", "5s", "must be between 6s and 1h"),
        ("window", "6.5s", "must be whole seconds"),
        ("panic-threshold-percentage", "100", "must be in [110, 1000]"),
        ("target-burst-capacity", "-2", "must be at least -1"),
        ("max-scale", "-1", "must be at least 0"),
        ("min-scale", "20", "max-scale=10 is less than min-scale=20"),
        ("activation-scale", "1", "must be greater than 1"),
        ("activation-scale", "11", "is more than max-scale=10"),
        ("initial-scale", "0", "allow-zero-initial-scale"),
        ("metric", "rps", "requests per second"),
        ("class", "hpa.autoscaling.knative.dev", "KPA only"),
        ("metric-aggregation-algorithm", "exponential", "is not linear or weighted-exponential"),
    ],
)
def test_bad_annotations_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_service(SERVICE, AutoscalerConfig(), {f"autoscaling.knative.dev/{key}": value})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_annotations_on_the_service_metadata_are_refused(tmp_path: Path) -> None:
    service = tmp_path / "service.yaml"
    service.write_text(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: x\n"
        "  annotations:\n    autoscaling.knative.dev/target: '10'\n"
        "spec:\n  template:\n    spec:\n      containers: [{image: x}]\n"
    )
    with pytest.raises(SettingsError, match=r"must be put under spec\.template"):
        load_service(service, AutoscalerConfig())


def test_config_autoscaler_file(tmp_path: Path) -> None:
    path = tmp_path / "config-autoscaler.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-autoscaler, namespace: "
        "knative-serving}\ndata:\n  _example: ignored\n  stable-window: 2m\n"
        "  target-burst-capacity: '-1'\n  enable-scale-to-zero: 'false'\n"
    )
    config = load_config_autoscaler(path)
    assert config.stable_window_s == 120.0
    assert config.target_burst_capacity == -1.0
    assert config.enable_scale_to_zero is False
    settings = load_service(SERVICE, config)
    assert (settings.stable_window_s, settings.panic_window_s) == (120.0, 12.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scale-to-zero-grace-period": "0s"}, "scale-to-zero-grace-period must be positive"),
        ({"stable-window": "5s"}, "stable-window must be whole seconds in [6s, 1h]"),
        ({"max-scale-down-rate": "1"}, "must be greater than 1"),
        ({"max-scale-up-rate": "fast"}, "max-scale-up-rate: cannot parse 'fast'"),
        ({"enable-scale-to-zero": "yes"}, "enable-scale-to-zero: cannot parse 'yes'"),
    ],
)
def test_bad_config_autoscaler_is_refused(data: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        config_from_data(data)
    assert message in str(caught.value)


def test_config_file_must_be_a_configmap(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("stable-window: 60s\n")
    with pytest.raises(SettingsError, match="expected a ConfigMap with data"):
        load_config_autoscaler(path)
