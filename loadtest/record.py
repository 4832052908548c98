"""The plain data of a run: its settings, the Knative watch and the finished record."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from loadtest.knative import KnativeReader, KnativeState
from loadtest.mix import RequestMix
from loadtest.profiles import Profile
from loadtest.timeline import KindTotals, TimelineRow


@dataclass(frozen=True)
class RunSettings:
    url: str
    profile: Profile
    mix: RequestMix
    run_prefix: str
    timeout_s: float
    resource_count: int
    host_header: str | None = None


@dataclass
class KnativeWatch:
    """The Knative reader of a run and how its polls went; a failed poll is one lost sample."""

    reader: KnativeReader
    polls: int = 0
    failures: int = 0
    last_error: str | None = None
    last_state: KnativeState | None = None
    revisions: list[str] = field(default_factory=list)

    def note(self, state: KnativeState) -> None:
        self.polls += 1
        self.last_state = state
        if state.revision and state.revision not in self.revisions:
            self.revisions.append(state.revision)

    def note_failure(self, error: Exception) -> None:
        self.failures += 1
        self.last_error = str(error) or type(error).__name__


@dataclass
class RunRecord:
    settings: RunSettings
    started_at: float
    rows: list[TimelineRow]
    by_kind: dict[str, KindTotals]
    latencies_ms: list[float]
    resources_created: int
    interrupted: bool
    knative: KnativeWatch | None
    initial_state: KnativeState | None
    internal_errors: Counter[str]
