"""The load to predict for: a timeline CSV (measured) or a load profile (given).

A timeline needs the columns ``second`` and ``in_flight_mean`` (requests in flight at the
client, averaged over the second: the default input, too high by each request's time outside
Knative). A run on a cluster also records ``in_pods_mean``, the requests inside the pods as their
queue-proxies report them to the autoscaler; ``--concurrency seen`` gives the model that, and the
client's figure in seconds no pod reported (none is ready, the activator holds them all). It is
too low while the activator holds requests beside ready pods, which Knative counts too. The
columns ``pa_desired``, ``pods_ready`` and ``activator_in_path`` are read too, by name, so that
the prediction can be drawn over what happened.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from loadtest.profiles import Profile

REQUIRED_COLUMNS = ("second", "in_flight_mean")
IN_PODS_COLUMN = "in_pods_mean"
# Which concurrency a timeline gives the model: the pods' own count, or the client's.
SEEN, CLIENT = "seen", "client"
RECORDED_COLUMNS = ("pa_desired", "pods_ready", "activator_in_path")

T = TypeVar("T")


class LoadError(ValueError):
    """A timeline or profile that cannot be read as per-second load."""


@dataclass(frozen=True)
class Recorded:
    """What Knative did, per second; None where nothing was recorded."""

    desired: tuple[int | None, ...]
    ready: tuple[int | None, ...]
    activator_in_path: tuple[bool | None, ...]

    def any(self) -> bool:
        return any(v is not None for v in self.ready) or any(v is not None for v in self.desired)


@dataclass(frozen=True)
class Load:
    in_flight: tuple[float, ...]
    recorded: Recorded | None = None
    source: str = ""


def _cell(row: dict[str, str | None], column: str) -> str:
    return (row.get(column) or "").strip()


def _optional(
    rows: list[dict[str, str | None]], column: str, parse: Callable[[str], T], path: Path
) -> tuple[T | None, ...]:
    """A recorded column's values; None where a cell is empty or the column is absent."""
    values: list[T | None] = []
    for line, row in enumerate(rows, start=2):
        text = _cell(row, column)
        if not text:
            values.append(None)
            continue
        try:
            values.append(parse(text))
        except ValueError:
            raise LoadError(f"{path}: line {line}: {column} {text!r} is not valid") from None
    return tuple(values)


def _flag(text: str) -> bool:
    if text in ("1", "true", "True"):
        return True
    if text in ("0", "false", "False"):
        return False
    raise ValueError(text)


def _concurrency(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def read_timeline(path: Path, concurrency: str = CLIENT) -> Load:
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            rows = list(reader)
    except OSError as error:
        raise LoadError(f"cannot read timeline {path}: {error.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise LoadError(f"timeline {path} is not a CSV file: {error}") from None
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise LoadError(f"timeline {path} lacks the column(s) {', '.join(missing)}")
    if not rows:
        raise LoadError(f"timeline {path} has no rows")
    in_flight: list[float] = []
    for line, row in enumerate(rows, start=2):
        second_text, load_text = _cell(row, "second"), _cell(row, "in_flight_mean")
        if not second_text.isdigit() or int(second_text) != line - 2:
            raise LoadError(
                f"{path}: line {line}: second {second_text!r}, expected {line - 2}: one row per "
                "second, from 0"
            )
        try:
            value = float(load_text)
        except ValueError:
            raise LoadError(
                f"{path}: line {line}: in_flight_mean {load_text!r} is not a number"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise LoadError(f"{path}: line {line}: in_flight_mean must be a number >= 0")
        in_flight.append(value)
    source = f"{path}, in flight at the client"
    in_pods = _optional(rows, IN_PODS_COLUMN, _concurrency, path)
    reported = sum(value is not None for value in in_pods)
    if concurrency == SEEN and reported:
        pairs = zip(in_flight, in_pods, strict=True)
        in_flight = [client if pods is None else pods for client, pods in pairs]
        source = (
            f"{path}, in the pods ({reported} s) and at the client while no pod reported "
            f"({len(in_flight) - reported} s)"
        )
    recorded: Recorded | None = Recorded(
        desired=_optional(rows, "pa_desired", int, path),
        ready=_optional(rows, "pods_ready", int, path),
        activator_in_path=_optional(rows, "activator_in_path", _flag, path),
    )
    if recorded is not None and not recorded.any():
        recorded = None
    return Load(tuple(in_flight), recorded, source)


def from_profile(profile: Profile, request_seconds: float) -> Load:
    """In-flight requests per second of a profile, by Little's law.

    A users stage keeps each user's one request in flight (users send the next request as soon
    as the last is answered); a rate stage holds rate x time per request in flight.
    """
    in_flight: list[float] = []
    for stage in profile.stages:
        rate = stage.rate
        level = rate * request_seconds if rate is not None else float(stage.users or 0)
        in_flight.extend([level] * stage.duration_s)
    if not in_flight:
        raise LoadError(f"profile {profile.name} is empty")
    return Load(tuple(in_flight), None, f"profile {profile.name}")
