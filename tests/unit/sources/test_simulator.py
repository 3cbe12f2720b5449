"""The ledger simulator: deterministic by seed, rippled's shapes and order, state that adds up."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from hub.sources.rounds import run_simulator
from hub.sources.simulator import (
    DEFAULT_START_TIME,
    RIPPLE_EPOCH_OFFSET,
    LedgerSimulator,
    book_changes,
)
from hub.xrpl import ctid
from hub.xrpl.accounts import affected_accounts, affected_books, amount_issue
from hub.xrpl.addresses import is_classic_address

HEX64 = re.compile(r"[0-9A-F]{64}")


ADDRESS_KEYS = {"Account", "Destination", "Owner", "issuer"}


def _ledgers(sim: LedgerSimulator, count: int) -> list[list[dict[str, Any]]]:
    return [sim.close_ledger() for _ in range(count)]


def _of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def _strings_under(value: Any, keys: set[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys and isinstance(item, str):
                yield item
            yield from _strings_under(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_under(item, keys)


def _is_crossing(tx_message: dict[str, Any]) -> bool:
    if tx_message["tx_json"]["TransactionType"] != "OfferCreate":
        return False
    for wrapper in tx_message["meta"]["AffectedNodes"]:
        for kind in ("ModifiedNode", "DeletedNode"):
            node = wrapper.get(kind)
            if node and node["LedgerEntryType"] == "Offer" and "PreviousFields" in node:
                return True
    return False


@pytest.fixture(scope="module")
def history() -> tuple[LedgerSimulator, list[list[dict[str, Any]]]]:
    sim = LedgerSimulator(seed=1234, tx_per_ledger=20, validators=5)
    return sim, _ledgers(sim, 60)


def test_same_seed_same_bytes() -> None:
    first = json.dumps(_ledgers(LedgerSimulator(seed=99), 8))
    second = json.dumps(_ledgers(LedgerSimulator(seed=99), 8))
    assert first == second


def test_different_seeds_differ() -> None:
    a = _ledgers(LedgerSimulator(seed=1), 2)
    b = _ledgers(LedgerSimulator(seed=2), 2)
    assert json.dumps(a) != json.dumps(b)
    assert set(LedgerSimulator(seed=1).addresses).isdisjoint(LedgerSimulator(seed=2).addresses)


def test_random_seed_is_recorded_for_replay() -> None:
    sim = LedgerSimulator()
    assert isinstance(sim.seed, int)
    replay = LedgerSimulator(seed=sim.seed)
    assert json.dumps(_ledgers(sim, 3)) == json.dumps(_ledgers(replay, 3))


def test_ledger_index_advances_by_one(history: Any) -> None:
    sim, ledgers = history
    indexes = [_of_type(msgs, "ledgerClosed")[0]["ledger_index"] for msgs in ledgers]
    assert indexes == list(range(sim.start_ledger, sim.start_ledger + len(ledgers)))
    assert sim.ledger_index == sim.start_ledger + len(ledgers)
    for msgs, index in zip(ledgers, indexes, strict=True):
        assert {m["ledger_index"] for m in msgs} == {index}


def test_validated_ledgers_range_grows(history: Any) -> None:
    sim, ledgers = history
    for msgs in ledgers:
        closed = _of_type(msgs, "ledgerClosed")[0]
        assert closed["validated_ledgers"] == f"{sim.start_ledger - 1000}-{closed['ledger_index']}"


def test_publish_order_follows_rippled(history: Any) -> None:
    _, ledgers = history
    for msgs in ledgers:
        kinds = [m["type"] for m in msgs]
        n_tx = kinds.count("transaction")
        assert kinds == (
            ["validationReceived"] * 5 + ["ledgerClosed", "bookChanges"] + ["transaction"] * n_tx
        )


def test_txn_count_and_transaction_index(history: Any) -> None:
    _, ledgers = history
    for msgs in ledgers:
        txs = _of_type(msgs, "transaction")
        assert _of_type(msgs, "ledgerClosed")[0]["txn_count"] == len(txs)
        assert [t["meta"]["TransactionIndex"] for t in txs] == list(range(len(txs)))
        assert 15 <= len(txs) <= 25


def test_tx_per_ledger_scales_volume() -> None:
    assert all(len(m) == 5 + 2 for m in _ledgers(LedgerSimulator(seed=5, tx_per_ledger=0), 3))
    counts = [
        len(_of_type(m, "transaction"))
        for m in _ledgers(LedgerSimulator(seed=5, tx_per_ledger=200, validators=0), 5)
    ]
    assert all(150 <= c <= 250 for c in counts)
    assert len(set(counts)) > 1


def test_hashes_are_64_upper_hex_and_unique(history: Any) -> None:
    _, ledgers = history
    tx_hashes = [t["hash"] for msgs in ledgers for t in _of_type(msgs, "transaction")]
    ledger_hashes = [_of_type(msgs, "ledgerClosed")[0]["ledger_hash"] for msgs in ledgers]
    for value in tx_hashes + ledger_hashes:
        assert HEX64.fullmatch(value)
    assert len(set(tx_hashes)) == len(tx_hashes)
    assert len(set(ledger_hashes)) == len(ledger_hashes)
    for msgs in ledgers:
        assert {m["ledger_hash"] for m in msgs} == {msgs[0]["ledger_hash"]}


def test_every_address_is_a_valid_classic_address(history: Any) -> None:
    sim, ledgers = history
    assert all(is_classic_address(a) for a in sim.addresses)
    seen = 0
    for msgs in ledgers:
        for tx in _of_type(msgs, "transaction"):
            for value in _strings_under(tx, ADDRESS_KEYS):
                assert is_classic_address(value), value
                seen += 1
            assert affected_accounts(tx["tx_json"], tx["meta"]) <= set(sim.addresses)
            assert tx["tx_json"]["Account"] in sim.addresses
    assert seen > 1000


def test_transaction_messages_have_the_v2_shape(history: Any) -> None:
    _, ledgers = history
    keys = {
        "type",
        "tx_json",
        "hash",
        "meta",
        "validated",
        "ledger_index",
        "ledger_hash",
        "close_time_iso",
        "status",
        "engine_result",
        "engine_result_code",
        "engine_result_message",
        "ctid",
    }
    for msgs in ledgers:
        closed = _of_type(msgs, "ledgerClosed")[0]
        for tx in _of_type(msgs, "transaction"):
            assert set(tx) == keys
            index = tx["meta"]["TransactionIndex"]
            assert ctid.decode(tx["ctid"]) == (tx["ledger_index"], index, 0)
            assert tx["validated"] is True
            assert tx["status"] == "closed"
            assert tx["engine_result_code"] == 0
            assert tx["meta"]["TransactionResult"] == tx["engine_result"] == "tesSUCCESS"
            body = tx["tx_json"]
            assert body["date"] == closed["ledger_time"]
            assert "hash" not in body
            assert body["Fee"] == "12"
            assert body["LastLedgerSequence"] > closed["ledger_index"]
            assert re.fullmatch(r"0[23][0-9A-F]{64}", body["SigningPubKey"])
            assert re.fullmatch(r"3044[0-9A-F]{136}", body["TxnSignature"])
            if body["TransactionType"] == "Payment":
                assert "Amount" not in body
                assert tx["meta"]["delivered_amount"] == body["DeliverMax"]


def test_keys_are_in_rippled_json_order(history: Any) -> None:
    _, ledgers = history

    def check(value: Any) -> None:
        if isinstance(value, dict):
            assert list(value) == sorted(value)
            for item in value.values():
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)

    for msgs in ledgers[:5]:
        check(msgs)


def test_sender_account_root_pays_fee_and_bumps_sequence(history: Any) -> None:
    _, ledgers = history
    for msgs in ledgers:
        for tx in _of_type(msgs, "transaction"):
            body = tx["tx_json"]
            roots = [
                w["ModifiedNode"]
                for w in tx["meta"]["AffectedNodes"]
                if "ModifiedNode" in w
                and w["ModifiedNode"]["LedgerEntryType"] == "AccountRoot"
                and w["ModifiedNode"]["FinalFields"]["Account"] == body["Account"]
            ]
            assert len(roots) == 1
            final, previous = roots[0]["FinalFields"], roots[0]["PreviousFields"]
            assert previous["Sequence"] == body["Sequence"] == final["Sequence"] - 1
            spent = int(previous["Balance"]) - int(final["Balance"])
            if body["TransactionType"] == "Payment" and isinstance(body["DeliverMax"], str):
                assert spent == 12 + int(body["DeliverMax"])
            elif body["TransactionType"] in ("TrustSet", "OfferCancel"):
                assert spent == 12


def test_xrp_payments_credit_the_destination(history: Any) -> None:
    _, ledgers = history
    checked = 0
    for msgs in ledgers:
        for tx in _of_type(msgs, "transaction"):
            body = tx["tx_json"]
            if body["TransactionType"] != "Payment" or not isinstance(body["DeliverMax"], str):
                continue
            (dest,) = [
                w["ModifiedNode"]
                for w in tx["meta"]["AffectedNodes"]
                if "ModifiedNode" in w
                and w["ModifiedNode"]["FinalFields"].get("Account") == body["Destination"]
            ]
            gained = int(dest["FinalFields"]["Balance"]) - int(dest["PreviousFields"]["Balance"])
            assert gained == int(body["DeliverMax"])
            checked += 1
    assert checked > 50


def test_iou_payments_and_trust_sets_touch_ripple_states(history: Any) -> None:
    _, ledgers = history
    seen = Counter[str]()
    for msgs in ledgers:
        for tx in _of_type(msgs, "transaction"):
            body = tx["tx_json"]
            amount = body.get("DeliverMax", body.get("LimitAmount"))
            if not isinstance(amount, dict):
                continue
            lines = [
                node
                for w in tx["meta"]["AffectedNodes"]
                for node in w.values()
                if node["LedgerEntryType"] == "RippleState"
            ]
            assert lines, body
            for node in lines:
                fields = node.get("FinalFields") or node["NewFields"]
                parties = {fields["LowLimit"]["issuer"], fields["HighLimit"]["issuer"]}
                assert amount["issuer"] in parties
            seen[body["TransactionType"]] += 1
    assert seen["Payment"] > 20
    assert seen["TrustSet"] > 20


def test_sequences_increase_per_account(history: Any) -> None:
    _, ledgers = history
    last: dict[str, int] = {}
    for msgs in ledgers:
        for tx in _of_type(msgs, "transaction"):
            account, seq = tx["tx_json"]["Account"], tx["tx_json"]["Sequence"]
            if account in last:
                assert seq == last[account] + 1
            last[account] = seq


def test_all_transaction_kinds_appear(history: Any) -> None:
    _, ledgers = history
    kinds = Counter(
        t["tx_json"]["TransactionType"] for msgs in ledgers for t in _of_type(msgs, "transaction")
    )
    assert set(kinds) == {"Payment", "OfferCreate", "OfferCancel", "TrustSet"}
    assert min(kinds.values()) > 30


def test_offers_name_their_books(history: Any) -> None:
    _, ledgers = history
    crossings = 0
    for msgs in ledgers:
        txs = _of_type(msgs, "transaction")
        changes = _of_type(msgs, "bookChanges")[0]["changes"]
        crossed_here = [t for t in txs if _is_crossing(t)]
        for tx in crossed_here:
            books = affected_books(tx["meta"])
            assert books
            body = tx["tx_json"]
            # The offers it took sell what it wants: Book{in = its TakerPays, out = its
            # TakerGets}, which is the book of a subscriber whose taker_gets is its
            # TakerGets and taker_pays its TakerPays (Book_test.cpp's crossing cases).
            taken = (*amount_issue(body["TakerPays"]), *amount_issue(body["TakerGets"]), "")
            assert taken in books
        for tx in txs:
            if tx["tx_json"]["TransactionType"] in ("OfferCreate", "OfferCancel"):
                assert affected_books(tx["meta"])
        assert bool(changes) == bool(crossed_here)
        crossings += len(crossed_here)
    assert crossings > 20


def test_offer_cancel_deletes_the_named_offer(history: Any) -> None:
    _, ledgers = history
    cancels = 0
    for msgs in ledgers:
        for tx in _of_type(msgs, "transaction"):
            body = tx["tx_json"]
            if body["TransactionType"] != "OfferCancel":
                continue
            (offer,) = [
                w["DeletedNode"]
                for w in tx["meta"]["AffectedNodes"]
                if "DeletedNode" in w and w["DeletedNode"]["LedgerEntryType"] == "Offer"
            ]
            assert offer["FinalFields"]["Sequence"] == body["OfferSequence"]
            assert offer["FinalFields"]["Account"] == body["Account"]
            assert "PreviousFields" not in offer
            cancels += 1
    assert cancels > 10


def test_book_changes_volumes_match_crossed_offers(history: Any) -> None:
    _, ledgers = history
    for msgs in ledgers:
        for change in _of_type(msgs, "bookChanges")[0]["changes"]:
            assert change["currency_a"] == "XRP_drops" or "/" in change["currency_a"]
            assert change["currency_b"] != "XRP_drops"
            if change["currency_a"] == "XRP_drops":
                assert change["volume_a"].isdigit()
            assert Decimal(change["volume_a"]) > 0
            assert Decimal(change["volume_b"]) > 0
            low, high = Decimal(change["low"]), Decimal(change["high"])
            assert low <= Decimal(change["open"]) <= high
            assert low <= Decimal(change["close"]) <= high


def test_validations_complete_the_ledger(history: Any) -> None:
    _, ledgers = history
    keys_seen = set()
    for msgs in ledgers:
        closed = _of_type(msgs, "ledgerClosed")[0]
        validations = _of_type(msgs, "validationReceived")
        assert len(validations) == 5
        for v in validations:
            assert v["ledger_index"] == closed["ledger_index"]
            assert isinstance(v["ledger_index"], int)
            assert v["ledger_hash"] == closed["ledger_hash"]
            assert v["full"] is True
            assert v["network_id"] == 0
            assert v["signing_time"] >= closed["ledger_time"]
            assert re.fullmatch(r"n[1-9A-HJ-NP-Za-km-z]{51}", v["validation_public_key"])
            assert re.fullmatch(r"(?:[0-9A-F]{2})+", v["data"])
            assert closed["ledger_hash"] in v["data"]
            assert v["signature"] in v["data"]
            keys_seen.add(v["validation_public_key"])
    assert len(keys_seen) == 5


def test_ledger_closed_fields(history: Any) -> None:
    _, ledgers = history
    closed = _of_type(ledgers[0], "ledgerClosed")[0]
    assert set(closed) == {
        "type",
        "ledger_index",
        "ledger_hash",
        "ledger_time",
        "fee_base",
        "reserve_base",
        "reserve_inc",
        "txn_count",
        "validated_ledgers",
        "network_id",
    }
    assert closed["network_id"] == 0
    assert (closed["fee_base"], closed["reserve_base"], closed["reserve_inc"]) == (
        10,
        1_000_000,
        200_000,
    )


def test_close_times_default_and_explicit() -> None:
    sim = LedgerSimulator(seed=3, tx_per_ledger=2)
    first, second = _ledgers(sim, 2)
    times = [_of_type(m, "ledgerClosed")[0]["ledger_time"] for m in (first, second)]
    assert times == [DEFAULT_START_TIME, DEFAULT_START_TIME + 4]
    assert _of_type(first, "transaction")[0]["close_time_iso"] == "2026-01-01T00:00:00Z"

    custom = LedgerSimulator(seed=3, start_time=1000)
    assert _of_type(custom.close_ledger(), "ledgerClosed")[0]["ledger_time"] == 1000
    explicit = custom.close_ledger(close_time=820_627_200)
    assert _of_type(explicit, "ledgerClosed")[0]["ledger_time"] == 820_627_200
    assert _of_type(explicit, "transaction")[0]["close_time_iso"] == "2026-01-02T00:00:00Z"
    assert _of_type(custom.close_ledger(), "ledgerClosed")[0]["ledger_time"] == 1008


@pytest.mark.parametrize("kwargs", [{"tx_per_ledger": -1}, {"validators": -1}, {"start_ledger": 0}])
def test_invalid_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LedgerSimulator(seed=1, **kwargs)


def _offer(kind: str, gets: Any, pays: Any, prev: dict[str, Any] | None, seq: int = 5) -> Any:
    node: dict[str, Any] = {
        "LedgerEntryType": "Offer",
        "FinalFields": {"Sequence": seq, "TakerGets": gets, "TakerPays": pays},
    }
    if prev is not None:
        node["PreviousFields"] = prev
    return {kind: node}


def test_book_changes_computation() -> None:
    usd = "rvYAfWj5gh67oV6fW32ZzP3Aw4Eubs59B"
    eur = "rhub8VRN55s94qWKDv6jmDy1pUykJzF3wq"

    def iou(currency: str, issuer: str, value: str) -> dict[str, str]:
        return {"currency": currency, "issuer": issuer, "value": value}

    crossing = (
        {"TransactionType": "OfferCreate"},
        {
            "AffectedNodes": [
                # Maker sold 10 USD for 25 XRP, then 4 USD for 12 XRP.
                _offer(
                    "ModifiedNode",
                    iou("USD", usd, "90"),
                    "225000000",
                    {"TakerGets": iou("USD", usd, "100"), "TakerPays": "250000000"},
                ),
                _offer(
                    "DeletedNode",
                    iou("USD", usd, "0"),
                    "0",
                    {"TakerGets": iou("USD", usd, "4"), "TakerPays": "12000000"},
                ),
                # IOU/IOU: sides ordered by issue text, not by gets/pays.
                _offer(
                    "ModifiedNode",
                    iou("USD", usd, "1"),
                    iou("EUR", eur, "1"),
                    {"TakerGets": iou("USD", usd, "3"), "TakerPays": iou("EUR", eur, "2")},
                ),
                _offer("CreatedNode", iou("USD", usd, "5"), "1", None),
            ]
        },
    )
    cancel = (
        {"TransactionType": "OfferCancel", "OfferSequence": 9},
        {"AffectedNodes": [_offer("DeletedNode", "5", iou("USD", usd, "1"), {}, seq=9)]},
    )
    changes = book_changes([crossing, cancel])
    assert changes == [
        {
            "close": "3000000",
            "currency_a": "XRP_drops",
            "currency_b": f"{usd}/USD",
            "high": "3000000",
            "low": "2500000",
            "open": "2500000",
            "volume_a": "37000000",
            "volume_b": "14",
        },
        {
            "close": "0.5",
            "currency_a": f"{eur}/EUR",
            "currency_b": f"{usd}/USD",
            "high": "0.5",
            "low": "0.5",
            "open": "0.5",
            "volume_a": "1",
            "volume_b": "2",
        },
    ]


def test_book_changes_skips_junk() -> None:
    junk: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {}),
        ({}, {"AffectedNodes": None}),
        ({}, {"AffectedNodes": [None, {"ModifiedNode": 3}, _offer("ModifiedNode", 5, "1", {})]}),
        ({}, {"AffectedNodes": [_offer("ModifiedNode", "x", "1", {"TakerGets": "2"})]}),
    ]
    assert book_changes(junk) == []


async def test_run_simulator_matches_the_sans_io_core(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wall = 1_767_225_600.75
    twin = LedgerSimulator(seed=11, tx_per_ledger=3)
    send, receive = trio.open_memory_channel[dict[str, Any]](0)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                run_simulator,
                send,
                interval=2.0,
                sim=LedgerSimulator(seed=11, tx_per_ledger=3),
                wall_clock=lambda: wall,
            )
        )
        start = trio.current_time()
        for _ in range(2):
            expected = twin.close_ledger(int(wall) - RIPPLE_EPOCH_OFFSET)
            got = [await receive.receive() for _ in expected]
            assert got == expected
            wall += 2.0
        assert trio.current_time() == pytest.approx(start + 4.0)
        nursery.cancel_scope.cancel()


async def _ledger_times(
    receive: trio.MemoryReceiveChannel[dict[str, Any]], count: int, stall_after_first: float
) -> list[float]:
    times: list[float] = []
    while len(times) < count:
        message = await receive.receive()
        if message["type"] == "ledgerClosed":
            times.append(trio.current_time())
            if len(times) == 1:
                await trio.sleep(stall_after_first)
        else:
            await trio.sleep(0.05)
    return times


async def test_run_simulator_does_not_drift(autojump_clock: trio.testing.MockClock) -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](0)
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        sim = LedgerSimulator(seed=2, tx_per_ledger=4)
        nursery.start_soon(partial(run_simulator, send, interval=3.5, sim=sim))
        times = await _ledger_times(receive, 6, stall_after_first=0.0)
        nursery.cancel_scope.cancel()
    # Each ledger costs the slow consumer ~0.5 s, yet closes stay on the grid.
    assert [t - start for t in times] == pytest.approx([3.5 * k + 0.25 for k in range(1, 7)])


async def test_run_simulator_skips_missed_ticks(autojump_clock: trio.testing.MockClock) -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](0)
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        sim = LedgerSimulator(seed=2, tx_per_ledger=0, validators=0)
        nursery.start_soon(partial(run_simulator, send, interval=3.5, sim=sim))
        times = await _ledger_times(receive, 4, stall_after_first=10.0)
        nursery.cancel_scope.cancel()
    # The consumer stalls 10 s after the first ledgerClosed, so the producer
    # finishes that ledger at 13.5: one late close follows at once (received
    # at 13.55, after the consumer's 0.05 s per message), then the cadence
    # resumes from there instead of bursting through the missed ticks.
    assert [t - start for t in times] == pytest.approx([3.5, 13.55, 17.0, 20.5])
