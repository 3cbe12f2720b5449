"""Shared feeds and the outbox cursor over them, without sockets: order, bounds, sharing."""

from __future__ import annotations

from collections.abc import Iterable

from hub.core.feed import Feed, Feeds, streams_of
from hub.core.outbox import Outbox


class Reader:
    """A feed reader that only keeps an outbox, as a connection does."""

    def __init__(self, max_bytes: int = 1 << 20, max_messages: int = 1000) -> None:
        self.outbox = Outbox(max_bytes, max_messages)
        self.flushed = 0

    @property
    def cursor(self) -> int:
        return self.outbox.cursor

    def flush(self) -> float | None:
        """Takes what is due, as a write that went out whole: its oldest stamp."""
        self.flushed += 1
        due = self.outbox.take()
        return due[2] if due is not None and due[0] else None


def frames_of(tag: bytes):  # type: ignore[no-untyped-def]
    return lambda version, deflate=None: tag + b"/v%d" % version


def join(feeds: Feeds, reader: Reader, streams: set[str], version: int = 2) -> Feed:
    feed = feeds.feed_for(frozenset(streams), version, None)
    assert feed is not None
    feeds.follow(reader, feed)
    reader.outbox.follow(feed)
    return feed


def test_one_append_per_rendering_serves_every_reader() -> None:
    feeds = Feeds()
    a, b, old = Reader(), Reader(), Reader()
    shared = join(feeds, a, {"ledger"})
    assert join(feeds, b, {"ledger"}) is shared
    join(feeds, old, {"ledger"}, version=1)
    assert feeds.append(("ledger",), frames_of(b"L1"), None) == 3
    assert shared.frames == [b"L1/v2"]
    assert a.outbox.take_frames() == b.outbox.take_frames() == [b"L1/v2"]
    assert old.outbox.take_frames() == [b"L1/v1"]


def test_a_validated_transaction_is_appended_once_per_matching_stream() -> None:
    feeds = Feeds()
    both, proposed, validated = Reader(), Reader(), Reader()
    join(feeds, both, {"transactions", "transactions_proposed"})
    join(feeds, proposed, {"transactions_proposed"})
    join(feeds, validated, {"transactions"})
    streams = streams_of("transaction", validated=True)
    assert feeds.append(streams, frames_of(b"T"), None) == 4
    assert both.outbox.take_frames() == [b"T/v2T/v2"]
    assert proposed.outbox.take_frames() == [b"T/v2"]
    assert validated.outbox.take_frames() == [b"T/v2"]
    assert feeds.append(streams_of("transaction", validated=False), frames_of(b"P"), None) == 2
    assert validated.outbox.take_frames() == []


def test_own_frames_keep_their_place_among_feed_frames() -> None:
    feeds = Feeds()
    reader = Reader()
    join(feeds, reader, {"ledger"})
    reader.outbox.push(b"reply1")
    feeds.append(("ledger",), frames_of(b"A"), None)
    feeds.append(("ledger",), frames_of(b"B"), None)
    reader.outbox.push(b"account-match")
    feeds.append(("ledger",), frames_of(b"C"), None)
    reader.outbox.push_control(b"pong")
    assert reader.outbox.take_frames() == [b"reply1", b"A/v2", b"B/v2", b"account-match",
                                           b"C/v2", b"pong"]  # fmt: skip
    assert not reader.outbox


def test_changing_feeds_keeps_what_the_old_one_owed_in_order() -> None:
    feeds = Feeds()
    reader = Reader()
    join(feeds, reader, {"ledger"})
    feeds.append(("ledger",), frames_of(b"A"), None)
    reader.outbox.push(b"reply")
    new = join(feeds, reader, {"ledger", "validations"})
    feeds.append(("validations",), frames_of(b"V"), None)
    assert new.frames == [b"V/v2"]
    assert reader.outbox.take_frames() == [b"A/v2", b"reply", b"V/v2"]


def test_backlog_counts_feed_frames_and_the_bound_is_exact() -> None:
    feeds = Feeds()
    reader = Reader(max_bytes=10, max_messages=3)
    join(feeds, reader, {"ledger"})
    feeds.append(("ledger",), lambda v, d=None: b"12345", 1.0)
    reader.outbox.push(b"abcd", 2.0)
    assert (len(reader.outbox), reader.outbox.nbytes, reader.outbox.stamp) == (2, 9, 1.0)
    assert reader.outbox.within_bounds()
    feeds.append(("ledger",), lambda v, d=None: b"x", 3.0)
    assert reader.outbox.nbytes == 10
    assert reader.outbox.within_bounds()
    feeds.append(("ledger",), lambda v, d=None: b"y", 4.0)  # 4 messages, 11 bytes
    assert reader.outbox.take() is None
    assert reader.outbox.overflowed
    assert not reader.outbox
    assert reader.outbox.push(b"more") is False


def test_message_bound_alone_cuts() -> None:
    feeds = Feeds()
    reader = Reader(max_bytes=1 << 20, max_messages=2)
    join(feeds, reader, {"ledger"})
    for tag in (b"a", b"b"):
        feeds.append(("ledger",), frames_of(tag), None)
    assert reader.outbox.within_bounds()
    feeds.append(("ledger",), frames_of(b"c"), None)
    assert not reader.outbox.within_bounds()


def test_flush_lets_readers_write_then_forgets_what_all_took() -> None:
    feeds = Feeds()
    fast, slow = Reader(), Reader()
    feed = join(feeds, fast, {"ledger"})
    join(feeds, slow, {"ledger"})
    slow.flush = lambda: None  # type: ignore[method-assign]
    feeds.append(("ledger",), frames_of(b"A"), None)
    feeds.flush()
    assert fast.flushed == 1
    assert (feed.base, len(feed.frames)) == (0, 1)  # the slow one still needs it
    slow.outbox.take_frames()
    feeds.append(("ledger",), frames_of(b"B"), None)
    feeds.flush()
    assert (feed.base, feed.frames) == (1, [b"B/v2"])
    assert feed.offset(feed.head) == 2 * len(b"A/v2")
    feeds.flush()  # nothing appended: nobody is asked to write
    assert fast.flushed == 2


def test_joined_once_for_every_reader_at_one_position() -> None:
    feed = Feed(frozenset({"ledger"}), 2, None)
    feed.append(b"a", None)
    feed.append(b"b", None, copies=2)
    first = feed.joined(0)
    assert first == b"abb"
    assert feed.joined(0) is first
    assert feed.joined(1) == b"bb"
    feed.append(b"c", None)
    assert feed.joined(0) == b"abbc"


def test_the_last_reader_leaving_forgets_the_feed() -> None:
    feeds = Feeds()
    reader = Reader()
    feed = join(feeds, reader, {"ledger"})
    assert feeds.follow(reader, None) is feed
    assert list(feeds) == []
    assert feeds.append(("ledger",), frames_of(b"A"), None) == 0


def test_flush_returns_the_stamp_of_each_write_for_the_caller_to_observe() -> None:
    feeds = Feeds()
    a, b, other = Reader(), Reader(), Reader()
    join(feeds, a, {"ledger"})
    join(feeds, b, {"ledger"})
    join(feeds, other, {"validations"})
    feeds.append(("ledger",), frames_of(b"L1"), 1.5)
    feeds.append(("ledger",), frames_of(b"L2"), 2.5)
    feeds.append(("validations",), frames_of(b"V"), 3.5)
    assert sorted(feeds.flush()) == [1.5, 1.5, 3.5]  # one per write, its oldest stamp
    assert feeds.flush() == []  # nothing appended, nothing written


def test_a_feed_joins_with_the_join_it_is_given_and_releases_through_it() -> None:
    calls: list[tuple[str, object]] = []

    class Counted:
        def __call__(self, frames: list[bytes], readers: int) -> bytes:
            calls.append(("join", readers))
            return b"|".join(frames)

        def release(self, joined: Iterable[bytes]) -> None:
            calls.append(("release", sorted(joined)))

    feeds = Feeds(Counted())
    a, b = Reader(), Reader()
    feed = join(feeds, a, {"ledger"})
    join(feeds, b, {"ledger"})
    feeds.append(("ledger",), frames_of(b"A"), None)
    feeds.append(("ledger",), frames_of(b"B"), None)
    assert feed.joined(0) == b"A/v2|B/v2"
    assert feed.joined(0) == b"A/v2|B/v2"  # once for every reader at one position
    assert calls == [("join", 2)]
    feeds.flush()  # both take it; the feed trims and moves on
    assert calls == [("join", 2), ("release", [b"A/v2|B/v2"])]
