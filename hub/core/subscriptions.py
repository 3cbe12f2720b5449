"""Who is subscribed to what: rippled's streams, accounts and order books.

A subscribe or unsubscribe request is parsed and validated whole before anything
changes (Clio's rule; rippled half-applies). The registry is an index from each stream,
account and book to its subscribers, plus each subscriber's own set so a closed
connection is forgotten in one call. Both directions are idempotent, and unsubscribe is
the exact inverse of subscribe, ``book_changes`` included (unlike XRPLF/rippled#7470).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from hub.wire.errors import RPCError
from hub.xrpl.accounts import Book, BookSpecError, book_key, parse_domain, reversed_book
from hub.xrpl.addresses import is_classic_address

STREAMS: Final = frozenset(
    {
        "ledger",
        "transactions",
        "transactions_proposed",
        "validations",
        "book_changes",
        "server",
        "consensus",
        "manifests",
        "peer_status",
    }
)
ADMIN_STREAMS: Final = frozenset({"peer_status"})
_STREAM_ALIASES: Final = {"rt_transactions": "transactions_proposed"}

SNAPSHOT_LIMIT: Final = 60
"""Offers per side in a book snapshot: rippled's ``bookOffers.rDefault``."""
MAX_SNAPSHOT_LIMIT: Final = 100
"""The most a ``books`` entry's ``limit`` may ask for: rippled's ``bookOffers.rmax``."""

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class BookSub:
    """One ``books`` entry: the subscriber's book (``in`` = taker_pays, ``out`` =
    taker_gets, as :func:`~hub.xrpl.accounts.book_key`), whether its reverse is wanted too,
    and what a snapshot of it asks for."""

    book: Book
    both: bool = False
    snapshot: bool = False
    taker: str | None = None
    limit: int = SNAPSHOT_LIMIT

    def books(self) -> tuple[Book, ...]:
        return (self.book, reversed_book(self.book)) if self.both else (self.book,)


@dataclass(slots=True)
class Change:
    """A validated subscribe or unsubscribe request."""

    streams: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    accounts_proposed: frozenset[str] = frozenset()
    books: tuple[BookSub, ...] = ()

    @property
    def size(self) -> int:
        return (
            len(self.streams) + len(self.accounts) + len(self.accounts_proposed) + len(self.books)
        )

    @property
    def snapshots(self) -> tuple[BookSub, ...]:
        """The ``books`` entries that asked for the current book (``snapshot: true``)."""
        return tuple(sub for sub in self.books if sub.snapshot)


def wants_snapshot(params: Mapping[str, Any]) -> bool:
    """Whether a request asks for any book snapshot (before it is validated)."""
    books = params.get("books")
    return isinstance(books, list) and any(
        isinstance(spec, dict) and (spec.get("snapshot") or spec.get("state_now")) for spec in books
    )


Work = tuple[str, int]
"""``(cost kind, units)``: work a parse is about to do, yielded before it does it."""

CHUNK: Final = 256
"""Addresses or book entries checked between two yields of :func:`change_steps`."""

T = TypeVar("T")


def parse_change(params: Mapping[str, Any], *, admin: bool) -> Change:
    """Validate a whole (un)subscribe request; raises :class:`RPCError`, changes nothing."""
    return drive(change_steps(params, admin=admin), lambda kind, units: None)


def drive(steps: Generator[Work, None, T], spend: Callable[[str, int], None]) -> T:
    """Run a parse to its end in one go, telling ``spend`` of each piece of work first."""
    while True:
        try:
            work = next(steps)
        except StopIteration as done:
            result: T = done.value
            return result
        spend(*work)


def change_steps(
    params: Mapping[str, Any], *, admin: bool, limit: int | None = None, held: Own | None = None
) -> Generator[Work, None, Change]:
    """Validate a whole (un)subscribe request, yielding each piece of work before doing
    it: the caller charges it (and may stop, or let others run) before it costs anything.

    The shape of every field is checked first, and with ``room`` (the subscriptions the
    connection may still add) the accounts the request would add are counted before a
    single address is decoded, so a request far over the limit costs next to nothing.
    ``held`` is the connection's own subscriptions: what it holds already is not new.
    """
    if "url" in params:
        raise RPCError(
            "noPermission" if not admin else "notSupported",
            None if not admin else "Callback URLs are not supported by this hub.",
        )
    streams = _streams(params.get("streams"), admin=admin) if "streams" in params else frozenset()
    lists = {key: _account_list(params, key) for key in _ACCOUNT_FIELDS}
    entries = _book_list(params.get("books")) if "books" in params else []
    if limit is not None:
        _fits(lists, held or Own(), limit)
    yield ("stream", len(streams))
    accounts = yield from _addresses(lists["accounts"], "accounts")
    proposed = yield from _addresses(lists["accounts_proposed"], "accounts_proposed")
    proposed |= yield from _addresses(lists["rt_accounts"], "rt_accounts")
    books = yield from _book_entries(entries)
    yield ("book", sum(sub.both for sub in books))  # the reverse book of each 'both'
    return Change(streams, accounts, proposed, books)


def heavy(params: Mapping[str, Any]) -> bool:
    """Whether a request names more addresses and books than one :data:`CHUNK`: then
    its parse is paced (:func:`change_steps` driven with yields between chunks)."""
    named = sum(
        len(value) for key in (*_ACCOUNT_FIELDS, "books")
        if isinstance(value := params.get(key), list)
    )  # fmt: skip
    return named > CHUNK


_ACCOUNT_FIELDS: Final = ("accounts", "accounts_proposed", "rt_accounts")


def _fits(lists: Mapping[str, list[Any]], held: Own, limit: int) -> None:
    """Refuse a request whose new accounts alone pass ``limit``, before decoding any."""
    new = {item for item in lists["accounts"] if isinstance(item, str)} - held.accounts
    proposed = {
        item for key in ("accounts_proposed", "rt_accounts") for item in lists[key]
        if isinstance(item, str)
    } - held.accounts_proposed  # fmt: skip
    if held.size + len(new) + len(proposed) > limit:
        raise too_many(limit)


def too_many(limit: int) -> RPCError:
    return RPCError("invalidParams", f"Too many subscriptions on one connection (limit {limit}).")


def _streams(value: object, *, admin: bool) -> frozenset[str]:
    if not isinstance(value, list):
        raise RPCError("invalidParams", "Field 'streams' must be an array.")
    names = set()
    for item in value:
        if not isinstance(item, str):  # rippled: a stream that is not a string is malformed
            raise RPCError("malformedStream", "Stream malformed: stream names are strings.")
        name = _STREAM_ALIASES.get(item, item)
        if name not in STREAMS:
            raise RPCError("malformedStream", f"Stream malformed: unknown stream {_short(item)}.")
        if name in ADMIN_STREAMS and not admin:
            raise RPCError("noPermission")
        names.add(name)
    return frozenset(names)


def _short(text: str, limit: int = 40) -> str:
    """A client's string for an error message, quoted and cut to ``limit`` characters:
    the reply echoes the request already, the message need not say it all again."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _account_list(params: Mapping[str, Any], key: str) -> list[Any]:
    if key not in params:
        return []
    value = params[key]
    if not isinstance(value, list):
        raise RPCError("invalidParams", f"Field '{key}' must be an array.")
    if not value:
        raise RPCError("actMalformed", f"Field '{key}' is empty.")
    return value


def _addresses(values: list[Any], key: str) -> Generator[Work, None, frozenset[str]]:
    for start in range(0, len(values), CHUNK):
        chunk = values[start : start + CHUNK]
        yield ("account", len(chunk))
        for item in chunk:
            if not is_classic_address(item):
                shown = _short(item) if isinstance(item, str) else f"a {type(item).__name__}"
                raise RPCError("actMalformed", f"Account malformed: {shown} in '{key}'.")
    return frozenset(values)


def _book_list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise RPCError("invalidParams", "Field 'books' must be an array.")
    return value


def _book_entries(entries: list[Any]) -> Generator[Work, None, tuple[BookSub, ...]]:
    books: list[BookSub] = []
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start : start + CHUNK]
        yield ("book", len(chunk))
        books.extend(_book_entry(spec, f"books[{start + i}]") for i, spec in enumerate(chunk))
    return tuple(books)


def _book_entry(spec: object, where: str) -> BookSub:
    """One ``books`` entry, checked in rippled's order (``doSubscribe``): shape, then
    taker_pays, taker_gets and the market, then ``taker`` (``badIssuer``) and
    ``domain``; the hub's own checks on the flags and ``limit`` come last."""
    if not isinstance(spec, dict) or "taker_pays" not in spec or "taker_gets" not in spec:
        raise RPCError(
            "invalidParams", f"{where} must be an object with taker_pays and taker_gets."
        )
    for side in ("taker_pays", "taker_gets"):
        if spec[side] is not None and not isinstance(spec[side], dict):
            raise RPCError("invalidParams", f"{where}.{side} must be an object.")
    try:
        book = book_key(spec["taker_gets"], spec["taker_pays"])
        taker = spec.get("taker")
        if "taker" in spec and not is_classic_address(taker):
            raise BookSpecError("badIssuer", "taker is not an account")
        if "domain" in spec:
            in_cur, in_iss, out_cur, out_iss, _ = book
            book = (in_cur, in_iss, out_cur, out_iss, parse_domain(spec["domain"]))
    except BookSpecError as exc:
        raise RPCError(exc.token, f"{where}: {exc}.") from None
    flags: dict[str, bool] = {}
    for name, alias in (("both", "both_sides"), ("snapshot", "state_now")):
        for key in (name, alias):
            if key in spec and not isinstance(spec[key], bool):
                raise RPCError("invalidParams", f"{where}.{key} must be a boolean.")
        flags[name] = bool(spec.get(name) or spec.get(alias))
    limit = spec.get("limit", SNAPSHOT_LIMIT)
    if type(limit) is not int or not 1 <= limit <= MAX_SNAPSHOT_LIMIT:
        raise RPCError("invalidParams", f"{where}.limit must be an integer from 1 to 100.")
    return BookSub(book, flags["both"], flags["snapshot"], taker, limit)


@dataclass(slots=True)
class Own:
    """One subscriber's own subscriptions, the mirror of the index."""

    streams: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    accounts_proposed: set[str] = field(default_factory=set)
    books: set[Book] = field(default_factory=set)

    @property
    def size(self) -> int:
        return (
            len(self.streams) + len(self.accounts) + len(self.accounts_proposed) + len(self.books)
        )

    def added_by(self, change: Change) -> int:
        """How many subscriptions ``change`` would add: what is held already is not new,
        and a ``both`` book is two (the book and its reverse)."""
        keys = {key for sub in change.books for key in sub.books()}
        return (
            len(change.streams - self.streams)
            + len(change.accounts - self.accounts)
            + len(change.accounts_proposed - self.accounts_proposed)
            + len(keys - self.books)
        )


class Subscriptions(Generic[S]):
    """The index from streams, accounts and books to subscribers."""

    def __init__(self) -> None:
        self.streams: dict[str, set[S]] = {name: set() for name in STREAMS}
        self.accounts: dict[str, set[S]] = {}
        self.accounts_proposed: dict[str, set[S]] = {}
        self.books: dict[Book, set[S]] = {}
        self._own: dict[S, Own] = {}

    def own(self, subscriber: S) -> Own:
        return self._own.get(subscriber) or Own()

    def subscribe(self, subscriber: S, change: Change) -> None:
        own = self._own.setdefault(subscriber, Own())
        for name in change.streams:
            self.streams[name].add(subscriber)
        own.streams |= change.streams
        _add(self.accounts, change.accounts, subscriber)
        own.accounts |= change.accounts
        _add(self.accounts_proposed, change.accounts_proposed, subscriber)
        own.accounts_proposed |= change.accounts_proposed
        keys = [key for sub in change.books for key in sub.books()]
        _add(self.books, keys, subscriber)
        own.books.update(keys)

    def unsubscribe(self, subscriber: S, change: Change) -> None:
        own = self._own.get(subscriber)
        if own is None:
            return
        for name in change.streams:
            self.streams[name].discard(subscriber)
        own.streams -= change.streams
        _remove(self.accounts, change.accounts, subscriber)
        own.accounts -= change.accounts
        _remove(self.accounts_proposed, change.accounts_proposed, subscriber)
        own.accounts_proposed -= change.accounts_proposed
        keys = [key for sub in change.books for key in sub.books()]
        _remove(self.books, keys, subscriber)
        own.books.difference_update(keys)
        if not own.size:
            del self._own[subscriber]

    def drop(self, subscriber: S) -> None:
        """Forget everything a subscriber had (its connection closed)."""
        own = self._own.pop(subscriber, None)
        if own is None:
            return
        for name in own.streams:
            self.streams[name].discard(subscriber)
        _remove(self.accounts, own.accounts, subscriber)
        _remove(self.accounts_proposed, own.accounts_proposed, subscriber)
        _remove(self.books, own.books, subscriber)

    def counts(self) -> dict[str, int]:
        """Subscribers per stream, and per kind of filter."""
        out = {name: len(subs) for name, subs in sorted(self.streams.items())}
        out["accounts"] = sum(1 for own in self._own.values() if own.accounts)
        out["accounts_proposed"] = sum(1 for own in self._own.values() if own.accounts_proposed)
        out["books"] = sum(1 for own in self._own.values() if own.books)
        return out


def _add(index: dict[Any, set[S]], keys: Iterable[Any], subscriber: S) -> None:
    for key in keys:
        index.setdefault(key, set()).add(subscriber)


def _remove(index: dict[Any, set[S]], keys: Iterable[Any], subscriber: S) -> None:
    for key in keys:
        subs = index.get(key)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del index[key]
