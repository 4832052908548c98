"""The request mix: weights for the hit counter (``GET /``), resource reads and resource writes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate

from loadtest.errors import UsageError

REQUEST_KINDS = ("count", "get", "put")
DEFAULT_MIX = "count=1,get=8,put=1"


@dataclass(frozen=True)
class RequestMix:
    weights: dict[str, float]

    @classmethod
    def parse(cls, text: str) -> RequestMix:
        """``count=1,get=8,put=1``: kinds not named get weight 0; at least one must be above 0."""
        weights = dict.fromkeys(REQUEST_KINDS, 0.0)
        for part in text.split(","):
            kind, separator, value = part.strip().partition("=")
            kind = kind.strip()
            if not separator or kind not in weights:
                raise UsageError(
                    f"bad --mix part {part.strip()!r}: write KIND=WEIGHT with KIND one of "
                    f"{', '.join(REQUEST_KINDS)}, e.g. {DEFAULT_MIX}"
                )
            try:
                weight = float(value)
            except ValueError:
                weight = -1.0
            if weight < 0:
                raise UsageError(f"bad --mix weight {value.strip()!r} for {kind}: use a number >=0")
            weights[kind] = weight
        if not any(weights.values()):
            raise UsageError("--mix needs at least one weight above 0")
        return cls(weights)

    @cached_property
    def _kinds(self) -> tuple[list[str], list[float]]:
        """The kinds in use and their cumulative weights, worked out once: ``pick`` runs per
        request."""
        kinds = [kind for kind in REQUEST_KINDS if self.weights[kind] > 0]
        return kinds, list(accumulate(self.weights[kind] for kind in kinds))

    def pick(self, rng: random.Random) -> str:
        kinds, cumulative = self._kinds
        if len(kinds) == 1:
            return kinds[0]
        return rng.choices(kinds, cum_weights=cumulative)[0]

    def __str__(self) -> str:
        return ",".join(f"{kind}={self.weights[kind]:g}" for kind in REQUEST_KINDS)
