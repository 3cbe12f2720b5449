"""The close lifecycle (hub.wire.lifecycle): every (state, event) pair, illegal ones included."""

from __future__ import annotations

import re

import pytest

from hub.wire import lifecycle
from hub.wire.lifecycle import Event, Lifecycle, LifecycleError, State

CLOSE, SENT, LOST, END = Event.CLOSE, Event.SENT, Event.LOST, Event.END
S = State

PATHS: dict[State, list[Event]] = {
    S.OPEN: [],
    S.CLOSING: [CLOSE],
    S.CLOSE_SENT: [CLOSE, SENT],
    S.LOST: [LOST],
    S.ENDED: [END],
}
"""How each state is reached from a new connection, by events only."""

EXPECTED: dict[tuple[State, Event], State | None] = {
    (S.OPEN, CLOSE): S.CLOSING,
    (S.OPEN, SENT): None,
    (S.OPEN, LOST): S.LOST,
    (S.OPEN, END): S.ENDED,
    (S.CLOSING, CLOSE): S.CLOSING,
    (S.CLOSING, SENT): S.CLOSE_SENT,
    (S.CLOSING, LOST): S.LOST,
    (S.CLOSING, END): S.ENDED,
    (S.CLOSE_SENT, CLOSE): S.CLOSE_SENT,
    (S.CLOSE_SENT, SENT): None,
    (S.CLOSE_SENT, LOST): S.LOST,
    (S.CLOSE_SENT, END): S.ENDED,
    (S.LOST, CLOSE): S.LOST,
    (S.LOST, SENT): None,
    (S.LOST, LOST): S.LOST,
    (S.LOST, END): S.ENDED,
    (S.ENDED, CLOSE): S.ENDED,
    (S.ENDED, SENT): None,
    (S.ENDED, LOST): S.ENDED,
    (S.ENDED, END): None,
}
"""Every pair, written out apart from the module: None is an illegal transition."""


def reach(state: State) -> Lifecycle:
    life = Lifecycle()
    for event in PATHS[state]:
        life.handle(event)
    assert life.state is state
    return life


def test_every_pair_is_written_out() -> None:
    assert set(EXPECTED) == {(state, event) for state in State for event in Event}


@pytest.mark.parametrize(("state", "event"), list(EXPECTED))
def test_each_transition(state: State, event: Event) -> None:
    life = reach(state)
    expected = EXPECTED[state, event]
    if expected is None:
        with pytest.raises(LifecycleError) as caught:
            life.handle(event)
        assert caught.value.event is event
        assert caught.value.state is state
        assert event.name in str(caught.value)
        assert state.name in str(caught.value)
        assert life.state is state  # an illegal event changes nothing
    else:
        assert life.handle(event) is expected
        assert life.state is expected


def test_a_connection_starts_open() -> None:
    assert Lifecycle().state is S.OPEN


def test_the_usual_close_the_first_close_winning() -> None:
    life = Lifecycle()
    life.handle(CLOSE)
    life.handle(CLOSE)  # a drain reaching a client already being closed
    assert life.state is S.CLOSING
    life.handle(SENT)
    assert life.state is S.CLOSE_SENT
    with pytest.raises(LifecycleError):
        life.handle(SENT)  # the close frame went once
    life.handle(END)
    assert life.state is S.ENDED
    with pytest.raises(LifecycleError):
        life.handle(END)


def test_a_lost_peer_loses_the_close_in_flight() -> None:
    life = Lifecycle()
    life.handle(CLOSE)
    life.handle(LOST)
    assert life.state is S.LOST
    with pytest.raises(LifecycleError):
        life.handle(SENT)  # a lost close frame is never reported sent
    life.handle(LOST)  # a bug met after the failed write
    life.handle(END)
    life.handle(LOST)  # a shared task meeting it just after its end
    assert life.state is S.ENDED


def test_the_docstring_table_is_the_transition_table() -> None:
    doc = lifecycle.__doc__ or ""
    rows = re.findall(r"^(OPEN|CLOSING|CLOSE_SENT|LOST|ENDED)\s+(.+)$", doc, re.MULTILINE)
    header = re.search(r"^state\s+(.+)$", doc, re.MULTILINE)
    assert header is not None
    events = [Event[name] for name in header.group(1).split()]
    documented = {
        (State[state], event): None if cell == "error" else State[cell]
        for state, cells in rows
        for event, cell in zip(events, cells.split(), strict=True)
    }
    assert documented == EXPECTED
    table = {
        (state, event): lifecycle.TRANSITIONS[state].get(event)
        for state in State
        for event in Event
    }
    assert table == EXPECTED
