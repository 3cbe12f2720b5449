"""hub.xrpl.ids (the fields older sources leave out) and hub.xrpl.identity (what the hub says
of itself), without sockets."""

from __future__ import annotations

import re

import pytest

from hub.xrpl import ctid
from hub.xrpl.identity import (
    RIPPLED_VERSION,
    NodeIdentity,
    UpstreamIdentity,
    build_version,
    from_server_info,
    network_id,
    server_fields,
)
from hub.xrpl.ids import fill_ids
from tests.samples import ledger_closed, legacy, proposed, validation, xrp_payment


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


def test_build_version_parses_as_rippled_for_client_libraries() -> None:
    version = build_version("0.1.0")
    assert version == f"{RIPPLED_VERSION}-hub.0.1.0"
    major, minor, patch = version.split(".")[:3]
    assert (int(major), int(minor), int(patch.split("-")[0])) >= (1, 11, 0)


def test_xrpl_py_reads_it_as_at_least_1_11() -> None:
    """xrpl-py's own comparison (``_is_not_later_rippled_version``) on the hub's string."""
    from xrpl.asyncio.transaction.main import _is_not_later_rippled_version

    assert _is_not_later_rippled_version("1.11.0", build_version("0.1.0"))


def test_identity_from_server_info() -> None:
    info = {"info": {"build_version": "2.4.0", "network_id": 21338, "peers": 3}}
    assert from_server_info(info) == UpstreamIdentity("2.4.0", 21338)
    assert from_server_info({"info": {"build_version": 5}}) == UpstreamIdentity(None, None)
    assert from_server_info({"info": {"network_id": -1}}) == UpstreamIdentity(None, None)
    assert from_server_info({}) is None
    assert from_server_info(None) is None


def test_network_id_resolution() -> None:
    assert network_id(None, None) == 0
    assert network_id(5, None) == 5
    assert network_id(5, UpstreamIdentity("2.4.0", None)) == 5
    assert network_id(5, UpstreamIdentity("2.4.0", 21338)) == 21338


def test_node_identity_and_server_fields() -> None:
    node = NodeIdentity.create(seed=4)
    assert node == NodeIdentity.create(seed=4)
    assert node != NodeIdentity.create()
    assert re.fullmatch(r"n[1-9A-HJ-NP-Za-km-z]{50,52}", node.pubkey_node)
    assert re.fullmatch(r"[A-Z]{4}", node.hostid(admin=False))
    fields = server_fields(node, admin=False, server_status="full")
    assert fields["pubkey_node"] == node.pubkey_node
    assert fields["hostid"] == node.hostid(admin=False)
    assert (fields["load_base"], fields["load_factor"], fields["server_status"]) == (
        256,
        256,
        "full",
    )
    assert re.fullmatch(r"[0-9A-F]{64}", fields["random"])
    assert server_fields(node, admin=False, server_status="full")["random"] != fields["random"]
