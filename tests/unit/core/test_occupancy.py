"""Connection counts from accept to close (sans-IO), and who the node counts them under."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.node import Identity, Node
from hub.core.occupancy import Occupancy
from tests.helpers.hubs import make_config


def test_each_socket_counts_under_its_address_and_in_the_total() -> None:
    counts = Occupancy(max_total=10, max_per_address=2)
    a1, a2, b = counts.open("a"), counts.open("a"), counts.open("b")
    assert (counts.total, counts.count("a"), counts.count("b")) == (3, 2, 1)
    assert not counts.crowded(a1.address)
    a3 = counts.open("a")
    assert counts.crowded(a3.address)  # the third one, itself included
    counts.close(a3)
    assert not counts.crowded("a")
    for slot in (a1, a2, b):
        counts.close(slot)
    assert (counts.total, counts.count("a"), counts.addresses) == (0, 0, 0)


def test_a_socket_under_no_address_counts_in_the_total_only() -> None:
    counts = Occupancy(max_total=1, max_per_address=1)
    proxy = counts.open(None)
    assert counts.total == 1
    assert counts.addresses == 0
    assert not counts.crowded(proxy.address)
    assert not counts.full()
    other = counts.open(None)
    assert counts.full()
    counts.close(other)
    assert not counts.full()


def test_moving_a_socket_counts_it_once_under_its_new_address() -> None:
    counts = Occupancy(max_total=10, max_per_address=1)
    slot = counts.open(None)  # a trusted proxy's socket
    counts.move(slot, "client")  # its PROXY header or forwarding headers named the client
    assert (counts.total, counts.count("client")) == (1, 1)
    counts.move(slot, "client")  # the head names the same client: still one
    assert counts.count("client") == 1
    counts.move(slot, "other")
    assert (counts.count("client"), counts.count("other")) == (0, 1)
    counts.move(slot, None)  # an admin: counted under nobody
    assert counts.addresses == 0
    assert counts.total == 1
    counts.close(slot)
    assert counts.total == 0


def test_closing_twice_or_moving_a_closed_socket_changes_nothing() -> None:
    counts = Occupancy(max_total=10, max_per_address=5)
    slot, keep = counts.open("a"), counts.open("a")
    counts.close(slot)
    counts.close(slot)
    counts.move(slot, "b")
    assert (counts.total, counts.count("a"), counts.count("b")) == (1, 1, 0)
    counts.close(keep)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["open", "move", "close"]),
            st.integers(0, 7),
            st.sampled_from([None, "a", "b", "c"]),
        ),
        max_size=60,
    )
)
def test_counts_always_match_the_open_sockets(ops: list[tuple[str, int, str | None]]) -> None:
    counts = Occupancy(max_total=3, max_per_address=2)
    slots = []
    for op, index, address in ops:
        if op == "open" or not slots:
            slots.append(counts.open(address))
        elif op == "move":
            counts.move(slots[index % len(slots)], address)
        else:
            counts.close(slots[index % len(slots)])
    live = [slot for slot in slots if slot.open]
    assert counts.total == len(live)
    for address in ("a", "b", "c"):
        held = sum(slot.address == address for slot in live)
        assert counts.count(address) == held
        assert counts.crowded(address) == (held > 2)
    assert counts.full() == (len(live) > 3)
    for slot in slots:
        counts.close(slot)
    assert counts.total == 0
    assert counts.addresses == 0


@pytest.fixture
def node() -> Node:
    return Node(
        make_config(
            server={"trusted_proxies": ["10.0.0.1"]},
            admin={"ips": ["10.9.9.9"]},
            limits={"max_connections_per_ip": 1, "max_connections": 100},
        )
    )


def test_a_stranger_is_counted_by_its_tcp_peer_from_accept(node: Node) -> None:
    first = node.admit("192.0.2.7")
    assert not node.crowded(first)
    second = node.admit("192.0.2.7")
    assert node.crowded(second)
    node.release(second)
    node.release(first)
    assert node.occupancy.total == 0


def test_a_trusted_proxy_is_not_capped_by_its_own_address(node: Node) -> None:
    slots = [node.admit("10.0.0.1") for _ in range(5)]
    assert not any(node.crowded(slot) for slot in slots)
    assert node.occupancy.total == 5
    node.proxied(slots[0], "192.0.2.1")  # a PROXY header names the client
    assert not node.crowded(slots[0])
    node.proxied(slots[1], "192.0.2.1")  # asked as each header is read
    assert node.crowded(slots[1])
    node.proxied(slots[2], "10.0.0.1")  # PROXY LOCAL: the proxy itself, still uncounted
    assert node.occupancy.count("10.0.0.1") == 0


def test_admin_addresses_are_exempt_before_and_after_the_head(node: Node) -> None:
    slots = [node.admit("10.9.9.9") for _ in range(3)]
    assert not any(node.crowded(slot) for slot in slots)
    assert node.occupancy.count("10.9.9.9") == 0


def test_the_head_moves_the_count_to_the_client_it_names(node: Node) -> None:
    stranger = node.admit("192.0.2.9")
    node.identified(stranger, Identity("192.0.2.9", admin=True))  # a bearer token
    assert node.occupancy.count("192.0.2.9") == 0
    assert not node.crowded(node.admit("192.0.2.9"))
    behind = node.admit("10.0.0.1")
    node.identified(behind, Identity("192.0.2.20", admin=False))  # X-Forwarded-For
    assert node.occupancy.count("192.0.2.20") == 1
    assert node.refusal("192.0.2.20", admin=False) is None
    again = node.admit("10.0.0.1")
    node.identified(again, Identity("192.0.2.20", admin=False))
    assert node.refusal("192.0.2.20", admin=False) == (
        429,
        "Too many connections from your address.",
    )
    assert node.refusal("192.0.2.20", admin=True) is None
