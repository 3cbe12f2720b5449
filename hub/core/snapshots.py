"""Order-book snapshots: what ``subscribe`` answers for ``books`` with ``snapshot: true``.

rippled reads the page from its last published ledger (``NetworkOPs::getBookPage``,
called by ``doSubscribe``); the hub has no ledger of its own, so it asks whichever
source holds books through the :class:`~hub.core.ports.BookSource` port, and the method
does not know which source answers. With none, snapshots are ``notSupported``. ``both``
answers ``bids`` (that book) and ``asks`` (the reverse one) instead of ``offers``; the
pages of several entries are appended in request order, as rippled does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.core.ports import BookSource
from hub.core.subscriptions import BookSub
from hub.xrpl.accounts import Issue
from hub.xrpl.books import BookQuery


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a subscribe's snapshots add to its result, and the oldest ledger read."""

    result: dict[str, list[dict[str, Any]]]
    ledger_index: int | None


def queries(sub: BookSub, ledger_index: int | None) -> list[tuple[str, BookQuery]]:
    """The result fields and pages one ``books`` entry's snapshot is made of."""
    in_cur, in_iss, out_cur, out_iss, domain = sub.book

    def query(gets: Issue, pays: Issue) -> BookQuery:
        return BookQuery(
            taker_gets=gets,
            taker_pays=pays,
            domain=domain,
            taker=sub.taker,
            limit=sub.limit,
            ledger_index=ledger_index,
        )

    bids = query((out_cur, out_iss), (in_cur, in_iss))
    if not sub.both:
        return [("offers", bids)]
    return [("bids", bids), ("asks", query((in_cur, in_iss), (out_cur, out_iss)))]


async def take_snapshot(
    source: BookSource, subs: Sequence[BookSub], ledger_index: int | None
) -> Snapshot:
    """Every snapshot a subscribe asked for, fields merged in request order."""
    result: dict[str, list[dict[str, Any]]] = {}
    read: list[int] = []
    for sub in subs:
        for field, query in queries(sub, ledger_index):
            got = await source.book_page(query)
            if got is None:
                continue
            result.setdefault(field, []).extend(got.offers)
            if got.ledger_index is not None:
                read.append(got.ledger_index)
    return Snapshot(result, min(read) if read else None)
