"""The plain data of a run: its settings and the finished record."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadtest.engine import EngineResult
from loadtest.knative import KnativeState
from loadtest.mix import RequestMix
from loadtest.profiles import Profile
from loadtest.timeline import KindTotals, TimelineRow
from loadtest.watcher import KnativeWatcher


@dataclass(frozen=True)
class RunSettings:
    url: str
    profile: Profile
    mix: RequestMix
    run_prefix: str
    timeout_s: float
    resource_count: int
    host_header: str | None = None
    # Bearer token for a function with WRITE_TOKEN/READ_TOKEN set; kept out of repr and summaries.
    token: str | None = field(default=None, repr=False)
    max_in_flight: int = 1000
    processes: int = 1


@dataclass
class RunRecord:
    settings: RunSettings
    started_at: float
    rows: list[TimelineRow]
    by_kind: dict[str, KindTotals]
    latencies_ms: list[float]
    service_ms: list[float]
    results: list[EngineResult]
    interrupted: bool
    knative: KnativeWatcher | None
    initial_state: KnativeState | None

    @property
    def unfinished(self) -> int:
        return sum(result.unfinished for result in self.results)

    @property
    def resources_created(self) -> int:
        return len({path for result in self.results for path in result.created})

    @property
    def cpu_seconds(self) -> float:
        return sum(result.cpu_seconds for result in self.results)
