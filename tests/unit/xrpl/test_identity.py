"""What the hub says it is (``hub.xrpl.identity``): build version, network id, server fields."""

from __future__ import annotations

import re

from hub.xrpl.identity import (
    RIPPLED_VERSION,
    NodeIdentity,
    UpstreamIdentity,
    build_version,
    from_server_info,
    network_id,
    server_fields,
)


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
