"""Book snapshots for a subscribe: which pages to ask for, asked of a book source and
appended in order (rippled's Book_test.cpp cases)."""

from __future__ import annotations

from typing import Any

from hub.core.snapshots import queries, take_snapshot
from hub.core.subscriptions import parse_change
from hub.xrpl.accounts import Issue
from hub.xrpl.books import BookPage, BookQuery
from tests.helpers.books import USD, USD_SPEC, XRP, XRP_SPEC
from tests.helpers.samples import ALICE


def _entries(*books: dict[str, Any]) -> Any:
    return parse_change({"books": list(books)}, admin=False).books


def test_queries_one_side_and_both() -> None:
    """Book_test.cpp: a snapshot of taker_gets XRP / taker_pays USD lists the offers
    whose TakerGets is XRP (the bids); with ``both`` the asks are the reverse book."""
    (one,) = _entries({"taker_gets": XRP_SPEC, "taker_pays": USD_SPEC, "taker": ALICE})
    ((field, query),) = queries(one, 7)
    assert field == "offers"
    assert (query.taker_gets, query.taker_pays) == (XRP, USD)
    assert (query.taker, query.limit, query.ledger_index) == (ALICE, 60, 7)
    (both,) = _entries({"taker_gets": XRP_SPEC, "taker_pays": USD_SPEC, "both": True})
    (bids, bid_query), (asks, ask_query) = queries(both, None)
    assert (bids, bid_query.taker_gets, bid_query.taker_pays) == ("bids", XRP, USD)
    assert (asks, ask_query.taker_gets, ask_query.taker_pays) == ("asks", USD, XRP)


class FakeSource:
    def __init__(self, pages: dict[tuple[Issue, Issue], BookPage | None]) -> None:
        self.pages = pages
        self.asked: list[BookQuery] = []

    async def book_page(self, query: BookQuery) -> BookPage | None:
        self.asked.append(query)
        return self.pages[(query.taker_gets, query.taker_pays)]


async def test_snapshots_of_several_books_are_appended_in_order() -> None:
    """Book_test.cpp testMultipleBooksBothSidesOffersInBook: two books with ``both``
    give two bids and two asks, each in the order the books were asked."""
    cny = {"currency": "CNY", "issuer": ALICE}
    jpy = {"currency": "JPY", "issuer": ALICE}
    source = FakeSource(
        {
            (XRP, USD): BookPage([{"n": "xrp-bid"}], 9),
            (USD, XRP): BookPage([{"n": "usd-ask"}], 9),
            (("CNY", ALICE), ("JPY", ALICE)): BookPage([{"n": "cny-bid"}], 8),
            (("JPY", ALICE), ("CNY", ALICE)): BookPage([{"n": "jpy-ask"}], 9),
        }
    )
    subs = _entries(
        {"taker_gets": XRP_SPEC, "taker_pays": USD_SPEC, "both": True},
        {"taker_gets": cny, "taker_pays": jpy, "both": True},
    )
    snap = await take_snapshot(source, subs, 9)
    assert snap.result == {
        "bids": [{"n": "xrp-bid"}, {"n": "cny-bid"}],
        "asks": [{"n": "usd-ask"}, {"n": "jpy-ask"}],
    }
    assert snap.ledger_index == 8
    assert all(query.ledger_index == 9 for query in source.asked)


async def test_a_source_without_a_ledger_adds_no_field() -> None:
    source = FakeSource({(XRP, USD): None})
    subs = _entries({"taker_gets": XRP_SPEC, "taker_pays": USD_SPEC})
    snap = await take_snapshot(source, subs, None)
    assert snap.result == {}
    assert snap.ledger_index is None
