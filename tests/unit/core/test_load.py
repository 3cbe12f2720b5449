"""Load arithmetic on a fake clock: decay, warn, drop, never drop unwarned."""

from __future__ import annotations

import math

import pytest

from hub.core.load import LoadPolicy, LoadTracker, Verdict
from tests.helpers.clocks import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def tracker(clock: ManualClock, **policy: float) -> LoadTracker:
    return LoadTracker(LoadPolicy(**policy), clock)  # type: ignore[arg-type]


def test_rippled_figures_are_the_defaults() -> None:
    policy = LoadPolicy()
    assert (policy.warning, policy.drop, policy.decay_window) == (5000, 25000, 32)
    assert policy.cost("request") == 20
    assert policy.cost("malformed") == policy.cost("exception") == 100
    assert policy.cost("no such kind") == 20
    assert policy.cost("account", 10) == 10 * policy.costs["account"]


def test_balance_decays_exponentially_over_the_window(clock: ManualClock) -> None:
    t = tracker(clock)
    t.charge("ip", 32_000, warned=False)
    assert t.balance("ip") == pytest.approx(1000)
    clock.now = 32
    assert t.balance("ip") == pytest.approx(1000 / math.e)
    clock.now = 64
    assert t.balance("ip") == pytest.approx(1000 / math.e**2)


def test_a_callers_reading_of_the_clock_is_used_and_never_moves_a_balance_back(
    clock: ManualClock,
) -> None:
    t = tracker(clock)
    clock.now = 1000.0  # the tracker's own clock is not read when a reading is given
    t.charge("ip", 32_000, warned=False, now=10.0)
    t.charge("ip", 32_000, warned=False, now=5.0)  # read before the charge above
    assert t.balance("ip") == pytest.approx(2000 / math.e ** (990 / 32))
    same = tracker(clock)
    same.charge("ip", 64_000, warned=False, now=10.0)
    assert same.balance("ip") == pytest.approx(t.balance("ip"))


def test_steady_rate_settles_at_cost_per_second(clock: ManualClock) -> None:
    t = tracker(clock)
    for _ in range(100 * 300):
        clock.now += 0.01
        t.charge("ip", 20, warned=False)
    assert t.balance("ip") == pytest.approx(2000, rel=0.02)


def test_burst_from_zero_warns_after_about_8000_requests(clock: ManualClock) -> None:
    t = tracker(clock)
    verdicts = [t.charge("ip", 20, warned=False) for _ in range(8001)]
    first_warn = verdicts.index(Verdict.WARN)
    assert first_warn == 7999
    assert set(verdicts[:first_warn]) == {Verdict.OK}


def test_drop_needs_a_warning_first(clock: ManualClock) -> None:
    t = tracker(clock, warning=10, drop=20)
    assert t.charge("ip", 32 * 30, warned=False) is Verdict.WARN
    assert t.charge("ip", 32, warned=True) is Verdict.DROP


def test_warning_then_drop_sequence(clock: ManualClock) -> None:
    t = tracker(clock)
    warned = False
    seen = []
    for _ in range(50_000):
        verdict = t.charge("ip", 20, warned=warned)
        seen.append(verdict)
        if verdict is Verdict.WARN:
            warned = True
        if verdict is Verdict.DROP:
            break
    assert seen[-1] is Verdict.DROP
    assert Verdict.WARN in seen
    assert seen.index(Verdict.WARN) < seen.index(Verdict.DROP)
    assert len(seen) == 25_000 * 32 // 20


def test_keys_are_independent(clock: ManualClock) -> None:
    t = tracker(clock, warning=1, drop=2)
    t.charge("a", 32 * 5, warned=True)
    assert t.charge("b", 1, warned=False) is Verdict.OK
    assert t.balance("b") < 1


def test_idle_balances_are_forgotten(clock: ManualClock) -> None:
    t = tracker(clock)
    t.attach("a")
    t.charge("a", 32 * 100, warned=False)
    t.detach("a")
    assert len(t) == 1
    clock.now = 32 * 10
    t.sweep()
    assert len(t) == 0


def test_a_close_forgets_its_idle_balance_and_a_later_close_the_decayed_ones(
    clock: ManualClock,
) -> None:
    t = tracker(clock)
    for key in "abc":
        t.attach(key)
    t.charge("a", 32 * 100, warned=False)  # still owed when it closes
    t.detach("b")
    assert len(t) == 2  # b was idle: forgotten at once, without a sweep
    t.detach("a")
    assert len(t) == 2  # a's balance has not decayed yet
    clock.now += 32 * 10
    t.detach("c")  # later: a sweep forgets a, c goes at once
    assert len(t) == 0


def test_attached_balances_stay(clock: ManualClock) -> None:
    t = tracker(clock)
    t.attach("a")
    clock.now = 10_000
    t.sweep()
    assert len(t) == 1


def test_top_lists_highest_balances(clock: ManualClock) -> None:
    t = tracker(clock)
    for i, key in enumerate("abc"):
        t.charge(key, 32 * (i + 1), warned=False)
    assert [key for key, _ in t.top(2)] == ["c", "b"]
