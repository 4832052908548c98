"""The queue-proxy's stat, as the autoscaler reads it: decoded from bytes encoded here from
Knative's stat.proto, read through the real Kubernetes client's pod proxy from a stand-in API
server, and booked per second into the concurrency the model is given."""

from __future__ import annotations

import math
import struct
import time
from pathlib import Path

import pytest

from loadtest.kpa.load import read_timeline
from loadtest.kpa.predict import main as predict_main
from loadtest.kube_source import connect
from loadtest.pod_stats import PodSample, StatError, concurrency_per_second, decode
from loadtest.watcher import KnativeWatcher
from tests.loadtest.kube_stub import StubKubeApi, serve, stat_message
from tests.loadtest.test_loadtest_knative import SERVICE, scaling_cluster

RUNNING = "resources-00001-deployment-7d9c8b5f4-x7k2p"
ALSO_RUNNING = "resources-00001-deployment-7d9c8b5f4-r8t1w"


def test_a_stat_decodes_field_by_field() -> None:
    stat = decode(stat_message("pod-a", 3.25, 12.5))
    assert (stat.pod, stat.concurrency, stat.uptime_s) == ("pod-a", 3.25, 12.5)
    assert stat.proxied_concurrency == 0.0  # absent in the message: proto3's zero
    proxied = bytes([3 << 3 | 1]) + struct.pack("<d", 1.5)
    assert decode(stat_message("p", 2.0, 1.0) + proxied).proxied_concurrency == 1.5


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",  # not a protocol-buffer message
        stat_message("p", -1.0, 1.0),  # a count below zero
        stat_message("p", math.nan, 1.0),
        stat_message("p", math.inf, 1.0),
    ],
)
def test_what_is_not_a_stat_is_refused(data: bytes) -> None:
    with pytest.raises(StatError, match="not a queue-proxy stat"):
        decode(data)


def test_reports_are_booked_to_the_second_they_average_and_summed_over_pods() -> None:
    samples = [
        PodSample(101.2, "a", 2.0),  # read at 1.2 s: averages second 0
        PodSample(101.5, "b", 1.0),
        PodSample(102.3, "a", 4.0),
        PodSample(102.9, "a", 6.0),  # two reports of one pod in a second: their mean
    ]
    assert concurrency_per_second(samples, 100.0, 4) == [3.0, 5.0, None, None]


def test_a_one_second_hole_holds_the_pods_last_value_and_a_longer_silence_does_not() -> None:
    samples = [PodSample(101.5, "a", 2.0), PodSample(103.5, "a", 4.0), PodSample(107.5, "a", 8.0)]
    assert concurrency_per_second(samples, 100.0, 7) == [2.0, 2.0, 4.0, None, None, None, 8.0]
    # The last second has nothing after it: it stays empty rather than repeat a value.
    assert concurrency_per_second([PodSample(101.5, "a", 2.0)], 100.0, 2) == [2.0, None]


def test_the_watcher_reads_each_running_pods_report_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One running pod reports, the other has no stat (404); pending and leaving pods are not read.
    api = StubKubeApi(phases=[(0, scaling_cluster())], pod_concurrency={RUNNING: 2.5})
    with serve(api):
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        source, namespace = connect(None)
        watcher = KnativeWatcher(source, namespace, SERVICE)
        watcher.check()
        watcher.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and api.stat_reads.get(RUNNING, 0) < 5:
            time.sleep(0.05)
        watcher.stop()
    reads = api.stat_reads[RUNNING]
    assert set(api.stat_reads) == {RUNNING}
    asked = {path for path, _ in api.requests if path.endswith("/metrics")}
    assert {path.split("/")[6].split("%3A")[0].split(":")[0] for path in asked} == {
        RUNNING,
        ALSO_RUNNING,
    }
    samples = [s for s in watcher.pod_samples if s.pod == RUNNING]
    assert {s.concurrency for s in samples} == {2.5}
    # A new report every second read: each is kept once.
    assert len(samples) in ((reads + 1) // 2, (reads + 1) // 2 - 1)
    assert watcher.pod_stat_failures >= 1
    assert (watcher.last_pod_stat_error or "").startswith(
        f"no queue-proxy stat from pod {ALSO_RUNNING} (404"
    )
    assert watcher.failures == 0  # the watches themselves were fine


TIMELINE = """second,in_flight_mean,in_pods_mean,pods_ready
0,40,,0
1,40,,0
2,40,28.5,1
3,40,27.0,3
4,0,0,3
"""


def test_the_model_is_given_the_pods_count_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "timeline.csv"
    path.write_text(TIMELINE)
    seen = read_timeline(path, "seen")
    assert seen.in_flight == (40.0, 40.0, 28.5, 27.0, 0.0)
    assert "in the pods (3 s)" in seen.source and "no pod reported (2 s)" in seen.source
    assert read_timeline(path).in_flight == (40.0, 40.0, 40.0, 40.0, 0.0)  # the default
    without = tmp_path / "client-only.csv"
    without.write_text("second,in_flight_mean\n0,3\n1,4\n")
    assert read_timeline(without, "seen").in_flight == (3.0, 4.0)
    assert "at the client" in read_timeline(without, "seen").source


def test_a_bad_in_pods_value_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "timeline.csv"
    path.write_text(TIMELINE.replace("27.0", "-1"))
    with pytest.raises(ValueError, match="line 5: in_pods_mean '-1' is not valid"):
        read_timeline(path, "seen")


def test_concurrency_is_a_timeline_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = predict_main(
        ["--profile", "spike", "--concurrency", "client", "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert "--concurrency goes with --timeline" in capsys.readouterr().err
