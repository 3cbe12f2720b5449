"""A deterministic XRP Ledger traffic simulator.

:class:`LedgerSimulator` is sans-IO and clock-free: each :meth:`close_ledger`
call returns the stream messages one ledger close produces, shaped exactly as
a rippled API v2 subscriber receives them, so the hub can be developed,
demonstrated and load-tested without a network.  The same seed always yields
the same byte-identical sequence, which makes failures reproducible.

The ledger state behind the messages is small but consistent: a fixed pool of
accounts with XRP balances and sequences, trust lines to a few issuers, and
open offers.  Metadata is derived by diffing that state before and after each
transaction, so ``PreviousFields``/``FinalFields`` always agree with balances
and ``bookChanges`` is computed from the metadata the way rippled does it.

Publish order follows rippled's ``NetworkOPs::pubLedger``: the validations
that complete the ledger, then ``ledgerClosed``, then ``bookChanges``, then
every transaction in ``TransactionIndex`` order.

:func:`run_simulator` is the only I/O: a trio task that closes a ledger every
``interval`` seconds and pushes the messages into a memory channel.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import trio

from hub.sources.simbooks import KEPT_LEDGERS, BookState
from hub.sources.simextras import ServerLoad, consensus_phase
from hub.xrpl import ctid
from hub.xrpl.addresses import (
    ACCOUNT_ONE,
    base58check_encode,
    decode_classic_address,
    encode_account_id,
)
from hub.xrpl.books import RestingOffer, quality
from hub.xrpl.ledgerdata import (
    RIPPLE_EPOCH_OFFSET,
    TES_MESSAGE,
    book_changes,
    ripple_time_iso,
    value_text,
)

__all__ = [
    "DEFAULT_START_TIME",
    "RIPPLE_EPOCH_OFFSET",
    "LedgerSimulator",
    "book_changes",
    "ripple_time_iso",
    "run_simulator",
]

"""Seconds from the Unix epoch to the Ripple epoch (2000-01-01T00:00:00Z)."""

DEFAULT_START_TIME = 820_540_800
"""2026-01-01T00:00:00Z in Ripple-epoch seconds: the clock-free default."""

LEDGER_SECONDS = 4
FEE_DROPS = 12
FEE_BASE = 10
RESERVE_BASE = 1_000_000
RESERVE_INC = 200_000
HISTORY_LEDGERS = 1000

_UNITS = 1_000_000
"""Amounts are integers: drops for XRP, millionths of a unit for tokens."""

_VALIDATION_FLAGS = 0x80000001
_LSF_LOW_RESERVE = 0x00010000
_LSF_HIGH_RESERVE = 0x00020000
_NODE_PUBLIC_VERSION = b"\x1c"
_XRP = "XRP"
_ZERO160 = "0" * 40
_USERS = 40
_ISSUERS = 3
_MAX_OPEN_OFFERS = 150
_TX_KINDS = ("xrp_payment", "iou_payment", "offer_create", "offer_cancel", "trust_set")
_TX_WEIGHTS = (30, 20, 30, 10, 10)


def _sha512_half(*parts: object) -> str:
    data = "\x1f".join(str(part) for part in parts).encode()
    return hashlib.sha512(data).digest()[:32].hex().upper()


def _fake_der_signature(*parts: object) -> str:
    """A DER-shaped ECDSA signature (r and s kept positive) derived from ``parts``."""
    digest = hashlib.sha512("\x1f".join(str(p) for p in parts).encode()).digest()
    r = bytes([digest[0] & 0x7F | 0x01]) + digest[1:32]
    s = bytes([digest[32] & 0x7F | 0x01]) + digest[33:64]
    return ("30440220" + r.hex() + "0220" + s.hex()).upper()


def _fake_public_key(*parts: object) -> bytes:
    """A compressed secp256k1-shaped public key (33 bytes) derived from ``parts``."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return bytes([2 + (digest[0] & 1)]) + digest


def _currency_hex(currency: str) -> str:
    if currency == _XRP:
        return _ZERO160
    return ("00" * 12 + currency.encode("ascii").hex() + "00" * 5).upper()


@dataclass(frozen=True)
class _Amount:
    currency: str
    issuer: str
    units: int

    @property
    def issue(self) -> tuple[str, str]:
        return self.currency, self.issuer

    @property
    def is_xrp(self) -> bool:
        return self.currency == _XRP

    def with_units(self, units: int) -> _Amount:
        return _Amount(self.currency, self.issuer, units)

    def json(self) -> str | dict[str, str]:
        if self.is_xrp:
            return str(self.units)
        value = value_text(Decimal(self.units).scaleb(-6))
        return {"currency": self.currency, "issuer": self.issuer, "value": value}


class _Entry:
    """A ledger object; ``fields()`` is its JSON as it appears in metadata."""

    entry_type = ""
    threaded = True

    def __init__(self, index: str) -> None:
        self.index = index
        self.prev_txn_id = ""
        self.prev_txn_lgr = 0

    def fields(self) -> dict[str, Any]:
        raise NotImplementedError


class _AccountRoot(_Entry):
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


class _RippleState(_Entry):
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
            return _Amount(self.currency, issuer, units).json()

        return {
            "Balance": amount(ACCOUNT_ONE, self.balance),
            "Flags": self.flags,
            "HighLimit": amount(self.high, self.high_limit),
            "HighNode": "0",
            "LowLimit": amount(self.low, self.low_limit),
            "LowNode": "0",
        }


class _Offer(_Entry):
    entry_type = "Offer"

    def __init__(
        self, index: str, account: str, sequence: int, gets: _Amount, pays: _Amount, directory: str
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


class _OwnerDirectory(_Entry):
    entry_type = "DirectoryNode"
    threaded = False

    def __init__(self, index: str, owner: str) -> None:
        super().__init__(index)
        self.owner = owner

    def fields(self) -> dict[str, Any]:
        return {"Flags": 0, "Owner": self.owner, "RootIndex": self.index}


class _BookDirectory(_Entry):
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


def _quality_hex(pays: int, gets: int) -> str:
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


def _sorted_keys(value: Any) -> Any:
    """Recursively order object keys as rippled's JSON writer does (byte order)."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _is_default(value: object) -> bool:
    return value == 0 or value == "0"


class _Changes:
    """Records ledger objects a transaction touches and renders its AffectedNodes."""

    def __init__(self) -> None:
        self._before: dict[str, tuple[_Entry, dict[str, Any] | None]] = {}
        self._deleted: set[str] = set()

    def touch(self, entry: _Entry) -> None:
        if entry.index not in self._before:
            self._before[entry.index] = (entry, entry.fields())

    def create(self, entry: _Entry) -> None:
        self._before[entry.index] = (entry, None)

    def delete(self, entry: _Entry) -> None:
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
class _Market:
    base: tuple[str, str]
    quote: tuple[str, str]
    price_ppm: int
    """Quote units per base unit, in millionths."""


class LedgerSimulator:
    """Produces the stream messages of successive ledger closes, deterministically.

    ``seed`` fixes everything (accounts, keys, amounts, hashes); ``None`` picks
    a random seed, recorded in :attr:`seed` so a run can be replayed.  The
    object keeps no clock: ``close_ledger`` uses the close time it is given,
    or ``start_time + 4 * n`` for the n-th close (n from 0).  ``network_id``
    goes into every ``ledgerClosed``, validation and transaction ``ctid``.
    """

    def __init__(
        self,
        seed: int | None = None,
        tx_per_ledger: int = 20,
        validators: int = 5,
        start_ledger: int = 90_000_000,
        start_time: int | None = None,
        network_id: int = 0,
    ) -> None:
        if tx_per_ledger < 0 or validators < 0 or start_ledger < 1 or network_id < 0:
            raise ValueError(
                "tx_per_ledger, validators and network_id must be >= 0, start_ledger >= 1"
            )
        self.seed: int = random.SystemRandom().getrandbits(63) if seed is None else seed
        self.network_id = network_id
        self._pending: list[tuple[dict[str, Any], dict[str, Any], str]] | None = None
        self._book_states: dict[int, BookState] = {}
        self.tx_per_ledger = tx_per_ledger
        self.start_ledger = start_ledger
        self.start_time = DEFAULT_START_TIME if start_time is None else start_time
        self._rng = random.Random(self.seed)
        self._closed = 0
        self._first_complete = max(1, start_ledger - HISTORY_LEDGERS)
        self._parent_hash = _sha512_half(self.seed, "ledger", start_ledger - 1)
        self._validator_keys = [
            _fake_public_key(self.seed, "validator", i) for i in range(validators)
        ]
        self._roots: dict[str, _AccountRoot] = {}
        self._owner_dirs: dict[str, _OwnerDirectory] = {}
        self._lines: dict[tuple[str, str, str], _RippleState] = {}
        self._offers: dict[str, _Offer] = {}
        self._book_dirs: dict[str, _BookDirectory] = {}
        self._pubkeys: dict[str, str] = {}
        self.issuers: tuple[str, ...] = tuple(
            self._new_account(f"issuer{i}") for i in range(_ISSUERS)
        )
        self.users: tuple[str, ...] = tuple(self._new_account(f"user{i}") for i in range(_USERS))
        i0, i1, i2 = self.issuers
        self._ious: tuple[tuple[str, str], ...] = (
            ("USD", i0),
            ("USD", i1),
            ("EUR", i1),
            ("EUR", i2),
        )
        self._markets = (
            _Market((_XRP, ""), ("USD", i0), 400_000),
            _Market((_XRP, ""), ("USD", i1), 410_000),
            _Market((_XRP, ""), ("EUR", i1), 370_000),
            _Market((_XRP, ""), ("EUR", i2), 365_000),
            _Market(("USD", i1), ("EUR", i1), 920_000),
        )
        self._seed_state()

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every account the simulator uses: issuers first, then users."""
        return self.issuers + self.users

    @property
    def ledger_index(self) -> int:
        """Index of the next ledger :meth:`close_ledger` will close."""
        return self.start_ledger + self._closed

    # -- state set-up -------------------------------------------------------

    def _new_account(self, label: str) -> str:
        account_id = hashlib.sha256(f"{self.seed}:account:{label}".encode()).digest()[:20]
        address = encode_account_id(account_id)
        rng = self._rng
        balance = rng.randrange(200, 20_000) * _UNITS + rng.randrange(_UNITS)
        if label.startswith("issuer"):
            balance *= 50
        sequence = max(1, self.start_ledger - rng.randrange(10_000, 5_000_000))
        root = _AccountRoot(_sha512_half(self.seed, "root", address), address, balance, sequence)
        root.prev_txn_id = _sha512_half(self.seed, "history", address)
        root.prev_txn_lgr = max(1, self.start_ledger - rng.randrange(2, 5000))
        self._roots[address] = root
        self._owner_dirs[address] = _OwnerDirectory(
            _sha512_half(self.seed, "owner", address), address
        )
        self._pubkeys[address] = _fake_public_key(self.seed, "account", address).hex().upper()
        return address

    def _seed_state(self) -> None:
        rng = self._rng
        for user in self.users:
            for currency, issuer in self._ious:
                if rng.random() < 0.6:
                    line = self._make_line(user, currency, issuer)
                    line.set_limit(user, 1_000_000 * _UNITS)
                    line.credit(user, rng.randrange(100, 10_000) * _UNITS)
                    line.prev_txn_id = _sha512_half(self.seed, "history", line.index)
                    line.prev_txn_lgr = max(1, self.start_ledger - rng.randrange(2, 5000))
                    self._roots[user].owner_count += 1
        for market in self._markets:
            for _ in range(8):
                maker = self._pick_maker(market, rng.random() < 0.5)
                if maker is None:
                    continue
                user, gets, pays = maker
                sequence = self._roots[user].sequence - 1 - len(self._offers)
                offer = self._make_offer(user, sequence, gets, pays)
                offer.prev_txn_id = _sha512_half(self.seed, "history", offer.index)
                offer.prev_txn_lgr = max(1, self.start_ledger - rng.randrange(2, 500))
                self._roots[user].owner_count += 1

    def _make_line(self, holder: str, currency: str, issuer: str) -> _RippleState:
        low, high = sorted((holder, issuer), key=decode_classic_address)
        line = _RippleState(
            _sha512_half(self.seed, "line", low, high, currency), low, high, currency
        )
        self._lines[(holder, currency, issuer)] = line
        return line

    def _make_offer(self, account: str, sequence: int, gets: _Amount, pays: _Amount) -> _Offer:
        book = _sha512_half(self.seed, "book", *gets.issue, *pays.issue)[:48]
        directory_index = book + _quality_hex(pays.units, gets.units)
        directory = self._book_dirs.get(directory_index)
        if directory is None:
            directory = _BookDirectory(directory_index, gets.issue, pays.issue)
            self._book_dirs[directory_index] = directory
        directory.count += 1
        index = _sha512_half(self.seed, "offer", account, sequence)
        offer = _Offer(index, account, sequence, gets, pays, directory_index)
        self._offers[index] = offer
        return offer

    # -- queries ------------------------------------------------------------

    def _funds(self, account: str, issue: tuple[str, str]) -> int:
        if issue[0] == _XRP:
            root = self._roots[account]
            return root.balance - root.reserve() - FEE_DROPS
        line = self._lines.get((account, *issue))
        return 0 if line is None else line.holder_balance(account)

    def _can_receive(self, account: str, issue: tuple[str, str]) -> bool:
        return issue[0] == _XRP or (account, *issue) in self._lines

    def _pick_maker(self, market: _Market, sell_base: bool) -> tuple[str, _Amount, _Amount] | None:
        """Choose a funded user and amounts for a resting (non-crossing) offer."""
        rng = self._rng
        give, want = (market.base, market.quote) if sell_base else (market.quote, market.base)
        whole = rng.randrange(20, 2000) if market.base[0] == _XRP else rng.randrange(5, 500)
        base_units = whole * _UNITS + rng.randrange(_UNITS) // 1000 * 1000
        margin = rng.randrange(1_000, 30_000)
        if sell_base:
            quote_units = base_units * market.price_ppm * (1_000_000 + margin) // 10**12
        else:
            quote_units = base_units * market.price_ppm * (1_000_000 - margin) // 10**12
        give_units, want_units = (
            (base_units, quote_units) if sell_base else (quote_units, base_units)
        )
        candidates = [
            u
            for u in self.users
            if self._funds(u, give) >= 2 * give_units
            and self._funds(u, (_XRP, "")) >= RESERVE_INC
            and self._can_receive(u, want)
        ]
        if not candidates or give_units <= 0 or want_units <= 0:
            return None
        user = rng.choice(candidates)
        return user, _Amount(*give, give_units), _Amount(*want, want_units)

    # -- state changes ------------------------------------------------------

    def _transfer(self, changes: _Changes, amount: _Amount, source: str, dest: str) -> None:
        if amount.is_xrp:
            for account, delta in ((source, -amount.units), (dest, amount.units)):
                root = self._roots[account]
                changes.touch(root)
                root.balance += delta
            return
        for account, delta in ((source, -amount.units), (dest, amount.units)):
            if account == amount.issuer:
                continue
            line = self._lines[(account, *amount.issue)]
            changes.touch(line)
            line.credit(account, delta)

    def _change_owner_count(self, changes: _Changes, account: str, delta: int) -> None:
        root = self._roots[account]
        changes.touch(root)
        root.owner_count += delta
        changes.touch(self._owner_dirs[account])

    def _remove_offer(self, changes: _Changes, offer: _Offer) -> None:
        changes.delete(offer)
        del self._offers[offer.index]
        directory = self._book_dirs[offer.directory]
        directory.count -= 1
        if directory.count == 0:
            changes.delete(directory)
            del self._book_dirs[offer.directory]
        else:
            changes.touch(directory)
        self._change_owner_count(changes, offer.account, -1)

    def _place_offer(
        self, changes: _Changes, account: str, sequence: int, gets: _Amount, pays: _Amount
    ) -> None:
        existed = set(self._book_dirs)
        offer = self._make_offer(account, sequence, gets, pays)
        if offer.directory in existed:
            changes.touch(self._book_dirs[offer.directory])
        else:
            changes.create(self._book_dirs[offer.directory])
        changes.create(offer)
        self._change_owner_count(changes, account, 1)

    # -- transactions -------------------------------------------------------

    def _begin(
        self, changes: _Changes, kind: str, account: str, ledger_index: int
    ) -> dict[str, Any]:
        """Common tx fields; charges the fee and consumes the sequence."""
        root = self._roots[account]
        tx: dict[str, Any] = {
            "Account": account,
            "Fee": str(FEE_DROPS),
            "Flags": 0,
            "LastLedgerSequence": ledger_index + self._rng.randrange(3, 20),
            "Sequence": root.sequence,
            "SigningPubKey": self._pubkeys[account],
            "TransactionType": kind,
        }
        changes.touch(root)
        root.balance -= FEE_DROPS
        root.sequence += 1
        return tx

    def _xrp_payment(self, changes: _Changes, ledger_index: int) -> tuple[dict[str, Any], Any]:
        rng = self._rng
        sender, dest = rng.sample(self.addresses, 2)
        spendable = self._funds(sender, (_XRP, ""))
        cap = max(2, min(spendable // 20, 5_000 * _UNITS))
        units = rng.randrange(1, 500) * _UNITS if rng.random() < 0.5 else rng.randrange(1, cap)
        units = max(1, min(units, cap))
        amount = _Amount(_XRP, "", units)
        tx = self._begin(changes, "Payment", sender, ledger_index)
        tx["DeliverMax"] = amount.json()
        tx["Destination"] = dest
        if rng.random() < 0.3:
            tx["DestinationTag"] = rng.randrange(1, 2**32)
        self._transfer(changes, amount, sender, dest)
        return tx, amount.json()

    def _iou_payment(
        self, changes: _Changes, ledger_index: int
    ) -> tuple[dict[str, Any], Any] | None:
        rng = self._rng
        currency, issuer = rng.choice(self._ious)
        holders = [u for u in self.users if (u, currency, issuer) in self._lines]
        funded = [u for u in holders if self._funds(u, (currency, issuer)) >= _UNITS]
        mode = rng.random()
        if mode < 0.25 and holders:
            sender, dest = issuer, rng.choice(holders)
        elif mode < 0.4 and funded:
            sender, dest = rng.choice(funded), issuer
        elif len(holders) >= 2 and funded:
            sender = rng.choice(funded)
            dest = rng.choice([h for h in holders if h != sender] or [issuer])
        else:
            return None
        cap = 500 * _UNITS if sender == issuer else self._funds(sender, (currency, issuer)) // 2
        units = max(1, rng.randrange(1, max(2, cap)) // 10_000 * 10_000)
        amount = _Amount(currency, issuer, units)
        tx = self._begin(changes, "Payment", sender, ledger_index)
        tx["DeliverMax"] = amount.json()
        tx["Destination"] = dest
        self._transfer(changes, amount, sender, dest)
        return tx, amount.json()

    def _trust_set(self, changes: _Changes, ledger_index: int) -> dict[str, Any]:
        rng = self._rng
        user = rng.choice(self.users)
        currency, issuer = rng.choice(self._ious)
        limit = rng.choice((10_000, 100_000, 1_000_000, 5_000_000)) * _UNITS
        tx = self._begin(changes, "TrustSet", user, ledger_index)
        tx["LimitAmount"] = _Amount(currency, issuer, limit).json()
        line = self._lines.get((user, currency, issuer))
        if line is None:
            line = self._make_line(user, currency, issuer)
            changes.create(line)
            self._change_owner_count(changes, user, 1)
            changes.touch(self._owner_dirs[issuer])
        else:
            changes.touch(line)
        line.set_limit(user, limit)
        return tx

    def _offer_cancel(self, changes: _Changes, ledger_index: int) -> dict[str, Any] | None:
        if not self._offers:
            return None
        offer = self._offers[self._rng.choice(sorted(self._offers))]
        tx = self._begin(changes, "OfferCancel", offer.account, ledger_index)
        tx["OfferSequence"] = offer.sequence
        self._remove_offer(changes, offer)
        return tx

    def _offer_create(self, changes: _Changes, ledger_index: int) -> dict[str, Any] | None:
        rng = self._rng
        market = rng.choice(self._markets)
        sell_base = rng.random() < 0.5
        if rng.random() < 0.55:
            crossed = self._crossing_offer(changes, market, sell_base, ledger_index)
            if crossed is not None:
                return crossed
        maker = self._pick_maker(market, sell_base)
        if maker is None:
            return None
        user, gets, pays = maker
        tx = self._begin(changes, "OfferCreate", user, ledger_index)
        tx["TakerGets"] = gets.json()
        tx["TakerPays"] = pays.json()
        self._place_offer(changes, user, tx["Sequence"], gets, pays)
        return tx

    def _crossing_offer(
        self, changes: _Changes, market: _Market, sell_base: bool, ledger_index: int
    ) -> dict[str, Any] | None:
        """An OfferCreate that takes (part of) the best resting offer it can."""
        rng = self._rng
        give, want = (market.base, market.quote) if sell_base else (market.quote, market.base)
        resting = [
            o
            for o in self._offers.values()
            if o.gets.issue == want
            and o.pays.issue == give
            and self._funds(o.account, want) >= o.gets.units
        ]
        if not resting:
            return None
        best = min(resting, key=lambda o: (o.pays.units * 10**6 // o.gets.units, o.index))
        takers = [
            u
            for u in self.users
            if u != best.account
            and self._can_receive(u, want)
            and self._funds(u, give) >= 2 * best.pays.units
            and self._funds(u, (_XRP, "")) >= RESERVE_INC
        ]
        if not takers:
            return None
        taker = rng.choice(takers)
        full = rng.random() < 0.5
        if full:
            wanted = best.gets.units + rng.randrange(0, best.gets.units // 2 + 1) * rng.randrange(2)
        else:
            wanted = max(1, best.gets.units * rng.randrange(10, 90) // 100)
        got = min(wanted, best.gets.units)
        paid = (
            best.pays.units
            if got == best.gets.units
            else -(-got * best.pays.units // best.gets.units)
        )
        rest_want = wanted - got
        rest_give = rest_want * best.pays.units // best.gets.units
        offered = _Amount(*give, paid + rest_give)
        tx = self._begin(changes, "OfferCreate", taker, ledger_index)
        tx["TakerGets"] = offered.json()
        tx["TakerPays"] = _Amount(*want, wanted).json()
        changes.touch(best)
        best.gets = best.gets.with_units(best.gets.units - got)
        best.pays = best.pays.with_units(best.pays.units - paid)
        self._transfer(changes, _Amount(*want, got), best.account, taker)
        self._transfer(changes, _Amount(*give, paid), taker, best.account)
        if best.gets.units <= 0 or best.pays.units <= 0:
            self._remove_offer(changes, best)
        if rest_want > 0 and rest_give > 0:
            gets = _Amount(*give, rest_give)
            self._place_offer(changes, taker, tx["Sequence"], gets, _Amount(*want, rest_want))
        return tx

    def _owner_funds(self, tx: Mapping[str, Any]) -> str | None:
        """rippled's ``owner_funds`` for an OfferCreate not selling its own IOU."""
        gets = tx["TakerGets"]
        if isinstance(gets, str):
            return str(max(0, self._funds(tx["Account"], (_XRP, "")) + FEE_DROPS))
        if gets["issuer"] == tx["Account"]:
            return None
        units = self._funds(tx["Account"], (gets["currency"], gets["issuer"]))
        return value_text(Decimal(units).scaleb(-6))

    def _one_transaction(
        self, ledger_index: int, tx_index: int
    ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Generate and apply one transaction: (tx_json without date, meta, hash)."""
        rng = self._rng
        kind = rng.choices(_TX_KINDS, _TX_WEIGHTS)[0]
        if kind == "offer_create" and len(self._offers) > _MAX_OPEN_OFFERS:
            kind = "offer_cancel"
        changes = _Changes()
        delivered: Any = None
        tx: dict[str, Any] | None = None
        if kind == "iou_payment":
            paid = self._iou_payment(changes, ledger_index)
            if paid is not None:
                tx, delivered = paid
        elif kind == "offer_create":
            tx = self._offer_create(changes, ledger_index)
        elif kind == "offer_cancel":
            tx = self._offer_cancel(changes, ledger_index)
        elif kind == "trust_set":
            tx = self._trust_set(changes, ledger_index)
        if tx is None:
            changes = _Changes()
            tx, delivered = self._xrp_payment(changes, ledger_index)
        if tx["TransactionType"] == "OfferCreate":
            owner_funds = self._owner_funds(tx)
            if owner_funds is not None:
                tx["owner_funds"] = owner_funds
        tx["TxnSignature"] = _fake_der_signature(self.seed, "tx", tx["Account"], tx["Sequence"])
        signed = {k: v for k, v in tx.items() if k != "owner_funds"}
        tx_hash = _sha512_half("TXN", json.dumps(signed, sort_keys=True, separators=(",", ":")))
        meta: dict[str, Any] = {
            "AffectedNodes": changes.affected_nodes(tx_hash, ledger_index),
            "TransactionIndex": tx_index,
            "TransactionResult": "tesSUCCESS",
        }
        if delivered is not None:
            meta["delivered_amount"] = delivered
        return tx, meta, tx_hash

    # -- messages -----------------------------------------------------------

    def _validation(
        self, key: bytes, ledger_index: int, ledger_hash: str, close_time: int
    ) -> dict[str, Any]:
        signing_time = close_time + 1 + self._rng.randrange(3)
        signature = _fake_der_signature(self.seed, "validation", key.hex(), ledger_index)
        data = (
            "22"
            + format(_VALIDATION_FLAGS, "08X")
            + "26"
            + format(ledger_index, "08X")
            + "29"
            + format(signing_time, "08X")
            + "51"
            + ledger_hash
            + "7321"
            + key.hex().upper()
            + "76"
            + format(len(signature) // 2, "02X")
            + signature
        )
        return {
            "data": data,
            "flags": _VALIDATION_FLAGS,
            "full": True,
            "ledger_hash": ledger_hash,
            "ledger_index": ledger_index,
            "network_id": self.network_id,
            "signature": signature,
            "signing_time": signing_time,
            "type": "validationReceived",
            "validation_public_key": base58check_encode(_NODE_PUBLIC_VERSION + key),
        }

    def _next_transactions(self) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
        """The next ledger's transactions, generated (and applied) once."""
        if self._pending is None:
            count = round(self.tx_per_ledger * self._rng.uniform(0.75, 1.25))
            index = self.ledger_index
            self._pending = [self._one_transaction(index, i) for i in range(count)]
        return self._pending

    def propose(self) -> list[dict[str, Any]]:
        """The next ledger's transactions as ``transactions_proposed`` gets them before
        the ledger closes (``pubProposedTransaction``: no meta, no date, no ctid).

        Calling it does not change what :meth:`close_ledger` then returns; a second
        call before the close returns nothing, each transaction being proposed once.
        """
        if self._pending is not None:
            return []
        index = self.ledger_index
        return [
            _sorted_keys(
                {
                    "engine_result": "tesSUCCESS",
                    "engine_result_code": 0,
                    "engine_result_message": TES_MESSAGE,
                    "hash": tx_hash,
                    "ledger_current_index": index,
                    "status": "proposed",
                    "tx_json": tx,
                    "type": "transaction",
                    "validated": False,
                }
            )
            for tx, _, tx_hash in self._next_transactions()
        ]

    def book_state(self, ledger_index: int | None = None) -> BookState | None:
        """The books after ``ledger_index`` (the newest kept when None or no longer
        kept), or None before the first close."""
        if not self._book_states:
            return None
        if ledger_index in self._book_states:
            return self._book_states[ledger_index]
        return self._book_states[next(reversed(self._book_states))]

    def _keep_books(self, ledger_index: int) -> None:
        offers = tuple(RestingOffer(o.entry(), o.quality) for o in self._offers.values())
        funds: dict[tuple[str, str, str], Decimal] = {}
        for offer in self._offers.values():
            currency, issuer = offer.gets.issue
            if offer.account == issuer:
                continue
            if currency == _XRP:
                root = self._roots[offer.account]
                held = Decimal(max(0, root.balance - root.reserve()))
            else:
                line = self._lines[(offer.account, currency, issuer)]
                held = Decimal(line.holder_balance(offer.account)).scaleb(-6)
            funds[(offer.account, currency, issuer)] = held
        self._book_states[ledger_index] = BookState(ledger_index, offers, funds)
        while len(self._book_states) > KEPT_LEDGERS:
            del self._book_states[next(iter(self._book_states))]

    def close_ledger(self, close_time: int | None = None) -> list[dict[str, Any]]:
        """Close the next ledger and return every message its publication emits.

        Order: one ``validationReceived`` per validator, ``ledgerClosed``,
        ``bookChanges``, then the ledger's ``transaction`` messages.  Keys of
        every object are sorted, as rippled's JSON writer emits them.
        """
        ledger_index = self.ledger_index
        if close_time is None:
            close_time = self.start_time + LEDGER_SECONDS * self._closed
        applied = self._next_transactions()
        self._pending = None
        ledger_hash = _sha512_half(
            self.seed,
            "ledger",
            ledger_index,
            self._parent_hash,
            close_time,
            *(h for *_, h in applied),
        )
        self._parent_hash = ledger_hash
        self._closed += 1
        self._keep_books(ledger_index)
        messages: list[dict[str, Any]] = [
            self._validation(key, ledger_index, ledger_hash, close_time)
            for key in self._validator_keys
        ]
        messages.append(
            {
                "fee_base": FEE_BASE,
                "ledger_hash": ledger_hash,
                "ledger_index": ledger_index,
                "ledger_time": close_time,
                "network_id": self.network_id,
                "reserve_base": RESERVE_BASE,
                "reserve_inc": RESERVE_INC,
                "txn_count": len(applied),
                "type": "ledgerClosed",
                "validated_ledgers": f"{self._first_complete}-{ledger_index}",
            }
        )
        messages.append(
            {
                "changes": book_changes((tx, meta) for tx, meta, _ in applied),
                "ledger_hash": ledger_hash,
                "ledger_index": ledger_index,
                "ledger_time": close_time,
                "type": "bookChanges",
                "validated": True,
            }
        )
        messages.extend(
            _transaction_message(
                tx, meta, tx_hash, ledger_index, ledger_hash, close_time, self.network_id
            )
            for tx, meta, tx_hash in applied
        )
        return [_sorted_keys(message) for message in messages]


def _transaction_message(
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


async def run_simulator(
    send: trio.MemorySendChannel[dict[str, Any]],
    *,
    interval: float = 3.5,
    sim: LedgerSimulator,
    wall_clock: Callable[[], float] = time.time,
    proposed: bool = False,
    consensus: bool = False,
    load: ServerLoad | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Close a ledger every ``interval`` seconds and send its messages in order.

    Ticks are scheduled against absolute deadlines on trio's clock so they do
    not drift.  If the consumer stalls past a deadline the schedule restarts
    from now rather than bursting to catch up: a simulated network does not
    close ledgers faster to make up for lost time.  ``close_time`` is the
    Ripple-epoch wall time (``wall_clock``, injectable for tests).

    Optional, as a rippled round goes: ``proposed`` sends the coming ledger's
    transactions unvalidated halfway through the interval; ``consensus`` sends
    ``establish`` three quarters through, ``accepted`` just before the ledger's
    messages and ``open`` after them (and once at the start); ``load`` sends a
    ``serverStatus`` at the start and after each ledger that changed it.
    """
    task_status.started()
    deadline = trio.current_time()
    for message in (
        consensus_phase("open") if consensus else None,
        load.step() if load else None,
    ):
        if message is not None:
            await send.send(message)
    while True:
        deadline += interval
        if proposed:
            await trio.sleep_until(deadline - interval / 2)
            for message in sim.propose():
                await send.send(message)
        if consensus:
            await trio.sleep_until(deadline - interval / 4)
            await send.send(consensus_phase("establish"))
        await trio.sleep_until(deadline)
        close_time = int(wall_clock()) - RIPPLE_EPOCH_OFFSET
        closing = sim.close_ledger(close_time)
        if consensus:
            closing = [consensus_phase("accepted"), *closing, consensus_phase("open")]
        status = load.step() if load else None
        for message in closing if status is None else [*closing, status]:
            await send.send(message)
        deadline = max(deadline, trio.current_time() - interval)
