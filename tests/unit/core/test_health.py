"""Ledger freshness on an injected clock: the startup grace, stale and back, draining."""

from __future__ import annotations

from hub.core.health import Health
from tests.helpers.clocks import ManualClock


def test_a_node_is_fresh_for_max_ledger_age_after_it_starts_then_stale() -> None:
    clock = ManualClock(1000.0)
    health = Health(max_ledger_age=30, clock=clock)
    assert not health.stale()  # not serving yet: nothing to be stale about
    assert not health.healthy()
    health.start()
    clock.now += 29.9
    assert health.healthy()
    clock.now += 0.1
    assert health.stale()
    assert not health.healthy()
    assert health.report() == {"status": "stale", "ledger_age": None, "max_ledger_age": 30}


def test_each_ledger_makes_it_fresh_again_and_its_age_counts_from_receipt() -> None:
    clock = ManualClock(1000.0)
    health = Health(max_ledger_age=10, clock=clock)
    health.start()
    clock.now += 50
    assert health.stale()
    health.ledger_seen()
    assert health.healthy()
    clock.now += 4.25
    assert health.ledger_age() == 4.25
    assert health.report() == {"status": "ok", "ledger_age": 4.25, "max_ledger_age": 10}
    assert health.stale(now=clock.now + 6)  # the caller's reading of the clock
    assert not health.stale()


def test_draining_and_stopped_are_unhealthy_whatever_the_ledger() -> None:
    clock = ManualClock(1000.0)
    health = Health(max_ledger_age=10, clock=clock)
    health.start()
    health.ledger_seen()
    health.drain()
    assert not health.healthy()
    assert health.report()["status"] == "draining"
    health.stop()
    assert health.report()["status"] == "stopped"
