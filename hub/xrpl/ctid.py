"""Concise Transaction Identifiers (XLS-37 "CTID"), encoded and decoded without I/O.

A CTID packs where a validated transaction sits into 64 bits, written as 16 upper-case
hex digits: the nibble ``C``, 28 bits of ledger sequence, 16 bits of the transaction's
index in that ledger and 16 bits of network ID. Current rippled adds one to every
validated ``transaction`` stream message (``transJson``); the hub does the same for
messages whose source did not. Specification: "XLS-37d Concise Transaction Identifier",
https://github.com/XRPLF/XRPL-Standards/discussions/91
"""

from __future__ import annotations

from typing import Final

MAX_LEDGER_SEQ: Final = 0x0FFF_FFFF
MAX_TXN_INDEX: Final = 0xFFFF
MAX_NETWORK_ID: Final = 0xFFFF
_LEAD: Final = 0xC
_HEX: Final = frozenset("0123456789ABCDEFabcdef")


def encode(ledger_seq: int, txn_index: int, network_id: int) -> str | None:
    """The CTID of a transaction, or None when a part does not fit its field."""
    parts = ((ledger_seq, MAX_LEDGER_SEQ), (txn_index, MAX_TXN_INDEX), (network_id, MAX_NETWORK_ID))
    if any(type(value) is not int or not 0 <= value <= limit for value, limit in parts):
        return None
    return format((_LEAD << 60) | (ledger_seq << 32) | (txn_index << 16) | network_id, "016X")


def decode(ctid: str | int) -> tuple[int, int, int] | None:
    """(ledger_seq, txn_index, network_id) of a CTID given as text or as its integer value;
    None for anything that is not one (wrong length, not hex, no leading ``C``)."""
    if isinstance(ctid, str):
        if len(ctid) != 16 or not _HEX.issuperset(ctid):
            return None
        value = int(ctid, 16)
    elif type(ctid) is int:
        value = ctid
    else:
        return None
    if not 0 <= value < 1 << 64 or value >> 60 != _LEAD:
        return None
    return (value >> 32) & MAX_LEDGER_SEQ, (value >> 16) & MAX_TXN_INDEX, value & MAX_NETWORK_ID
