"""Realistic stream messages (rippled API v2 shapes) for tests."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from hub.xrpl import ctid
from hub.xrpl.addresses import encode_account_id


def account(n: int) -> str:
    return encode_account_id(hashlib.sha256(b"acct%d" % n).digest()[:20])


ALICE, BOB, CAROL, GATEWAY, DAN = (account(i) for i in range(5))
USD = {"currency": "USD", "issuer": GATEWAY}
"""The gateway's USD, as a book side or a subscription names it."""


def h(*parts: object) -> str:
    return hashlib.sha512(repr(parts).encode()).hexdigest()[:64].upper()


def ledger_closed(index: int, txn_count: int = 0) -> dict[str, Any]:
    return {
        "type": "ledgerClosed",
        "ledger_index": index,
        "ledger_hash": h("ledger", index),
        "ledger_time": 800_000_000 + index,
        "fee_base": 10,
        "reserve_base": 1_000_000,
        "reserve_inc": 200_000,
        "txn_count": txn_count,
        "validated_ledgers": f"1-{index}",
        "network_id": 0,
    }


def _tx(tx_json: dict[str, Any], meta: dict[str, Any], index: int, seq: int) -> dict[str, Any]:
    return {
        "type": "transaction",
        "tx_json": tx_json,
        "hash": h("tx", index, seq),
        "meta": meta,
        "validated": True,
        "ledger_index": index,
        "ledger_hash": h("ledger", index),
        "close_time_iso": "2025-05-09T12:00:00Z",
        "status": "closed",
        "engine_result": "tesSUCCESS",
        "engine_result_code": 0,
        "engine_result_message": "The transaction was applied.",
        "ctid": ctid.encode(index, meta["TransactionIndex"], 0),
    }


def legacy(message: dict[str, Any]) -> dict[str, Any]:
    """The message as an older rippled sends it: no ``ctid``, no ``network_id``."""
    return {k: v for k, v in message.items() if k not in ("ctid", "network_id")}


def _account_root(addr: str, balance: str) -> dict[str, Any]:
    return {
        "ModifiedNode": {
            "LedgerEntryType": "AccountRoot",
            "LedgerIndex": h("root", addr),
            "FinalFields": {"Account": addr, "Balance": balance, "Sequence": 5, "Flags": 0},
            "PreviousFields": {"Balance": "1"},
        }
    }


def xrp_payment(index: int, seq: int, src: str = ALICE, dst: str = BOB) -> dict[str, Any]:
    tx = {
        "TransactionType": "Payment",
        "Account": src,
        "Destination": dst,
        "DeliverMax": "1000000",
        "Fee": "12",
        "Sequence": seq,
    }
    meta = {
        "AffectedNodes": [_account_root(src, "99"), _account_root(dst, "101")],
        "TransactionIndex": seq,
        "TransactionResult": "tesSUCCESS",
        "delivered_amount": "1000000",
    }
    return _tx(tx, meta, index, seq)


def iou_payment(index: int, seq: int, src: str = ALICE, dst: str = BOB) -> dict[str, Any]:
    """An issued-currency payment: the issuer appears only inside RippleState limits."""
    amount = {"currency": "USD", "issuer": GATEWAY, "value": "5"}
    tx = {
        "TransactionType": "Payment",
        "Account": src,
        "Destination": dst,
        "DeliverMax": amount,
        "Fee": "12",
        "Sequence": seq,
    }

    def line(holder: str, balance: str) -> dict[str, Any]:
        return {
            "ModifiedNode": {
                "LedgerEntryType": "RippleState",
                "LedgerIndex": h("line", holder),
                "FinalFields": {
                    "Balance": {"currency": "USD", "issuer": account(99), "value": balance},
                    "HighLimit": {"currency": "USD", "issuer": holder, "value": "1000"},
                    "LowLimit": {"currency": "USD", "issuer": GATEWAY, "value": "0"},
                    "Flags": 131072,
                },
                "PreviousFields": {
                    "Balance": {"currency": "USD", "issuer": account(99), "value": "0"}
                },
            }
        }

    meta = {
        "AffectedNodes": [_account_root(src, "99"), line(src, "-5"), line(dst, "5")],
        "TransactionIndex": seq,
        "TransactionResult": "tesSUCCESS",
        "delivered_amount": amount,
    }
    return _tx(tx, meta, index, seq)


def offer_crossing(index: int, seq: int, taker: str = CAROL, maker: str = DAN) -> dict[str, Any]:
    """An OfferCreate that consumes part of a resting XRP/USD offer."""
    tx = {
        "TransactionType": "OfferCreate",
        "Account": taker,
        "TakerGets": "2000000",
        "TakerPays": {"currency": "USD", "issuer": GATEWAY, "value": "2"},
        "Fee": "12",
        "Sequence": seq,
    }
    meta = {
        "AffectedNodes": [
            _account_root(taker, "5"),
            {
                "ModifiedNode": {
                    "LedgerEntryType": "Offer",
                    "LedgerIndex": h("offer", maker),
                    "FinalFields": {
                        "Account": maker,
                        "TakerGets": {"currency": "USD", "issuer": GATEWAY, "value": "8"},
                        "TakerPays": "8000000",
                        "Sequence": 3,
                        "Flags": 0,
                    },
                    "PreviousFields": {
                        "TakerGets": {"currency": "USD", "issuer": GATEWAY, "value": "10"},
                        "TakerPays": "10000000",
                    },
                }
            },
        ],
        "TransactionIndex": seq,
        "TransactionResult": "tesSUCCESS",
    }
    return _tx(tx, meta, index, seq)


def offer_create(
    index: int, seq: int, owner: str, taker_gets: Any, taker_pays: Any
) -> dict[str, Any]:
    """An OfferCreate that rests whole: its metadata creates the Offer."""
    tx = {
        "TransactionType": "OfferCreate",
        "Account": owner,
        "TakerGets": taker_gets,
        "TakerPays": taker_pays,
        "Fee": "12",
        "Sequence": seq,
    }
    offer = {
        "CreatedNode": {
            "LedgerEntryType": "Offer",
            "LedgerIndex": h("offer", owner, seq),
            "NewFields": {
                "Account": owner,
                "BookDirectory": h("book", str(taker_gets), str(taker_pays)),
                "Sequence": seq,
                "TakerGets": taker_gets,
                "TakerPays": taker_pays,
            },
        }
    }
    meta = {
        "AffectedNodes": [_account_root(owner, "50"), offer],
        "TransactionIndex": seq,
        "TransactionResult": "tesSUCCESS",
    }
    return _tx(tx, meta, index, seq)


def proposed(message: dict[str, Any]) -> dict[str, Any]:
    """The unvalidated form of a transaction message, as transactions_proposed gets it."""
    dropped = ("meta", "ledger_index", "ledger_hash", "ctid")
    out = {k: v for k, v in message.items() if k not in dropped}
    out.update(validated=False, status="proposed", ledger_current_index=message["ledger_index"])
    return out


def validation(index: int, n: int = 0) -> dict[str, Any]:
    return {
        "type": "validationReceived",
        "validation_public_key": f"n9Validator{n}",
        "ledger_hash": h("ledger", index),
        "ledger_index": index,
        "signature": "30" * 35,
        "full": True,
        "flags": 2147483649,
        "signing_time": 800_000_000 + index,
        "network_id": 0,
    }


def small_ledger(index: int) -> list[dict[str, Any]]:
    """A validation, ledgerClosed and two payments (Alice's first, then Carol's)."""
    return [
        validation(index, 0),
        ledger_closed(index, 2),
        xrp_payment(index, 0, ALICE, BOB),
        xrp_payment(index, 1, CAROL, BOB),
    ]


def published_ledger(index: int, txs: int = 3) -> list[dict[str, Any]]:
    """One ledger as rippled publishes it: validations, ledgerClosed, transactions."""
    return [
        validation(index, 0),
        ledger_closed(index, txs),
        *(xrp_payment(index, s, ALICE if s % 2 else CAROL, BOB) for s in range(txs)),
    ]


SPOOLABLE = random.Random(15).randbytes(102_400)
"""A batch worth spooling (over ``hub.edge.spool.MIN_BYTES``), with no period to hide a
shifted byte."""
