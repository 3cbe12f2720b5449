"""Book snapshots without I/O: rippled's getBookPage and Book_test.cpp's cases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hub.core.subscriptions import parse_change
from hub.wire.errors import RPCError
from hub.xrpl.accounts import Issue
from hub.xrpl.books import (
    BookPage,
    BookQuery,
    RestingOffer,
    UpstreamBooks,
    page,
    quality,
    queries,
    take_snapshot,
)
from tests.helpers.samples import ALICE, BOB, CAROL, GATEWAY

USD: Issue = ("USD", GATEWAY)


XRP: Issue = ("XRP", "")


def usd(value: str) -> dict[str, str]:
    return {"currency": "USD", "issuer": GATEWAY, "value": value}


def offer(owner: str, gets: Any, pays: Any, sequence: int = 5, **extra: Any) -> RestingOffer:
    fields = {
        "Account": owner,
        "BookDirectory": "D" * 64,
        "BookNode": "0",
        "Flags": 0,
        "LedgerEntryType": "Offer",
        "OwnerNode": "0",
        "Sequence": sequence,
        "TakerGets": gets,
        "TakerPays": pays,
        **extra,
    }
    return RestingOffer(fields, quality(pays, gets))


def holdings(table: dict[str, str]) -> Any:
    return lambda owner, issue: Decimal(table[owner])


SELL_USD = BookQuery(taker_gets=USD, taker_pays=XRP, taker=CAROL)


def test_track_offers() -> None:
    """Book_test.cpp testTrackOffers: gw charges a 1.1 transfer rate; alice (100 USD)
    offers 10 USD for 4000 XRP, bob (50 USD) 5 USD for 2000 XRP."""
    resting = [
        offer(ALICE, usd("10"), "4000000000"),
        offer(BOB, usd("5"), "2000000000"),
    ]
    got = page(resting, SELL_USD, holdings({ALICE: "100", BOB: "50"}), lambda _: Decimal("1.1"))
    assert [o["Account"] for o in got] == [ALICE, BOB]
    first, second = got
    assert first["owner_funds"] == "100"
    assert first["quality"] == "400000000"
    assert first["TakerGets"] == usd("10")
    assert first["TakerPays"] == "4000000000"
    assert "taker_gets_funded" not in first
    assert second["owner_funds"] == "50"
    assert second["quality"] == "400000000"
    assert list(first) == sorted(first)  # rippled's JSON writer orders keys


def test_best_quality_first_then_oldest_and_limit() -> None:
    resting = [
        offer(ALICE, usd("1"), "500000000", 1),  # 500 XRP per USD
        offer(BOB, usd("1"), "400000000", 2),  # 400: the best for a taker
        offer(CAROL, usd("2"), "800000000", 3),  # 400 too, but placed later
    ]
    funds = holdings({ALICE: "9", BOB: "9", CAROL: "9"})
    assert [o["Sequence"] for o in page(resting, SELL_USD, funds)] == [2, 3, 1]
    limited = BookQuery(taker_gets=USD, taker_pays=XRP, limit=2)
    assert [o["Sequence"] for o in page(resting, limited, funds)] == [2, 3]


def test_only_the_asked_book_and_domain() -> None:
    domain = "AB" * 32
    resting = [
        offer(ALICE, usd("1"), "5"),
        offer(BOB, "5", usd("1")),  # the other side of the market
        offer(CAROL, usd("1"), "5", DomainID=domain),
    ]
    funds = holdings({ALICE: "9", BOB: "9", CAROL: "9"})
    assert [o["Account"] for o in page(resting, SELL_USD, funds)] == [ALICE]
    in_domain = BookQuery(taker_gets=USD, taker_pays=XRP, domain=domain)
    assert [o["Account"] for o in page(resting, in_domain, funds)] == [CAROL]


def test_underfunded_offers_show_what_is_funded() -> None:
    got = page([offer(ALICE, usd("10"), "4000000000")], SELL_USD, holdings({ALICE: "5"}))
    (only,) = got
    assert only["owner_funds"] == "5"
    assert only["taker_gets_funded"] == usd("5")
    assert only["taker_pays_funded"] == "2000000000"


def test_transfer_fee_limits_what_an_owner_can_give() -> None:
    rate = lambda _: Decimal("1.25")  # noqa: E731
    (charged,) = page([offer(ALICE, usd("10"), "4000")], SELL_USD, holdings({ALICE: "5"}), rate)
    assert charged["taker_gets_funded"] == usd("4")
    assert charged["taker_pays_funded"] == "1600"
    # A taker that is the issuer pays no transfer fee to itself.
    issuer_takes = BookQuery(taker_gets=USD, taker_pays=XRP, taker=GATEWAY)
    (free,) = page([offer(ALICE, usd("10"), "4000")], issuer_takes, holdings({ALICE: "5"}), rate)
    assert free["taker_gets_funded"] == usd("5")


def test_owner_funds_run_down_over_its_offers() -> None:
    resting = [offer(ALICE, usd("10"), "40", 1), offer(ALICE, usd("10"), "40", 2)]
    first, second = page(resting, SELL_USD, holdings({ALICE: "15"}))
    assert first["owner_funds"] == "15"
    assert "taker_gets_funded" not in first
    assert "owner_funds" not in second
    assert second["taker_gets_funded"] == usd("5")
    assert second["taker_pays_funded"] == "20"


def test_an_issuer_selling_its_own_asset_is_fully_funded() -> None:
    resting = [offer(GATEWAY, usd("10"), "40", 1), offer(GATEWAY, usd("7"), "28", 2)]
    got = page(resting, SELL_USD, holdings({}))
    assert [o["owner_funds"] for o in got] == ["10", "7"]
    assert all("taker_gets_funded" not in o for o in got)


def test_xrp_side_in_drops() -> None:
    sell_xrp = BookQuery(taker_gets=XRP, taker_pays=USD)
    (only,) = page([offer(ALICE, "3000000", usd("3"))], sell_xrp, holdings({ALICE: "1000001"}))
    assert only["owner_funds"] == "1000001"
    assert only["quality"] == "0.000001"
    assert only["taker_gets_funded"] == "1000001"
    assert only["taker_pays_funded"] == usd("1.000001")


def test_negative_funds_count_as_none() -> None:
    (only,) = page([offer(ALICE, usd("1"), "4")], SELL_USD, holdings({ALICE: "-3"}))
    assert only["owner_funds"] == "0"
    assert only["taker_gets_funded"] == usd("0")


def _entries(*books: dict[str, Any]) -> Any:
    return parse_change({"books": list(books)}, admin=False).books


XRP_SPEC = {"currency": "XRP"}


USD_SPEC = {"currency": "USD", "issuer": GATEWAY}


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


async def test_upstream_books_asks_book_offers() -> None:
    sent: list[tuple[dict[str, Any], int]] = []

    async def forward(body: dict[str, Any], version: int) -> dict[str, Any]:
        sent.append((body, version))
        result = {"offers": [{"Account": ALICE}], "ledger_index": 12, "validated": True}
        return {"status": "success", "type": "response", "result": result}

    query = BookQuery(taker_gets=USD, taker_pays=XRP, taker=BOB, limit=5, ledger_index=12)
    got = await UpstreamBooks(forward).book_page(query)
    assert got == BookPage([{"Account": ALICE}], 12)
    assert sent == [
        (
            {
                "command": "book_offers",
                "taker_gets": USD_SPEC,
                "taker_pays": XRP_SPEC,
                "limit": 5,
                "ledger_index": 12,
                "taker": BOB,
            },
            2,
        )
    ]
    domain = BookQuery(taker_gets=XRP, taker_pays=USD, domain="AB" * 32)
    await UpstreamBooks(forward).book_page(domain)
    assert sent[-1][0]["ledger_index"] == "validated"
    assert sent[-1][0]["domain"] == "AB" * 32
    assert "taker" not in sent[-1][0]


@pytest.mark.parametrize(
    ("reply", "token"),
    [
        (
            {"status": "error", "error": "lgrNotFound", "error_message": "ledgerNotFound"},
            "lgrNotFound",
        ),
        ({"status": "error", "error": "noNetwork"}, "failedToForward"),
        ({"status": "success", "result": {"offers": "none"}}, "failedToForward"),
    ],
)
async def test_upstream_books_errors(reply: dict[str, Any], token: str) -> None:
    async def forward(body: dict[str, Any], version: int) -> dict[str, Any]:
        return reply

    with pytest.raises(RPCError) as info:
        await UpstreamBooks(forward).book_page(SELL_USD)
    assert info.value.token == token
