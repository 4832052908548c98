"""Configuration, read once from the environment into one typed object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """An environment variable holds a value the function cannot run with."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    # Bounds how long a request waits on Redis (to connect, for each reply).
    redis_timeout_seconds: float = 1.0
    # Per process; more requests than this waiting on Redis at once are answered 503.
    redis_max_connections: int = 256
    # REDIS_URL names any node of a Redis Cluster: route each key to the node owning its slot.
    redis_cluster: bool = False
    key_prefix: str = "kv:"
    ttl_default_seconds: int = 31_536_000  # 365 days
    ttl_min_seconds: int = 1
    ttl_max_seconds: int = 315_360_000  # 10 years
    max_body_bytes: int = 1_048_576
    max_path_bytes: int = 1024
    max_json_depth: int = 32

    def __post_init__(self) -> None:
        checks = [
            (self.redis_timeout_seconds > 0, "REDIS_TIMEOUT_SECONDS must be above 0"),
            (self.redis_max_connections >= 1, "REDIS_MAX_CONNECTIONS must be at least 1"),
            (self.ttl_min_seconds >= 1, "TTL_MIN_SECONDS must be at least 1"),
            (
                self.ttl_min_seconds <= self.ttl_default_seconds <= self.ttl_max_seconds,
                "TTL_DEFAULT_SECONDS must lie between TTL_MIN_SECONDS and TTL_MAX_SECONDS",
            ),
            (self.max_body_bytes >= 2, "MAX_BODY_BYTES must be at least 2 (the body '{}')"),
            (self.max_path_bytes >= 2, "MAX_PATH_BYTES must be at least 2"),
            (self.max_json_depth >= 1, "MAX_JSON_DEPTH must be at least 1"),
            (
                self.redis_url.startswith(("redis://", "rediss://", "unix://")),
                "REDIS_URL must start with redis://, rediss:// or unix://",
            ),
        ]
        for holds, message in checks:
            if not holds:
                raise ConfigError(message)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Each field from its upper-case environment variable; unset or blank keeps the default."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = field.name.upper()
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            casts: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _flag}
            cast = casts.get(str(field.type), str)
            try:
                values[field.name] = cast(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a {field.type}, got {raw!r}") from None
        return cls(**values)


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
