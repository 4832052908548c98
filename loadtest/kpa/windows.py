"""Time windows of the autoscaler, on whole seconds.

``AveragingWindow`` and ``WeightedAveragingWindow`` follow ``pkg/autoscaler/aggregation/
bucketing.go`` (TimedFloat64Buckets for the default "linear" aggregation, WeightedFloat64Buckets
for "weighted-exponential"); ``MaxWindow`` follows ``pkg/autoscaler/aggregation/max`` (window.go
and timewindow.go), which holds scale-down decisions for ``scale-down-delay``.
Knative's bucket size is 1 s (``BucketSize`` in ``pkg/autoscaler/config/config.go``), so time
here is whole seconds: a fractional time is truncated to its second, as Go's Truncate does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# WindowAverage rounds to this many digits (roundToNDigits in bucketing.go).
AVERAGE_DIGITS = 6


class AveragingWindow:
    """Per-second sums over a window; the average covers the seconds since the first write."""

    def __init__(self, window_s: int) -> None:
        if window_s < 1:
            raise ValueError("a window is at least 1 s")
        self.window_s = window_s
        self._buckets = [0.0] * window_s
        self._first_write: int | None = None
        self._last_write: int | None = None
        self._total = 0.0

    def is_empty(self, now: float) -> bool:
        """True when nothing was recorded during the last window (IsEmpty)."""
        return self._last_write is None or math.floor(now) - self._last_write > self.window_s

    def record(self, at: float, value: float) -> None:
        """Add ``value`` to the bucket of second ``at``; gaps since the last write become 0."""
        second = math.floor(at)
        size = self.window_s
        if self._last_write != second:
            last = self._last_write
            if last is not None and second + size <= last:
                return  # older than a whole window before the last write: ignored
            if self._first_write is None or self._first_write > second:
                self._first_write = second
            if last is None or second > last:
                if last is None or second - last >= size:
                    # A whole window without writes: start over from this second.
                    self._first_write = second
                    self._buckets = [0.0] * size
                    self._total = 0.0
                else:
                    for index in range(last + 1, second + 1):
                        self._total -= self._buckets[index % size]
                        self._buckets[index % size] = 0.0
                self._last_write = second
        self._buckets[second % size] += value
        self._total += value

    def average(self, now: float) -> float:
        """The mean per-second value over the window as of ``now`` (WindowAverage)."""
        if self._last_write is None or self._first_write is None:
            return 0.0
        second = math.floor(now)
        last, first = self._last_write, self._first_write
        gap = second - last
        if gap <= 0:
            valid = min(last - first + 1, self.window_s)
            return round(self._total / valid, AVERAGE_DIGITS)
        if gap < self.window_s:
            # Seconds after the last write count as 0 and drop the oldest buckets out.
            total = self._total
            for index in range(last + 1, second + 1):
                total -= self._buckets[index % self.window_s]
            valid = min(last - first + 1, self.window_s - gap)
            return round(total / valid, AVERAGE_DIGITS)
        return 0.0


@dataclass
class _Entry:
    index: int
    value: int


class MaxWindow:
    """The largest value recorded in the last ``duration_s`` seconds, bucketed by ``step_s``."""

    def __init__(self, duration_s: float, step_s: int) -> None:
        self._size = math.ceil(duration_s / step_s)
        self._step_s = step_s
        self._maxima: list[_Entry] = []  # descending values, ascending indexes

    def record(self, at: float, value: int) -> None:
        index = math.floor(at) // self._step_s
        # A newer, larger value hides every smaller one before it.
        while self._maxima and value >= self._maxima[-1].value:
            self._maxima.pop()
        while self._maxima and index - self._maxima[0].index >= self._size:
            self._maxima.pop(0)
        if self._maxima and self._maxima[-1].index == index:
            value = max(value, self._maxima.pop().value)
        self._maxima.append(_Entry(index, value))

    def current(self) -> int:
        return self._maxima[0].value if self._maxima else 0


# bucketing.go: the weights of the weighted-exponential average sum to at least this, and the
# decay per bucket is at least minExponent.
WEIGHT_PRECISION = 0.9999
MIN_EXPONENT = 0.2


def smoothing_coefficient(buckets: float) -> float:
    """computeSmoothingCoeff: the decay per bucket for a window of ``buckets`` buckets."""
    return max(1 - math.pow(1 - WEIGHT_PRECISION, 1 / buckets), MIN_EXPONENT)


class WeightedAveragingWindow(AveragingWindow):
    """WeightedFloat64Buckets: newer seconds weigh exponentially more.

    Used when the revision has ``autoscaling.knative.dev/metric-aggregation-algorithm:
    weighted-exponential``; recording is the same as for the linear window.
    """

    def __init__(self, window_s: int) -> None:
        super().__init__(window_s)
        self.smoothing = smoothing_coefficient(window_s)

    def average(self, now: float) -> float:
        if self.is_empty(now) or self._last_write is None:
            return 0.0
        second, last, size = math.floor(now), self._last_write, self.window_s
        decay = 1 - self.smoothing
        multiplier = self.smoothing
        count = size
        if second > last:
            # The seconds since the last write weigh in as zeros.
            gap = second - last
            multiplier *= math.pow(decay, gap)
            count -= gap
        total = 0.0
        for back in range(count):
            total += self._buckets[(last - back) % size] * multiplier
            multiplier *= decay
        return total
