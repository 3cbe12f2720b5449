"""Shared frame logs: fan-out appends a frame once per rendering, not once per subscriber.

Subscribers whose stream subscriptions render the same frames (the same set of streams,
rendered at the same API version with the same permessage-deflate parameters) read one
append-only :class:`Feed`. Each subscriber's :class:`~hub.core.outbox.Outbox` keeps a
position in it and takes everything past that position with one list slice when its
socket can take it, so a delivery costs no Python work of its own: the work is per
frame and rendering, and per subscriber and batch. Accounts and books matches go to
each subscriber's own queue, merged in order by its outbox.

A feed forgets the frames every reader has taken (:meth:`Feed.trim`); a reader too far
behind is cut by its outbox's bounds, so no reader holds a feed's memory for long.

How the frames due to readers at one position become one buffer is the feeds' :class:`Join`:
a plain ``b"".join`` here; the edge hands in one that also spools a buffer several
readers share (:mod:`hub.edge.spool`), so the kernel does not copy it once per socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, Protocol

from hub.core.render import render_version
from hub.wire.deflate import DeflateParams

FeedKey = tuple[frozenset[str], int, DeflateParams | None]


class Reader(Protocol):
    """A subscriber's side of a feed: where it is, and how it writes what it is due."""

    @property
    def cursor(self) -> int:
        """The feed position of the first frame it has not taken."""
        ...

    def flush(self) -> float | None:
        """Write what is due now without waiting (or hand it to a writer task); the
        fan-out stamp of the oldest stream message in what went out whole now."""
        ...


class Join(Protocol):
    """How a feed makes one buffer of the frames due to its readers at one position."""

    def __call__(self, frames: list[bytes], readers: int) -> bytes:
        """``frames`` as one buffer, to be written to ``readers`` sockets."""
        ...

    def release(self, joined: Iterable[bytes]) -> None:
        """The feed has moved on: these buffers are not handed out again."""
        ...


class _Plain:
    """:class:`Join` as ``b"".join``: what a feed does with no edge to ask."""

    def __call__(self, frames: list[bytes], readers: int) -> bytes:
        return b"".join(frames)

    def release(self, joined: Iterable[bytes]) -> None:
        pass


PLAIN: Final[Join] = _Plain()


class Feed:
    """An append-only log of frames, each with its fan-out time, read by many cursors.

    Positions count every frame ever appended, so a cursor stays valid across
    :meth:`trim`; ``ends`` holds the byte offset after each frame, so any reader's
    backlog in bytes is one subtraction.
    """

    __slots__ = ("_join", "_joined", "_joined_at", "base", "base_bytes", "deflate", "ends",
                 "frames", "readers", "stamps", "streams", "version")  # fmt: skip

    def __init__(
        self,
        streams: frozenset[str],
        version: int,
        deflate: DeflateParams | None,
        join: Join = PLAIN,
    ) -> None:
        self.streams = streams
        self.version = version
        self.deflate = deflate
        self.frames: list[bytes] = []
        self.stamps: list[float | None] = []
        self.ends: list[int] = []
        self.base = 0
        self.base_bytes = 0
        self.readers: set[Reader] = set()
        self._join = join
        self._joined: dict[int, bytes] = {}
        self._joined_at = 0

    @property
    def key(self) -> FeedKey:
        return (self.streams, self.version, self.deflate)

    @property
    def head(self) -> int:
        return self.base + len(self.frames)

    def offset(self, position: int) -> int:
        """The byte offset of ``position`` (at or after :attr:`base`)."""
        i = position - self.base
        return self.ends[i - 1] if i > 0 else self.base_bytes

    def append(self, frame: bytes, stamp: float | None, copies: int = 1) -> None:
        end = self.ends[-1] if self.ends else self.base_bytes
        for _ in range(copies):
            end += len(frame)
            self.frames.append(frame)
            self.stamps.append(stamp)
            self.ends.append(end)

    def since(self, position: int) -> list[bytes]:
        return self.frames[position - self.base :]

    def joined(self, position: int) -> bytes:
        """The frames from ``position`` to the head as one buffer, joined once for every
        reader at that position (by the feed's :class:`Join`): the kernel then takes one
        buffer, not many pieces."""
        head = self.base + len(self.frames)
        if self._joined_at != head:
            self.release()
            self._joined_at = head
        data = self._joined.get(position)
        if data is None:
            data = self._joined[position] = self._join(self.since(position), len(self.readers))
        return data

    def release(self) -> None:
        """Forget the joined buffers, and let the join release them."""
        if self._joined:
            self._join.release(self._joined.values())
            self._joined.clear()

    def between(self, start: int, end: int) -> list[bytes]:
        return self.frames[start - self.base : end - self.base]

    def stamp_at(self, position: int) -> float | None:
        i = position - self.base
        return self.stamps[i] if i < len(self.stamps) else None

    def trim(self, upto: int) -> None:
        """Forget the frames before ``upto``: every reader has taken them."""
        n = upto - self.base
        if n <= 0:
            return
        self.base_bytes = self.offset(upto)
        del self.frames[:n], self.stamps[:n], self.ends[:n]
        self.base = upto
        self.release()


def streams_of(kind: str, validated: bool) -> tuple[str, ...]:
    """The streams an event goes to, once each (a validated transaction goes to both
    ``transactions`` and ``transactions_proposed``, as in rippled)."""
    if kind == "transaction":
        return ("transactions", "transactions_proposed") if validated else PROPOSED
    stream = STREAM_OF.get(kind)
    return (stream,) if stream else ()


STREAM_OF: Final = {
    "ledgerClosed": "ledger",
    "validationReceived": "validations",
    "bookChanges": "book_changes",
    "serverStatus": "server",
    "consensusPhase": "consensus",
    "manifestReceived": "manifests",
    "peerStatusChange": "peer_status",
}
PROPOSED: Final = ("transactions_proposed",)


class Feeds:
    """Every feed, by rendering and by stream, and which readers follow which; each
    feed joins what it hands out with ``join``."""

    def __init__(self, join: Join = PLAIN) -> None:
        self._join = join
        self._feeds: dict[FeedKey, Feed] = {}
        self._by_stream: dict[str, list[Feed]] = {}
        self._of: dict[Reader, Feed] = {}
        self._dirty: dict[Feed, None] = {}

    def __iter__(self) -> Iterator[Feed]:
        return iter(self._feeds.values())

    def of(self, reader: Reader) -> Feed | None:
        return self._of.get(reader)

    def feed_for(
        self, streams: frozenset[str], api_version: int, deflate: DeflateParams | None
    ) -> Feed | None:
        """The feed of a rendering (made on first use); None for no streams."""
        if not streams:
            return None
        key = (streams, render_version(api_version), deflate)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = Feed(*key, self._join)
            for name in streams:
                self._by_stream.setdefault(name, []).append(feed)
        return feed

    def follow(self, reader: Reader, feed: Feed | None) -> Feed | None:
        """Record that ``reader`` now reads ``feed`` (None: none); returns the feed it
        read before. Its outbox moves its own cursor (:meth:`Outbox.follow`)."""
        old = self._of.pop(reader, None)
        if old is not None:
            old.readers.discard(reader)
            if not old.readers:
                self._forget(old)
        if feed is not None:
            self._of[reader] = feed
            feed.readers.add(reader)
        return old

    def _forget(self, feed: Feed) -> None:
        feed.release()
        del self._feeds[feed.key]
        self._dirty.pop(feed, None)
        for name in feed.streams:
            feeds = self._by_stream[name]
            feeds.remove(feed)
            if not feeds:
                del self._by_stream[name]

    def append(self, streams: tuple[str, ...], frame_of: _FrameOf, stamp: float | None) -> int:
        """Append an event's frame to every feed of its streams, once per matching stream;
        returns the deliveries that makes (frames times readers)."""
        count = 0
        first = streams[0] if streams else None
        rest = streams[1:]
        for feed in self._by_stream.get(first, ()) if first else ():
            copies = 1
            for name in rest:
                copies += name in feed.streams
            count += self._append(feed, frame_of, stamp, copies)
        for name in rest:
            for feed in self._by_stream.get(name, ()):
                if first not in feed.streams:
                    count += self._append(feed, frame_of, stamp, 1)
        return count

    def _append(self, feed: Feed, frame_of: _FrameOf, stamp: float | None, copies: int) -> int:
        feed.append(frame_of(feed.version, feed.deflate), stamp, copies)
        self._dirty[feed] = None
        return copies * len(feed.readers)

    def flush(self) -> list[float]:
        """Let every reader of a feed appended to write what it is due, then forget
        what all of them have taken. Returns the stamp of each write that went out
        whole (:meth:`Reader.flush`), for the caller to observe."""
        written: list[float] = []
        dirty, self._dirty = self._dirty, {}
        for feed in dirty:
            low = feed.head
            for reader in list(feed.readers):
                stamp = reader.flush()
                if stamp is not None:
                    written.append(stamp)
                if reader.cursor < low and reader in feed.readers:
                    low = reader.cursor
            feed.trim(low)
        return written


class _FrameOf(Protocol):
    def __call__(self, api_version: int, deflate: DeflateParams | None = ..., /) -> bytes: ...
