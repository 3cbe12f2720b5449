"""The upstream relay: ordering, fail-over, gap repair, forwarding, record and replay."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from trio_websocket import open_websocket_url

from hub import Hub
from hub.backoff import Backoff
from hub.core.history import Tail
from hub.links.upstream import (
    Action,
    Relay,
    Sequencer,
    UpstreamStatus,
    fees_of,
    ledger_messages,
    run_upstream,
)
from hub.sources.playback import Playback, RecordingError, read_recording, run_playback
from hub.sources.record import record
from hub.sources.simulator import LedgerSimulator
from hub.xrpl.ids import fill_ids
from tests.conftest import Client, eventually, make_config
from tests.fake_rippled import FakeRippled
from tests.samples import ledger_closed, xrp_payment

DATA = Path(__file__).parent / "data"


# --- sans-IO --------------------------------------------------------------------------


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=8, rng=random.Random(1))
    delays = [backoff.next() for _ in range(8)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next() <= 0.5


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


def test_recording_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 1, "message": {}}\nnot json\n')
    with pytest.raises(RecordingError, match=r"bad\.jsonl:2"):
        read_recording(bad)


# --- end to end -----------------------------------------------------------------------


async def start_relay(nursery: trio.Nursery, *urls: str, **sections: Any) -> Hub:
    source = {"source": "upstream:" + ",".join(urls)}
    node = Hub(make_config(source=source, **sections))
    await nursery.start(node.run)
    return node


@asynccontextmanager
async def subscribed(node: Hub, streams: list[str]) -> AsyncIterator[Client]:
    async with open_websocket_url(node.url, message_queue_size=10_000) as ws:
        client = Client(ws)
        reply = await client.request({"command": "subscribe", "streams": streams, "api_version": 2})
        assert reply["status"] == "success"
        yield client


async def publish(node: Hub, messages: list[dict[str, Any]]) -> None:
    async with open_websocket_url(node.url) as ws:
        reply = await Client(ws).request({"command": "publish", "messages": messages})
        assert reply["status"] == "success", reply


async def wait_connected(node: Hub, reconnects: int = 0) -> None:
    assert node.node.upstream is not None
    upstream = node.node.upstream
    await eventually(lambda: upstream.connected and upstream.reconnects >= reconnects)


async def test_chain_of_three_hubs_keeps_order(nursery: trio.Nursery) -> None:
    origin = Hub(make_config())
    await nursery.start(origin.run)
    middle = await start_relay(nursery, origin.url)
    edge = await start_relay(nursery, middle.url)
    await wait_connected(middle)
    await wait_connected(edge)
    sent = [
        m for i in range(1, 6) for m in [ledger_closed(i), *(xrp_payment(i, s) for s in range(5))]
    ]
    async with subscribed(edge, ["ledger", "transactions"]) as client:
        await publish(origin, sent)
        got = [await client.recv() for _ in sent]
    assert got == sent
    info = await _server_info(edge)
    assert info["hub"]["upstream"]["connected"] is True
    assert info["hub"]["upstream"]["last_ledger"] == 5


async def _server_info(node: Hub) -> Any:
    async with open_websocket_url(node.url) as ws:
        return (await Client(ws).request({"command": "server_info"}))["result"]["info"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_upstream_restart_gap_is_repaired(nursery: trio.Nursery) -> None:
    sim = LedgerSimulator(seed=5, tx_per_ledger=6)
    ledgers = [
        [m for m in sim.close_ledger() if m["type"] != "validationReceived"] for _ in range(8)
    ]
    port = free_port()
    first = FakeRippled(port=port)
    relay = await start_relay(nursery, f"ws://127.0.0.1:{port}")
    async with subscribed(relay, ["ledger", "transactions"]) as client:
        async with trio.open_nursery() as upstream_nursery:
            await first.start(upstream_nursery)
            await wait_connected(relay)
            for messages in ledgers[:3]:
                first.remember(messages)
                await publish(first.hub, messages)
            expected = [m for ms in ledgers[:3] for m in ms if m["type"] != "bookChanges"]
            got = [await client.recv() for _ in expected]
            assert got == expected
            first.hub.shutdown()
        # The upstream comes back on the same port having closed ledgers 4-6 meanwhile.
        second = FakeRippled(port=port)
        for messages in ledgers:
            second.remember(messages)
        await second.start(nursery)
        await wait_connected(relay, reconnects=1)
        await publish(second.hub, ledgers[6])
        expected = [m for ms in ledgers[3:7] for m in ms if m["type"] != "bookChanges"]
        got = [await client.recv(timeout=10) for _ in expected]
    assert [m["type"] for m in got] == [m["type"] for m in expected]
    for g, e in zip(got, expected, strict=True):
        if e["type"] == "ledgerClosed" and e["ledger_index"] != ledgers[6][0]["ledger_index"]:
            assert g == {k: v for k, v in e.items() if k != "validated_ledgers"}
        else:
            assert g == e
    assert "ledger" in second.asked
    assert relay.node.upstream is not None
    assert relay.node.upstream.repaired_ledgers == 3


async def test_ledger_the_upstream_no_longer_has_is_a_logged_gap(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    sim = LedgerSimulator(seed=6, tx_per_ledger=2)
    ledgers = [[m for m in sim.close_ledger() if m["type"] == "ledgerClosed"] for _ in range(5)]
    fake = FakeRippled()
    for messages in ledgers:
        fake.remember(messages)
    fake.forget(ledgers[2][0]["ledger_index"])
    await fake.start(nursery)
    relay = await start_relay(nursery, fake.url)
    await wait_connected(relay)
    async with subscribed(relay, ["ledger"]) as client:
        await publish(fake.hub, ledgers[0])
        assert (await client.recv())["ledger_index"] == ledgers[0][0]["ledger_index"]
        await publish(fake.hub, ledgers[4])
        got = [(await client.recv())["ledger_index"] for _ in range(3)]
    indexes = [messages[0]["ledger_index"] for messages in ledgers]
    assert got == [indexes[1], indexes[3], indexes[4]]
    assert relay.node.upstream is not None
    assert relay.node.upstream.missing_ledgers == 1
    assert f"ledger {indexes[2]} is unavailable" in caplog.text


async def test_a_relay_started_from_a_tail_finishes_that_ledger_then_mends_on(
    nursery: trio.Nursery,
) -> None:
    """A new cluster leader: the stream holds ledger 0's close and first two
    transactions; the relay publishes the rest of ledger 0, all of ledger 1 (missed),
    then ledger 2 live, and nothing twice."""
    sim = LedgerSimulator(seed=12, tx_per_ledger=5)
    ledgers = [[m for m in sim.close_ledger() if m["type"] == "ledgerClosed" or
                m["type"] == "transaction"] for _ in range(3)]  # fmt: skip
    fake = FakeRippled()
    for messages in ledgers:
        fake.remember(messages)
    await fake.start(nursery)
    first = ledgers[0]
    done = [m["hash"] for m in first[1:3]]
    tail = Tail(first[0]["ledger_index"], frozenset(done), False, False)
    send, receive = trio.open_memory_channel[Any](1000)
    status = UpstreamStatus([fake.url])
    await nursery.start(partial(run_upstream, send, Relay([fake.url]), status, start=tail))
    await eventually(lambda: status.connected)
    await publish(fake.hub, ledgers[2])
    expected = first[3:] + ledgers[1] + ledgers[2]
    got = [await receive.receive() for _ in expected]
    assert [(m["type"], m.get("hash")) for m in got] == [
        (m["type"], m.get("hash")) for m in expected
    ]
    assert status.repaired_ledgers == 2  # the rest of ledger 0, and ledger 1
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def test_a_relay_mends_up_to_the_upstreams_latest_ledger_without_waiting(
    nursery: trio.Nursery,
) -> None:
    """The ``subscribe`` answer names the upstream's latest ledger: what was missed up to
    it is published at once, not at the next close, and nothing of it twice."""
    sim = LedgerSimulator(seed=13, tx_per_ledger=4)
    # Rebuilt ledgers carry a bookChanges only when offers crossed.
    ledgers = [[m for m in sim.close_ledger() if m["type"] != "validationReceived"
                and m.get("changes") != []] for _ in range(4)]  # fmt: skip
    fake = FakeRippled()
    for messages in ledgers:
        fake.remember(messages)
    await fake.start(nursery)
    await publish(fake.hub, ledgers[2][:1])  # the upstream's latest ledger is now ledger 2
    await eventually(lambda: fake.hub.node.ledger.index == ledgers[2][0]["ledger_index"])
    send, receive = trio.open_memory_channel[Any](1000)
    status = UpstreamStatus([fake.url])
    tail = Tail(ledgers[0][0]["ledger_index"])
    await nursery.start(partial(run_upstream, send, Relay([fake.url]), status, start=tail))
    mended = ledgers[1] + ledgers[2]
    with trio.fail_after(10):  # before anything is published live
        got = [await receive.receive() for _ in mended]
    assert [(m["type"], m.get("hash")) for m in got] == [(m["type"], m.get("hash")) for m in mended]
    await publish(fake.hub, ledgers[2][1:] + ledgers[3])  # late live rest of 2, then 3
    with trio.fail_after(10):
        got = [await receive.receive() for _ in ledgers[3]]
    assert [m.get("hash") for m in got] == [m.get("hash") for m in ledgers[3]]
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def test_failover_to_the_next_url(nursery: trio.Nursery) -> None:
    backup = Hub(make_config())
    await nursery.start(backup.run)
    dead = "ws://127.0.0.1:1"
    relay = await start_relay(nursery, dead, backup.url)
    await wait_connected(relay)
    assert relay.node.upstream is not None
    assert relay.node.upstream.url == backup.url
    assert relay.node.upstream.reconnects >= 1


# --- forwarding -----------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [7, "seven", {"n": [7]}, None, 7.5, True, "absent"])
async def test_forwarded_reply_keeps_the_client_id(nursery: trio.Nursery, request_id: Any) -> None:
    fake = FakeRippled()
    await fake.start(nursery)
    relay = await start_relay(nursery, fake.url)
    await wait_connected(relay)
    await eventually(
        lambda: relay.node.forwarder is not None and relay.node.forwarder.connected > 0
    )
    request: dict[str, Any] = {"command": "account_info", "account": "rA", "api_version": 2}
    if request_id != "absent":
        request["id"] = request_id
    async with open_websocket_url(relay.url) as ws:
        reply = await Client(ws).request(request)
    assert reply["forwarded"] is True
    assert reply["status"] == "success"
    assert reply["result"]["account_data"]["Account"] == "rA"
    assert reply["result"]["seen_api_version"] == 2
    assert reply["api_version"] == 2
    if request_id == "absent":
        assert "id" not in reply
    else:
        assert reply["id"] == request_id
        assert type(reply["id"]) is type(request_id)


async def test_forwarded_errors_and_admin_methods(nursery: trio.Nursery) -> None:
    fake = FakeRippled()
    await fake.start(nursery)
    relay = await start_relay(nursery, fake.url, admin={"ips": []})
    await wait_connected(relay)
    await eventually(
        lambda: relay.node.forwarder is not None and relay.node.forwarder.connected > 0
    )
    async with open_websocket_url(relay.url) as ws:
        client = Client(ws)
        bad = await client.request(
            {"command": "account_info", "account": "rBad", "id": 1, "secret": "s"}
        )
        peers = await client.request({"command": "peers", "id": 2})
    assert bad["error"] == "actMalformed"
    assert bad["forwarded"] is True
    assert bad["id"] == 1
    assert bad["request"] == {
        "command": "account_info",
        "account": "rBad",
        "id": 1,
        "secret": "<masked>",
    }
    assert peers["error"] == "forbidden"
    assert "forwarded" not in peers
    assert "peers" not in fake.asked


async def test_without_upstream_unknown_stays_unknown(client: Client) -> None:
    reply = await client.request({"command": "account_info", "account": "rA"})
    assert reply["error"] == "unknownCmd"


# --- record and replay ----------------------------------------------------------------


async def test_record_then_replay_round_trip(nursery: trio.Nursery, tmp_path: Path) -> None:
    origin = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.05, "seed": 9}))
    await nursery.start(origin.run)
    path = tmp_path / "rec.jsonl"
    with trio.fail_after(20):
        written = await record(origin.url, path, count=60)
    assert written == 60
    recorded = [r.message for r in read_recording(path)]
    replay_hub = Hub(make_config())
    await nursery.start(replay_hub.run)
    streams = ["ledger", "transactions", "validations", "book_changes"]
    async with subscribed(replay_hub, streams) as client:
        await nursery.start(run_playback, replay_hub.publisher(), Playback(str(path), speed=0))
        got = [await client.recv() for _ in recorded]
    assert got == recorded


async def test_shipped_sample_replays_through_serve(nursery: trio.Nursery) -> None:
    sample = DATA / "sample.jsonl"
    records = read_recording(sample)
    assert len(records) > 50
    kinds = {r.message["type"] for r in records}
    assert {"ledgerClosed", "transaction", "validationReceived"} <= kinds
    node = Hub(make_config(source={"source": f"replay:{sample}", "speed": 0, "loop": True}))
    await nursery.start(node.run)
    async with subscribed(node, ["ledger"]) as client:
        indexes = [(await client.recv())["ledger_index"] for _ in range(3)]
    assert all(isinstance(i, int) for i in indexes)


def test_sample_is_valid_json_lines() -> None:
    for line in (DATA / "sample.jsonl").read_bytes().splitlines():
        msgspec.json.decode(line)


async def test_an_upgrade_nobody_answers_times_out(autojump_clock: Any) -> None:
    """A server that accepts TCP and never answers the upgrade (a proxy with no backend)
    must not hang a relay or a forwarding link: ``connect`` gives up."""
    from trio_websocket import HandshakeError

    from hub.links.connect import connect

    accepted = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        accepted.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        start = trio.current_time()
        with pytest.raises(HandshakeError, match="no answer to the upgrade"):
            async with connect(f"ws://127.0.0.1:{port}", handshake_timeout=3):
                pass
        assert accepted.is_set()
        assert trio.current_time() - start == pytest.approx(3, abs=0.1)
        nursery.cancel_scope.cancel()
