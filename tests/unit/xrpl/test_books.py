"""Book pages without I/O: rippled's getBookPage and Book_test.cpp's cases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hub.xrpl.books import (
    BookQuery,
    RestingOffer,
    page,
    quality,
)
from tests.helpers.books import SELL_USD, USD, XRP
from tests.helpers.samples import ALICE, BOB, CAROL, GATEWAY


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
