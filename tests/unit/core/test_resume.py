"""A resume's replay without sockets: what it owes, pulled from the history at the socket's pace."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.core.feed import Feed
from hub.core.history import History
from hub.core.outbox import Outbox
from hub.core.resume import Replay, owed
from hub.core.session import NO_STREAM, Session
from hub.core.subscriptions import parse_change
from tests.helpers.history import keep
from tests.helpers.outboxes import Listed, drain, numbered
from tests.helpers.samples import (
    ALICE,
    small_ledger,
)

Op = tuple[str, int]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.integers(1, 3)),
        st.tuples(st.just("own"), st.integers(1, 3)),
        st.tuples(st.just("replay"), st.integers(0, 40)),
        st.tuples(st.just("take"), st.just(0)),
        st.tuples(st.just("follow"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_any_interleaving_sends_everything_in_the_order_it_came(ops: list[Op]) -> None:
    """Whatever is queued, appended, attached, taken or refollowed: what goes out is
    exactly what was produced, in order, and the backlog never counts what a replay
    still owes."""
    box = Outbox(max_bytes=1 << 30, max_messages=1 << 20)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    produced: list[bytes] = []
    out: list[bytes] = []
    sources: list[Listed] = []
    for n, (op, count) in enumerate(ops):
        if op == "feed":
            frames = numbered(f"f{n}.", count, size=8)
            for frame in frames:
                feed.append(frame, None)
        elif op == "own":
            frames = numbered(f"o{n}.", count, size=8)
            for frame in frames:
                assert box.push(frame)
        elif op == "replay":
            frames = numbered(f"r{n}.", count, size=8)
            sources.append(Listed(frames))
            assert box.attach(sources[-1])
        elif op == "take":
            frames = []
            out += box.take_frames()
        else:
            frames = []
            feed = Feed(frozenset({"ledger", f"s{n}"}), 2, None)
            box.follow(feed)
        produced += frames
        sent = sum(map(len, out))
        owed = sum(source.owed_bytes for source in sources)
        assert box.nbytes == sum(map(len, produced)) - sent - owed
    out += drain(box)
    assert b"".join(out) == b"".join(produced)  # feed frames come joined


def test_a_replay_outlives_the_history_evicting_what_it_owes() -> None:
    history = History(ledgers=3)
    for i in range(1, 4):
        keep(history, small_ledger(i))
    entries = list(history.since(0))
    expected = [entry.frames(2) for entry in entries]
    replay = Replay(entries, 2)
    del entries
    for i in range(4, 10):  # every entry it owes leaves the history
        keep(history, small_ledger(i))
    assert history.resumable_from == 6
    got: list[bytes] = []
    while not replay.done:
        chunk = replay.pull(1, 1000)
        assert len(chunk) == 1  # at least one, and no more once max_bytes is reached
        got += chunk
    assert got == expected
    assert replay.pull(1 << 20, 1000) == []


def test_a_pull_stops_at_either_bound_and_lets_go_of_what_it_sent() -> None:
    history = History(ledgers=10)
    keep(history, small_ledger(1))
    replay = Replay(history.since(0), 1)
    assert len(replay) == 4
    first = replay.pull(1 << 20, 3)
    assert len(first) == 3
    assert len(replay) == 1
    assert b'"ledger_index":"1"' in first[0]  # rendered in API v1
    assert len(replay.pull(1 << 20, 3)) == 1
    assert replay.done


def test_owed_routes_as_live_twice_for_two_matching_streams() -> None:
    history = History(ledgers=10)
    keep(history, small_ledger(1))
    session = Session("test", False, NO_STREAM)
    both = parse_change({"streams": ["transactions", "transactions_proposed"]}, admin=False)
    assert [e.event.kind for e in owed(history.since(0), session, both)] == ["transaction"] * 4
    alice = parse_change({"accounts": [ALICE]}, admin=False)
    (only,) = owed(history.since(0), session, alice)
    assert only.key is not None
    assert only is history.transactions(1)[0]
