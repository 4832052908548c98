from __future__ import annotations

import logging

import pytest

from function.service import _ThrottledWarning


def test_repeats_are_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    warn = _ThrottledWarning(interval_seconds=0.0)
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
    warn = _ThrottledWarning(interval_seconds=60.0)
    with caplog.at_level(logging.WARNING):
        warn("Redis did not answer: %s", "timeout")
        warn("Redis did not answer: %s", "timeout")
    assert [r.getMessage() for r in caplog.records] == ["Redis did not answer: timeout"]
