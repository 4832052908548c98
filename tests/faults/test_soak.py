"""`make soak` in short: 60 s of steady mixed traffic on both entry points, no errors, and memory
and open descriptors grow by less than 10 % (the full run, `make soak`, lasts 10 minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.serve import ENTRY_POINTS, ROOT

from .conftest import Record

SOAK_SECONDS = 60


def test_soak_for_a_minute(tmp_path: Path, record_figures: Record) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, "-m", "scripts.soak", "--duration", str(SOAK_SECONDS)]
    run = subprocess.run(
        [*command, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SOAK_SECONDS + 120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(out.read_text())
    assert [s["entry_point"] for s in summary["servers"]] == list(ENTRY_POINTS)
    for server in summary["servers"]:
        assert server["passed"] and server["errors"] == 0
        assert len(server["samples"]) >= SOAK_SECONDS // 10  # one every 10 s
        assert server["requests"] > 1000
        assert 1 <= server["most_redis_connections"] <= 8  # --clients' default: one per client
        record_figures(
            f"{server['entry_point']}: {server['requests']} requests in {SOAK_SECONDS} s, "
            f"0 errors ({server['resent']} resent on a closed keep-alive connection), "
            f"memory {server['rss_growth']:+.1%}, descriptors {server['fd_growth']:+.1%}"
        )
