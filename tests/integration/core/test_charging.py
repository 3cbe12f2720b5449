"""Costs follow the work a request causes, end to end: per account, per book, for
unsubscribe and for failures up to where they failed; limits before the expensive part;
plain HTTP charged like requests."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from hub.core.load import DEFAULT_COSTS
from hub.core.subscriptions import CHUNK
from hub.xrpl import addresses
from tests.helpers.httpraw import fetch
from tests.helpers.hubs import client_from, make_config, start_hub
from tests.helpers.samples import USD, account

WINDOW = 32.0


def balance(node: Any, address: str) -> float:
    return float(node.node.load.balance(address))


def kilobytes(request: dict[str, Any]) -> int:
    return max(0, len(msgspec.json.encode(request)) // 1024 - 1)


@pytest.mark.parametrize("command", ["subscribe", "unsubscribe"])
async def test_each_account_checked_is_paid_for(nursery: trio.Nursery, command: str) -> None:
    node = await start_hub(nursery)
    request = {"command": command, "accounts": [account(i) for i in range(40)]}
    async with client_from(node, "127.0.0.21") as client:
        assert (await client.request(request))["status"] == "success"
    expected = DEFAULT_COSTS["request"] + 40 * DEFAULT_COSTS["account"]
    assert balance(node, "127.0.0.21") == pytest.approx(expected / WINDOW, rel=0.01)


async def test_a_request_that_fails_halfway_pays_for_the_half(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    accounts = [account(i) for i in range(3 * CHUNK)]
    accounts[CHUNK + 5] = "rNotAnAccount"
    request = {"command": "subscribe", "accounts": accounts}
    async with client_from(node, "127.0.0.22") as client:
        assert (await client.request(request))["error"] == "actMalformed"
    checked = 2 * CHUNK  # the chunk holding the bad address was paid for before it was checked
    expected = DEFAULT_COSTS["malformed"] + checked * DEFAULT_COSTS["account"]
    expected += DEFAULT_COSTS["kilobyte"] * kilobytes(request)
    assert balance(node, "127.0.0.22") == pytest.approx(expected / WINDOW, rel=0.01)


async def test_both_sides_of_a_book_cost_two_books(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    one = {"taker_pays": {"currency": "XRP"}, "taker_gets": USD}
    async with client_from(node, "127.0.0.23") as client:
        await client.request({"command": "subscribe", "books": [one]})
        single = balance(node, "127.0.0.23")
        await client.request({"command": "unsubscribe", "books": [one]})
        await client.request({"command": "subscribe", "books": [{**one, "both": True}]})
    book, request = DEFAULT_COSTS["book"], DEFAULT_COSTS["request"]
    assert single == pytest.approx((request + book) / WINDOW, rel=0.01)
    both = balance(node, "127.0.0.23")  # three requests, 1 + 1 + 2 books, barely decayed
    assert both == pytest.approx((3 * request + 4 * book) / WINDOW, rel=0.02)


async def test_a_request_over_the_limit_is_refused_before_any_address_is_decoded(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery, make_config(limits={"max_subscriptions_per_connection": 100}))
    request = {"command": "subscribe", "accounts": [f"r{i:033d}" for i in range(25_000)]}
    decoded = addresses._decode_cached.cache_info().misses
    async with client_from(node, "127.0.0.24") as client:
        reply = await client.request(request)
    assert reply["error"] == "invalidParams"
    assert "limit 100" in reply["error_message"]
    assert addresses._decode_cached.cache_info().misses == decoded
    expected = DEFAULT_COSTS["malformed"] + DEFAULT_COSTS["kilobyte"] * kilobytes(request)
    assert balance(node, "127.0.0.24") == pytest.approx(expected / WINDOW, rel=0.01)


async def test_subscribing_again_is_not_counted_again(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(limits={"max_subscriptions_per_connection": 5}))
    five = [account(i) for i in range(5)]
    async with client_from(node, "127.0.0.25") as client:
        for _ in range(2):
            reply = await client.request({"command": "subscribe", "accounts": five})
            assert reply["status"] == "success"
        reply = await client.request({"command": "subscribe", "accounts": [account(9)]})
        assert reply["error"] == "invalidParams"


async def test_plain_http_is_charged_and_metrics_refused_past_the_drop(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery, make_config(load={"warning": 10, "drop": 20}))
    for _ in range(40):
        response = await fetch(node.port, "GET", "/metrics", source_ip="127.0.0.26")
        if response.status == 503:
            break
    else:
        pytest.fail("a client scraping in a loop was never refused")
    assert balance(node, "127.0.0.26") >= 20
    health = await fetch(node.port, "GET", "/health", source_ip="127.0.0.26")
    assert health.status in (200, 503)
    assert "connections" in health.json(), "/health is answered whatever the balance"
    other = await fetch(node.port, "GET", "/metrics", source_ip="127.0.0.27")
    assert other.status == 200
