"""Events: validated on entry, unknown fields kept, v1 transactions normalised."""

from __future__ import annotations

import pytest

from hub.core.render import body_for, payload
from hub.xrpl import events
from tests.helpers.samples import (
    ALICE,
    BOB,
    CAROL,
    DAN,
    GATEWAY,
    iou_payment,
    ledger_closed,
    offer_crossing,
    proposed,
    validation,
    xrp_payment,
)


def test_known_types_parse_and_keep_unknown_fields() -> None:
    message = {**ledger_closed(7), "network_id": 21337, "future_field": {"x": [1]}}
    event = events.parse(message)
    assert event.kind == "ledgerClosed"
    assert event.ledger_index == 7
    assert event.body["future_field"] == {"x": [1]}
    assert b'"future_field":{"x":[1]}' in payload(event, 2)


@pytest.mark.parametrize(
    ("message", "where"),
    [
        ({"type": "ledgerClosed", "ledger_index": 1}, "ledger_hash"),
        ({**ledger_closed(1), "ledger_hash": "zz"}, "ledger_hash"),
        ({**ledger_closed(1), "ledger_index": "1"}, "ledger_index"),
        ({"type": "nonsense"}, "type"),
        ({"type": ["ledgerClosed"]}, "type"),
        ({"type": 7}, "type"),
        ({"no": "type"}, "type"),
        ({**xrp_payment(1, 1), "tx_json": "not an object"}, "tx_json"),
        ({"type": "consensusPhase"}, "consensus"),
    ],
)
def test_invalid_messages_name_the_field(message: dict[str, object], where: str) -> None:
    with pytest.raises(events.EventError, match=where):
        events.parse(message)


def test_non_object_rejected() -> None:
    with pytest.raises(events.EventError):
        events.parse(["ledgerClosed"])


def test_every_known_kind_parses() -> None:
    messages = [
        ledger_closed(3),
        xrp_payment(3, 1),
        validation(3),
        {"type": "bookChanges", "ledger_index": 3, "ledger_hash": "A" * 64, "changes": []},
        {"type": "serverStatus", "server_status": "full", "load_factor": 256},
        {"type": "consensusPhase", "consensus": "accepted"},
        {"type": "manifestReceived", "master_key": "nHB", "signing_key": "n9K", "seq": 3},
        {"type": "peerStatusChange", "action": "CLOSING_LEDGER", "date": 1},
    ]
    assert [events.parse(m).kind for m in messages] == [m["type"] for m in messages]


def test_v1_transaction_is_normalised_to_v2() -> None:
    v2 = xrp_payment(9, 4)
    v1 = {k: v for k, v in v2.items() if k not in ("tx_json", "hash")}
    tx = {**v2["tx_json"], "hash": v2["hash"], "Amount": v2["tx_json"]["DeliverMax"]}
    del tx["DeliverMax"]
    v1["transaction"] = tx
    event = events.parse(v1)
    assert event.body == v2
    assert body_for(event, 2) == v2


def test_v1_validation_ledger_index_string_is_normalised() -> None:
    message = {**validation(12), "ledger_index": "12"}
    assert events.parse(message).body["ledger_index"] == 12


def test_validated_transaction_routing_facts() -> None:
    payment = events.parse(iou_payment(5, 1, ALICE, BOB))
    assert payment.validated
    assert {ALICE, BOB, GATEWAY} <= payment.accounts
    cross = events.parse(offer_crossing(5, 2, CAROL, DAN))
    assert {CAROL, DAN, GATEWAY} <= cross.accounts
    # The consumed offer sells USD for XRP: rippled's Book{in = USD, out = XRP}.
    assert cross.books == {("USD", GATEWAY, "XRP", "", "")}


def test_a_transactions_routes_are_worked_out_once_and_only_when_asked() -> None:
    payment = events.parse(iou_payment(5, 1, ALICE, BOB))
    assert payment.known_routes is None
    routes = payment.routes
    assert {ALICE, BOB, GATEWAY} <= routes.accounts
    assert payment.known_routes is routes
    assert payment.routes is routes


def test_other_messages_route_nowhere_by_account() -> None:
    assert events.parse(ledger_closed(5)).routes == events.NO_ROUTES


def test_proposed_transaction_uses_mentioned_accounts_only() -> None:
    event = events.parse(proposed(iou_payment(5, 1, ALICE, BOB)))
    assert not event.validated
    assert ALICE in event.accounts
    assert BOB in event.accounts
    assert event.books == frozenset()
