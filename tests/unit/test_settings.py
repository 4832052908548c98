from __future__ import annotations

import time

import pytest

from function.settings import ConfigError, Settings
from scripts.serve import ROOT


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.ttl_default_seconds == 31_536_000
    assert settings.max_body_bytes == 1_048_576
    assert settings.redis_timeout_seconds == 1.0
    assert settings.redis_url == "redis://localhost:6379/0"


def test_every_field_reads_its_variable() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "rediss://:pw@redis.example:6380/2",
            "REDIS_TIMEOUT_SECONDS": "0.25",
            "REDIS_MAX_CONNECTIONS": "8",
            "KEY_PREFIX": "app:",
            "TTL_DEFAULT_SECONDS": "60",
            "TTL_MIN_SECONDS": "5",
            "TTL_MAX_SECONDS": "600",
            "MAX_BODY_BYTES": "4096",
            "MAX_PATH_BYTES": "128",
            "MAX_JSON_DEPTH": "4",
            "BODY_TIMEOUT_SECONDS": "2.5",
            "LOG_FORMAT": "json",
        }
    )
    assert settings == Settings(
        redis_url="rediss://:pw@redis.example:6380/2",
        redis_timeout_seconds=0.25,
        redis_max_connections=8,
        key_prefix="app:",
        ttl_default_seconds=60,
        ttl_min_seconds=5,
        ttl_max_seconds=600,
        max_body_bytes=4096,
        max_path_bytes=128,
        max_json_depth=4,
        body_timeout_seconds=2.5,
        log_format="json",
    )


def test_blank_values_keep_defaults() -> None:
    assert Settings.from_env({"TTL_DEFAULT_SECONDS": "  "}) == Settings()


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"TTL_DEFAULT_SECONDS": "a year"}, "TTL_DEFAULT_SECONDS"),
        ({"REDIS_TIMEOUT_SECONDS": "0"}, "REDIS_TIMEOUT_SECONDS"),
        ({"TTL_DEFAULT_SECONDS": "10", "TTL_MIN_SECONDS": "20"}, "TTL_DEFAULT_SECONDS"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"MAX_JSON_DEPTH": "0"}, "MAX_JSON_DEPTH"),
        ({"REDIS_MAX_CONNECTIONS": "1.5"}, "REDIS_MAX_CONNECTIONS"),
        ({"MAX_BODY_BYTES": "abc"}, "MAX_BODY_BYTES must be a whole number"),
        ({"BODY_TIMEOUT_SECONDS": "soon"}, "BODY_TIMEOUT_SECONDS must be a number"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_bad_values_name_their_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(environ)


def test_redis_cluster_flag() -> None:
    assert Settings.from_env({}).redis_cluster is False
    assert Settings.from_env({"REDIS_CLUSTER": "1"}).redis_cluster is True
    assert Settings.from_env({"REDIS_CLUSTER": "false"}).redis_cluster is False
    with pytest.raises(ConfigError, match="REDIS_CLUSTER"):
        Settings.from_env({"REDIS_CLUSTER": "maybe"})


# Each bound: the smallest accepted value, and the one below it refused with its exact message.
BOUNDS = [
    ("REDIS_MAX_CONNECTIONS", "1", "0", "REDIS_MAX_CONNECTIONS must be at least 1"),
    ("TTL_MIN_SECONDS", "1", "0", "TTL_MIN_SECONDS must be at least 1"),
    ("MAX_BODY_BYTES", "2", "1", "MAX_BODY_BYTES must be at least 2 (the body '{}')"),
    ("MAX_PATH_BYTES", "2", "1", "MAX_PATH_BYTES must be at least 2"),
    ("MAX_JSON_DEPTH", "1", "0", "MAX_JSON_DEPTH must be at least 1"),
    ("REDIS_TIMEOUT_SECONDS", "0.001", "0", "REDIS_TIMEOUT_SECONDS must be above 0"),
    ("REDIS_TIMEOUT_SECONDS", "0.001", "-1", "REDIS_TIMEOUT_SECONDS must be above 0"),
]


@pytest.mark.parametrize(("name", "lowest", "below", "message"), BOUNDS)
def test_bounds_are_exact(name: str, lowest: str, below: str, message: str) -> None:
    assert getattr(Settings.from_env({name: lowest}), name.lower()) == float(lowest)
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: below})
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("environ", "accepted"),
    [({"TTL_MIN_SECONDS": "5", "TTL_DEFAULT_SECONDS": "5", "TTL_MAX_SECONDS": "9"}, True),
     ({"TTL_MIN_SECONDS": "5", "TTL_DEFAULT_SECONDS": "9", "TTL_MAX_SECONDS": "9"}, True),
     ({"TTL_MIN_SECONDS": "5", "TTL_DEFAULT_SECONDS": "4", "TTL_MAX_SECONDS": "9"}, False),
     ({"TTL_MIN_SECONDS": "5", "TTL_DEFAULT_SECONDS": "10", "TTL_MAX_SECONDS": "9"}, False)],
)  # fmt: skip
def test_default_ttl_lies_within_the_bounds(environ: dict[str, str], accepted: bool) -> None:
    if accepted:
        assert Settings.from_env(environ).ttl_default_seconds == int(environ["TTL_DEFAULT_SECONDS"])
        return
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(environ)
    assert str(refused.value) == (
        "TTL_DEFAULT_SECONDS must lie between TTL_MIN_SECONDS and TTL_MAX_SECONDS"
    )


def test_ttl_max_stays_within_what_redis_can_hold() -> None:
    """Expiry times are Unix milliseconds below 2**63 in Redis: 10**15 s is accepted, one more
    refused, rather than answered 500 when a PUT asks for it."""
    ceiling = 10**15
    documented = (ROOT / "docs" / "configuration.md").read_text()
    assert f"`TTL_MAX_SECONDS` at most `{ceiling}`" in documented
    assert Settings.from_env({"TTL_MAX_SECONDS": str(ceiling)}).ttl_max_seconds == ceiling
    assert (time.time() + ceiling) * 1000 < 2**63
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"TTL_MAX_SECONDS": str(ceiling + 1)})
    assert str(refused.value) == (
        f"TTL_MAX_SECONDS must be at most {ceiling} (Redis holds an expiry time in milliseconds, "
        "as a 64-bit number)"
    )


@pytest.mark.parametrize(
    "url", ["redis://h:1/0", "rediss://h:1/0", "unix:///run/redis.sock", "unix:///s?db=2"]
)
def test_every_documented_url_scheme_is_accepted(url: str) -> None:
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


@pytest.mark.parametrize("url", ["http://h:1", "UNIX:///s", "Redis://h", "h:6379", "redis:/h"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"REDIS_URL": url})
    assert str(refused.value) == "REDIS_URL must start with redis://, rediss:// or unix://"


def test_type_errors_name_variable_and_value() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"MAX_BODY_BYTES": " 1k "})
    assert str(refused.value) == "MAX_BODY_BYTES must be a whole number, got '1k'"


def test_float_type_errors_ask_for_a_number() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"REDIS_TIMEOUT_SECONDS": "soon"})
    assert str(refused.value) == "REDIS_TIMEOUT_SECONDS must be a number, got 'soon'"


def test_values_are_stripped_and_typed() -> None:
    settings = Settings.from_env({"KEY_PREFIX": " app: ", "REDIS_TIMEOUT_SECONDS": "2"})
    assert settings.key_prefix == "app:"
    assert settings.redis_timeout_seconds == 2.0
    assert isinstance(settings.redis_timeout_seconds, float)


@pytest.mark.parametrize(
    ("name", "low", "message"),
    [("head_timeout_seconds", 0.0, "HEAD_TIMEOUT_SECONDS must be above 0"),
     ("body_timeout_seconds", 0.0, "BODY_TIMEOUT_SECONDS must be above 0")],
)  # fmt: skip
def test_request_timeouts_must_be_above_zero(name: str, low: float, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings(**{name: low})
    assert str(refused.value) == message
    assert getattr(Settings(**{name: 0.5}), name) == 0.5  # below one second is fine


@pytest.mark.parametrize("log_format", ["xml", "JSON", ""])
def test_log_format_is_text_or_json(log_format: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings(log_format=log_format)
    assert str(refused.value) == "LOG_FORMAT must be text or json"
    assert Settings(log_format="json").log_format == "json"
