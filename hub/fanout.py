"""Event to subscribers: route, render once per API version, queue the same bytes.

Nothing here awaits or changes the index: each subscriber's :meth:`Session.send`
appends to its outbox and returns, so one slow client never delays the others.

Duplicates follow rippled and Clio: a subscriber gets a transaction once per matching
kind of subscription (stream, accounts, books), and a validated transaction goes to
both ``transactions`` and ``transactions_proposed``; within the accounts kind
(``accounts`` and ``accounts_proposed`` together) and within books it is sent once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeVar

from .deflate import DeflateParams
from .events import Event
from .render import Frames
from .session import Session
from .subscriptions import Subscriptions

K = TypeVar("K")

STREAM_OF: Final = {
    "ledgerClosed": "ledger",
    "validationReceived": "validations",
    "bookChanges": "book_changes",
    "serverStatus": "server",
    "consensusPhase": "consensus",
    "manifestReceived": "manifests",
    "peerStatusChange": "peer_status",
}


def route(event: Event, subs: Subscriptions[Session]) -> list[Iterable[Session]]:
    """The groups of subscribers an event goes to; a subscriber in two groups gets it twice."""
    if event.kind != "transaction":
        stream = STREAM_OF.get(event.kind)
        return [subs.streams[stream]] if stream else []
    if not event.validated:
        groups: list[Iterable[Session]] = [subs.streams["transactions_proposed"]]
        by_account = _union(subs.accounts_proposed, event.accounts)
        if by_account:
            groups.append(by_account)
        return groups
    groups = [subs.streams["transactions"], subs.streams["transactions_proposed"]]
    by_account = _union(subs.accounts, event.accounts) | _union(
        subs.accounts_proposed, event.accounts
    )
    if by_account:
        groups.append(by_account)
    by_book = _union(subs.books, event.books)
    if by_book:
        groups.append(by_book)
    return groups


def deliver(
    event: Event,
    subs: Subscriptions[Session],
    stamp: float | None = None,
    frames: Frames | None = None,
) -> int:
    """Queue an event for every subscriber it routes to; returns the number of deliveries.

    ``stamp`` is the fan-out time, kept by each outbox for the publish-to-write latency;
    ``frames`` lets the caller keep the rendered frames (the history does).
    """
    frames = frames or Frames(event)
    count = 0
    # Most subscribers share one rendering: look it up again only when it changes.
    version: int | None = None
    deflate: DeflateParams | None = None
    frame = b""
    for group in route(event, subs):
        for session in group:
            if session.stream_version != version or session.deflate is not deflate:
                version, deflate = session.stream_version, session.deflate
                frame = frames(version, deflate)
            session.sink.send(frame, stamp)
            count += 1
    return count


def _union(index: Mapping[K, set[Session]], keys: Iterable[K]) -> set[Session]:
    out: set[Session] = set()
    for key in keys:
        found = index.get(key)
        if found:
            out |= found
    return out
