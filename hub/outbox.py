"""A connection's bounded queue of ready-to-write frames.

Fan-out appends the shared frame bytes and never waits; the connection's writer takes
everything queued and writes it in one system call. When a client falls so far
behind that its queue passes either bound, the verdict is to cut it, not to block
(rippled's ``send_queue_limit``, Clio's ``ws_max_sending_queue_size``).

``stamp`` is the fan-out time of the oldest stream message queued since the last
``take_frames()``: the writer reads it once per write for the publish-to-write latency, so
timing costs nothing per message.
"""

from __future__ import annotations


class Outbox:
    __slots__ = ("_frames", "_nbytes", "max_bytes", "max_messages", "overflowed", "stamp")

    def __init__(self, max_bytes: int, max_messages: int) -> None:
        self._frames: list[bytes] = []
        self._nbytes = 0
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self.overflowed = False
        self.stamp: float | None = None

    def push(self, frame: bytes, stamp: float | None = None) -> bool:
        """Queue a data frame; False (and the queue freed) when it would pass a bound."""
        if self.overflowed:
            return False
        size = self._nbytes + len(frame)
        if size > self.max_bytes or len(self._frames) >= self.max_messages:
            self.overflowed = True
            self._frames = []
            self._nbytes = 0
            self.stamp = None
            return False
        self._frames.append(frame)
        self._nbytes = size
        if self.stamp is None:
            self.stamp = stamp
        return True

    def push_control(self, frame: bytes) -> None:
        """Queue a control frame (pong, close); these are tiny and never refused."""
        self._frames.append(frame)
        self._nbytes += len(frame)

    def take_frames(self) -> list[bytes]:
        """Everything queued, in order, as the list of frames; the queue is left empty."""
        frames = self._frames
        self._frames = []
        self._nbytes = 0
        self.stamp = None
        return frames

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._frames)
