"""What the hub published for the last N ledgers, so a client that reconnects can resume.

Ledger-bound messages (``ledgerClosed``, validated ``transaction``, ``bookChanges``,
``validationReceived``) are kept in publish order with the frames they were sent as,
so a replay is byte-identical to what a live subscriber got. Only the frames (every
rendering) and the routing facts are kept, not the decoded message. Ledgers leave from the
old end once more than ``ledgers`` have closed. ``resumable_from`` is the smallest
``since_ledger`` the history can still serve: everything of every later ledger is
here. Messages bound to no ledger (proposed transactions, server status, consensus,
manifests, peer status) are live only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .events import Event
from .render import Frames


@dataclass(frozen=True, slots=True)
class Entry:
    ledger_index: int
    event: Event
    frames: Frames


class History:
    """Bounded by ledgers, and by ``max_bytes`` of frames whatever the ledgers hold.

    Past ``max_bytes`` the oldest ledger goes whole (even one that has not closed), so
    what is kept is always every message of every ledger after ``resumable_from``.
    ``ledgers = 0`` keeps nothing.
    """

    def __init__(self, ledgers: int = 256, max_bytes: int = 256 * 2**20) -> None:
        self.ledgers = ledgers
        self.max_bytes = max_bytes
        self._entries: deque[Entry] = deque()
        self._closed: deque[int] = deque()
        self._floor: int | None = None
        self._nbytes = 0
        self._expected: tuple[int, int | None] | None = None  # latest ledger, txn_count
        self._seen = 0  # its transactions kept so far

    def add(self, event: Event, frames: Frames) -> None:
        """Keep one published message (if it belongs to a ledger)."""
        index = event.ledger_index
        if (
            not self.ledgers
            or index is None
            or (event.kind == "transaction" and not event.validated)
        ):
            return
        if event.kind == "transaction" and self._expected and index == self._expected[0]:
            self._seen += 1
        if event.kind == "ledgerClosed":
            count = event.body.get("txn_count")
            self._expected = (index, count if isinstance(count, int) else None)
            self._seen = 0
            if self._floor is None:
                self._floor = index - 1
            self._closed.append(index)
            while len(self._closed) > self.ledgers:
                self._floor = self._closed.popleft()
                self._evict(self._floor)
        if self._floor is not None and index <= self._floor:
            return
        frames.freeze()
        routing = Event(event.kind, {}, event.validated, event.accounts, event.books, index)
        self._entries.append(Entry(index, routing, frames))
        self._nbytes += frames.nbytes
        while self._nbytes > self.max_bytes and self._entries:
            oldest = self._entries[0].ledger_index
            self._floor = oldest if self._floor is None else max(self._floor, oldest)
            while self._closed and self._closed[0] <= oldest:
                self._closed.popleft()
            self._evict(oldest)

    @property
    def resumable_from(self) -> int | None:
        """The smallest ``since_ledger`` served, or None before the first ledger."""
        return self._floor

    @property
    def latest(self) -> int | None:
        return self._closed[-1] if self._closed else None

    def complete_through(self) -> int | None:
        """The newest ledger whose every message is here: the latest, once as many of
        its transactions as its ``txn_count`` arrived (they follow its ``ledgerClosed``),
        else the one before. ``since_ledger`` of it resumes with nothing lost."""
        if self._expected is None:
            return None
        index, count = self._expected
        return index if count is not None and self._seen >= count else index - 1

    def since(self, since_ledger: int) -> Iterator[Entry]:
        """Every kept message of the ledgers after ``since_ledger``, in publish order."""
        return (entry for entry in self._entries if entry.ledger_index > since_ledger)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """The bytes of the kept frames (v2; what resumes send)."""
        return self._nbytes

    def _evict(self, upto: int) -> None:
        entries = self._entries
        while entries and entries[0].ledger_index <= upto:
            self._nbytes -= entries.popleft().frames.nbytes
        # Stragglers (a late validation of an evicted ledger) go here too.
        if any(entry.ledger_index <= upto for entry in entries):
            self._nbytes -= sum(e.frames.nbytes for e in entries if e.ledger_index <= upto)
            self._entries = deque(e for e in entries if e.ledger_index > upto)
