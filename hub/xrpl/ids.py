"""Fields current rippled writes that older sources leave out, added on the way through.

Newest rippled puts ``network_id`` in every ``ledgerClosed`` (``pubLedger``) and a
``ctid`` on every validated ``transaction`` it can (``transJson``: from the ledger
sequence, meta's ``TransactionIndex`` and the transaction's own ``NetworkID``, else the
server's). Messages from an older rippled, a recording or admin ``publish`` get them
here, so every subscriber sees the same shape whatever the source. A field that is
already there is never touched. When a message's keys are in rippled's order (sorted,
as rippled's JSON writer emits them) the new key goes where rippled would put it.
"""

from __future__ import annotations

from typing import Any

from hub.xrpl import ctid


def fill_ids(body: dict[str, Any], network_id: int) -> None:
    """Add the missing ``ctid`` or ``network_id`` to one message, in place."""
    kind = body.get("type")
    if kind == "ledgerClosed" and "network_id" not in body:
        _insert(body, "network_id", network_id)
    elif kind == "transaction" and body.get("validated") is True and "ctid" not in body:
        code = _ctid_of(body, network_id)
        if code is not None:
            _insert(body, "ctid", code)


def _ctid_of(body: dict[str, Any], network_id: int) -> str | None:
    meta = body.get("meta")
    tx = body.get("tx_json", body.get("transaction"))
    if not isinstance(meta, dict):
        return None
    ledger, index = body.get("ledger_index"), meta.get("TransactionIndex")
    if type(ledger) is not int or type(index) is not int:
        return None
    own = tx.get("NetworkID") if isinstance(tx, dict) else None
    return ctid.encode(ledger, index, own if type(own) is int else network_id)


def _insert(body: dict[str, Any], key: str, value: Any) -> None:
    keys = list(body)
    ordered = keys == sorted(keys)  # a C sort of a dozen keys, not a loop in Python
    body[key] = value
    if ordered:
        items = sorted(body.items())
        body.clear()
        body.update(items)
