"""The garbage-collection policy: freeze on growth, collect on churn or age, never else."""

from __future__ import annotations

import gc

import trio
import trio.testing

from hub.app import gcpolicy
from hub.app.gcpolicy import CHURN_FLOOR, MAX_AGE, Action, GcPolicy, apply


def test_growth_freezes_and_never_collects() -> None:
    policy = GcPolicy(now=0.0)
    for second in range(1, 60):
        accepted = second * 500  # 30 000 connections opened, none closed
        assert policy.tick(float(second), accepted, accepted) is Action.FREEZE
    assert policy.tick(60.0, 29_500, 29_500) is Action.NOTHING  # nothing new


def test_nothing_new_nothing_done() -> None:
    policy = GcPolicy(now=0.0)
    assert policy.tick(1.0, 0, 0) is Action.NOTHING
    assert policy.tick(2.0, 0, 0) is Action.NOTHING


def test_a_quarter_closed_collects_once() -> None:
    policy = GcPolicy(now=0.0)
    assert policy.tick(1.0, 10_000, 10_000) is Action.FREEZE
    assert policy.tick(2.0, 10_000, 8_001) is Action.NOTHING  # 1 999 closed < 8 001 / 4
    assert policy.tick(3.0, 10_000, 7_999) is Action.COLLECT  # 2 001 >= 7 999 // 4
    assert policy.tick(4.0, 10_000, 7_999) is Action.NOTHING  # counted from the collection
    assert policy.tick(5.0, 10_000, 7_000) is Action.NOTHING  # 999 more


def test_small_hubs_collect_after_the_floor() -> None:
    policy = GcPolicy(now=0.0)
    assert policy.tick(1.0, 100, 100) is Action.FREEZE
    churned = 100 + CHURN_FLOOR - 1  # many short connections, few open at once
    assert policy.tick(2.0, churned, 100) is Action.FREEZE
    assert policy.tick(3.0, churned + 1, 100) is Action.COLLECT


def test_frozen_garbage_is_reclaimed_after_max_age_without_churn() -> None:
    policy = GcPolicy(now=0.0)
    assert policy.tick(1.0, 10, 10) is Action.FREEZE
    assert policy.tick(MAX_AGE - 1, 10, 10) is Action.NOTHING
    assert policy.tick(MAX_AGE, 10, 10) is Action.COLLECT
    assert policy.tick(3 * MAX_AGE, 10, 10) is Action.NOTHING  # nothing frozen since


def test_apply_freezes_and_a_collection_leaves_everything_frozen() -> None:
    try:
        apply(Action.FREEZE)
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        apply(Action.COLLECT)  # the cycle, unreachable, is collected, the rest frozen
        assert gc.get_count()[0] < 100
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_run_freezes_after_connections_open_and_collects_after_churn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counts = [(0, 0)]
    actions: list[Action] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gcpolicy.run, lambda: counts[-1], actions.append)
            await trio.sleep(1.5)
            counts.append((5000, 5000))
            await trio.sleep(1)
            assert gc.get_freeze_count() > 0  # applied, not only decided
            counts.append((5000, 1000))
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    finally:
        gc.unfreeze()
    assert actions == [Action.NOTHING, Action.FREEZE, Action.COLLECT]
