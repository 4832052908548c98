"""Load profiles: a run is a list of stages, each holding a number of users or a request rate.

Built-in profiles take their duration and peak level from the command line:
  steady  the level for the whole run
  step    five equal steps rising to the level
  spike   idle (10 %), the level at once (20 %), idle again (70 %) so scale-to-zero shows

A profile file is JSON or YAML: a list of stages, or a mapping with a ``stages`` list. Each stage
has ``duration`` (whole seconds) and exactly one of ``users`` (concurrent users, each sending its
next request as soon as the last one is answered) or ``rate`` (requests per second in total, due
on a fixed schedule whatever the answers do).
``users: 0`` or ``rate: 0`` is an idle stage. Example (YAML)::

  stages:
    - {duration: 20, users: 0}
    - {duration: 30, rate: 50}
    - {duration: 30, users: 20}
    - {duration: 120, users: 0}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadtest.errors import UsageError

BUILT_IN_PROFILES = ("steady", "step", "spike")
STEP_COUNT = 5
DEFAULT_DURATION_S = 60
DEFAULT_USERS = 10


@dataclass(frozen=True)
class Stage:
    """``duration_s`` seconds at ``users`` concurrent users, or at ``rate`` requests/s in total."""

    duration_s: int
    users: int | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        if (self.users is None) == (self.rate is None):
            raise ValueError("a stage needs exactly one of users or rate")

    @property
    def is_rate(self) -> bool:
        return self.rate is not None

    @property
    def carries_load(self) -> bool:
        return bool(self.rate or self.users)

    def describe(self) -> str:
        if self.rate is not None:
            level = f"{self.rate:g} req/s"
        else:
            level = f"{self.users} user" + ("" if self.users == 1 else "s")
        return f"{self.duration_s} s at {level}"


@dataclass(frozen=True)
class Profile:
    name: str
    stages: tuple[Stage, ...]

    @property
    def duration_s(self) -> int:
        return sum(stage.duration_s for stage in self.stages)

    @property
    def mode(self) -> str:
        """``users``, ``rate`` or ``mixed``: how the stages that carry load are driven."""
        kinds = {stage.is_rate for stage in self.stages if stage.carries_load}
        if kinds == {True}:
            return "rate"
        if kinds == {False} or not kinds:
            return "users"
        return "mixed"

    def stage_at(self, elapsed_s: float) -> Stage | None:
        """The stage running ``elapsed_s`` seconds into the run; None once the run is over."""
        end = 0.0
        for stage in self.stages:
            end += stage.duration_s
            if elapsed_s < end:
                return stage
        return None

    def cut(self, duration_s: int) -> Profile:
        """The first ``duration_s`` seconds of this profile."""
        kept: list[Stage] = []
        remaining = duration_s
        for stage in self.stages:
            if remaining <= 0:
                break
            length = min(stage.duration_s, remaining)
            kept.append(Stage(length, users=stage.users, rate=stage.rate))
            remaining -= length
        return Profile(self.name, tuple(kept))


@dataclass(frozen=True)
class Level:
    """The peak load of a built-in profile: ``users`` or ``rate``, never both."""

    users: int | None = None
    rate: float | None = None

    def scaled(self, fraction: float) -> Stage:
        """A zero-length template stage at ``fraction`` of this level (at least 1 user or req/s)."""
        if self.rate is not None:
            return Stage(0, rate=max(1.0, round(self.rate * fraction, 3)))
        return Stage(0, users=max(1, math.ceil((self.users or 0) * fraction)))

    def idle(self) -> Stage:
        return Stage(0, rate=0.0) if self.rate is not None else Stage(0, users=0)


def _split(total: int, parts: int) -> list[int]:
    """``total`` whole seconds in ``parts`` near-equal pieces, the longer ones last."""
    base, extra = divmod(total, parts)
    return [base + (1 if index >= parts - extra else 0) for index in range(parts)]


def _with_duration(template: Stage, duration_s: int) -> Stage:
    return Stage(duration_s, users=template.users, rate=template.rate)


def built_in(name: str, duration_s: int, level: Level) -> Profile:
    if name == "steady":
        if duration_s < 1:
            raise UsageError("--duration must be at least 1 second")
        return Profile(name, (_with_duration(level.scaled(1.0), duration_s),))
    if name == "step":
        steps = min(STEP_COUNT, duration_s)
        if steps < 2:
            raise UsageError("the step profile needs --duration of at least 2 seconds")
        stages = tuple(
            _with_duration(level.scaled((index + 1) / steps), length)
            for index, length in enumerate(_split(duration_s, steps))
        )
        return Profile(name, stages)
    if name == "spike":
        if duration_s < 3:
            raise UsageError("the spike profile needs --duration of at least 3 seconds")
        before = max(1, round(duration_s * 0.1))
        burst = max(1, round(duration_s * 0.2))
        after = duration_s - before - burst
        stages = (
            _with_duration(level.idle(), before),
            _with_duration(level.scaled(1.0), burst),
            _with_duration(level.idle(), after),
        )
        return Profile(name, stages)
    raise UsageError(f"unknown profile {name!r}: use {', '.join(BUILT_IN_PROFILES)} or a file path")


def _parse_stage(raw: Any, number: int, source: str) -> Stage:
    where = f"profile file {source}: stage {number}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a mapping like {{duration: 30, users: 10}}")
    unknown = set(raw) - {"duration", "users", "rate"}
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    duration = raw.get("duration")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 1:
        raise UsageError(f"{where}: duration must be a whole number of seconds >= 1")
    has_users, has_rate = "users" in raw, "rate" in raw
    if has_users == has_rate:
        raise UsageError(f"{where}: needs exactly one of users or rate")
    if has_users:
        users = raw["users"]
        if not isinstance(users, int) or isinstance(users, bool) or users < 0:
            raise UsageError(f"{where}: users must be a whole number >= 0")
        return Stage(duration, users=users)
    rate = raw["rate"]
    if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0:
        raise UsageError(f"{where}: rate must be a number of requests per second >= 0")
    return Stage(duration, rate=float(rate))


def from_file(path: Path) -> Profile:
    try:
        text = path.read_text()
    except OSError as error:
        raise UsageError(f"cannot read profile file {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first_line = str(error).splitlines()[0]
        raise UsageError(f"profile file {path} is not valid JSON/YAML: {first_line}") from None
    raw_stages: Sequence[Any] | None = None
    if isinstance(data, list):
        raw_stages = data
    elif isinstance(data, dict) and isinstance(data.get("stages"), list):
        raw_stages = data["stages"]
    if not raw_stages:
        raise UsageError(f"profile file {path}: expected a non-empty list of stages")
    stages = tuple(_parse_stage(raw, n, str(path)) for n, raw in enumerate(raw_stages, start=1))
    return Profile(path.stem, stages)


def resolve(name: str, duration_s: int | None, level: Level | None) -> Profile:
    """The profile a command line asks for: a built-in name or a stage file."""
    if name in BUILT_IN_PROFILES:
        duration = duration_s if duration_s is not None else DEFAULT_DURATION_S
        return built_in(name, duration, level or Level(users=DEFAULT_USERS))
    path = Path(name)
    if not path.is_file():
        raise UsageError(
            f"unknown profile {name!r}: use {', '.join(BUILT_IN_PROFILES)} "
            "or the path of a JSON/YAML stage file"
        )
    if level is not None:
        raise UsageError("a profile file sets users or rate per stage: drop --users/--rate")
    profile = from_file(path)
    if duration_s is None:
        return profile
    if duration_s > profile.duration_s:
        raise UsageError(
            f"profile file {path} lasts {profile.duration_s} s, shorter than --duration "
            f"{duration_s}: add an idle stage (users: 0) or drop --duration"
        )
    return profile.cut(duration_s)
