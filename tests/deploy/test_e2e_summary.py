"""`make e2e`'s summary, from hand-written parts of a run: the figures it reports are the ones
in those parts, and the model's error is counted second by second against what was recorded."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from scripts.e2e_summary import main

CONTRACT = """<testsuites><testsuite tests="10" failures="1" errors="1" skipped="3"/>
<testsuite tests="2" failures="0" errors="0" skipped="0"/></testsuites>"""
TIMELINE = """second,in_flight_mean,pa_desired,pods_ready
0,40,,
1,40,1,0
2,40,4,1
3,0,4,4
"""
# second, the concurrency the model was given, desired, ready
SEEN = [(1, 40, 1, 0), (2, 28, 4, 1), (3, 0, 4, 4)]
CLIENT = [(1, 40, 1, 0), (2, 40, 6, 1), (3, 0, 6, 6)]


def write_prediction(folder: Path, rows: list[tuple[int, int, int, int]]) -> None:
    folder.mkdir(parents=True)
    with (folder / "prediction.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["second", "in_flight_mean", "desired_pods", "ready_pods"])
        writer.writerow([0, 40, -1, 0])
        writer.writerows(rows)


def test_summary_of_a_run(tmp_path: Path) -> None:
    (tmp_path / "contract.xml").write_text(CONTRACT)
    cold = {"pod_scheduled": 0.3, "first_answer": 0.9}
    (tmp_path / "coldstart.json").write_text(json.dumps({"runs": [cold], "image_bytes": 7}))
    (tmp_path / "loadtest").mkdir()
    (tmp_path / "loadtest" / "timeline.csv").write_text(TIMELINE)
    knative = {"peak_desired_scale": 4, "peak_pods_ready": 4, "idle_to_zero": {"after_s": 61}}
    load = {"requests_answered": 900, "error_rate": 0.0, "knative": knative}
    (tmp_path / "loadtest" / "summary.json").write_text(json.dumps(load))
    write_prediction(tmp_path / "predict", CLIENT)
    write_prediction(tmp_path / "predict-seen", SEEN)

    assert main([str(tmp_path), "--route", "http://kv.test", "--zero-after-load", "30"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["contract"] == {"passed": 7, "failed": 2, "skipped": 3}
    assert summary["cold_start_seconds"] == cold and summary["image_bytes"] == 7
    assert summary["seconds_from_last_request_to_zero_pods"] == 61
    client, seen = summary["predictor"], summary["predictor_given_in_pods"]
    # Second 0 has no recorded state yet: it is left out, not counted as agreement.
    assert seen["seconds_compared"] == client["seconds_compared"] == 3
    assert seen["desired"] == {
        "mean_abs_error_pods": 0.0,
        "max_abs_error_pods": 0,
        "seconds_equal": 3,
        "peak_predicted": 4,
        "peak_recorded": 4,
    }
    assert client["desired"]["mean_abs_error_pods"] == round(4 / 3, 3)
    assert client["ready"]["max_abs_error_pods"] == 2 and client["ready"]["seconds_equal"] == 2
    with (tmp_path / "predict-seen" / "against-knative.csv").open() as file:
        second_two = list(csv.DictReader(file))[1]
    assert second_two["in_flight_at_client"] == "40.0" and second_two["model_given"] == "28.0"
