"""``ledger``, ``tx`` and ``ledger_entry`` answered from the history, in rippled's shapes.

The history (:mod:`hub.core.history`) keeps what was published: each ledger's
``ledgerClosed`` and its validated ``transaction`` messages. From them this module
builds the ``result`` of rippled's answers (``LedgerToJson.cpp``'s ``fillJson`` and
``fillJsonTx``, ``Tx.cpp``'s ``populateJsonResponse``; rippled source,
https://github.com/XRPLF/rippled), at API v1 and v2:

- ``ledger``: the header fields a ``ledgerClosed`` carries (``ledger_index`` a string
  at v1), ``parent_hash`` when the previous ledger is held too, and with
  ``transactions`` the ledger's transaction hashes, or with ``expand`` each
  transaction as rippled writes it (v2: ``tx_json``, ``meta``, ``hash``,
  ``ledger_index``, ``ledger_hash``, ``close_time_iso``, ``validated``; v1: the
  transaction's fields with ``hash`` inside and ``metaData``), in publish order.
  Fields no stream message carries (``account_hash``, ``total_coins``, …) are absent.
- ``tx``: the stream message's ``tx_json``/``meta``/``hash`` as sent (plus rippled's
  ``ledger_index`` inside ``tx_json`` at v2, ``inLedger`` at v1), and ``ctid`` when the
  message carries one.
- ``ledger_entry``: only the ``FeeSettings`` object, from the ``ledgerClosed`` fees;
  this is what a relay mending a gap asks its upstream (:mod:`hub.links.upstream`).

The parse and build functions are sans-IO and return None where the history cannot
answer; :class:`Arrivals` lets a lookup wait for a ledger still arriving.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import trio

from hub.core.history import Entry, History
from hub.core.render import body_for
from hub.wire.errors import RPCError
from hub.xrpl.events import Event
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX, ripple_time_human, ripple_time_iso

ARRIVAL_WAIT: Final = 5.0
"""Seconds a lookup waits for a ledger that is due (its transactions still arriving, or
it is the next one and not here yet) before asking upstream or answering not found."""

AHEAD: Final = 2
"""How far past the latest ledger a lookup still waits for the ledger to arrive."""

_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,10}")
"""A ledger index written as a string: ASCII digits only (``str.isdigit`` takes "²",
which ``int`` refuses), and short enough that ``int`` never meets its digit limit."""
_SHORTCUTS: Final = frozenset({"validated", "closed", "current"})


@dataclass(frozen=True, slots=True)
class LedgerQuery:
    """Which ledger a request names, and what of it it asks for.

    ``beyond`` names an option the history can never answer (``binary``, state,
    queue): such a request goes upstream, or answers ``notSupported``.
    """

    index: int | None = None
    ledger_hash: str | None = None
    shortcut: str | None = None
    transactions: bool = False
    expand: bool = False
    beyond: str | None = None


def ledger_query(params: Mapping[str, Any], *, default: str = "current") -> LedgerQuery:
    """Parse ``ledger_index``/``ledger_hash`` and the ``ledger`` options as rippled does
    (``RPCLedgerHelpers.cpp``: a number, ``validated``, ``closed``, ``current``, or a
    hash; none means ``default``); raises ``invalidParams``."""
    named = [key for key in ("ledger_hash", "ledger_index") if key in params]
    if len(named) > 1:
        raise RPCError(
            "invalidParams", "Exactly one of 'ledger_hash' or 'ledger_index' can be specified."
        )
    transactions, expand = _flag(params, "transactions"), _flag(params, "expand")
    beyond = next(
        (name for name in ("binary", "full", "accounts", "queue") if _flag(params, name)), None
    )
    if "ledger_hash" in params:
        value = params["ledger_hash"]
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise RPCError("invalidParams", "Invalid field 'ledger_hash', not hex string.")
        return LedgerQuery(None, value.upper(), None, transactions, expand, beyond)
    value = params.get("ledger_index", default)
    if isinstance(value, str) and (value in _SHORTCUTS or value == ""):
        return LedgerQuery(None, None, value or "current", transactions, expand, beyond)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if type(value) is not int or not 0 <= value < 2**32:
        raise RPCError("invalidParams", "Invalid field 'ledger_index', not string or number.")
    return LedgerQuery(value, None, None, transactions, expand, beyond)


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if type(value) is not bool:
        raise RPCError("invalidParams", f"Invalid field '{name}', not bool.")
    return value


def resolve(history: History, query: LedgerQuery) -> int | None:
    """The ledger index the query names, when the history can know it (``current``, the
    open ledger, it never can: the hub only sees ledgers once they closed)."""
    if query.ledger_hash is not None:
        return history.index_of(query.ledger_hash)
    if query.shortcut in ("validated", "closed"):
        return history.latest
    return query.index


def ledger_result(history: History, index: int, query: LedgerQuery, api_version: int) -> Any:
    """rippled's ``ledger`` result for a ledger the history holds, else None."""
    closed = history.closed(index)
    if closed is None:
        return None
    message = closed.frames.message()
    close_time = message["ledger_time"]
    header: dict[str, Any] = {
        "close_time": close_time,
        "close_time_human": ripple_time_human(close_time),
        "close_time_iso": ripple_time_iso(close_time),
        "closed": True,
        "ledger_hash": message["ledger_hash"],
        "ledger_index": index if api_version > 1 else str(index),
    }
    parent = history.closed(index - 1)
    if parent is not None and parent.key:
        header["parent_hash"] = parent.key
    if query.transactions:
        entries = history.transactions(index)
        header["transactions"] = (
            [_expanded(entry, api_version) for entry in entries]
            if query.expand
            else [entry.key for entry in entries]
        )
    return {
        "ledger": header,
        "ledger_hash": message["ledger_hash"],
        "ledger_index": index,
        "validated": True,
    }


def _expanded(entry: Entry, api_version: int) -> dict[str, Any]:
    message = entry.frames.message()
    if api_version > 1:
        out: dict[str, Any] = {}
        for key in ("close_time_iso", "hash", "ledger_hash", "ledger_index", "meta"):
            if key in message:
                out[key] = message[key]
        out["tx_json"] = {k: v for k, v in message["tx_json"].items() if k != "date"}
        out["validated"] = True
        return out
    fields = body_for(Event("transaction", message), 1)["transaction"]
    return {**{k: v for k, v in fields.items() if k != "date"}, "metaData": message.get("meta")}


def tx_hash_of(params: Mapping[str, Any]) -> str | None:
    """The hash a ``tx`` request asks for, or None when it asks by ``ctid`` (which
    goes upstream); raises ``invalidParams`` as rippled's ``doTxJson`` does."""
    if "transaction" in params and "ctid" in params:
        raise RPCError("invalidParams", "Specify 'transaction' or 'ctid', not both.")
    if "ctid" in params:
        return None
    value = params.get("transaction")
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise RPCError("invalidParams", "Field 'transaction' must be a transaction hash.")
    _flag(params, "binary")
    return value.upper()


def tx_result(history: History, tx_hash: str, api_version: int) -> Any:
    """rippled's ``tx`` result for a transaction the history holds, else None."""
    entry = history.transaction(tx_hash)
    if entry is None:
        return None
    message = entry.frames.message()
    index = entry.ledger_index
    ctid = {"ctid": message["ctid"]} if "ctid" in message else {}
    if api_version > 1:
        out: dict[str, Any] = {}
        if "close_time_iso" in message:
            out["close_time_iso"] = message["close_time_iso"]
        out.update(ctid)
        out["hash"] = message["hash"]
        if "ledger_hash" in message:
            out["ledger_hash"] = message["ledger_hash"]
        out["ledger_index"] = index
        out["meta"] = message.get("meta")
        out["tx_json"] = {**message["tx_json"], "ledger_index": index}
        out["validated"] = True
        return out
    fields = body_for(Event("transaction", message), 1)["transaction"]
    return {
        **fields,
        **ctid,
        "inLedger": index,
        "ledger_index": index,
        "meta": message.get("meta"),
        "validated": True,
    }


def wants_fee_settings(params: Mapping[str, Any]) -> bool:
    """Whether a ``ledger_entry`` request asks for the FeeSettings object by its index."""
    value = params.get("index")
    return isinstance(value, str) and value.upper() == FEE_SETTINGS_INDEX


def fee_settings_result(history: History, index: int) -> Any:
    """rippled's ``ledger_entry`` result for ledger ``index``'s FeeSettings, else None."""
    closed = history.closed(index)
    if closed is None:
        return None
    message = closed.frames.message()
    node = {
        "BaseFeeDrops": str(message["fee_base"]),
        "Flags": 0,
        "LedgerEntryType": "FeeSettings",
        "ReserveBaseDrops": str(message["reserve_base"]),
        "ReserveIncrementDrops": str(message["reserve_inc"]),
        "index": FEE_SETTINGS_INDEX,
    }
    return {
        "index": FEE_SETTINGS_INDEX,
        "ledger_hash": message["ledger_hash"],
        "ledger_index": index,
        "node": node,
        "validated": True,
    }


class Arrivals:
    """Wakes lookups waiting for a ledger to be complete in the history.

    The race it closes (XRPLF/clio#1697): a client sees ``ledgerClosed`` and at once
    asks for that ledger with its transactions, while they are still being published,
    or asks another node of the cluster that has not read that ledger yet.
    """

    def __init__(self, history: History) -> None:
        self._history = history
        self._waiting: dict[int, list[trio.Event]] = {}
        history.on_complete = self._completed

    @property
    def waiting(self) -> int:
        """Lookups waiting right now (for ``server_info``-style figures and tests)."""
        return sum(len(events) for events in self._waiting.values())

    def due(self, index: int) -> bool:
        """Whether ledger ``index`` is worth waiting for: held but incomplete, or just
        past the latest ledger."""
        history = self._history
        if history.complete(index):
            return False
        if history.closed(index) is not None:
            return True
        latest = history.latest
        return latest is not None and latest < index <= latest + AHEAD

    async def wait(self, index: int, timeout: float = ARRIVAL_WAIT) -> bool:  # noqa: ASYNC109
        """Wait until ledger ``index`` is complete; whether it is."""
        if self._history.complete(index):
            return True
        event = trio.Event()
        waiting = self._waiting.setdefault(index, [])
        waiting.append(event)
        try:
            with trio.move_on_after(timeout):
                await event.wait()
        finally:
            if not event.is_set():
                waiting.remove(event)
                if not waiting and self._waiting.get(index) is waiting:
                    del self._waiting[index]
        return self._history.complete(index)

    def _completed(self, index: int) -> None:
        for event in self._waiting.pop(index, []):
            event.set()
