from __future__ import annotations

import pytest

from function.settings import ConfigError, Settings


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
