"""The simulator's order books: kept per ledger, answered by page, at rippled's quality."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub.sources.simbooks import KEPT_LEDGERS, SimulatorBooks
from hub.sources.simulator import LedgerSimulator
from hub.xrpl.accounts import amount_issue
from hub.xrpl.books import BookQuery


def test_books_are_kept_per_ledger() -> None:
    sim = LedgerSimulator(seed=21, tx_per_ledger=30)
    assert sim.book_state() is None
    first = sim.ledger_index
    for _ in range(KEPT_LEDGERS + 3):
        sim.close_ledger()
    newest = sim.book_state()
    assert newest is not None
    assert newest.ledger_index == sim.ledger_index - 1
    oldest_kept = sim.ledger_index - KEPT_LEDGERS
    assert sim.book_state(oldest_kept) is not None
    assert sim.book_state(oldest_kept).ledger_index == oldest_kept  # type: ignore[union-attr]
    assert sim.book_state(first) is newest  # no longer kept: the newest instead
    changed = {
        index
        for index in range(oldest_kept + 1, sim.ledger_index)
        if sim.book_state(index).offers != sim.book_state(index - 1).offers  # type: ignore[union-attr]
    }
    assert changed  # offers come and go


def _traded_book(sim: LedgerSimulator) -> tuple[tuple[str, str], tuple[str, str]]:
    state = sim.book_state()
    assert state is not None
    fields = state.offers[0].fields
    return amount_issue(fields["TakerGets"]), amount_issue(fields["TakerPays"])


async def test_simulator_books_answer_pages_of_the_asked_book() -> None:
    sim = LedgerSimulator(seed=22, tx_per_ledger=25)
    books = SimulatorBooks(sim.book_state)
    assert await books.book_page(BookQuery(taker_gets=("XRP", ""), taker_pays=("XRP", ""))) is None
    for _ in range(3):
        sim.close_ledger()
    gets, pays = _traded_book(sim)
    got = await books.book_page(BookQuery(taker_gets=gets, taker_pays=pays, limit=100))
    assert got is not None
    assert got.ledger_index == sim.ledger_index - 1
    assert got.offers
    for offer in got.offers:
        assert amount_issue(offer["TakerGets"]) == gets
        assert amount_issue(offer["TakerPays"]) == pays
        assert offer["LedgerEntryType"] == "Offer"
        assert len(offer["index"]) == 64
        assert offer["PreviousTxnLgrSeq"] > 0
    qualities = [Decimal(o["quality"]) for o in got.offers]
    assert qualities == sorted(qualities)
    owners = [o["Account"] for o in got.offers]
    firsts = [o for i, o in enumerate(got.offers) if o["Account"] not in owners[:i]]
    assert all("owner_funds" in o for o in firsts)
    # A page of an older ledger is that ledger's, not the newest.
    older = await books.book_page(
        BookQuery(taker_gets=gets, taker_pays=pays, ledger_index=sim.ledger_index - 3)
    )
    assert older is not None
    assert older.ledger_index == sim.ledger_index - 3


async def test_simulator_quality_is_rippleds_rate() -> None:
    """quality = TakerPays / TakerGets with XRP in drops, as book_offers reports it."""
    sim = LedgerSimulator(seed=23, tx_per_ledger=10)
    sim.close_ledger()
    state = sim.book_state()
    assert state is not None
    for offer in state.offers:
        fields = offer.fields
        pays, gets = fields["TakerPays"], fields["TakerGets"]
        pays_v = Decimal(pays) if isinstance(pays, str) else Decimal(pays["value"])
        gets_v = Decimal(gets) if isinstance(gets, str) else Decimal(gets["value"])
        if fields["PreviousTxnLgrSeq"] < sim.start_ledger:  # never taken from
            assert offer.quality == pytest.approx(pays_v / gets_v, rel=Decimal("1e-15"))
