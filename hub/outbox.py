"""A connection's bounded queue of ready-to-write frames: its place in a shared feed,
plus its own frames (replies, accounts and books matches, control frames) in order.

Fan-out appends stream frames to the connection's :class:`~hub.feed.Feed` once for all
its readers; the outbox holds only a cursor into it. Each of its own frames is marked
with the feed position it follows, so :meth:`Outbox.take_frames` merges both into the
exact order they were produced, with list slices. When a client falls so far behind
that its backlog (own frames plus feed frames past its cursor) passes either bound, the
verdict is to cut it, not to block (rippled's ``send_queue_limit``, Clio's
``ws_max_sending_queue_size``).

``stamp`` is the fan-out time of the oldest stream message due: the writer reads it
once per write for the publish-to-write latency, so timing costs nothing per message.
"""

from __future__ import annotations

from .feed import Feed


class Outbox:
    __slots__ = ("_bytes", "_frames", "_marks", "_stamp", "cursor", "feed", "max_bytes",
                 "max_messages", "overflowed")  # fmt: skip

    def __init__(self, max_bytes: int, max_messages: int) -> None:
        self._frames: list[bytes] = []
        self._marks: list[int] = []
        self._bytes = 0
        self._stamp: float | None = None
        self.feed: Feed | None = None
        self.cursor = 0
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self.overflowed = False

    def follow(self, feed: Feed | None) -> None:
        """Read ``feed`` from its head on; what the old feed still owed becomes own
        frames, so nothing is lost or reordered by a change of subscriptions."""
        if self.feed is not None:
            self._frames = self.take_frames()
            self._bytes = sum(map(len, self._frames))
        self.feed = feed
        self.cursor = feed.head if feed is not None else 0
        self._marks = [self.cursor] * len(self._frames)

    def push(self, frame: bytes, stamp: float | None = None) -> bool:
        """Queue one of its own data frames; False (and the queue freed) when the
        backlog would pass a bound."""
        if self.overflowed:
            return False
        self._append(frame)
        if self._stamp is None:
            self._stamp = stamp
        return self.within_bounds()

    def push_control(self, frame: bytes) -> None:
        """Queue a control frame (pong, close); these are tiny and never refused."""
        self._append(frame)

    def _append(self, frame: bytes) -> None:
        self._frames.append(frame)
        self._bytes += len(frame)
        if self.feed is not None:
            self._marks.append(self.feed.head)

    def within_bounds(self) -> bool:
        """Whether the backlog is within both bounds; once it is not, the queue is freed
        and stays refused."""
        if self.overflowed:
            return False
        if self.feed is None:  # replies only: no feed arithmetic
            within = self._bytes <= self.max_bytes and len(self._frames) <= self.max_messages
        else:
            within = self.nbytes <= self.max_bytes and len(self) <= self.max_messages
        if within:
            return True
        self.overflowed = True
        self._frames, self._marks, self._bytes, self._stamp = [], [], 0, None
        if self.feed is not None:
            self.cursor = self.feed.head
        return False

    def take(self) -> tuple[list[bytes], int, float | None] | None:
        """What is due, with its size in bytes and its oldest stamp; None (and the queue
        freed) when the backlog has just passed a bound. Each figure is read once."""
        feed = self.feed
        if feed is not None and not self._frames and not self.overflowed:
            return self._take_shared(feed)
        if not self.overflowed and not self.within_bounds():
            return None
        nbytes, stamp = self.nbytes, self.stamp
        return self.take_frames(), nbytes, stamp

    def _take_shared(self, feed: Feed) -> tuple[list[bytes], int, float | None] | None:
        """:meth:`take` when only feed frames are due: fan-out's common case, once per
        reader and batch, so it reads the feed's lists directly."""
        i = self.cursor - feed.base
        due = len(feed.frames) - i
        if due <= 0:
            return [], 0, None
        ends = feed.ends
        nbytes = ends[-1] - (ends[i - 1] if i else feed.base_bytes)
        if nbytes > self.max_bytes or due > self.max_messages:
            self.within_bounds()
            return None
        frames = [feed.joined(self.cursor)]
        self.cursor += due
        return frames, nbytes, feed.stamps[i]

    def take_frames(self) -> list[bytes]:
        """Everything due, in order, as a list of frames; the queue is left empty."""
        feed = self.feed
        own = self._frames
        if feed is None:
            out = own
        elif not own:
            out = [feed.joined(self.cursor)] if self.cursor < feed.head else []
        else:
            out, at = [], self.cursor
            for frame, mark in zip(own, self._marks, strict=True):
                if mark > at:
                    out += feed.between(at, mark)
                    at = mark
                out.append(frame)
            out += feed.since(at)
        if feed is not None:
            self.cursor = feed.head
        self._frames, self._marks, self._bytes, self._stamp = [], [], 0, None
        return out

    @property
    def stamp(self) -> float | None:
        """The fan-out time of the oldest stream message due."""
        feed, own = self.feed, self._stamp
        shared = feed.stamp_at(self.cursor) if feed is not None else None
        if shared is None or own is None:
            return own if shared is None else shared
        return min(own, shared)

    @property
    def nbytes(self) -> int:
        feed = self.feed
        if feed is None:
            return self._bytes
        return self._bytes + feed.offset(feed.head) - feed.offset(self.cursor)

    def __len__(self) -> int:
        feed = self.feed
        return len(self._frames) + (feed.head - self.cursor if feed is not None else 0)

    def __bool__(self) -> bool:
        return bool(self._frames) or (self.feed is not None and self.cursor < self.feed.head)
