"""The bounded per-client outbox: order, bounds, control frames, and a resume's replay at
the socket's pace."""

from __future__ import annotations

from hub.core.feed import Feed
from hub.core.outbox import Outbox
from tests.helpers.outboxes import Listed, drain, numbered


def test_outbox_starts_empty() -> None:
    box = Outbox(max_bytes=100, max_messages=10)
    assert len(box) == 0
    assert not box
    assert box.nbytes == 0
    assert b"".join(box.take_frames()) == b""
    assert not box.overflowed


def test_take_returns_everything_in_order_and_empties() -> None:
    box = Outbox(max_bytes=100, max_messages=10)
    assert box.push(b"one")
    assert box.push(b"two")
    assert box.push(b"three")
    assert len(box) == 3
    assert box.nbytes == 11
    assert b"".join(box.take_frames()) == b"onetwothree"
    assert len(box) == 0
    assert box.nbytes == 0
    assert b"".join(box.take_frames()) == b""


def test_take_single_frame() -> None:
    box = Outbox(max_bytes=100, max_messages=10)
    box.push(b"only")
    assert b"".join(box.take_frames()) == b"only"


def test_take_frees_room() -> None:
    box = Outbox(max_bytes=10, max_messages=2)
    assert box.push(b"12345")
    assert box.push(b"12345")
    b"".join(box.take_frames())
    assert box.push(b"12345")
    assert box.push(b"12345")
    assert not box.overflowed


def test_byte_bound_is_inclusive() -> None:
    box = Outbox(max_bytes=10, max_messages=100)
    assert box.push(b"x" * 10)
    assert box.nbytes == 10
    assert not box.overflowed


def test_passing_the_byte_bound_overflows_and_frees_the_queue() -> None:
    box = Outbox(max_bytes=10, max_messages=100)
    assert box.push(b"x" * 6)
    assert not box.push(b"y" * 5)
    assert box.overflowed
    assert len(box) == 0
    assert box.nbytes == 0
    assert b"".join(box.take_frames()) == b""


def test_message_bound() -> None:
    box = Outbox(max_bytes=1000, max_messages=3)
    assert all(box.push(b"m") for _ in range(3))
    assert not box.push(b"m")
    assert box.overflowed
    assert len(box) == 0


def test_overflow_is_final() -> None:
    box = Outbox(max_bytes=10, max_messages=100)
    box.push(b"x" * 11)
    assert box.overflowed
    assert not box.push(b"a")
    assert len(box) == 0


def test_control_frames_are_never_refused_and_keep_order() -> None:
    box = Outbox(max_bytes=4, max_messages=1)
    assert box.push(b"data")
    box.push_control(b"PONG")
    box.push_control(b"CLOSE")
    assert not box.overflowed
    assert len(box) == 3
    assert box.nbytes == 13
    assert b"".join(box.take_frames()) == b"dataPONGCLOSE"


def test_control_frame_after_overflow_is_still_queued() -> None:
    """A slow client is cut with a close frame, which must get through the full queue."""
    box = Outbox(max_bytes=4, max_messages=10)
    box.push(b"12345")
    assert box.overflowed
    box.push_control(b"CLOSE")
    assert b"".join(box.take_frames()) == b"CLOSE"


def test_a_replay_many_times_the_bound_goes_out_a_chunk_at_a_time() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)  # chunks of 250 bytes, 25 messages
    replay = Listed(numbered("r", 40))  # 4 000 bytes
    assert box.push(b"reply")
    assert box.attach(replay)
    assert replay.pulled == 3  # the first chunk only
    assert box.nbytes == 5 + 300
    out: list[bytes] = []
    while box.replaying:
        before = replay.pulled
        out += box.take_frames()
        assert replay.pulled - before <= 3
        assert box.nbytes <= 300
        assert not box.overflowed
    out += box.take_frames()
    assert out == [b"reply", *replay.frames]
    assert not box


def test_live_frames_wait_behind_the_replay_in_the_order_they_came() -> None:
    box = Outbox(max_bytes=10_000, max_messages=1000)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    feed.append(b"L0", None)  # before the resume: goes first
    box.push(b"reply")
    replay = Listed(numbered("r", 1000, size=10))  # four chunks
    assert box.attach(replay)
    feed.append(b"L1", None)
    box.push(b"own1")
    feed.append(b"L2", None)
    first = box.take_frames()
    assert first[:2] == [b"L0", b"reply"]
    assert b"L1" not in first
    assert b"own1" not in first
    assert len(first) == 2 + 250
    assert drain(box) == [
        *replay.frames[250:],
        b"L1",
        b"own1",
        b"L2",
    ]
    assert box.cursor == feed.head


def test_the_backlog_is_what_was_pulled_plus_what_waits_behind() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    replay = Listed(numbered("r", 1000))  # 100 kB owed
    assert box.attach(replay)
    assert box.nbytes == 300
    assert len(box) == 3
    for i in range(7):
        feed.append(b"x" * 100, None)
        assert box.within_bounds(), i
    assert box.nbytes == 1000
    feed.append(b"x", None)  # a client that stops reading is still cut
    assert not box.within_bounds()
    assert box.overflowed
    assert not box.replaying
    assert not box


def test_take_tells_the_bytes_it_took_and_the_live_stamp_when_the_replay_ends() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    box.push(b"reply")
    assert box.attach(Listed(numbered("r", 6)))
    feed.append(b"L" * 50, 7.5)
    due = box.take()
    assert due is not None
    frames, nbytes, stamp = due
    assert nbytes == sum(map(len, frames)) == 305
    assert stamp is None  # the live frame is not written yet
    due = box.take()
    assert due is not None
    frames, nbytes, stamp = due
    assert frames[-1] == b"L" * 50
    assert nbytes == 350
    assert stamp == 7.5
    assert not box.replaying


def test_pings_and_pongs_pass_a_replay_and_a_close_never_does() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    replay = Listed(numbered("r", 10))
    box.push(b"reply")
    assert box.attach(replay)
    box.push_control(b"PING", urgent=True)
    box.push_control(b"CLOSE")
    first = box.take_frames()
    assert first == [b"reply", *replay.frames[:3], b"PING"]
    assert drain(box) == [*replay.frames[3:], b"CLOSE"]


def test_a_change_of_feed_during_a_replay_keeps_every_frame_in_order() -> None:
    box = Outbox(max_bytes=10_000, max_messages=1000)
    old = Feed(frozenset({"ledger"}), 2, None)
    box.follow(old)
    old.append(b"A0", None)
    box.push(b"reply")
    replay = Listed(numbered("r", 20))
    assert box.attach(replay)
    old.append(b"A1", None)
    box.push(b"own")
    new = Feed(frozenset({"ledger", "validations"}), 2, None)
    box.follow(new)  # a later subscribe while the replay runs
    new.append(b"B0", None)
    assert drain(box) == [b"A0", b"reply", *replay.frames, b"A1", b"own", b"B0"]


def test_two_replays_follow_one_another_with_what_came_between() -> None:
    box = Outbox(max_bytes=10_000, max_messages=1000)
    feed = Feed(frozenset({"ledger"}), 2, None)
    box.follow(feed)
    first, second = Listed(numbered("a", 30)), Listed(numbered("b", 30))
    box.push(b"reply1")
    assert box.attach(first)
    feed.append(b"L1", None)
    box.push(b"reply2")
    assert box.attach(second)
    assert second.pulled == 0  # nothing of it is pulled before the first is done
    feed.append(b"L2", None)
    assert drain(box) == [b"reply1", *first.frames, b"L1", b"reply2", *second.frames, b"L2"]


def test_an_empty_replay_leaves_the_outbox_as_it_was() -> None:
    box = Outbox(max_bytes=1000, max_messages=100)
    box.push(b"reply")
    assert box.attach(Listed([]))
    assert not box.replaying
    assert box.take_frames() == [b"reply"]
