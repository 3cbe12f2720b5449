"""Client-caused log lines, rate-limited per kind (an injected clock)."""

from __future__ import annotations

import logging

import pytest

from hub.logs import Throttle, throttled


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_per_interval_then_the_count_of_those_dropped() -> None:
    clock = FakeClock()
    throttle = Throttle(interval=10.0, burst=3, clock=clock)
    assert [throttle.allow("timeout") for _ in range(3)] == [0, 0, 0]
    assert [throttle.allow("timeout") for _ in range(7)] == [None] * 7
    clock.now += 9.9
    assert throttle.allow("timeout") is None
    clock.now += 0.1
    assert throttle.allow("timeout") == 8
    assert throttle.allow("timeout") == 0


def test_kinds_are_throttled_apart() -> None:
    clock = FakeClock()
    throttle = Throttle(interval=10.0, burst=1, clock=clock)
    assert throttle.allow("timeout") == 0
    assert throttle.allow("timeout") is None
    assert throttle.allow(("token", 1)) == 0
    clock.now += 10
    assert throttle.allow(("token", 1)) == 0
    assert throttle.allow("timeout") == 1


def test_throttled_appends_how_many_were_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = Throttle(interval=10.0, burst=2, clock=clock)
    logger = logging.getLogger("tests.logs")
    caplog.set_level(logging.INFO, logger="tests.logs")
    for i in range(300):
        throttled(logger, logging.WARNING, "token", "a wrong token from %s", i, throttle=throttle)
    clock.now += 10
    throttled(logger, logging.WARNING, "token", "a wrong token from %s", "x", throttle=throttle)
    assert [r.getMessage() for r in caplog.records] == [
        "a wrong token from 0",
        "a wrong token from 1",
        "a wrong token from x (298 similar suppressed)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_a_level_not_emitted_spends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    throttle = Throttle(interval=10.0, burst=1, clock=FakeClock())
    logger = logging.getLogger("tests.logs.quiet")
    caplog.set_level(logging.WARNING, logger="tests.logs.quiet")
    for _ in range(5):
        throttled(logger, logging.INFO, "kind", "hidden", throttle=throttle)
    throttled(logger, logging.WARNING, "kind", "shown", throttle=throttle)
    assert [r.getMessage() for r in caplog.records] == ["shown"]


def test_exc_info_is_passed_on(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.logs.exc")
    caplog.set_level(logging.ERROR, logger="tests.logs.exc")
    throttle = Throttle(clock=FakeClock())
    try:
        raise ValueError("boom")
    except ValueError as exc:
        throttled(logger, logging.ERROR, "k", "failed", throttle=throttle, exc_info=exc)
    assert caplog.records[0].exc_info is not None
    assert "ValueError: boom" in caplog.text
