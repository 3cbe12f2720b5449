"""Log lines a client can cause: throttled per kind, and never longer or deeper than a line."""

from __future__ import annotations

import logging

import pytest

from hub.logs import MAX_BRIEF, Throttle, brief, throttled
from tests.helpers.clocks import ManualClock


def test_a_burst_per_interval_then_the_count_of_what_was_held_back() -> None:
    clock = ManualClock()
    throttle = Throttle(interval=10, burst=3, clock=clock)
    assert [throttle.allow("bad") for _ in range(5)] == [0, 0, 0, None, None]
    assert throttle.allow("other") == 0, "kinds are counted apart"
    clock.now = 9.9
    assert throttle.allow("bad") is None
    clock.now = 10.0
    assert throttle.allow("bad") == 3, "the next line says three were held back"
    assert throttle.allow("bad") == 0


def test_throttled_lines_say_how_many_were_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    throttle = Throttle(interval=1, burst=1, clock=clock)
    log = logging.getLogger("test.throttled")
    caplog.set_level(logging.INFO)
    for _ in range(4):
        throttled(log, logging.WARNING, "k", "bad thing from %s", "10.0.0.1", throttle=throttle)
    clock.now = 1.5
    throttled(log, logging.WARNING, "k", "bad thing from %s", "10.0.0.1", throttle=throttle)
    assert [r.getMessage() for r in caplog.records] == [
        "bad thing from 10.0.0.1",
        "bad thing from 10.0.0.1 (3 similar suppressed)",
    ]


def test_a_disabled_level_costs_no_allowance(caplog: pytest.LogCaptureFixture) -> None:
    throttle = Throttle(interval=60, burst=1, clock=ManualClock())
    log = logging.getLogger("test.quiet")
    caplog.set_level(logging.WARNING)
    throttled(log, logging.DEBUG, "k", "hidden", throttle=throttle)
    throttled(log, logging.WARNING, "k", "shown", throttle=throttle)
    assert [r.getMessage() for r in caplog.records] == ["shown"]


def test_brief_is_short_masked_and_never_raises() -> None:
    deep: object = []
    for _ in range(5000):
        deep = [deep]
    assert brief(deep).startswith("[[")
    huge = {"command": "subscribe", "accounts": ["r" * 40] * 25_000, "secret": "s3cr3t"}
    text = brief(huge)
    assert len(text) <= MAX_BRIEF
    assert "s3cr3t" not in text

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "Hostile" in brief(Hostile())
