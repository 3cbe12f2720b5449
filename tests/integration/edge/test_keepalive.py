"""Keepalive over real sockets on trio's virtual clock: the hub pings idle clients, cuts
the ones that never answer (1001 "ping timeout") and answers clients' pings.

The raw wsproto client of :mod:`tests.helpers.wsraw` answers nothing by itself, so it plays the
silent client; trio-websocket answers pings on its own, so it plays the healthy one."""

from __future__ import annotations

import trio
from trio.testing import MockClock
from wsproto.events import CloseConnection, Message, Ping, Pong

from hub import Hub
from tests.helpers.hubs import ADMIN_PING_TEXT, make_config, start_hub, websocket
from tests.helpers.wsraw import RawClient, open_raw

INTERVAL = 5.0


TIMEOUT = 3.0


async def keepalive_hub(nursery: trio.Nursery) -> Hub:
    config = make_config(server={"ping_interval": INTERVAL, "ping_timeout": TIMEOUT})
    return await start_hub(nursery, config)


async def next_ping(raw: RawClient, timeout: float = 60) -> Ping:  # noqa: ASYNC109
    event = await raw.next_event(timeout)
    assert isinstance(event, Ping), f"expected a ping, got {event!r}"
    return event


async def test_idle_client_is_pinged_after_the_interval(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    node = await keepalive_hub(nursery)
    async with open_raw(node.url) as raw:
        connected = trio.current_time()
        await next_ping(raw)
        waited = trio.current_time() - connected
        assert INTERVAL - 0.1 <= waited <= INTERVAL + 0.1


async def test_silent_client_is_closed_1001_ping_timeout(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    node = await keepalive_hub(nursery)
    async with open_raw(node.url) as raw:
        connected = trio.current_time()
        await next_ping(raw)
        pinged = trio.current_time()
        close = await raw.next_event(60)
        assert isinstance(close, CloseConnection)
        assert close.code == 1001
        assert close.reason == "ping timeout"
        assert TIMEOUT - 0.1 <= trio.current_time() - pinged <= TIMEOUT + 0.1
        closed = trio.current_time()
        # The client never answers the close either: the hub drops the socket anyway,
        # after [server] close_timeout.
        await raw.wait_eof(60)
        assert trio.current_time() - closed <= node.config.server.close_timeout + 0.1
        assert trio.current_time() - connected <= INTERVAL + TIMEOUT + 1.2


async def answer_pings_then_request(raw: RawClient, rounds: int, delay: float) -> None:
    """Answer ``rounds`` pings, each after ``delay`` s, then check a request still works."""
    for _ in range(rounds):
        ping = await next_ping(raw)
        await trio.sleep(delay)
        await raw.send(ping.response())
    await raw.send_json({"command": "ping", "id": 1})
    while True:  # another ping may come first
        event = await raw.next_event(60)
        if not isinstance(event, Ping):
            break
        await raw.send(event.response())
    assert isinstance(event, Message), f"expected the reply, got {event!r}"
    assert event.data == (
        '{"id":1,"status":"success","type":"response","result":' + ADMIN_PING_TEXT + "}"
    )


async def test_client_that_answers_pings_stays_connected(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    node = await keepalive_hub(nursery)
    async with open_raw(node.url) as raw:
        start = trio.current_time()
        await answer_pings_then_request(raw, rounds=5, delay=TIMEOUT * 0.9)
        assert trio.current_time() - start >= 5 * INTERVAL


async def test_keepalive_on_the_real_clock(nursery: trio.Nursery) -> None:
    config = make_config(server={"ping_interval": 0.05, "ping_timeout": 0.1})
    node = await start_hub(nursery, config)
    async with open_raw(node.url) as raw:
        with trio.fail_after(5):
            await answer_pings_then_request(raw, rounds=3, delay=0)
    async with open_raw(node.url) as silent:
        with trio.fail_after(5):
            await next_ping(silent)
            close = await silent.next_close()
        assert (close.code, close.reason) == (1001, "ping timeout")


async def test_immediate_pong_on_the_virtual_clock_counts(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    node = await keepalive_hub(nursery)
    async with open_raw(node.url) as raw:
        await answer_pings_then_request(raw, rounds=3, delay=0)


async def test_traffic_defers_the_ping(nursery: trio.Nursery, autojump_clock: MockClock) -> None:
    node = await keepalive_hub(nursery)
    async with open_raw(node.url) as raw:
        for i in range(4):
            await trio.sleep(INTERVAL * 0.6)
            await raw.send_json({"command": "ping", "id": i})
            reply = await raw.next_message()  # a ping here would fail this
            assert reply["id"] == i
        last_request = trio.current_time()
        await next_ping(raw)
        waited = trio.current_time() - last_request
        assert INTERVAL - 0.1 <= waited <= INTERVAL + 0.1


async def test_hub_answers_client_pings(hub: Hub) -> None:
    async with open_raw(hub.url) as raw:
        for payload in (b"", b"x", b"keepalive-1234"):
            await raw.send(Ping(payload))
            pong = await raw.next_event()
            assert isinstance(pong, Pong)
            assert pong.payload == payload


async def test_hub_answers_trio_websocket_ping(hub: Hub) -> None:
    async with websocket(hub.url) as ws:
        with trio.fail_after(5):
            await ws.ping(b"abc")  # returns when the matching pong arrives
        assert not ws.closed
