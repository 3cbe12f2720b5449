"""A connection's bounded queue of ready-to-write frames: its place in a shared feed,
plus its own frames (replies, accounts and books matches, control frames) in order.

Fan-out appends stream frames to the connection's :class:`~hub.core.feed.Feed` once for all
its readers; the outbox holds only a cursor into it. Each of its own frames is marked
with the feed position it follows, so :meth:`Outbox.take_frames` merges both into the
exact order they were produced, with list slices. When a client falls so far behind
that its backlog (own frames plus feed frames past its cursor) passes either bound, the
verdict is to cut it, not to block (rippled's ``send_queue_limit``, Clio's
``ws_max_sending_queue_size``).

``stamp`` is the fan-out time of the oldest stream message due: the writer reads it
once per write for the publish-to-write latency, so timing costs nothing per message.

A resume's replay (:mod:`hub.core.resume`) is a :class:`Source` attached at one point of the
queue: after the reply that started it, before every frame queued later and every feed
frame appended later. Its frames are pulled one chunk at a time: the first when it is
attached, the next each time a take has taken everything up to it; a take stops there,
so what waits behind a replay (live frames) goes out only once the replay is done. The
backlog the bounds see is what was pulled plus what waits behind, never what the
replay still owes: a client that reads gets any replay, one that stops is cut as ever.
Fan-out's fast path (:meth:`Outbox.take` with only feed frames due) never sees a
replay: while one is attached, its pulled chunk is always queued.
"""

from __future__ import annotations

from typing import Final, Protocol

from hub.core.feed import Feed

REPLAY_CHUNK: Final = 64 * 1024
"""Bytes of a replay pulled at a time (less under a small ``max_bytes``): a few dozen
messages per write, small beside the queue's bound, and short work for each of many
replaying sockets the poller serves in one round."""
REPLAY_CHUNK_MESSAGES: Final = 1024


class Source(Protocol):
    """Frames owed at one point of an outbox, made as they are pulled."""

    @property
    def done(self) -> bool: ...

    def pull(self, max_bytes: int, max_messages: int) -> list[bytes]:
        """The next frames (at least one unless done)."""
        ...


class _Slot:
    """Where an attached source sits: before own frame ``at`` and feed position ``mark``."""

    __slots__ = ("at", "mark", "source")

    def __init__(self, source: Source, at: int, mark: int) -> None:
        self.source = source
        self.at = at
        self.mark = mark


class Outbox:
    __slots__ = ("_bytes", "_chunk", "_frames", "_marks", "_replays", "_stamp", "cursor", "feed",
                 "max_bytes", "max_messages", "overflowed", "replaying")  # fmt: skip

    def __init__(self, max_bytes: int, max_messages: int) -> None:
        self._frames: list[bytes] = []
        self._marks: list[int] = []
        self._bytes = 0
        self._stamp: float | None = None
        self._replays: list[_Slot] = []
        self._chunk = (
            max(1, min(REPLAY_CHUNK, max_bytes // 4)),
            max(1, min(REPLAY_CHUNK_MESSAGES, max_messages // 4)),
        )
        self.feed: Feed | None = None
        self.cursor = 0
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self.overflowed = False
        self.replaying = False
        """Whether a replay is attached: a chunk of it is queued, and more may be owed.
        A plain attribute, read by the writer after every write."""

    def follow(self, feed: Feed | None) -> None:
        """Read ``feed`` from its head on; what the old feed still owed becomes own
        frames, so nothing is lost or reordered by a change of subscriptions."""
        if self.feed is not None:
            self._frames = self._merged() if self._replays else self.take_frames()
            self._bytes = sum(map(len, self._frames))
        self.feed = feed
        self.cursor = feed.head if feed is not None else 0
        self._marks = [self.cursor] * len(self._frames)
        for slot in self._replays:
            slot.mark = self.cursor

    def push(self, frame: bytes, stamp: float | None = None) -> bool:
        """Queue one of its own data frames; False (and the queue freed) when the
        backlog would pass a bound."""
        if self.overflowed:
            return False
        self._append(frame)
        if self._stamp is None:
            self._stamp = stamp
        return self.within_bounds()

    def push_control(self, frame: bytes, *, urgent: bool = False) -> None:
        """Queue a control frame (ping, pong, close); these are tiny and never refused.
        An ``urgent`` one (ping, pong) goes before what a replay still owes, so a long
        replay delays no keepalive; a close never does: nothing may follow it."""
        replays = self._replays
        if not urgent or not replays:
            self._append(frame)
            return
        at = replays[0].at
        self._frames.insert(at, frame)
        self._bytes += len(frame)
        if self.feed is not None:
            self._marks.insert(at, replays[0].mark)
        for slot in replays:
            slot.at += 1

    def attach(self, source: Source) -> bool:
        """Owe ``source``'s frames after everything queued so far; its first chunk is
        pulled now. False (and the queue freed) when the backlog passes a bound."""
        if self.overflowed:
            return False
        slot = _Slot(source, len(self._frames), self.feed.head if self.feed is not None else 0)
        if self._replays or self._pull(slot):  # only the first is pulled at once
            self._replays.append(slot)
            self.replaying = True
        return self.within_bounds()

    def _pull(self, slot: _Slot) -> bool:
        """Queue the next chunk of ``slot`` just before it; False once it owes nothing."""
        frames = slot.source.pull(*self._chunk)
        if not frames:
            return False
        at, count = slot.at, len(frames)
        self._frames[at:at] = frames
        if self.feed is not None:
            self._marks[at:at] = [slot.mark] * count
        self._bytes += sum(map(len, frames))
        slot.at += count
        for other in self._replays:
            if other is not slot:  # the others are all behind it
                other.at += count
        return True

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
        self._replays, self.replaying = [], False
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
        return self.take_due()

    def take_due(self) -> tuple[list[bytes], int, float | None]:
        """:meth:`take` without the bounds. While a replay is attached a take is only
        what comes before it (its stamp is told with the take that ends the replay, the
        one that writes what waited behind it)."""
        stamp = self.stamp
        if not self._replays:
            nbytes = self.nbytes
            return self.take_frames(), nbytes, stamp
        frames = self.take_frames()
        return frames, sum(map(len, frames)), None if self._replays else stamp

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
        """Everything due, in order, as a list of frames; the queue is left empty, or,
        while a replay is attached, holding its next chunk and what waits behind it."""
        if self._replays:
            return self._take_replaying()
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

    def _take_replaying(self) -> list[bytes]:
        """What comes before the first replay; then its next chunk is pulled. A replay
        that owes nothing more goes, and what waited behind it is due at once."""
        replays = self._replays
        out: list[bytes] = []
        while replays:
            slot = replays[0]
            out += self._take_before(slot)
            if self._pull(slot):
                return out
            del replays[0]
        self.replaying = False
        return out + self.take_frames()

    def _take_before(self, slot: _Slot) -> list[bytes]:
        """Own frames before ``slot`` merged with feed frames before its mark."""
        n, feed = slot.at, self.feed
        ahead = self._frames[:n]
        del self._frames[:n]
        self._bytes -= sum(map(len, ahead))
        for later in self._replays:
            later.at -= n
        if feed is None:
            return ahead
        out, at = [], self.cursor
        for frame, mark in zip(ahead, self._marks[:n], strict=True):
            if mark > at:
                out += feed.between(at, mark)
                at = mark
            out.append(frame)
        del self._marks[:n]
        if slot.mark > at:
            out += feed.between(at, slot.mark)
        self.cursor = max(at, slot.mark)
        return out

    def _merged(self) -> list[bytes]:
        """Own frames merged with every feed frame due, each replay's place kept (its
        ``at`` moves to its index in what is returned): for a change of feed."""
        feed = self.feed
        assert feed is not None
        out: list[bytes] = []
        at = self.cursor
        pending = iter(self._replays)
        slot = next(pending, None)
        for i, (frame, mark) in enumerate(zip(self._frames, self._marks, strict=True)):
            while slot is not None and slot.at == i:
                if slot.mark > at:
                    out += feed.between(at, slot.mark)
                    at = slot.mark
                slot.at = len(out)
                slot = next(pending, None)
            if mark > at:
                out += feed.between(at, mark)
                at = mark
            out.append(frame)
        while slot is not None:
            if slot.mark > at:
                out += feed.between(at, slot.mark)
                at = slot.mark
            slot.at = len(out)
            slot = next(pending, None)
        return out + feed.since(at)

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
