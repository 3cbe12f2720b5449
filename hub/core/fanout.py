"""Event to subscribers: route, render once per rendering, queue the same bytes.

Nothing here awaits or changes the index: stream frames are appended once per feed
(:mod:`hub.core.feed`) and accounts and books matches to each subscriber's outbox, so one
slow client never delays the others.

Duplicates follow rippled and Clio: a subscriber gets a transaction once per matching
kind of subscription (stream, accounts, books), and a validated transaction goes to
both ``transactions`` and ``transactions_proposed``; within the accounts kind
(``accounts`` and ``accounts_proposed`` together) and within books it is sent once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from hub.core.feed import Feeds, streams_of
from hub.core.render import Renderings
from hub.core.session import Session, Sink
from hub.core.subscriptions import Subscriptions
from hub.xrpl.events import Event

K = TypeVar("K")


def route(event: Event, subs: Subscriptions[Session]) -> list[Iterable[Session]]:
    """The groups of subscribers an event goes to; a subscriber in two groups gets it twice."""
    groups: list[Iterable[Session]] = [
        subs.streams[name] for name in streams_of(event.kind, event.validated)
    ]
    groups.extend(own_routes(event, subs))
    return groups


def own_routes(event: Event, subs: Subscriptions[Session]) -> list[set[Session]]:
    """The accounts and books groups of an event: each subscriber's own queue, not a feed."""
    if event.kind != "transaction":
        return []
    if not event.validated:
        if not subs.accounts_proposed:
            return []
        by_account = _union(subs.accounts_proposed, event.accounts)
        return [by_account] if by_account else []
    groups = []
    if subs.accounts or subs.accounts_proposed:  # else its routes are not worked out
        by_account = _union(subs.accounts, event.accounts) | _union(
            subs.accounts_proposed, event.accounts
        )
        if by_account:
            groups.append(by_account)
    if subs.books:
        by_book = _union(subs.books, event.books)
        if by_book:
            groups.append(by_book)
    return groups


def deliver(
    event: Event,
    subs: Subscriptions[Session],
    feeds: Feeds,
    touched: set[Sink],
    stamp: float | None = None,
    frames: Renderings | None = None,
) -> int:
    """Queue an event for every subscriber it routes to; returns the number of deliveries.

    Stream subscribers get it through their feed (one append per rendering); accounts
    and books matches are queued to each subscriber, whose sink joins ``touched`` to be
    flushed with the feeds. ``stamp`` is the fan-out time, for the publish-to-write
    latency; ``frames`` lets the caller keep the rendered frames (the history does).
    """
    frames = frames or Renderings(event)
    count = feeds.append(streams_of(event.kind, event.validated), frames, stamp)
    for group in own_routes(event, subs):
        for session in group:
            session.sink.send(frames(session.stream_version, session.deflate), stamp)
            touched.add(session.sink)
            count += 1
    return count


def place(feeds: Feeds, session: Session, streams: Iterable[str]) -> None:
    """Have a session's sink read the feed its ``streams`` render to (none for none), after
    a change of its subscriptions or API version; what the old feed owed it is kept."""
    feed = feeds.feed_for(frozenset(streams), session.stream_version, session.deflate)
    if feeds.of(session.sink) is not feed:
        feeds.follow(session.sink, feed)
        session.sink.follow(feed)


def _union(index: Mapping[K, set[Session]], keys: Iterable[K]) -> set[Session]:
    out: set[Session] = set()
    for key in keys:
        found = index.get(key)
        if found:
            out |= found
    return out
