"""The lease state machine (hub.lease): every transition, with plain numbers for time."""

from __future__ import annotations

import math

import pytest

from hub.lease import Lease, LeaseError, Role


def lease(seconds: float = 3.0) -> Lease:
    return Lease("me", seconds)


def test_timing_follows_the_lease_length() -> None:
    assert lease(3).renew_every == pytest.approx(1.0)
    assert lease(3).margin == pytest.approx(0.75)
    assert lease(1).renew_every == pytest.approx(1 / 3)


def test_a_follower_that_acquires_leads_until_lease_minus_margin_after_sending() -> None:
    state = lease(3)
    change = state.acquired(fence=7, sent_at=100.0)
    assert change.role is Role.LEADER
    assert change.leader == "me"
    assert state.token == "me:7"
    assert state.stop_by == pytest.approx(100 + 3 - 0.75)
    assert state.next_at == pytest.approx(101.0)
    assert state.changes == 1


def test_renewals_push_stop_by_from_their_send_time() -> None:
    state = lease(3)
    state.acquired(1, 100.0)
    state.renewed(sent_at=101.0)
    assert state.stop_by == pytest.approx(101 + 2.25)
    assert state.next_at == pytest.approx(102.0)
    # A late answer to an older renewal never pulls the deadline back.
    state.renewed(sent_at=100.5)
    assert state.stop_by == pytest.approx(103.25)


def test_no_answer_keeps_the_leader_until_stop_by_then_it_expires() -> None:
    state = lease(3)
    state.acquired(1, 100.0)
    state.failed(now=101.2)
    assert state.role is Role.LEADER
    assert state.next_at == pytest.approx(101.7)  # a leader retries at half the period
    assert state.expire(now=102.0) is None
    change = state.expire(now=102.25)
    assert change is not None
    assert change.role is Role.FOLLOWER
    assert state.role is Role.FOLLOWER
    assert state.stop_by == -math.inf
    assert state.next_at == pytest.approx(102.25)  # ask again at once
    assert state.changes == 2


def test_a_refused_renewal_ends_the_term_at_once_and_names_the_holder() -> None:
    state = lease(3)
    state.acquired(1, 100.0)
    change = state.held_by("other", now=101.0)
    assert change is not None
    assert (change.role, change.leader) == (Role.FOLLOWER, "other")
    assert state.role is Role.FOLLOWER
    assert state.expire(now=1000.0) is None  # nothing left to expire


def test_a_follower_hears_of_each_new_leader_once() -> None:
    state = lease(3)
    first = state.held_by("a", now=10.0)
    assert first is not None
    assert first.leader == "a"
    assert state.held_by("a", now=11.0) is None
    assert state.next_at == pytest.approx(12.0)
    second = state.held_by("b", now=12.0)
    assert second is not None
    assert second.leader == "b"
    assert state.changes == 0  # this node's role never changed
    state.failed(now=13.0)
    assert state.next_at == pytest.approx(14.0)


def test_stopped_ends_a_term_whose_scope_ended_even_after_a_late_renewal() -> None:
    state = lease(3)
    state.acquired(1, 100.0)
    state.renewed(101.0)  # answered just as the deadline fired
    change = state.stopped(now=102.5)
    assert change is not None
    assert state.role is Role.FOLLOWER
    assert state.next_at == pytest.approx(102.5)
    assert state.stopped(now=103.0) is None


def test_resign_gives_the_lease_back() -> None:
    state = lease(3)
    assert state.resign(now=1.0) is None
    state.acquired(4, 1.0)
    change = state.resign(now=2.0)
    assert change is not None
    assert change.role is Role.FOLLOWER
    assert state.role is Role.FOLLOWER


def test_impossible_answers_are_errors_naming_the_event_and_role() -> None:
    state = lease(3)
    with pytest.raises(LeaseError, match="'renewed' while follower"):
        state.renewed(1.0)
    state.acquired(1, 1.0)
    with pytest.raises(LeaseError, match="'acquired' while leader"):
        state.acquired(2, 2.0)


def test_a_new_term_has_a_new_token() -> None:
    state = lease(3)
    state.acquired(1, 0.0)
    first = state.token
    state.expire(now=10.0)
    state.acquired(2, 10.0)
    assert state.token != first
