"""Order-book snapshots: what ``subscribe`` answers for ``books`` with ``snapshot: true``.

rippled reads the page from its last published ledger (``NetworkOPs::getBookPage``,
called by ``doSubscribe``); the hub has no ledger of its own, so it asks whichever
source holds books through one small :class:`BookSource` protocol, and the method does
not know which source answers: the simulator from the books it keeps
(:mod:`hub.sources.simbooks`), an upstream relay by asking the upstream's
``book_offers`` (:class:`UpstreamBooks`). With neither, snapshots are ``notSupported``.

The page is rippled's: the offers whose TakerGets is the entry's ``taker_gets`` and
TakerPays its ``taker_pays`` (the book_offers convention, the opposite of what the
stream matches), best quality first, each with ``quality``, the first offer of each
owner with ``owner_funds``, and ``taker_gets_funded``/``taker_pays_funded`` where the
owner cannot fund the whole offer. :func:`page` computes it without I/O. ``both``
answers ``bids`` (that book) and ``asks`` (the reverse one) instead of ``offers``; the
pages of several entries are appended in request order, as rippled does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal
from typing import Any, Protocol

from msgspec import Struct

from hub.core.subscriptions import BookSub
from hub.wire.errors import ERRORS, RPCError
from hub.xrpl.accounts import XRP, Issue, amount_issue
from hub.xrpl.ledgerdata import value_text

__all__ = [
    "BookPage",
    "BookQuery",
    "BookSource",
    "RestingOffer",
    "Snapshot",
    "UpstreamBooks",
    "page",
    "quality",
    "queries",
    "take_snapshot",
]

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


class BookSource(Protocol):
    """Anything that can answer a book page: the simulator's books, an upstream."""

    async def book_page(self, query: BookQuery) -> BookPage | None:
        """The page, or None while the source has no ledger yet (rippled then answers
        the entry with no offers field at all)."""
        ...


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


Forward = Callable[[dict[str, Any], int], Awaitable[dict[str, Any]]]


class UpstreamBooks:
    """Book pages from the upstream a relay follows: its ``book_offers`` at the ledger
    the hub published last (``validated`` before the first), answered as it answers.

    ``forward`` is :meth:`hub.links.forward.Forwarder.forward`: a request and an API version
    in, the upstream's whole reply out.
    """

    def __init__(self, forward: Forward) -> None:
        self._forward = forward

    async def book_page(self, query: BookQuery) -> BookPage:
        request: dict[str, Any] = {
            "command": "book_offers",
            "taker_gets": issue_json(query.taker_gets),
            "taker_pays": issue_json(query.taker_pays),
            "limit": query.limit,
            "ledger_index": query.ledger_index if query.ledger_index is not None else "validated",
        }
        if query.taker is not None:
            request["taker"] = query.taker
        if query.domain:
            request["domain"] = query.domain
        reply = await self._forward(request, 2)
        result = reply.get("result")
        if reply.get("status") != "success" or not isinstance(result, dict):
            raise _upstream_error(reply)
        offers = result.get("offers")
        if not isinstance(offers, list):
            raise RPCError("failedToForward", "The upstream's book_offers had no offers.")
        index = result.get("ledger_index")
        return BookPage(offers, index if type(index) is int else None)


def _upstream_error(reply: Mapping[str, Any]) -> RPCError:
    token = reply.get("error")
    message = reply.get("error_message")
    text = f"The upstream answered book_offers with {token}: {message}"
    if isinstance(token, str) and token in ERRORS:
        return RPCError(token, text)
    return RPCError("failedToForward", text)
