"""HDR histograms of a run's latencies, whole and per request kind, saved beside the summary.

Each histogram is kept in HdrHistogram's own compressed, base64 form (the one Java's, Go's and
wrk2's HdrHistogram read), so two runs compare exactly, bucket by bucket, not by a few
percentiles. Values are microseconds from 1 us to one hour, to 3 significant digits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtest.analysis import Request

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def _micros(seconds: float) -> int:
    return min(max(LOWEST_US, round(seconds * 1_000_000)), HIGHEST_US)


def build(requests: Iterable[Request]) -> dict[str, HdrHistogram]:
    """``latency`` (from the due time) and ``service`` (from the send) of every answered request,
    and ``latency.<kind>`` per request kind."""
    histograms: dict[str, HdrHistogram] = {"latency": new_histogram(), "service": new_histogram()}
    for request in requests:
        if not request.status:
            continue
        latency = _micros(request.end - request.due)
        histograms["latency"].record_value(latency)
        histograms["service"].record_value(_micros(request.end - request.sent))
        per_kind = histograms.get(f"latency.{request.kind}")
        if per_kind is None:
            per_kind = histograms[f"latency.{request.kind}"] = new_histogram()
        per_kind.record_value(latency)
    return histograms


def describe(histogram: HdrHistogram) -> dict[str, Any]:
    count = histogram.get_total_count()
    values = histogram.get_percentile_to_value_dict(list(PERCENTILES)) if count else {}
    return {
        "count": count,
        **{f"p{p:g}_ms": values[p] / 1000 if count else None for p in PERCENTILES},
        "max_ms": histogram.get_max_value() / 1000 if count else None,
        "encoded": histogram.encode().decode("ascii"),
    }


def write(histograms: dict[str, HdrHistogram], path: Path) -> None:
    document = {
        "unit": "microseconds",
        "lowest": LOWEST_US,
        "highest": HIGHEST_US,
        "significant_digits": SIGNIFICANT_DIGITS,
        "histograms": {name: describe(h) for name, h in sorted(histograms.items())},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def load(path: Path) -> dict[str, HdrHistogram]:
    """The histograms of a saved run, decoded."""
    document = json.loads(path.read_text())
    return {
        name: HdrHistogram.decode(entry["encoded"])
        for name, entry in document["histograms"].items()
    }
