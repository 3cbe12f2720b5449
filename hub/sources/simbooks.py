"""The simulator's order books as a :class:`~hub.xrpl.books.BookSource`.

At every close the simulator keeps what its books held after that ledger — each
resting offer as its ledger entry, and what each owner could pay with — for the last
:data:`KEPT_LEDGERS` ledgers. A snapshot is read from the ledger the hub has published
last, not from the simulator's newest state (which may run a ledger ahead of what
subscribers have been sent), so the snapshot and the stream that follows it meet
without a gap or an overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from hub.xrpl.accounts import Issue
from hub.xrpl.books import BookPage, BookQuery, RestingOffer, page

KEPT_LEDGERS: Final = 32


@dataclass(frozen=True, slots=True)
class BookState:
    """The simulator's books after one ledger."""

    ledger_index: int
    offers: tuple[RestingOffer, ...]
    funds: Mapping[tuple[str, str, str], Decimal] = field(default_factory=dict)
    """(owner, currency, issuer) -> what the owner holds; XRP in drops above reserve."""

    def holds(self, owner: str, issue: Issue) -> Decimal:
        return self.funds.get((owner, *issue), Decimal(0))


class SimulatorBooks:
    """Answers book pages from the states the simulator kept (``states(ledger)``: that
    ledger's state, the newest for None or a ledger no longer kept, None before the
    first close). Its issuers charge no transfer fee, so ``taker`` changes nothing."""

    def __init__(self, states: Callable[[int | None], BookState | None]) -> None:
        self._states = states

    async def book_page(self, query: BookQuery) -> BookPage | None:
        state = self._states(query.ledger_index)
        if state is None:
            return None
        return BookPage(page(state.offers, query, state.holds), state.ledger_index)
