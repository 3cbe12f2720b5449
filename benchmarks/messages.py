"""The stream messages the publisher injects, pre-encoded as byte templates.

Every message carries ``"bench": "SSSSSSSSSS-TTTTTTTTTTTTTTTTTTT"`` as its first key: a
global sequence number (10 digits) and the wall-clock nanoseconds at which the
publisher sent it (19 digits). The hub keeps unknown fields and key order, so both API
v1 and v2 renderings (and the peers' plain re-encodings) start with that field, and a
subscriber finds it with one bounded bytes search and parses two fixed-width slices
instead of decoding 600 bytes of JSON per message.

Messages are valid rippled API v2 ``ledgerClosed`` and validated ``transaction``
messages (the shape of ``tests/helpers/samples.py``), built once as templates and filled in
with ``bytes % dict`` per message so that the publisher is never the bottleneck.

The filters scenario routes each transaction to two subscribers: subscriber ``i`` owns
accounts ``10*i .. 10*i+9`` and :func:`owners` says which subscribers a sequence
number goes to; both the publisher (for its flow-control window) and the subscribers
(to check what they got and count what they should have got) use it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from functools import cache
from typing import Any, Final

import msgspec

from hub.xrpl.addresses import encode_account_id

ACCOUNTS_PER_SUBSCRIBER: Final = 10
BENCH_KEY: Final = b'"bench":"'
"""What a subscriber searches for; 10 digits of sequence, ``-``, 19 digits of time follow."""
SEQ_DIGITS: Final = 10
TIME_DIGITS: Final = 19

_encode = msgspec.json.encode


def address(n: int) -> str:
    """A valid classic address, the n-th of the benchmark's account pool."""
    return encode_account_id(hashlib.sha256(b"bench-account-%d" % n).digest()[:20])


@cache
def subscriber_accounts(index: int) -> tuple[str, ...]:
    """The accounts subscriber ``index`` watches in the filters scenario."""
    base = index * ACCOUNTS_PER_SUBSCRIBER
    return tuple(address(base + k) for k in range(ACCOUNTS_PER_SUBSCRIBER))


def owners(seq: int, subscribers: int) -> tuple[int, int]:
    """(source owner, destination owner) of filters transaction ``seq``; may be equal."""
    return seq % subscribers, (seq * 7 + 1) % subscribers


def account_slots(seq: int, subscribers: int) -> tuple[int, int]:
    """Which of its owners' ten accounts the source and destination are."""
    turn = seq // subscribers
    return turn % ACCOUNTS_PER_SUBSCRIBER, (turn + 3) % ACCOUNTS_PER_SUBSCRIBER


def _hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest().upper()


def _template(message: dict[str, Any]) -> bytes:
    """``message`` encoded with ``bench`` first and ``%(...)`` holes for the per-message parts.

    String values ``"@name@"`` become ``%(name)s`` holes; ``bench`` becomes
    ``"%(seq)010d-%(t)019d"``.
    """
    body = _encode({"bench": "@bench@", **message})
    body = body.replace(b"%", b"%%")
    body = body.replace(b"@bench@", b"%(seq)010d-%(t)019d")
    for name in ("src", "dst", "hash", "ledger_hash"):
        body = body.replace(b"@" + name.encode() + b"@", b"%(" + name.encode() + b")s")
    for name in ("ledger_index", "txn_count"):
        body = body.replace(b'"@' + name.encode() + b'@"', b"%(" + name.encode() + b")d")
    return body


def _payment(memo_bytes: int, *, nodes: bool = True) -> dict[str, Any]:
    """A validated XRP payment; without ``nodes`` its meta lists no AffectedNodes."""

    def root(addr: str, balance: str) -> dict[str, Any]:
        return {
            "ModifiedNode": {
                "LedgerEntryType": "AccountRoot",
                "LedgerIndex": _hash("root", addr),
                "FinalFields": {"Account": addr, "Balance": balance, "Sequence": 5, "Flags": 0},
                "PreviousFields": {"Balance": "1"},
            }
        }

    tx: dict[str, Any] = {
        "TransactionType": "Payment",
        "Account": "@src@",
        "Destination": "@dst@",
        "DeliverMax": "1000000",
        "Fee": "12",
        "Sequence": 7,
    }
    if memo_bytes > 0:
        tx["Memos"] = [{"Memo": {"MemoData": "AB" * (memo_bytes // 2)}}]
    message: dict[str, Any] = {
        "type": "transaction",
        "tx_json": tx,
        "hash": "@hash@",
        "meta": {
            "AffectedNodes": [root("@src@", "99"), root("@dst@", "101")] if nodes else [],
            "TransactionIndex": 0,
            "TransactionResult": "tesSUCCESS",
            "delivered_amount": "1000000",
        },
        "validated": True,
        "ledger_index": "@ledger_index@",
        "ledger_hash": "@ledger_hash@",
        "close_time_iso": "2025-05-09T12:00:00Z",
        "status": "closed",
        "engine_result": "tesSUCCESS",
        "engine_result_code": 0,
        "engine_result_message": "The transaction was applied.",
    }
    if not nodes:
        for key in ("ledger_hash", "close_time_iso", "status", "engine_result_code"):
            del message[key]
        del message["engine_result_message"]
    return message


_LEDGER: Final = _template(
    {
        "type": "ledgerClosed",
        "ledger_index": "@ledger_index@",
        "ledger_hash": "@ledger_hash@",
        "ledger_time": 800_000_000,
        "fee_base": 10,
        "reserve_base": 1_000_000,
        "reserve_inc": 200_000,
        "txn_count": "@txn_count@",
        "validated_ledgers": "1-100000000",
    }
)


class Messages:
    """Builds the bytes of published messages.

    ``size`` > 0 gives compact transactions (no AffectedNodes) padded with a memo to
    about ``size`` bytes; 0 gives full mainnet-like payments (about 1.2 kB).
    """

    def __init__(self, size: int = 0, subscribers: int = 1) -> None:
        self.subscribers = subscribers
        self._src = address(10_000_001).encode()
        self._dst = address(10_000_002).encode()
        self._ledger_hash = _hash("ledger").encode()
        self._tx = _template(_payment(0))
        if size:
            self._tx = _template(_payment(0, nodes=False))
            bare = len(self.transaction(10**6, 10**18, 10**8))
            memo = size - bare - len(b',"Memos":[{"Memo":{"MemoData":""}}]')
            self._tx = _template(_payment(max(0, memo), nodes=False))

    def transaction(self, seq: int, t: int, ledger_index: int) -> bytes:
        """A payment between two fixed accounts (the broadcast scenarios)."""
        return self._tx % {
            b"seq": seq,
            b"t": t,
            b"src": self._src,
            b"dst": self._dst,
            b"hash": b"%064X" % seq,
            b"ledger_index": ledger_index,
            b"ledger_hash": self._ledger_hash,
        }

    def routed_transaction(self, seq: int, t: int, ledger_index: int) -> bytes:
        """A payment from one filters subscriber's account to another's (see :func:`owners`)."""
        src_owner, dst_owner = owners(seq, self.subscribers)
        src_slot, dst_slot = account_slots(seq, self.subscribers)
        return self._tx % {
            b"seq": seq,
            b"t": t,
            b"src": subscriber_accounts(src_owner)[src_slot].encode(),
            b"dst": subscriber_accounts(dst_owner)[dst_slot].encode(),
            b"hash": b"%064X" % seq,
            b"ledger_index": ledger_index,
            b"ledger_hash": self._ledger_hash,
        }

    def ledger_closed(self, seq: int, t: int, ledger_index: int, txn_count: int = 0) -> bytes:
        """A ``ledgerClosed`` announcing ``txn_count`` transactions."""
        return _LEDGER % {
            b"seq": seq,
            b"t": t,
            b"ledger_index": ledger_index,
            b"ledger_hash": b"%064X" % ledger_index,
            b"txn_count": txn_count,
        }


def ledger_sizes(tx_per_ledger: int | Sequence[int], ledgers: int) -> list[int]:
    """How many transactions each of ``ledgers`` ledgers carries: ``tx_per_ledger``
    each, or for a ``[low, high]`` pair a count drawn evenly between them, the same
    counts in every run (so that runs compare) and across servers."""
    if isinstance(tx_per_ledger, int):
        return [tx_per_ledger] * ledgers
    low, high = tx_per_ledger
    draw = random.Random(ledgers)
    return [draw.randint(low, high) for _ in range(ledgers)]


def publish_request(request_id: int, messages: list[bytes]) -> bytes:
    """The admin ``publish`` request carrying already encoded messages."""
    return b'{"id":%d,"command":"publish","messages":[%s]}' % (request_id, b",".join(messages))
