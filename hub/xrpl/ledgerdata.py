"""XRP Ledger data as rippled writes it, shared by the simulator and the upstream relay.

``close_time_iso``, token amounts as text (``STAmount::getText``) and the ``changes``
of a ``bookChanges`` message (rippled's ``BookChanges.h``) are computed here once, so
a ledger rebuilt from a ``ledger`` answer reads exactly like one published live.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

RIPPLE_EPOCH_OFFSET = 946_684_800
"""Seconds from the Unix epoch to the Ripple epoch (2000-01-01T00:00:00Z)."""

TES_MESSAGE = "The transaction was applied. Only final in a validated ledger."
"""rippled's ``engine_result_message`` for ``tesSUCCESS``."""

_XRP = "XRP"
_DIV = Context(prec=16, rounding=ROUND_HALF_EVEN)


def ripple_time_iso(ripple_seconds: int) -> str:
    """rippled's ``close_time_iso``: UTC, second precision, ``Z`` suffix."""
    moment = dt.datetime.fromtimestamp(ripple_seconds + RIPPLE_EPOCH_OFFSET, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def ripple_time_human(ripple_seconds: int) -> str:
    """rippled's ``close_time_human``, e.g. ``2024-Jun-08 15:16:51.000000000 UTC``
    (English month names whatever the locale, as rippled prints them)."""
    moment = dt.datetime.fromtimestamp(ripple_seconds + RIPPLE_EPOCH_OFFSET, tz=dt.UTC)
    month = _MONTHS[moment.month - 1]
    return f"{moment.year:04d}-{month}-{moment.day:02d} {moment:%H:%M:%S}.000000000 UTC"


def value_text(value: Decimal) -> str:
    """Format a token value as rippled's STAmount::getText does.

    rippled normalises to a 16-digit mantissa and switches to ``<m>e<exp>``
    only when the exponent falls outside [-25, -5].
    """
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    offset = magnitude.adjusted() - 15
    mantissa = int(magnitude.scaleb(-offset, _DIV).to_integral_value(ROUND_HALF_EVEN))
    if mantissa >= 10**16:
        mantissa //= 10
        offset += 1
    if offset != 0 and (offset < -25 or offset > -5):
        return f"{sign}{mantissa}e{offset}"
    text = format(Decimal(mantissa).scaleb(offset), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return sign + text


def _amount_value(amount: object) -> tuple[str, Decimal] | None:
    """(issue text as rippled prints it, value); XRP values are in drops."""
    try:
        if isinstance(amount, str):
            return _XRP, Decimal(amount)
        if isinstance(amount, Mapping):
            return f"{amount['issuer']}/{amount['currency']}", Decimal(amount["value"])
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return None
    return None


def _crossed_offer(
    wrapper: object, cancelled: object
) -> tuple[tuple[str, Decimal], tuple[str, Decimal]] | None:
    """(issue, delta) of TakerGets and TakerPays for an Offer node a crossing changed."""
    if not isinstance(wrapper, Mapping):
        return None
    kind = "ModifiedNode" if "ModifiedNode" in wrapper else "DeletedNode"
    node = wrapper.get(kind)
    if not isinstance(node, Mapping) or node.get("LedgerEntryType") != "Offer":
        return None
    final, previous = node.get("FinalFields"), node.get("PreviousFields")
    if not isinstance(final, Mapping) or not isinstance(previous, Mapping):
        return None
    if kind == "DeletedNode" and cancelled is not None and final.get("Sequence") == cancelled:
        return None
    final_gets = _amount_value(final.get("TakerGets"))
    prev_gets = _amount_value(previous.get("TakerGets"))
    final_pays = _amount_value(final.get("TakerPays"))
    prev_pays = _amount_value(previous.get("TakerPays"))
    if final_gets is None or prev_gets is None or final_pays is None or prev_pays is None:
        return None
    return (
        (final_gets[0], final_gets[1] - prev_gets[1]),
        (final_pays[0], final_pays[1] - prev_pays[1]),
    )


def book_changes(
    transactions: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> list[dict[str, str]]:
    """The ``changes`` array of a ``bookChanges`` message, as rippled computes it.

    For each Offer modified or deleted with both FinalFields and
    PreviousFields (i.e. crossed, not cancelled), the amounts traded are the
    differences; sides are ordered XRP first, otherwise by issue text; rates
    are side A over side B.  Entries are sorted by their ``A|B`` key.
    """
    tally: dict[str, list[Decimal]] = {}
    sides: dict[str, tuple[str, str]] = {}
    for tx, meta in transactions:
        nodes = meta.get("AffectedNodes")
        if not isinstance(nodes, list):
            continue
        for wrapper in nodes:
            crossed = _crossed_offer(wrapper, tx.get("OfferSequence"))
            if crossed is None:
                continue
            (g, delta_gets), (p, delta_pays) = crossed
            noswap = True if g == _XRP else (False if p == _XRP else g < p)
            first, second = (delta_gets, delta_pays) if noswap else (delta_pays, delta_gets)
            if second == 0:
                continue
            rate = _DIV.divide(first, second)
            key = f"{g}|{p}" if noswap else f"{p}|{g}"
            sides[key] = (g, p) if noswap else (p, g)
            entry = tally.get(key)
            if entry is None:
                tally[key] = [abs(first), abs(second), rate, rate, rate, rate]
            else:
                entry[0] += abs(first)
                entry[1] += abs(second)
                entry[2] = max(entry[2], rate)
                entry[3] = min(entry[3], rate)
                entry[5] = rate

    def volume(issue: str, value: Decimal) -> str:
        return str(int(value)) if issue == _XRP else value_text(value)

    changes: list[dict[str, str]] = []
    for key in sorted(tally):
        a, b = sides[key]
        vol_a, vol_b, high, low, open_, close = tally[key]
        changes.append(
            {
                "close": value_text(close),
                "currency_a": "XRP_drops" if a == _XRP else a,
                "currency_b": "XRP_drops" if b == _XRP else b,
                "high": value_text(high),
                "low": value_text(low),
                "open": value_text(open_),
                "volume_a": volume(a, vol_a),
                "volume_b": volume(b, vol_b),
            }
        )
    return changes


FEE_SETTINGS_INDEX: Final = "4BC50C9B0D8515D3EAAE1E74B29A95804346C491EE1A95BF25E4AAB854A6A651"
"""The ledger index of the FeeSettings object (one per ledger, at a fixed index)."""
