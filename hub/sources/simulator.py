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

:func:`hub.sources.rounds.run_simulator` is the only I/O: a trio task that closes a
ledger every ``interval`` seconds and pushes the messages into a memory channel. The
ledger state behind the messages lives in :mod:`hub.sources.simstate`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hub.sources.simbooks import KEPT_LEDGERS, BookState
from hub.sources.simstate import (
    FEE_BASE,
    FEE_DROPS,
    NODE_PUBLIC_VERSION,
    RESERVE_BASE,
    RESERVE_INC,
    UNITS,
    VALIDATION_FLAGS,
    XRP,
    Amount,
    Changes,
    Market,
    SimLedger,
    fake_der_signature,
    fake_public_key,
    sha512_half,
    sorted_keys,
    transaction_message,
)
from hub.xrpl.addresses import (
    base58check_encode,
)
from hub.xrpl.books import RestingOffer
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
]

DEFAULT_START_TIME = 820_540_800
"""2026-01-01T00:00:00Z in Ripple-epoch seconds: the clock-free default."""
LEDGER_SECONDS = 4
HISTORY_LEDGERS = 1000
_USERS = 40
_ISSUERS = 3
_MAX_OPEN_OFFERS = 150
_TX_KINDS = ("xrp_payment", "iou_payment", "offer_create", "offer_cancel", "trust_set")
_TX_WEIGHTS = (30, 20, 30, 10, 10)


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
        self._parent_hash = sha512_half(self.seed, "ledger", start_ledger - 1)
        self._validator_keys = [
            fake_public_key(self.seed, "validator", i) for i in range(validators)
        ]
        self._state = SimLedger(self.seed, self._rng, start_ledger)
        self.issuers: tuple[str, ...] = tuple(
            self._state.new_account(f"issuer{i}") for i in range(_ISSUERS)
        )
        self.users: tuple[str, ...] = tuple(
            self._state.new_account(f"user{i}") for i in range(_USERS)
        )
        i0, i1, i2 = self.issuers
        self._ious: tuple[tuple[str, str], ...] = (
            ("USD", i0),
            ("USD", i1),
            ("EUR", i1),
            ("EUR", i2),
        )
        self._markets = (
            Market((XRP, ""), ("USD", i0), 400_000),
            Market((XRP, ""), ("USD", i1), 410_000),
            Market((XRP, ""), ("EUR", i1), 370_000),
            Market((XRP, ""), ("EUR", i2), 365_000),
            Market(("USD", i1), ("EUR", i1), 920_000),
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

    def _seed_state(self) -> None:
        rng = self._rng
        for user in self.users:
            for currency, issuer in self._ious:
                if rng.random() < 0.6:
                    line = self._state.make_line(user, currency, issuer)
                    line.set_limit(user, 1_000_000 * UNITS)
                    line.credit(user, rng.randrange(100, 10_000) * UNITS)
                    line.prev_txn_id = sha512_half(self.seed, "history", line.index)
                    line.prev_txn_lgr = max(1, self.start_ledger - rng.randrange(2, 5000))
                    self._state.roots[user].owner_count += 1
        for market in self._markets:
            for _ in range(8):
                maker = self._pick_maker(market, rng.random() < 0.5)
                if maker is None:
                    continue
                user, gets, pays = maker
                sequence = self._state.roots[user].sequence - 1 - len(self._state.offers)
                offer = self._state.make_offer(user, sequence, gets, pays)
                offer.prev_txn_id = sha512_half(self.seed, "history", offer.index)
                offer.prev_txn_lgr = max(1, self.start_ledger - rng.randrange(2, 500))
                self._state.roots[user].owner_count += 1

    # -- queries ------------------------------------------------------------

    def _pick_maker(self, market: Market, sell_base: bool) -> tuple[str, Amount, Amount] | None:
        """Choose a funded user and amounts for a resting (non-crossing) offer."""
        rng = self._rng
        give, want = (market.base, market.quote) if sell_base else (market.quote, market.base)
        whole = rng.randrange(20, 2000) if market.base[0] == XRP else rng.randrange(5, 500)
        base_units = whole * UNITS + rng.randrange(UNITS) // 1000 * 1000
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
            if self._state.funds(u, give) >= 2 * give_units
            and self._state.funds(u, (XRP, "")) >= RESERVE_INC
            and self._state.can_receive(u, want)
        ]
        if not candidates or give_units <= 0 or want_units <= 0:
            return None
        user = rng.choice(candidates)
        return user, Amount(*give, give_units), Amount(*want, want_units)

    # -- state changes ------------------------------------------------------

    # -- transactions -------------------------------------------------------

    def _begin(
        self, changes: Changes, kind: str, account: str, ledger_index: int
    ) -> dict[str, Any]:
        """Common tx fields; charges the fee and consumes the sequence."""
        root = self._state.roots[account]
        tx: dict[str, Any] = {
            "Account": account,
            "Fee": str(FEE_DROPS),
            "Flags": 0,
            "LastLedgerSequence": ledger_index + self._rng.randrange(3, 20),
            "Sequence": root.sequence,
            "SigningPubKey": self._state.pubkeys[account],
            "TransactionType": kind,
        }
        changes.touch(root)
        root.balance -= FEE_DROPS
        root.sequence += 1
        return tx

    def _xrp_payment(self, changes: Changes, ledger_index: int) -> tuple[dict[str, Any], Any]:
        rng = self._rng
        sender, dest = rng.sample(self.addresses, 2)
        spendable = self._state.funds(sender, (XRP, ""))
        cap = max(2, min(spendable // 20, 5_000 * UNITS))
        units = rng.randrange(1, 500) * UNITS if rng.random() < 0.5 else rng.randrange(1, cap)
        units = max(1, min(units, cap))
        amount = Amount(XRP, "", units)
        tx = self._begin(changes, "Payment", sender, ledger_index)
        tx["DeliverMax"] = amount.json()
        tx["Destination"] = dest
        if rng.random() < 0.3:
            tx["DestinationTag"] = rng.randrange(1, 2**32)
        self._state.transfer(changes, amount, sender, dest)
        return tx, amount.json()

    def _iou_payment(
        self, changes: Changes, ledger_index: int
    ) -> tuple[dict[str, Any], Any] | None:
        rng = self._rng
        currency, issuer = rng.choice(self._ious)
        holders = [u for u in self.users if (u, currency, issuer) in self._state.lines]
        funded = [u for u in holders if self._state.funds(u, (currency, issuer)) >= UNITS]
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
        cap = (
            500 * UNITS if sender == issuer else self._state.funds(sender, (currency, issuer)) // 2
        )
        units = max(1, rng.randrange(1, max(2, cap)) // 10_000 * 10_000)
        amount = Amount(currency, issuer, units)
        tx = self._begin(changes, "Payment", sender, ledger_index)
        tx["DeliverMax"] = amount.json()
        tx["Destination"] = dest
        self._state.transfer(changes, amount, sender, dest)
        return tx, amount.json()

    def _trust_set(self, changes: Changes, ledger_index: int) -> dict[str, Any]:
        rng = self._rng
        user = rng.choice(self.users)
        currency, issuer = rng.choice(self._ious)
        limit = rng.choice((10_000, 100_000, 1_000_000, 5_000_000)) * UNITS
        tx = self._begin(changes, "TrustSet", user, ledger_index)
        tx["LimitAmount"] = Amount(currency, issuer, limit).json()
        line = self._state.lines.get((user, currency, issuer))
        if line is None:
            line = self._state.make_line(user, currency, issuer)
            changes.create(line)
            self._state.change_owner_count(changes, user, 1)
            changes.touch(self._state.owner_dirs[issuer])
        else:
            changes.touch(line)
        line.set_limit(user, limit)
        return tx

    def _offer_cancel(self, changes: Changes, ledger_index: int) -> dict[str, Any] | None:
        if not self._state.offers:
            return None
        offer = self._state.offers[self._rng.choice(sorted(self._state.offers))]
        tx = self._begin(changes, "OfferCancel", offer.account, ledger_index)
        tx["OfferSequence"] = offer.sequence
        self._state.remove_offer(changes, offer)
        return tx

    def _offer_create(self, changes: Changes, ledger_index: int) -> dict[str, Any] | None:
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
        self._state.place_offer(changes, user, tx["Sequence"], gets, pays)
        return tx

    def _crossing_offer(
        self, changes: Changes, market: Market, sell_base: bool, ledger_index: int
    ) -> dict[str, Any] | None:
        """An OfferCreate that takes (part of) the best resting offer it can."""
        rng = self._rng
        give, want = (market.base, market.quote) if sell_base else (market.quote, market.base)
        resting = [
            o
            for o in self._state.offers.values()
            if o.gets.issue == want
            and o.pays.issue == give
            and self._state.funds(o.account, want) >= o.gets.units
        ]
        if not resting:
            return None
        best = min(resting, key=lambda o: (o.pays.units * 10**6 // o.gets.units, o.index))
        takers = [
            u
            for u in self.users
            if u != best.account
            and self._state.can_receive(u, want)
            and self._state.funds(u, give) >= 2 * best.pays.units
            and self._state.funds(u, (XRP, "")) >= RESERVE_INC
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
        offered = Amount(*give, paid + rest_give)
        tx = self._begin(changes, "OfferCreate", taker, ledger_index)
        tx["TakerGets"] = offered.json()
        tx["TakerPays"] = Amount(*want, wanted).json()
        changes.touch(best)
        best.gets = best.gets.with_units(best.gets.units - got)
        best.pays = best.pays.with_units(best.pays.units - paid)
        self._state.transfer(changes, Amount(*want, got), best.account, taker)
        self._state.transfer(changes, Amount(*give, paid), taker, best.account)
        if best.gets.units <= 0 or best.pays.units <= 0:
            self._state.remove_offer(changes, best)
        if rest_want > 0 and rest_give > 0:
            gets = Amount(*give, rest_give)
            self._state.place_offer(changes, taker, tx["Sequence"], gets, Amount(*want, rest_want))
        return tx

    def _owner_funds(self, tx: Mapping[str, Any]) -> str | None:
        """rippled's ``owner_funds`` for an OfferCreate not selling its own IOU."""
        gets = tx["TakerGets"]
        if isinstance(gets, str):
            return str(max(0, self._state.funds(tx["Account"], (XRP, "")) + FEE_DROPS))
        if gets["issuer"] == tx["Account"]:
            return None
        units = self._state.funds(tx["Account"], (gets["currency"], gets["issuer"]))
        return value_text(Decimal(units).scaleb(-6))

    def _one_transaction(
        self, ledger_index: int, tx_index: int
    ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Generate and apply one transaction: (tx_json without date, meta, hash)."""
        rng = self._rng
        kind = rng.choices(_TX_KINDS, _TX_WEIGHTS)[0]
        if kind == "offer_create" and len(self._state.offers) > _MAX_OPEN_OFFERS:
            kind = "offer_cancel"
        changes = Changes()
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
            changes = Changes()
            tx, delivered = self._xrp_payment(changes, ledger_index)
        if tx["TransactionType"] == "OfferCreate":
            owner_funds = self._owner_funds(tx)
            if owner_funds is not None:
                tx["owner_funds"] = owner_funds
        tx["TxnSignature"] = fake_der_signature(self.seed, "tx", tx["Account"], tx["Sequence"])
        signed = {k: v for k, v in tx.items() if k != "owner_funds"}
        tx_hash = sha512_half("TXN", json.dumps(signed, sort_keys=True, separators=(",", ":")))
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
        signature = fake_der_signature(self.seed, "validation", key.hex(), ledger_index)
        data = (
            "22"
            + format(VALIDATION_FLAGS, "08X")
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
            "flags": VALIDATION_FLAGS,
            "full": True,
            "ledger_hash": ledger_hash,
            "ledger_index": ledger_index,
            "network_id": self.network_id,
            "signature": signature,
            "signing_time": signing_time,
            "type": "validationReceived",
            "validation_public_key": base58check_encode(NODE_PUBLIC_VERSION + key),
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
            sorted_keys(
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
        offers = tuple(RestingOffer(o.entry(), o.quality) for o in self._state.offers.values())
        funds: dict[tuple[str, str, str], Decimal] = {}
        for offer in self._state.offers.values():
            currency, issuer = offer.gets.issue
            if offer.account == issuer:
                continue
            if currency == XRP:
                root = self._state.roots[offer.account]
                held = Decimal(max(0, root.balance - root.reserve()))
            else:
                line = self._state.lines[(offer.account, currency, issuer)]
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
        ledger_hash = sha512_half(
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
            transaction_message(
                tx, meta, tx_hash, ledger_index, ledger_hash, close_time, self.network_id
            )
            for tx, meta, tx_hash in applied
        )
        return [sorted_keys(message) for message in messages]
