"""A resume's replay: the history entries a ``since_ledger`` subscribe owes, sent as the
socket drains.

The entries are routed when the subscriptions go live, against that request's
subscriptions alone, with the live rules (:func:`hub.core.fanout.route`): which messages are
owed, and how many, is fixed then, and the reply can say so. Nothing is rendered or
queued then. The connection's :class:`~hub.core.outbox.Outbox` pulls a chunk of frames each
time the socket has taken the one before, so a resume of the whole history costs its
queue one chunk, not the history's size.

A replay holds references to the entries it still owes: the history may evict them
meanwhile (ledgers keep closing during a long replay) without breaking it; an entry's
memory is freed once every replay holding it has sent it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from hub.core.fanout import route
from hub.core.history import Entry
from hub.core.session import Session
from hub.core.subscriptions import Change, Subscriptions
from hub.wire.deflate import DeflateParams


def owed(entries: Iterable[Entry], session: Session, change: Change) -> list[Entry]:
    """The entries ``change``'s subscriptions of ``session`` would have received, in
    order; an entry twice when it routes twice (as live, e.g. a validated transaction to
    ``transactions`` and ``transactions_proposed``)."""
    only_these: Subscriptions[Session] = Subscriptions()
    only_these.subscribe(session, change)
    out = []
    for entry in entries:
        for group in route(entry.event, only_these):
            if session in group:
                out.append(entry)
    return out


class Replay:
    """The frames of ``entries`` in one rendering, made only when pulled.

    A pull takes entries from the front and lets go of them, so what is sent is no
    longer held here.
    """

    __slots__ = ("_entries", "deflate", "version")

    def __init__(
        self, entries: Iterable[Entry], version: int, deflate: DeflateParams | None = None
    ) -> None:
        self._entries = deque(entries)
        self.version = version
        self.deflate = deflate

    def __len__(self) -> int:
        """Messages still owed."""
        return len(self._entries)

    @property
    def done(self) -> bool:
        return not self._entries

    def pull(self, max_bytes: int, max_messages: int) -> list[bytes]:
        """The next frames, in order, until ``max_bytes`` or ``max_messages`` is reached
        (at least one while any is owed; none once done)."""
        entries, version, deflate = self._entries, self.version, self.deflate
        out: list[bytes] = []
        size = 0
        while entries and size < max_bytes and len(out) < max_messages:
            frame = entries.popleft().frames(version, deflate)
            out.append(frame)
            size += len(frame)
        return out
