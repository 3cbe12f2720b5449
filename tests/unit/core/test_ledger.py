"""What the node knows of the ledger: the latest ``ledgerClosed``, the range seen, and the
fields ``subscribe`` and ``server_info`` answer from it."""

from __future__ import annotations

from hub.core.ledger import LedgerState
from tests.helpers.samples import ledger_closed


def test_nothing_seen_answers_nothing() -> None:
    state = LedgerState()
    assert state.index is None
    assert state.complete_ledgers() == "empty"
    assert state.subscribe_fields() == {}
    assert state.validated_ledger(now=5.0) is None


def test_only_a_newer_ledger_replaces_the_latest() -> None:
    state = LedgerState()
    state.update(ledger_closed(7), now=1.0)
    state.update(ledger_closed(6), now=2.0)
    state.update(ledger_closed(7), now=3.0)
    assert state.index == 7
    assert state.received_at == 1.0
    state.update(ledger_closed(9), now=4.0)
    assert (state.index, state.first_seen, state.received_at) == (9, 7, 4.0)


def test_the_range_is_the_sources_or_what_was_seen() -> None:
    state = LedgerState()
    state.update({**ledger_closed(7), "validated_ledgers": ""}, now=1.0)
    state.update({**ledger_closed(9), "validated_ledgers": ""}, now=1.0)
    assert state.complete_ledgers() == "7-9"
    state.update({**ledger_closed(10), "validated_ledgers": "2-10"}, now=1.0)
    assert state.complete_ledgers() == "2-10"


def test_subscribe_fields_are_the_latest_ledgers() -> None:
    state = LedgerState()
    closed = ledger_closed(8)
    del closed["validated_ledgers"]  # a source that leaves it out
    state.update(closed, now=1.0)
    fields = state.subscribe_fields()
    assert fields["ledger_index"] == 8
    assert fields["ledger_hash"] == closed["ledger_hash"]
    assert fields["validated_ledgers"] == "8-8"
    assert "type" not in fields
    assert "txn_count" not in fields


def test_server_info_reports_the_validated_ledger_in_xrp_and_whole_seconds() -> None:
    state = LedgerState()
    closed = {**ledger_closed(8), "fee_base": 10, "reserve_base": 1_000_000, "reserve_inc": 200_000}
    state.update(closed, now=100.0)
    assert state.validated_ledger(now=103.9) == {
        "age": 3,
        "base_fee_xrp": 0.00001,
        "hash": closed["ledger_hash"],
        "reserve_base_xrp": 1.0,
        "reserve_inc_xrp": 0.2,
        "seq": 8,
    }
    assert state.validated_ledger(now=99.0)["age"] == 0  # type: ignore[index]  # a clock step back
