"""The fields older sources leave out (``hub.xrpl.ids``): network id and CTID, where
rippled adds them."""

from __future__ import annotations

import pytest

from hub.xrpl import ctid
from hub.xrpl.ids import fill_ids
from tests.helpers.samples import ledger_closed, legacy, proposed, validation, xrp_payment


def test_ledger_closed_gets_network_id_in_rippleds_key_order() -> None:
    sorted_body = dict(sorted(legacy(ledger_closed(5)).items()))
    fill_ids(sorted_body, 7)
    assert sorted_body["network_id"] == 7
    assert list(sorted_body) == sorted(sorted_body)
    unsorted = legacy(ledger_closed(5))
    fill_ids(unsorted, 7)
    assert list(unsorted)[-1] == "network_id"  # not rippled's order: appended


def test_validated_transaction_gets_ctid() -> None:
    body = legacy(xrp_payment(90_000_001, 4))
    fill_ids(body, 21338)
    assert ctid.decode(body["ctid"]) == (90_000_001, 4, 21338)


def test_a_transactions_own_network_id_wins() -> None:
    body = legacy(xrp_payment(3, 1))
    body["tx_json"] = {**body["tx_json"], "NetworkID": 1026}
    fill_ids(body, 21338)
    assert ctid.decode(body["ctid"]) == (3, 1, 1026)


def test_v1_transactions_too() -> None:
    body = legacy(xrp_payment(3, 1))
    body["transaction"] = body.pop("tx_json")
    fill_ids(body, 2)
    assert ctid.decode(body["ctid"]) == (3, 1, 2)


@pytest.mark.parametrize(
    "body",
    [
        proposed(xrp_payment(3, 1)),  # not validated: no ledger position yet
        {**legacy(xrp_payment(3, 1)), "meta": None},
        {**legacy(xrp_payment(3, 1)), "meta": {"TransactionIndex": "1"}},
        {**legacy(xrp_payment(3, 1)), "ledger_index": None},
        {**legacy(xrp_payment(0x1000_0000, 1))},  # past CTID's 28 bits
        validation(3),
    ],
)
def test_nothing_added_where_rippled_adds_nothing(body: dict[str, object]) -> None:
    before = dict(body)
    fill_ids(body, 0)  # type: ignore[arg-type]
    assert body == before


def test_present_fields_are_kept() -> None:
    closed = ledger_closed(5)
    fill_ids(closed, 99)
    assert closed["network_id"] == 0
    tx = xrp_payment(3, 1)
    fill_ids(tx, 99)
    assert tx["ctid"] == ctid.encode(3, 1, 0)
