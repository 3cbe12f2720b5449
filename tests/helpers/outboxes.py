"""An outbox fed and emptied by hand: numbered frames, a replay source of given frames,
and everything it gives the socket."""

from __future__ import annotations

from hub.core.outbox import Outbox


class Listed:
    """A replay source of given frames that counts what was pulled from it."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = list(frames)
        self.pulled = 0

    @property
    def done(self) -> bool:
        return self.pulled == len(self.frames)

    @property
    def owed_bytes(self) -> int:
        return sum(map(len, self.frames[self.pulled :]))

    def pull(self, max_bytes: int, max_messages: int) -> list[bytes]:
        out: list[bytes] = []
        while self.pulled < len(self.frames) and sum(map(len, out)) < max_bytes:
            if len(out) == max_messages:
                break
            out.append(self.frames[self.pulled])
            self.pulled += 1
        return out


def numbered(tag: str, n: int, size: int = 100) -> list[bytes]:
    """``n`` frames of ``size`` bytes named ``tag0``, ``tag1``, ..., to check order by."""
    return [f"{tag}{i}".encode().ljust(size, b".") for i in range(n)]


def drain(box: Outbox) -> list[bytes]:
    """Every frame the outbox holds or owes, taken as a socket that takes all would."""
    out: list[bytes] = []
    while box:
        out += box.take_frames()
    return out
