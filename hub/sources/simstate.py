"""The simulator's ledger state: accounts, trust lines, offers and the directories that
hold them, with the metadata a transaction's changes to them produce.

Everything is derived from the simulator's seed, so the same seed always builds the
same state; :class:`Changes` records what a transaction touched, created and deleted,
and turns it into rippled's ``AffectedNodes`` by diffing each entry's fields before
and after.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub.xrpl import ctid
from hub.xrpl.addresses import ACCOUNT_ONE, decode_classic_address, encode_account_id
from hub.xrpl.books import quality
from hub.xrpl.ledgerdata import TES_MESSAGE, ripple_time_iso, value_text

FEE_DROPS = 12
FEE_BASE = 10
RESERVE_BASE = 1_000_000
RESERVE_INC = 200_000

UNITS = 1_000_000
"""Amounts are integers: drops for XRP, millionths of a unit for tokens."""

VALIDATION_FLAGS = 0x80000001
_LSF_LOW_RESERVE = 0x00010000
_LSF_HIGH_RESERVE = 0x00020000
NODE_PUBLIC_VERSION = b"\x1c"
XRP = "XRP"
_ZERO160 = "0" * 40


def sha512_half(*parts: object) -> str:
    data = "\x1f".join(str(part) for part in parts).encode()
    return hashlib.sha512(data).digest()[:32].hex().upper()


def fake_der_signature(*parts: object) -> str:
    """A DER-shaped ECDSA signature (r and s kept positive) derived from ``parts``."""
    digest = hashlib.sha512("\x1f".join(str(p) for p in parts).encode()).digest()
    r = bytes([digest[0] & 0x7F | 0x01]) + digest[1:32]
    s = bytes([digest[32] & 0x7F | 0x01]) + digest[33:64]
    return ("30440220" + r.hex() + "0220" + s.hex()).upper()


def fake_public_key(*parts: object) -> bytes:
    """A compressed secp256k1-shaped public key (33 bytes) derived from ``parts``."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return bytes([2 + (digest[0] & 1)]) + digest


def _currency_hex(currency: str) -> str:
    if currency == XRP:
        return _ZERO160
    return ("00" * 12 + currency.encode("ascii").hex() + "00" * 5).upper()


@dataclass(frozen=True)
class Amount:
    currency: str
    issuer: str
    units: int

    @property
    def issue(self) -> tuple[str, str]:
        return self.currency, self.issuer

    @property
    def is_xrp(self) -> bool:
        return self.currency == XRP

    def with_units(self, units: int) -> Amount:
        return Amount(self.currency, self.issuer, units)

    def json(self) -> str | dict[str, str]:
        if self.is_xrp:
            return str(self.units)
        value = value_text(Decimal(self.units).scaleb(-6))
        return {"currency": self.currency, "issuer": self.issuer, "value": value}


class StateEntry:
    """A ledger object; ``fields()`` is its JSON as it appears in metadata."""

    entry_type = ""
    threaded = True

    def __init__(self, index: str) -> None:
        self.index = index
        self.prev_txn_id = ""
        self.prev_txn_lgr = 0

    def fields(self) -> dict[str, Any]:
        raise NotImplementedError


class AccountRoot(StateEntry):
    entry_type = "AccountRoot"

    def __init__(self, index: str, address: str, balance: int, sequence: int) -> None:
        super().__init__(index)
        self.address = address
        self.balance = balance
        self.sequence = sequence
        self.owner_count = 0

    def reserve(self) -> int:
        return RESERVE_BASE + RESERVE_INC * self.owner_count

    def fields(self) -> dict[str, Any]:
        return {
            "Account": self.address,
            "Balance": str(self.balance),
            "Flags": 0,
            "OwnerCount": self.owner_count,
            "Sequence": self.sequence,
        }


class RippleState(StateEntry):
    """A trust line; ``balance`` is from the low account's point of view."""

    entry_type = "RippleState"

    def __init__(self, index: str, low: str, high: str, currency: str) -> None:
        super().__init__(index)
        self.low = low
        self.high = high
        self.currency = currency
        self.balance = 0
        self.low_limit = 0
        self.high_limit = 0
        self.flags = 0

    def holder_balance(self, holder: str) -> int:
        return self.balance if holder == self.low else -self.balance

    def credit(self, holder: str, units: int) -> None:
        self.balance += units if holder == self.low else -units

    def set_limit(self, holder: str, units: int) -> None:
        if holder == self.low:
            self.low_limit = units
            self.flags |= _LSF_LOW_RESERVE
        else:
            self.high_limit = units
            self.flags |= _LSF_HIGH_RESERVE

    def fields(self) -> dict[str, Any]:
        def amount(issuer: str, units: int) -> str | dict[str, str]:
            return Amount(self.currency, issuer, units).json()

        return {
            "Balance": amount(ACCOUNT_ONE, self.balance),
            "Flags": self.flags,
            "HighLimit": amount(self.high, self.high_limit),
            "HighNode": "0",
            "LowLimit": amount(self.low, self.low_limit),
            "LowNode": "0",
        }


class Offer(StateEntry):
    entry_type = "Offer"

    def __init__(
        self, index: str, account: str, sequence: int, gets: Amount, pays: Amount, directory: str
    ) -> None:
        super().__init__(index)
        self.account = account
        self.sequence = sequence
        self.gets = gets
        self.pays = pays
        self.directory = directory
        self.quality = quality(pays.json(), gets.json())

    def entry(self) -> dict[str, Any]:
        """The offer as a ledger entry (what book_offers lists)."""
        return {
            **self.fields(),
            "LedgerEntryType": self.entry_type,
            "PreviousTxnID": self.prev_txn_id,
            "PreviousTxnLgrSeq": self.prev_txn_lgr,
            "index": self.index,
        }

    def fields(self) -> dict[str, Any]:
        return {
            "Account": self.account,
            "BookDirectory": self.directory,
            "BookNode": "0",
            "Flags": 0,
            "OwnerNode": "0",
            "Sequence": self.sequence,
            "TakerGets": self.gets.json(),
            "TakerPays": self.pays.json(),
        }


class OwnerDirectory(StateEntry):
    entry_type = "DirectoryNode"
    threaded = False

    def __init__(self, index: str, owner: str) -> None:
        super().__init__(index)
        self.owner = owner

    def fields(self) -> dict[str, Any]:
        return {"Flags": 0, "Owner": self.owner, "RootIndex": self.index}


class BookDirectory(StateEntry):
    entry_type = "DirectoryNode"
    threaded = False

    def __init__(self, index: str, gets: tuple[str, str], pays: tuple[str, str]) -> None:
        super().__init__(index)
        self.gets = gets
        self.pays = pays
        self.count = 0

    def fields(self) -> dict[str, Any]:
        return {
            "ExchangeRate": self.index[-16:],
            "Flags": 0,
            "RootIndex": self.index,
            "TakerGetsCurrency": _currency_hex(self.gets[0]),
            "TakerGetsIssuer": _issuer_hex(self.gets[1]),
            "TakerPaysCurrency": _currency_hex(self.pays[0]),
            "TakerPaysIssuer": _issuer_hex(self.pays[1]),
        }


def _issuer_hex(issuer: str) -> str:
    return decode_classic_address(issuer).hex().upper() if issuer else _ZERO160


def quality_hex(pays: int, gets: int) -> str:
    """rippled's 64-bit offer quality (pays/gets): exponent+100 over a 16-digit mantissa."""
    mantissa = pays * 10**16 // gets
    exponent = -16
    while mantissa >= 10**16:
        mantissa //= 10
        exponent += 1
    while 0 < mantissa < 10**15:
        mantissa *= 10
        exponent -= 1
    return format(((exponent + 100) << 56) | mantissa, "016X")


def sorted_keys(value: Any) -> Any:
    """Recursively order object keys as rippled's JSON writer does (byte order)."""
    if isinstance(value, dict):
        return {k: sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sorted_keys(item) for item in value]
    return value


def _is_default(value: object) -> bool:
    return value == 0 or value == "0"


class Changes:
    """Records ledger objects a transaction touches and renders its AffectedNodes."""

    def __init__(self) -> None:
        self._before: dict[str, tuple[StateEntry, dict[str, Any] | None]] = {}
        self._deleted: set[str] = set()

    def touch(self, entry: StateEntry) -> None:
        if entry.index not in self._before:
            self._before[entry.index] = (entry, entry.fields())

    def create(self, entry: StateEntry) -> None:
        self._before[entry.index] = (entry, None)

    def delete(self, entry: StateEntry) -> None:
        self.touch(entry)
        self._deleted.add(entry.index)

    def affected_nodes(self, tx_hash: str, ledger_index: int) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        for index in sorted(self._before):
            entry, before = self._before[index]
            after = entry.fields()
            node: dict[str, Any] = {"LedgerEntryType": entry.entry_type, "LedgerIndex": index}
            if before is None:
                node["NewFields"] = {k: v for k, v in after.items() if not _is_default(v)}
                nodes.append({"CreatedNode": node})
            else:
                previous = {k: v for k, v in before.items() if after.get(k) != v}
                if index in self._deleted:
                    final = dict(after)
                    if entry.threaded:
                        final["PreviousTxnID"] = entry.prev_txn_id
                        final["PreviousTxnLgrSeq"] = entry.prev_txn_lgr
                    node["FinalFields"] = final
                    if previous:
                        node["PreviousFields"] = previous
                    nodes.append({"DeletedNode": node})
                    continue
                node["FinalFields"] = after
                if previous:
                    node["PreviousFields"] = previous
                if entry.threaded:
                    node["PreviousTxnID"] = entry.prev_txn_id
                    node["PreviousTxnLgrSeq"] = entry.prev_txn_lgr
                nodes.append({"ModifiedNode": node})
            if entry.threaded:
                entry.prev_txn_id = tx_hash
                entry.prev_txn_lgr = ledger_index
        return nodes


@dataclass(frozen=True)
class Market:
    base: tuple[str, str]
    quote: tuple[str, str]
    price_ppm: int
    """Quote units per base unit, in millionths."""


class SimLedger:
    """The simulated ledger's state: account roots, owner directories, trust lines,
    offers and book directories, and the operations transactions make on them, each
    recorded in a :class:`Changes` so the metadata can be diffed from it."""

    def __init__(self, seed: int, rng: random.Random, start_ledger: int) -> None:
        self.seed = seed
        self.rng = rng
        self.start_ledger = start_ledger
        self.roots: dict[str, AccountRoot] = {}
        self.owner_dirs: dict[str, OwnerDirectory] = {}
        self.lines: dict[tuple[str, str, str], RippleState] = {}
        self.offers: dict[str, Offer] = {}
        self.book_dirs: dict[str, BookDirectory] = {}
        self.pubkeys: dict[str, str] = {}

    def new_account(self, label: str) -> str:
        account_id = hashlib.sha256(f"{self.seed}:account:{label}".encode()).digest()[:20]
        address = encode_account_id(account_id)
        rng = self.rng
        balance = rng.randrange(200, 20_000) * UNITS + rng.randrange(UNITS)
        if label.startswith("issuer"):
            balance *= 50
        sequence = max(1, self.start_ledger - rng.randrange(10_000, 5_000_000))
        root = AccountRoot(sha512_half(self.seed, "root", address), address, balance, sequence)
        root.prev_txn_id = sha512_half(self.seed, "history", address)
        root.prev_txn_lgr = max(1, self.start_ledger - rng.randrange(2, 5000))
        self.roots[address] = root
        self.owner_dirs[address] = OwnerDirectory(sha512_half(self.seed, "owner", address), address)
        self.pubkeys[address] = fake_public_key(self.seed, "account", address).hex().upper()
        return address

    def make_line(self, holder: str, currency: str, issuer: str) -> RippleState:
        low, high = sorted((holder, issuer), key=decode_classic_address)
        line = RippleState(sha512_half(self.seed, "line", low, high, currency), low, high, currency)
        self.lines[(holder, currency, issuer)] = line
        return line

    def make_offer(self, account: str, sequence: int, gets: Amount, pays: Amount) -> Offer:
        book = sha512_half(self.seed, "book", *gets.issue, *pays.issue)[:48]
        directory_index = book + quality_hex(pays.units, gets.units)
        directory = self.book_dirs.get(directory_index)
        if directory is None:
            directory = BookDirectory(directory_index, gets.issue, pays.issue)
            self.book_dirs[directory_index] = directory
        directory.count += 1
        index = sha512_half(self.seed, "offer", account, sequence)
        offer = Offer(index, account, sequence, gets, pays, directory_index)
        self.offers[index] = offer
        return offer

    def funds(self, account: str, issue: tuple[str, str]) -> int:
        if issue[0] == XRP:
            root = self.roots[account]
            return root.balance - root.reserve() - FEE_DROPS
        line = self.lines.get((account, *issue))
        return 0 if line is None else line.holder_balance(account)

    def can_receive(self, account: str, issue: tuple[str, str]) -> bool:
        return issue[0] == XRP or (account, *issue) in self.lines

    def transfer(self, changes: Changes, amount: Amount, source: str, dest: str) -> None:
        if amount.is_xrp:
            for account, delta in ((source, -amount.units), (dest, amount.units)):
                root = self.roots[account]
                changes.touch(root)
                root.balance += delta
            return
        for account, delta in ((source, -amount.units), (dest, amount.units)):
            if account == amount.issuer:
                continue
            line = self.lines[(account, *amount.issue)]
            changes.touch(line)
            line.credit(account, delta)

    def change_owner_count(self, changes: Changes, account: str, delta: int) -> None:
        root = self.roots[account]
        changes.touch(root)
        root.owner_count += delta
        changes.touch(self.owner_dirs[account])

    def remove_offer(self, changes: Changes, offer: Offer) -> None:
        changes.delete(offer)
        del self.offers[offer.index]
        directory = self.book_dirs[offer.directory]
        directory.count -= 1
        if directory.count == 0:
            changes.delete(directory)
            del self.book_dirs[offer.directory]
        else:
            changes.touch(directory)
        self.change_owner_count(changes, offer.account, -1)

    def place_offer(
        self, changes: Changes, account: str, sequence: int, gets: Amount, pays: Amount
    ) -> None:
        existed = set(self.book_dirs)
        offer = self.make_offer(account, sequence, gets, pays)
        if offer.directory in existed:
            changes.touch(self.book_dirs[offer.directory])
        else:
            changes.create(self.book_dirs[offer.directory])
        changes.create(offer)
        self.change_owner_count(changes, account, 1)


def transaction_message(
    tx: dict[str, Any],
    meta: dict[str, Any],
    tx_hash: str,
    ledger_index: int,
    ledger_hash: str,
    close_time: int,
    network_id: int,
) -> dict[str, Any]:
    """The ``transaction`` stream message of one applied transaction, with its ``ctid``
    when it fits (current rippled's ``transJson``)."""
    message = {
        "close_time_iso": ripple_time_iso(close_time),
        "engine_result": "tesSUCCESS",
        "engine_result_code": 0,
        "engine_result_message": TES_MESSAGE,
        "hash": tx_hash,
        "ledger_hash": ledger_hash,
        "ledger_index": ledger_index,
        "meta": meta,
        "status": "closed",
        "tx_json": {**tx, "date": close_time},
        "type": "transaction",
        "validated": True,
    }
    code = ctid.encode(ledger_index, meta["TransactionIndex"], network_id)
    if code is not None:
        message["ctid"] = code
    return message
