from __future__ import annotations

import json
import logging

import pytest

from function.logs import ThrottledWarning

LOG = logging.getLogger(__name__)


def test_repeats_are_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    warn = ThrottledWarning(LOG, interval_seconds=0.0)
    warn.next_at = float("inf")  # inside an interval: everything is held back
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            warn("Redis did not answer: %s", "refused")
        assert caplog.records == []
        warn.next_at = 0.0  # the interval is over
        warn("Redis did not answer: %s", "refused")
    (record,) = caplog.records
    assert record.getMessage() == (
        "Redis did not answer: refused (and 5 more like it since the last report)"
    )


def test_first_failure_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    warn = ThrottledWarning(LOG, interval_seconds=60.0)
    with caplog.at_level(logging.WARNING):
        warn("Redis did not answer: %s", "timeout")
        warn("Redis did not answer: %s", "timeout")
    assert [r.getMessage() for r in caplog.records] == ["Redis did not answer: timeout"]


def test_reports_again_once_the_interval_is_over(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr("function.logs.time.monotonic", lambda: clock[0])
    warn = ThrottledWarning(LOG, interval_seconds=10.0)
    with caplog.at_level(logging.WARNING):
        warn("down: %s", 1)  # at 100: reported, quiet until 110
        clock[0] = 109.999
        warn("down: %s", 2)  # held back
        clock[0] = 110.0
        warn("down: %s", 3)  # the interval is over: reported with the count
        clock[0] = 115.0
        warn("down: %s", 4)  # held back again, and the count starts from zero
        clock[0] = 120.0
        warn("down: %s", 5)
    assert [r.getMessage() for r in caplog.records] == [
        "down: 1",
        "down: 3 (and 1 more like it since the last report)",
        "down: 5 (and 1 more like it since the last report)",
    ]


def test_the_outage_warning_names_the_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from function import service

    monkeypatch.setattr(service, "_warn_unavailable", ThrottledWarning(LOG, interval_seconds=0.0))
    with caplog.at_level(logging.WARNING):
        response = service.redis_unavailable(ConnectionError("connection refused"))
    assert [r.getMessage() for r in caplog.records] == ["Redis did not answer: connection refused"]
    assert json.loads(response.body) == {
        "error": "redis_unavailable",
        "message": "Redis is not answering; try again shortly",
    }


def test_first_failure_is_logged_whatever_the_clock_reads(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # time.monotonic() has no defined origin: it may read 0.5 right after boot.
    monkeypatch.setattr("function.logs.time.monotonic", lambda: 0.5)
    with caplog.at_level(logging.WARNING):
        ThrottledWarning(LOG, interval_seconds=10.0)("down")
    assert [r.getMessage() for r in caplog.records] == ["down"]
