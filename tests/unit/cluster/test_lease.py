"""The lease state machine (hub.cluster.lease): every transition, with plain numbers for time."""

from __future__ import annotations

import math

import pytest

from hub.cluster.lease import Lease, LeaseError, Role, holder, token


def lease(seconds: float = 3.0) -> Lease:
    return Lease("me", seconds)


def test_timing_follows_the_lease_length() -> None:
    assert lease(3).renew_every == pytest.approx(1.0)
    assert lease(3).margin == pytest.approx(0.75)
    assert lease(1).renew_every == pytest.approx(1 / 3)


def test_a_follower_that_acquires_leads_until_lease_minus_margin_after_sending() -> None:
    state = lease(3)
    change = state.acquired(term="7f", sent_at=100.0)
    assert change.role is Role.LEADER
    assert change.leader == "me"
    assert not change.ended
    assert state.token == "me:7f"
    assert state.stop_by == pytest.approx(100 + 3 - 0.75)
    assert state.next_at == pytest.approx(101.0)
    assert state.changes == 1


def test_renewals_push_stop_by_from_their_send_time() -> None:
    state = lease(3)
    state.acquired("t1", 100.0)
    state.renewed(sent_at=101.0)
    assert state.stop_by == pytest.approx(101 + 2.25)
    assert state.next_at == pytest.approx(102.0)
    # A late answer to an older renewal never pulls the deadline back.
    state.renewed(sent_at=100.5)
    assert state.stop_by == pytest.approx(103.25)


def test_no_answer_keeps_the_leader_until_stop_by_then_it_expires() -> None:
    state = lease(3)
    state.acquired("t1", 100.0)
    state.failed(now=101.2)
    assert state.role is Role.LEADER
    assert state.next_at == pytest.approx(101.7)  # a leader retries at half the period
    assert state.expire(now=102.0) is None
    change = state.expire(now=102.25)
    assert change is not None
    assert change.role is Role.FOLLOWER
    assert change.ended  # not routine: this node could not renew in time
    assert state.role is Role.FOLLOWER
    assert state.stop_by == -math.inf
    assert state.next_at == pytest.approx(102.25)  # ask again at once
    assert state.changes == 2


def test_a_refused_renewal_ends_the_term_at_once_and_names_the_holder() -> None:
    state = lease(3)
    state.acquired("t1", 100.0)
    change = state.held_by("other", now=101.0)
    assert change is not None
    assert (change.role, change.leader, change.ended) == (Role.FOLLOWER, "other", True)
    assert state.role is Role.FOLLOWER
    assert state.expire(now=1000.0) is None  # nothing left to expire


def test_a_follower_hears_of_each_new_leader_once() -> None:
    state = lease(3)
    first = state.held_by("a", now=10.0)
    assert first is not None
    assert (first.leader, first.news, first.ended) == ("a", True, False)
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
    state.acquired("t1", 100.0)
    state.renewed(101.0)  # answered just as the deadline fired
    change = state.stopped(now=102.5)
    assert change is not None
    assert change.ended
    assert state.role is Role.FOLLOWER
    assert state.next_at == pytest.approx(102.5)
    assert state.stopped(now=103.0) is None


def test_resign_gives_the_lease_back() -> None:
    state = lease(3)
    assert state.resign(now=1.0) is None
    state.acquired("t4", 1.0)
    change = state.resign(now=2.0)
    assert change is not None
    assert change.role is Role.FOLLOWER
    assert not change.ended
    assert not change.news
    assert state.role is Role.FOLLOWER


def test_impossible_answers_are_errors_naming_the_event_and_role() -> None:
    state = lease(3)
    with pytest.raises(LeaseError, match="'renewed' while follower"):
        state.renewed(1.0)
    state.acquired("t1", 1.0)
    with pytest.raises(LeaseError, match="'acquired' while leader"):
        state.acquired("t2", 2.0)


def test_a_new_term_has_a_new_token() -> None:
    state = lease(3)
    state.acquired("t1", 0.0)
    first = state.token
    state.expire(now=10.0)
    state.acquired("t2", 10.0)
    assert state.token != first
    assert holder(state.token) == holder(first) == "me"


def test_a_token_is_a_node_id_and_a_term_id_and_names_its_holder_again() -> None:
    assert token("5db0", "9a1f") == "5db0:9a1f"
    assert holder("5db0:9a1f") == "5db0"
    assert holder("5db0:3") == "5db0"  # any term id without a colon will do
    for value in ("", "5db0", "5db0:", ":9a1f", "a:b:c"):
        assert holder(value) is None, value
    for node, term in (("5db0", ""), ("", "9a1f"), ("a:b", "9a1f"), ("5db0", "x:y")):
        with pytest.raises(LeaseError, match="not a node id and term id"):
            token(node, term)
    state = lease(3)
    with pytest.raises(LeaseError):
        state.acquired("x:y", 1.0)  # refused before any state changes
    assert state.role is Role.FOLLOWER
