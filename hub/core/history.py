"""What the hub published for the last N ledgers: resumes replay it, lookups answer from it.

Ledger-bound messages (``ledgerClosed``, validated ``transaction``, ``bookChanges``,
``validationReceived``) are kept in publish order with the frames they were sent as,
so a replay is byte-identical to what a live subscriber got. Only the frames (every
rendering) are kept, not the decoded message: an entry's accounts and books, unless
fan-out already worked them out, are worked out from its kept frame the first time a
replay asks. Ledgers leave from the old end once more than ``ledgers`` have closed.
``resumable_from`` is the smallest ``since_ledger`` the history can still serve:
everything of every later ledger is here. Messages bound to no ledger (proposed
transactions, server status, consensus, manifests, peer status) are live only.

The same entries are indexed by ledger index, ledger hash and transaction hash for
``ledger`` and ``tx`` (:mod:`hub.core.lookup`), and leave the indexes when they leave the
history. A ledger is *complete* once its ``ledgerClosed`` and as many validated
transactions as its ``txn_count`` are here; :attr:`History.on_complete` hears of each.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hub.core.render import Renderings
from hub.xrpl.events import Event


@dataclass(frozen=True, slots=True)
class Entry:
    ledger_index: int
    event: Event
    frames: Renderings
    key: str | None = None
    """A transaction's hash, or a ``ledgerClosed``'s ledger hash (upper case)."""


@dataclass(frozen=True, slots=True)
class Tail:
    """Where the published stream stands: its last ledger and what of it went out.

    A relay that takes over from another node starts here: ledgers up to
    ``ledger_index`` are not published again, and the transactions of that ledger not
    in ``transactions`` are still due unless ``complete``.
    """

    ledger_index: int
    transactions: frozenset[str] = frozenset()
    book_changes: bool = False
    complete: bool = True


@dataclass(slots=True)
class _Ledger:
    closed: Entry | None = None
    transactions: list[Entry] = field(default_factory=list)
    book_changes: Entry | None = None
    expected: int | None = None
    announced: bool = False

    @property
    def complete(self) -> bool:
        """Its close and as many transactions as its ``txn_count`` (a close without a
        count is taken as complete)."""
        return self.closed is not None and len(self.transactions) >= (self.expected or 0)


class History:
    """Bounded by ledgers, and by ``max_bytes`` of frames whatever the ledgers hold.

    Past ``max_bytes`` the oldest ledger goes whole (even one that has not closed), so
    what is kept is always every message of every ledger after ``resumable_from``.
    ``ledgers = 0`` keeps nothing.
    """

    def __init__(self, ledgers: int = 256, max_bytes: int = 256 * 2**20) -> None:
        self.ledgers = ledgers
        self.max_bytes = max_bytes
        self.on_complete: Callable[[int], None] | None = None
        self._entries: deque[Entry] = deque()
        self._closed: deque[int] = deque()
        self._floor: int | None = None
        self._nbytes = 0
        self._by_index: dict[int, _Ledger] = {}
        self._by_hash: dict[str, int] = {}
        self._transactions: dict[str, Entry] = {}

    def add(self, event: Event, frames: Renderings) -> None:
        """Keep one published message (if it belongs to a ledger)."""
        index = event.ledger_index
        if (
            not self.ledgers
            or index is None
            or (event.kind == "transaction" and not event.validated)
        ):
            return
        if event.kind == "ledgerClosed":
            if self._floor is None:
                self._floor = index - 1
            self._closed.append(index)
            while len(self._closed) > self.ledgers:
                self._floor = self._closed.popleft()
                self._evict(self._floor)
        if self._floor is not None and index <= self._floor:
            return
        key = _key_of(event)
        frames.freeze()
        routing = Event(
            event.kind,
            {},
            event.validated,
            index,
            known_routes=event.known_routes,
            source=frames.message,
        )
        entry = Entry(index, routing, frames, key)
        self._entries.append(entry)
        self._nbytes += frames.nbytes
        self._index(entry, event)
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
    def resumable_to(self) -> int | None:
        """The largest ``since_ledger`` served: the newest ledger closed, or
        :attr:`resumable_from` once every closed ledger has left (one ledger bigger than
        ``max_bytes``); None before the first ledger. Past it there is nothing to
        replay yet: a resume from there is a mistake, not an empty success."""
        return self._closed[-1] if self._closed else self._floor

    @property
    def latest(self) -> int | None:
        return self._closed[-1] if self._closed else None

    def complete_through(self) -> int | None:
        """The newest ledger whose every message is here: the latest, once as many of
        its transactions as its ``txn_count`` arrived (they follow its ``ledgerClosed``),
        else the one before. ``since_ledger`` of it resumes with nothing lost."""
        latest = self.latest
        if latest is None:
            return None
        ledger = self._by_index.get(latest)
        counted = ledger is not None and ledger.expected is not None
        return latest if counted and ledger is not None and ledger.complete else latest - 1

    def since(self, since_ledger: int) -> Iterator[Entry]:
        """Every kept message of the ledgers after ``since_ledger``, in publish order."""
        return (entry for entry in self._entries if entry.ledger_index > since_ledger)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """The bytes of the kept frames (v2; what resumes send)."""
        return self._nbytes

    # --- lookups --------------------------------------------------------------------

    def closed(self, index: int) -> Entry | None:
        """The ``ledgerClosed`` of ledger ``index``, if the history holds that ledger."""
        ledger = self._by_index.get(index)
        return None if ledger is None else ledger.closed

    def transactions(self, index: int) -> list[Entry]:
        """The validated transactions of ledger ``index`` kept here, in publish order."""
        ledger = self._by_index.get(index)
        return [] if ledger is None else list(ledger.transactions)

    def complete(self, index: int) -> bool:
        """Whether ledger ``index`` is here with all of its ``txn_count`` transactions."""
        ledger = self._by_index.get(index)
        return ledger is not None and ledger.complete

    def index_of(self, ledger_hash: str) -> int | None:
        return self._by_hash.get(ledger_hash.upper())

    def transaction(self, tx_hash: str) -> Entry | None:
        return self._transactions.get(tx_hash.upper())

    def tail(self) -> Tail | None:
        """The last ledger closed here and what of it was published, or None."""
        latest = self.latest
        ledger = None if latest is None else self._by_index.get(latest)
        if latest is None or ledger is None:
            return None
        return Tail(
            latest,
            frozenset(entry.key for entry in ledger.transactions if entry.key),
            ledger.book_changes is not None,
            ledger.complete,
        )

    def _index(self, entry: Entry, event: Event) -> None:
        ledger = self._by_index.setdefault(entry.ledger_index, _Ledger())
        if event.kind == "ledgerClosed":
            ledger.closed = entry
            count = event.body.get("txn_count")
            ledger.expected = count if isinstance(count, int) else None
            if entry.key:
                self._by_hash[entry.key] = entry.ledger_index
        elif event.kind == "transaction":
            ledger.transactions.append(entry)
            if entry.key:
                self._transactions[entry.key] = entry
        elif event.kind == "bookChanges":
            ledger.book_changes = entry
        if ledger.complete and not ledger.announced:
            ledger.announced = True
            if self.on_complete is not None:
                self.on_complete(entry.ledger_index)

    def _evict(self, upto: int) -> None:
        entries = self._entries
        while entries and entries[0].ledger_index <= upto:
            self._nbytes -= entries.popleft().frames.nbytes
        # Stragglers (a late validation of an evicted ledger) go here too.
        if any(entry.ledger_index <= upto for entry in entries):
            self._nbytes -= sum(e.frames.nbytes for e in entries if e.ledger_index <= upto)
            self._entries = deque(e for e in entries if e.ledger_index > upto)
        for index in [index for index in self._by_index if index <= upto]:
            ledger = self._by_index.pop(index)
            if ledger.closed is not None and ledger.closed.key:
                self._by_hash.pop(ledger.closed.key, None)
            for tx in ledger.transactions:
                if tx.key and self._transactions.get(tx.key) is tx:
                    del self._transactions[tx.key]


_KEY_FIELDS = {"transaction": "hash", "ledgerClosed": "ledger_hash"}


def _key_of(event: Event) -> str | None:
    name = _KEY_FIELDS.get(event.kind)
    value = event.body.get(name) if name else None
    return value.upper() if isinstance(value, str) else None
