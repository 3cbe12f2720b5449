"""``ledger``, ``tx`` and ``ledger_entry`` from the history, as rippled shapes them:
:mod:`hub.core.lookup` over a History fed as a live hub feeds it."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from hub.core.history import History
from hub.core.lookup import (
    Arrivals,
    fee_settings_result,
    ledger_query,
    ledger_result,
    tx_hash_of,
    tx_result,
    wants_fee_settings,
)
from hub.core.render import body_for
from hub.links.upstream import fees_of, ledger_messages
from hub.sources.simulator import LedgerSimulator
from hub.wire.errors import ERRORS, RPCError
from hub.xrpl import events
from hub.xrpl.ids import fill_ids
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX, ripple_time_human, ripple_time_iso
from tests.helpers.history import keep
from tests.helpers.samples import ledger_closed, xrp_payment

encode = msgspec.json.encode


def sim_ledgers(count: int, seed: int = 3, txs: int = 6) -> list[list[dict[str, Any]]]:
    sim = LedgerSimulator(seed=seed, tx_per_ledger=txs)
    return [sim.close_ledger() for _ in range(count)]


def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def test_ledger_query_accepts_rippleds_forms() -> None:
    assert ledger_query({"ledger_index": 5}).index == 5
    assert ledger_query({"ledger_index": "17"}).index == 17
    assert ledger_query({"ledger_index": "validated"}).shortcut == "validated"
    assert ledger_query({"ledger_index": "closed"}).shortcut == "closed"
    assert ledger_query({}).shortcut == "current"
    assert ledger_query({"ledger_index": ""}).shortcut == "current"
    assert ledger_query({"ledger_hash": "ab" * 32}).ledger_hash == "AB" * 32
    query = ledger_query({"ledger_index": 1, "transactions": True, "expand": True})
    assert (query.transactions, query.expand, query.beyond) == (True, True, None)
    assert ledger_query({"ledger_index": 1, "binary": True}).beyond == "binary"
    assert ledger_query({"ledger_index": 1, "accounts": True}).beyond == "accounts"
    assert ledger_query({"ledger_index": 1, "binary": False}).beyond is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ledger_index": 1, "ledger_hash": "A" * 64}, "Exactly one of"),
        ({"ledger_index": "newest"}, "not string or number"),
        ({"ledger_index": -1}, "not string or number"),
        ({"ledger_index": 2**32}, "not string or number"),
        ({"ledger_index": True}, "not string or number"),
        ({"ledger_index": 1.5}, "not string or number"),
        ({"ledger_hash": "XYZ"}, "'ledger_hash', not hex string"),
        ({"ledger_hash": 5}, "'ledger_hash', not hex string"),
        ({"ledger_index": 1, "transactions": "yes"}, "'transactions', not bool"),
    ],
)
def test_ledger_query_refuses_what_rippled_refuses(params: dict[str, Any], message: str) -> None:
    with pytest.raises(RPCError, match=message) as caught:
        ledger_query(params)
    assert caught.value.token == "invalidParams"


def test_tx_hash_of() -> None:
    assert tx_hash_of({"transaction": "ab" * 32}) == "AB" * 32
    assert tx_hash_of({"ctid": "C000000100000000"}) is None
    for bad in ({}, {"transaction": "nope"}, {"transaction": "A" * 64, "ctid": "C0"}):
        with pytest.raises(RPCError) as caught:
            tx_hash_of(bad)
        assert caught.value.token == "invalidParams"


def test_txn_not_found_is_rippleds() -> None:
    assert ERRORS["txnNotFound"] == (29, "Transaction not found.")


def test_ledger_v2_expanded_rebuilds_exactly_what_was_published() -> None:
    ledgers = sim_ledgers(3)
    history = History()
    for messages in ledgers:
        keep(history, messages)
    messages = ledgers[1]
    closed = of(messages, "ledgerClosed")[0]
    index = closed["ledger_index"]
    query = ledger_query({"ledger_index": index, "transactions": True, "expand": True})
    result = ledger_result(history, index, query, 2)
    assert result["ledger_hash"] == closed["ledger_hash"]
    assert result["ledger_index"] == index
    assert result["validated"] is True
    header = result["ledger"]
    assert header["ledger_index"] == index
    assert header["closed"] is True
    assert header["close_time"] == closed["ledger_time"]
    assert header["close_time_iso"] == ripple_time_iso(closed["ledger_time"])
    assert header["close_time_human"] == ripple_time_human(closed["ledger_time"])
    assert header["parent_hash"] == of(ledgers[0], "ledgerClosed")[0]["ledger_hash"]
    txs = of(messages, "transaction")
    assert len(header["transactions"]) == len(txs) == closed["txn_count"]
    for entry, tx in zip(header["transactions"], txs, strict=True):
        assert entry["hash"] == tx["hash"]
        assert encode(entry["meta"]) == encode(tx["meta"])
        assert entry["tx_json"] == {k: v for k, v in tx["tx_json"].items() if k != "date"}
        assert (entry["ledger_index"], entry["ledger_hash"]) == (index, closed["ledger_hash"])
        assert entry["validated"] is True
    # What a relay rebuilds from this answer is what was published.
    fees = fees_of(fee_settings_result(history, index)["node"])
    rebuilt = ledger_messages(header, fees)
    for message in rebuilt:  # what a ledger answer lacks, the relay adds (hub.xrpl.ids)
        fill_ids(message, 0)
    published = [m for m in messages if m["type"] != "validationReceived"]
    assert rebuilt[0] == {k: v for k, v in closed.items() if k != "validated_ledgers"}
    assert rebuilt[1:] == published[1:]


def test_ledger_v1_shapes_and_hashes_only() -> None:
    ledgers = sim_ledgers(2)
    history = History()
    for messages in ledgers:
        keep(history, messages)
    index = of(ledgers[0], "ledgerClosed")[0]["ledger_index"]
    txs = of(ledgers[0], "transaction")
    expanded = ledger_query({"ledger_index": index, "transactions": True, "expand": True})
    result = ledger_result(history, index, expanded, 1)
    assert result["ledger"]["ledger_index"] == str(index)
    assert "parent_hash" not in result["ledger"]  # the previous ledger is not held
    for entry, tx in zip(result["ledger"]["transactions"], txs, strict=True):
        v1 = body_for(events.parse(tx), 1)["transaction"]
        assert entry == {**{k: v for k, v in v1.items() if k != "date"}, "metaData": tx["meta"]}
        assert entry["hash"] == tx["hash"]
    hashes = ledger_query({"ledger_index": index, "transactions": True})
    assert ledger_result(history, index, hashes, 2)["ledger"]["transactions"] == [
        tx["hash"] for tx in txs
    ]
    header_only = ledger_query({"ledger_index": index})
    assert "transactions" not in ledger_result(history, index, header_only, 2)["ledger"]
    assert ledger_result(history, index + 5, header_only, 2) is None


def test_tx_v2_and_v1_with_ctid_only_when_the_message_has_one() -> None:
    history = History()
    plain = {k: v for k, v in xrp_payment(9, 0).items() if k != "ctid"}  # an older source's
    with_ctid = {**xrp_payment(9, 1), "ctid": "C000000900010000"}
    keep(history, [ledger_closed(9, 2), plain, with_ctid])
    v2 = tx_result(history, plain["hash"].lower(), 2)
    assert v2["tx_json"] == {**plain["tx_json"], "ledger_index": 9}
    assert encode(v2["meta"]) == encode(plain["meta"])
    assert (v2["hash"], v2["ledger_index"], v2["ledger_hash"]) == (
        plain["hash"], 9, plain["ledger_hash"]
    )  # fmt: skip
    assert v2["close_time_iso"] == plain["close_time_iso"]
    assert v2["validated"] is True
    assert "ctid" not in v2
    assert tx_result(history, with_ctid["hash"], 2)["ctid"] == "C000000900010000"
    v1 = tx_result(history, plain["hash"], 1)
    stream_v1 = body_for(events.parse(plain), 1)["transaction"]
    assert {k: v for k, v in v1.items() if k not in ("inLedger", "ledger_index", "meta",
            "validated")} == stream_v1  # fmt: skip
    assert v1["Amount"] == v1["DeliverMax"] == plain["tx_json"]["DeliverMax"]
    assert (v1["inLedger"], v1["ledger_index"], v1["hash"]) == (9, 9, plain["hash"])
    assert "ctid" not in v1
    assert tx_result(history, with_ctid["hash"], 1)["ctid"] == "C000000900010000"
    assert tx_result(history, "0" * 64, 2) is None


def test_fee_settings_from_the_ledger_closed() -> None:
    history = History()
    keep(history, [ledger_closed(4)])
    assert wants_fee_settings({"index": FEE_SETTINGS_INDEX.lower()})
    assert not wants_fee_settings({"index": "A" * 64})
    result = fee_settings_result(history, 4)
    assert result["node"]["LedgerEntryType"] == "FeeSettings"
    assert fees_of(result["node"]) == {"fee_base": 10, "reserve_base": 1_000_000,
                                       "reserve_inc": 200_000}  # fmt: skip
    assert fee_settings_result(history, 5) is None


async def test_arrivals_wake_a_lookup_when_its_ledger_completes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    history = History()
    arrivals = Arrivals(history)
    keep(history, [ledger_closed(7, 2), xrp_payment(7, 0)])
    assert arrivals.due(7)
    assert arrivals.due(8)  # the next ledger, not here yet
    assert not arrivals.due(10)  # too far ahead to wait for
    results: list[tuple[int, bool, float]] = []

    async def wait(index: int) -> None:
        results.append((index, await arrivals.wait(index, timeout=5), trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, 7)
        nursery.start_soon(wait, 7)
        nursery.start_soon(wait, 8)
        await trio.sleep(1)
        keep(history, [xrp_payment(7, 1)])
    assert sorted(results) == [(7, True, 1.0), (7, True, 1.0), (8, False, 5.0)]
    assert not arrivals.due(7)
