"""Configuration, read once from the environment into one typed object."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


class ConfigError(ValueError):
    """An environment variable holds a value the function cannot run with."""


# The longest ttl any setting may allow: expiry times are Unix milliseconds, which Redis keeps
# within 2**63 (about 9.2e18); 1e15 s from now stays far inside that.
TTL_CEILING_SECONDS = 10**15


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
    # How long a client may take to send a request head (then the connection is closed) and a
    # body (then it is answered 408). Flask mode bounds both together, by their sum.
    head_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # "text": one line per record with time and level; "json": one JSON object per line.
    log_format: str = "text"
    # Optional bearer tokens (function/access.py); kept out of repr so that no log shows them.
    write_token: str = dataclasses.field(default="", repr=False)
    read_token: str = dataclasses.field(default="", repr=False)

    def __post_init__(self) -> None:
        checks = [
            (self.redis_timeout_seconds > 0, "REDIS_TIMEOUT_SECONDS must be above 0"),
            (self.redis_max_connections >= 1, "REDIS_MAX_CONNECTIONS must be at least 1"),
            (self.ttl_min_seconds >= 1, "TTL_MIN_SECONDS must be at least 1"),
            (
                self.ttl_min_seconds <= self.ttl_default_seconds <= self.ttl_max_seconds,
                "TTL_DEFAULT_SECONDS must lie between TTL_MIN_SECONDS and TTL_MAX_SECONDS",
            ),
            (
                self.ttl_max_seconds <= TTL_CEILING_SECONDS,
                f"TTL_MAX_SECONDS must be at most {TTL_CEILING_SECONDS} (Redis holds an expiry "
                "time in milliseconds, as a 64-bit number)",
            ),
            (self.max_body_bytes >= 2, "MAX_BODY_BYTES must be at least 2 (the body '{}')"),
            (self.max_path_bytes >= 2, "MAX_PATH_BYTES must be at least 2"),
            (self.max_json_depth >= 1, "MAX_JSON_DEPTH must be at least 1"),
            (self.head_timeout_seconds > 0, "HEAD_TIMEOUT_SECONDS must be above 0"),
            (self.body_timeout_seconds > 0, "BODY_TIMEOUT_SECONDS must be above 0"),
            (self.log_format in ("text", "json"), "LOG_FORMAT must be text or json"),
            (
                self.redis_url.startswith(("redis://", "rediss://", "unix://")),
                "REDIS_URL must start with redis://, rediss:// or unix://",
            ),
            (_is_token(self.write_token), f"WRITE_TOKEN {_TOKEN_RULE}"),
            (_is_token(self.read_token), f"READ_TOKEN {_TOKEN_RULE}"),
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
            kind = str(field.type)
            casts: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": _flag}
            cast = casts.get(kind, str)
            try:
                values[field.name] = cast(raw)
            except ValueError:
                wanted = {
                    "int": "a whole number",
                    "float": "a number",
                    "bool": "1 or 0 (yes/no, true/false, on/off)",
                }.get(kind, kind)
                raise ConfigError(f"{name} must be {wanted}, got {raw!r}") from None
        return cls(**values)


@functools.cache
def loaded() -> Settings:
    """This process's settings, read from its environment once: by ``main`` as the server
    starts, so that a bad value stops it before it listens; every entry point then shares them."""
    return Settings.from_env(os.environ)


# RFC 6750's b64token, at least 16 characters: a token an operator can paste into a header.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{16,}=*")
_TOKEN_RULE = "must be empty or at least 16 of A-Z a-z 0-9 - . _ ~ + / (then = padding)"


def _is_token(value: str) -> bool:
    return not value or _TOKEN.fullmatch(value) is not None


_WANTED = {"int": "a whole number", "float": "a number", "bool": "1 or 0 (or yes/no, true/false)"}


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
