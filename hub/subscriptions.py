"""Who is subscribed to what: rippled's streams, accounts and order books.

A subscribe or unsubscribe request is parsed and validated whole before anything
changes (Clio's rule; rippled half-applies). The registry is an index from each stream,
account and book to its subscribers, plus each subscriber's own set so a closed
connection is forgotten in one call. Both directions are idempotent, and unsubscribe is
the exact inverse of subscribe, ``book_changes`` included (unlike XRPLF/rippled#7470).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from .accounts import Book, BookSpecError, book_key
from .addresses import is_classic_address
from .errors import RPCError

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

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class BookSub:
    """One ``books`` entry: the book, and whether its reverse is wanted too."""

    book: Book
    both: bool = False

    def books(self) -> tuple[Book, ...]:
        gets_cur, gets_iss, pays_cur, pays_iss = self.book
        return (self.book, (pays_cur, pays_iss, gets_cur, gets_iss)) if self.both else (self.book,)


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


def parse_change(params: Mapping[str, Any], *, admin: bool, subscribe: bool) -> Change:
    """Validate a whole (un)subscribe request; raises :class:`RPCError`, changes nothing."""
    if "url" in params:
        raise RPCError(
            "noPermission" if not admin else "notSupported",
            None if not admin else "Callback URLs are not supported by this hub.",
        )
    streams = _streams(params.get("streams"), admin=admin) if "streams" in params else frozenset()
    accounts = _accounts(params, "accounts")
    proposed = _accounts(params, "accounts_proposed") | _accounts(params, "rt_accounts")
    books = _books(params.get("books"), subscribe=subscribe) if "books" in params else ()
    return Change(streams, accounts, proposed, books)


def _streams(value: object, *, admin: bool) -> frozenset[str]:
    if not isinstance(value, list):
        raise RPCError("invalidParams", "Field 'streams' must be an array.")
    names = set()
    for item in value:
        name = _STREAM_ALIASES.get(item, item) if isinstance(item, str) else item
        if name not in STREAMS:
            raise RPCError("malformedStream", f"Stream malformed: unknown stream {item!r}.")
        if name in ADMIN_STREAMS and not admin:
            raise RPCError("noPermission")
        names.add(name)
    return frozenset(names)


def _accounts(params: Mapping[str, Any], key: str) -> frozenset[str]:
    if key not in params:
        return frozenset()
    value = params[key]
    if not isinstance(value, list):
        raise RPCError("invalidParams", f"Field '{key}' must be an array.")
    if not value:
        raise RPCError("actMalformed", f"Field '{key}' is empty.")
    for item in value:
        if not is_classic_address(item):
            raise RPCError("actMalformed", f"Account malformed: {item!r} in '{key}'.")
    return frozenset(value)


def _books(value: object, *, subscribe: bool) -> tuple[BookSub, ...]:
    if not isinstance(value, list):
        raise RPCError("invalidParams", "Field 'books' must be an array.")
    out = []
    for i, spec in enumerate(value):
        where = f"books[{i}]"
        if not isinstance(spec, dict):
            raise RPCError("invalidParams", f"{where} must be an object.")
        for flag in ("both", "snapshot"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise RPCError("invalidParams", f"{where}.{flag} must be a boolean.")
        if "taker" in spec and not is_classic_address(spec["taker"]):
            raise RPCError("actMalformed", f"Account malformed: {where}.taker.")
        try:
            book = book_key(spec.get("taker_gets", {}), spec.get("taker_pays", {}))
        except BookSpecError as exc:
            raise RPCError(exc.token, f"{where}: {exc}") from None
        if subscribe and spec.get("snapshot"):
            raise RPCError(
                "notSupported", "Book snapshots need order-book state this hub does not hold."
            )
        out.append(BookSub(book, bool(spec.get("both", False))))
    return tuple(out)


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
