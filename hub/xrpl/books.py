"""Order-book pages: what a book snapshot holds, computed without I/O.

A ``subscribe`` with ``snapshot: true`` answers the current page of each book
(:mod:`hub.core.snapshots`), read from whichever source holds books: the simulator from
the books it keeps (:mod:`hub.sources.simbooks`, with :func:`page`), an upstream by its
``book_offers`` (:class:`hub.links.forward.UpstreamBooks`).

The page is rippled's (``NetworkOPs::getBookPage``): the offers whose TakerGets is the
entry's ``taker_gets`` and TakerPays its ``taker_pays`` (the book_offers convention, the
opposite of what the stream matches), best quality first, each with ``quality``, the
first offer of each owner with ``owner_funds``, and ``taker_gets_funded`` /
``taker_pays_funded`` where the owner cannot fund the whole offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal
from typing import Any

from msgspec import Struct

from hub.xrpl.accounts import XRP, Issue, amount_issue
from hub.xrpl.ledgerdata import value_text

__all__ = ["BookPage", "BookQuery", "RestingOffer", "issue_json", "page", "quality"]

_QUALITY = Context(prec=16, rounding=ROUND_HALF_UP)
_VALUE = Context(prec=16, rounding=ROUND_DOWN)
_ONE = Decimal(1)


class BookQuery(Struct, frozen=True, kw_only=True):
    """One page to fetch: offers whose TakerGets is ``taker_gets`` and TakerPays
    ``taker_pays``, in ``domain`` ("" for the open book), as ``taker`` sees them, at
    most ``limit``, from the ledger the hub published last (``ledger_index``)."""

    taker_gets: Issue
    taker_pays: Issue
    domain: str = ""
    taker: str | None = None
    limit: int = 60
    ledger_index: int | None = None


class BookPage(Struct):
    """The offers of one page and the ledger they were read from (None if unknown)."""

    offers: list[dict[str, Any]]
    ledger_index: int | None = None


@dataclass(frozen=True, slots=True)
class RestingOffer:
    """An Offer ledger entry as JSON, and the quality of its book directory (TakerPays
    over TakerGets when it was placed; a partly taken offer keeps it)."""

    fields: Mapping[str, Any]
    quality: Decimal


def amount_value(amount: object) -> Decimal:
    """An amount's value as rippled computes with it: drops for XRP."""
    if isinstance(amount, str):
        return Decimal(amount)
    if isinstance(amount, Mapping):
        return Decimal(str(amount["value"]))
    raise ValueError(f"not an amount: {amount!r}")


def quality(taker_pays: object, taker_gets: object) -> Decimal:
    """rippled's offer quality, TakerPays / TakerGets in 16 significant digits."""
    return _QUALITY.divide(amount_value(taker_pays), amount_value(taker_gets))


def page(
    offers: Iterable[RestingOffer],
    query: BookQuery,
    funds: Callable[[str, Issue], Decimal],
    transfer_rate: Callable[[str], Decimal] = lambda issuer: _ONE,
) -> list[dict[str, Any]]:
    """rippled's getBookPage over ``offers`` (the book's resting offers, oldest first).

    ``funds(owner, issue)`` is what an owner holds of the book's TakerGets asset (XRP:
    its balance above the reserve, in drops); ``transfer_rate(issuer)`` the issuer's
    TransferRate as a factor (1 for none). As in rippled, the offers of an issuer
    selling its own asset are fully funded, a transfer fee is charged unless the taker
    is the issuer, and each owner's funds run down over its offers in book order.
    """
    book = sorted(
        (offer for offer in offers if _in_book(offer.fields, query)),
        key=lambda offer: offer.quality,
    )
    issuer = query.taker_gets[1]
    rate = transfer_rate(issuer) if issuer else _ONE
    left: dict[str, Decimal] = {}
    out = []
    for offer in book[: query.limit]:
        fields = offer.fields
        owner = fields["Account"]
        gets, pays = amount_value(fields["TakerGets"]), amount_value(fields["TakerPays"])
        first = owner not in left or owner == issuer
        if owner == issuer:
            owned = gets
        elif owner in left:
            owned = left[owner]
        else:
            owned = max(Decimal(0), funds(owner, query.taker_gets))
        charged = rate != _ONE and query.taker != issuer and owner != issuer
        can_give = _VALUE.divide(owned, rate) if charged else owned
        entry = dict(fields)
        funded = gets
        if can_give < gets:
            funded = _round(can_give, query.taker_gets)
            entry["taker_gets_funded"] = _amount(fields["TakerGets"], funded)
            paid = min(pays, _round(_VALUE.multiply(funded, offer.quality), query.taker_pays))
            entry["taker_pays_funded"] = _amount(fields["TakerPays"], paid)
        left[owner] = owned - (min(owned, _VALUE.multiply(funded, rate)) if charged else funded)
        entry["quality"] = value_text(offer.quality)
        if first:
            entry["owner_funds"] = _text(owned, query.taker_gets)
        out.append({key: entry[key] for key in sorted(entry)})
    return out


def _in_book(fields: Mapping[str, Any], query: BookQuery) -> bool:
    try:
        gets, pays = amount_issue(fields["TakerGets"]), amount_issue(fields["TakerPays"])
    except (KeyError, ValueError):
        return False
    domain = fields.get("DomainID")
    domain = domain.upper() if isinstance(domain, str) else ""
    return gets == query.taker_gets and pays == query.taker_pays and domain == query.domain


def _round(value: Decimal, issue: Issue) -> Decimal:
    return value.to_integral_value(ROUND_DOWN) if issue[0] == XRP else value


def _text(value: Decimal, issue: Issue) -> str:
    return str(int(value)) if issue[0] == XRP else value_text(value)


def _amount(like: object, value: Decimal) -> str | dict[str, str]:
    """An amount of ``like``'s asset worth ``value``, in rippled's JSON."""
    if isinstance(like, str):
        return str(int(value))
    assert isinstance(like, Mapping)
    return {"currency": like["currency"], "issuer": like["issuer"], "value": value_text(value)}


def issue_json(issue: Issue) -> dict[str, str]:
    """An issue as a book_offers side: ``{"currency": "XRP"}`` or currency and issuer."""
    currency, issuer = issue
    return {"currency": currency} if currency == XRP else {"currency": currency, "issuer": issuer}
