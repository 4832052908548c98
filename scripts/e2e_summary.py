"""``python -m scripts.e2e_summary E2E_OUT``: one summary of a `make e2e` run, from its parts.

It reads the contract suite's JUnit report, the cold start (coldstart.json), the load test's
summary and timeline (loadtest/) and the autoscaler model's prediction for the same load
(predict/prediction.csv: given the requests in flight at the client; predict-seen/: given the
requests in the pods, as their queue-proxies report them), writes E2E_OUT/summary.json, and
writes against-knative.csv beside each prediction: per second, the concurrency the model was
given and the desired and ready pods it predicted beside those the PodAutoscaler and the pods
showed.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any


def contract_counts(report: Path) -> dict[str, int]:
    suites = ElementTree.parse(report).getroot()
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    return {
        "passed": totals["tests"] - failed - totals["skipped"],
        "failed": failed,
        "skipped": totals["skipped"],
    }


def _number(text: str | None) -> int | None:
    return int(float(text)) if text not in (None, "") else None


def predictor_error(timeline: Path, prediction: Path, out: Path) -> dict[str, Any]:
    """Per second, predicted against recorded; the mean and largest absolute differences."""
    with timeline.open() as f:
        recorded = {int(r["second"]): r for r in csv.DictReader(f)}
    with prediction.open() as f:
        predicted = {int(r["second"]): r for r in csv.DictReader(f)}
    rows: list[dict[str, float]] = []
    for second in sorted(set(recorded) & set(predicted)):
        real_desired = _number(recorded[second].get("pa_desired"))
        real_ready = _number(recorded[second].get("pods_ready"))
        if real_desired is None or real_ready is None:
            continue  # the watch had not reported yet
        rows.append(
            {
                "second": second,
                "in_flight_at_client": round(float(recorded[second]["in_flight_mean"] or 0), 1),
                "model_given": round(float(predicted[second]["in_flight_mean"] or 0), 1),
                "predicted_desired": max(0, int(predicted[second]["desired_pods"])),
                "recorded_desired": real_desired,
                "predicted_ready": int(predicted[second]["ready_pods"]),
                "recorded_ready": real_ready,
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["second"])
        writer.writeheader()
        writer.writerows(rows)
    result: dict[str, Any] = {"seconds_compared": len(rows), "per_second": str(out)}
    for kind in ("desired", "ready"):
        gaps = [int(abs(r[f"predicted_{kind}"] - r[f"recorded_{kind}"])) for r in rows]
        result[kind] = {
            "mean_abs_error_pods": round(sum(gaps) / len(gaps), 3) if gaps else None,
            "max_abs_error_pods": max(gaps, default=None),
            "seconds_equal": sum(1 for gap in gaps if gap == 0),
            "peak_predicted": max((r[f"predicted_{kind}"] for r in rows), default=None),
            "peak_recorded": max((r[f"recorded_{kind}"] for r in rows), default=None),
        }
    return result


def summarise(folder: Path, route: str, zero_after_load: float) -> dict[str, Any]:
    cold = json.loads((folder / "coldstart.json").read_text())
    load = json.loads((folder / "loadtest" / "summary.json").read_text())
    knative = load["knative"]
    return {
        "route": route,
        "contract": contract_counts(folder / "contract.xml"),
        "cold_start_seconds": cold["runs"][0],
        "image_bytes": cold.get("image_bytes"),
        "peak_desired_scale": knative["peak_desired_scale"],
        "peak_ready_pods": knative["peak_pods_ready"],
        "load": {
            "requests": load["requests_answered"],
            "error_rate": load["error_rate"],
        },
        "seconds_from_last_request_to_zero_pods": (knative.get("idle_to_zero") or {}).get(
            "after_s"
        ),
        "zero_pods_seen_after_load_seconds": zero_after_load,
        "predictor": predictor_error(
            folder / "loadtest" / "timeline.csv",
            folder / "predict" / "prediction.csv",
            folder / "predict" / "against-knative.csv",
        ),
        "predictor_given_in_pods": predictor_error(
            folder / "loadtest" / "timeline.csv",
            folder / "predict-seen" / "prediction.csv",
            folder / "predict-seen" / "against-knative.csv",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.e2e_summary", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--route", required=True)
    parser.add_argument("--zero-after-load", type=float, required=True)
    args = parser.parse_args(argv)
    summary = summarise(args.folder, args.route, args.zero_after_load)
    (args.folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
