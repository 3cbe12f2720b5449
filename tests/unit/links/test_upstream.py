"""The upstream relay's arithmetic without sockets: sequencing, fee settings, rebuilt ledgers."""

from __future__ import annotations

from hub.links.upstream import (
    Action,
    Sequencer,
    fees_of,
    ledger_messages,
)
from hub.sources.simulator import LedgerSimulator
from hub.xrpl.ids import fill_ids
from tests.helpers.fake_rippled import FakeRippled
from tests.helpers.samples import ledger_closed, xrp_payment


def test_sequencer_publishes_successors_and_drops_repeats() -> None:
    seq = Sequencer()
    assert seq.classify(ledger_closed(10)) is Action.PUBLISH
    seq.published(ledger_closed(10))
    assert seq.classify(xrp_payment(10, 1)) is Action.PUBLISH
    assert seq.classify(ledger_closed(11)) is Action.PUBLISH
    seq.published(ledger_closed(11))
    assert seq.classify(ledger_closed(11)) is Action.DROP
    assert seq.classify(xrp_payment(10, 1)) is Action.DROP
    assert seq.classify(ledger_closed(14)) is Action.REPAIR


def test_sequencer_after_failover_drops_a_ledger_seen_twice() -> None:
    seq = Sequencer()
    seq.published(ledger_closed(20))
    seq.reconnected()
    assert seq.classify(ledger_closed(20)) is Action.DROP
    assert seq.classify(xrp_payment(20, 3)) is Action.DROP
    assert seq.classify(ledger_closed(21)) is Action.PUBLISH


def test_sequencer_drops_transactions_of_a_ledger_it_joined_mid_way() -> None:
    """After a reconnect the upstream may be half way through a later ledger: its
    transactions are dropped, and the whole ledger is mended when the next close
    shows it missing (publishing them now would repeat them in the repair)."""
    seq = Sequencer(last=20)
    seq.reconnected()
    assert seq.classify(xrp_payment(21, 0)) is Action.DROP
    assert seq.classify(ledger_closed(22)) is Action.REPAIR
    fresh = Sequencer()  # a relay's very first connection has nothing to mend
    assert fresh.classify(xrp_payment(21, 0)) is Action.PUBLISH


def test_fee_settings_both_forms() -> None:
    new = {"BaseFeeDrops": 10, "ReserveBaseDrops": 1000000, "ReserveIncrementDrops": 200000}
    old = {"BaseFee": "a", "ReserveBase": 20000000, "ReserveIncrement": 5000000}
    assert fees_of(new) == {"fee_base": 10, "reserve_base": 1000000, "reserve_inc": 200000}
    assert fees_of(old) == {"fee_base": 10, "reserve_base": 20000000, "reserve_inc": 5000000}


def test_rebuilt_ledger_matches_what_was_published() -> None:
    """Simulated ledger -> rippled's ``ledger`` answer -> rebuilt messages == originals."""
    sim = LedgerSimulator(seed=11, tx_per_ledger=25)
    fake = FakeRippled()
    for _ in range(5):
        messages = sim.close_ledger()
        fake.remember(messages)
    index = messages[0]["ledger_index"]
    originals = [m for m in messages if m["type"] != "validationReceived"]
    closed = next(m for m in originals if m["type"] == "ledgerClosed")
    rebuilt = ledger_messages(fake.ledgers[closed["ledger_index"]], fees_of(fake.fees[index]))
    for message in rebuilt:  # what a ledger answer lacks, the relay adds (hub.xrpl.ids)
        fill_ids(message, 0)
    assert [m["type"] for m in rebuilt] == [m["type"] for m in originals]
    expected_closed = {k: v for k, v in closed.items() if k != "validated_ledgers"}
    assert rebuilt[0] == expected_closed
    for got, want in zip(rebuilt[1:], originals[1:], strict=True):
        assert got == want


def test_rebuild_accepts_the_v1_ledger_form() -> None:
    message = xrp_payment(7, 0)
    v1_entry = {**message["tx_json"], "hash": message["hash"], "metaData": message["meta"]}
    ledger = {
        "ledger_index": "7",
        "ledger_hash": "A" * 64,
        "close_time": 1,
        "transactions": [v1_entry],
    }
    fees = {"fee_base": 10, "reserve_base": 1, "reserve_inc": 1}
    _, tx = ledger_messages(ledger, fees)
    assert tx["tx_json"]["Account"] == message["tx_json"]["Account"]
    assert tx["hash"] == message["hash"]
    assert tx["meta"] == message["meta"]
    assert tx["ledger_index"] == 7
