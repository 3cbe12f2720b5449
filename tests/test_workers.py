"""``hub serve --workers N``: one port, N processes, every event to every client in order."""

from __future__ import annotations

import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from hub.app.workers import Restarts, assignments
from hub.cluster.pipe import MAX_FRAME, FrameError, FrameReader, frame, run_pipe
from hub.cluster.pipebus import PipeBus
from hub.xrpl import events
from tests.conftest import Client, eventually, expect_close, make_config, websocket
from tests.redis_server import RedisServer
from tests.samples import ledger_closed, xrp_payment
from tests.test_cli import HubProcess, hub_process

# --- sans-IO --------------------------------------------------------------------------


def test_frames_survive_any_chunking() -> None:
    data = frame([{"a": 1}]) + frame([{"b": "x" * 1000}]) + frame({"c": None})
    for size in (1, 3, 7, len(data)):
        reader = FrameReader()
        got = []
        for start in range(0, len(data), size):
            got += reader.feed(data[start : start + size])
        assert got == [[{"a": 1}], [{"b": "x" * 1000}], {"c": None}]
        assert reader.pending == 0


def test_a_frame_that_is_not_one_is_an_error() -> None:
    with pytest.raises(FrameError, match="bytes"):
        FrameReader().feed((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError):
        FrameReader().feed((3).to_bytes(4, "big") + b"{{{")


def test_with_a_broker_only_worker_0_runs_the_source() -> None:
    cfg = make_config(
        source={"source": "simulator"}, cluster={"broker": "redis://h:1/0", "workers": 3}
    )
    plans = assignments(cfg, 4321)
    assert [p.config["source"]["source"] for p in plans] == ["simulator", "none", "none"]
    assert all(p.config["server"]["port"] == 4321 for p in plans)
    assert all(p.config["cluster"]["workers"] == 1 and not p.pipe for p in plans)


def test_without_a_broker_the_parent_runs_the_source() -> None:
    cfg = make_config(source={"source": "upstream:ws://a:1, ws://b:2"}, cluster={"workers": 2})
    plans = assignments(cfg, 4321)
    assert [p.config["source"]["source"] for p in plans] == ["none", "none"]
    assert all(p.pipe for p in plans)
    assert plans[1].upstream == ["ws://a:1", "ws://b:2"]


async def test_run_pipe_publishes_each_frame_as_one_batch() -> None:
    down_send, down_receive = trio.testing.memory_stream_one_way_pair()
    send, receive = trio.open_memory_channel[Any](10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_pipe, send, down_receive)
        await down_send.send_all(frame([1, 2]) + frame([3]))
        assert await receive.receive() == [1, 2]
        assert await receive.receive() == [3]
        await down_send.aclose()
    with pytest.raises(trio.EndOfChannel):
        await receive.receive()


async def test_pipe_bus_sends_up_and_applies_only_what_comes_down() -> None:
    up_send, up_receive = trio.testing.memory_stream_one_way_pair()
    down_send, down_receive = trio.testing.memory_stream_one_way_pair()
    closed = trio.Event()
    bus = PipeBus(up_send, down_receive, FrameReader(), closed.set)
    applied: list[events.Event] = []
    remembered: list[events.Event] = []
    mine = events.parse(ledger_closed(5))
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run, applied.append, remembered.append)
        await bus.submit([mine])
        assert applied == []
        reader = FrameReader()
        assert reader.feed(await up_receive.receive_some()) == [[mine.body]]
        await down_send.send_all(frame([mine.body, {"type": "bogus"}, xrp_payment(5, 1)]))
        await down_send.aclose()
        await closed.wait()
    assert [e.kind for e in applied] == ["ledgerClosed", "transaction"]
    assert remembered == []  # a worker's parent sends only live events
    assert bus.status.as_json()["rejected"] == 1


# --- real processes -------------------------------------------------------------------


def workers(*args: str) -> tuple[str, ...]:
    return (
        "serve",
        "--workers",
        "2",
        "--port",
        "0",
        "--drain-seconds",
        "0",
        "--drain-spread",
        "0",
        *args,
    )


async def info(client: Client) -> dict[str, Any]:
    reply = await client.request({"command": "server_info", "api_version": 2})
    return dict(reply["result"]["info"]["hub"])


async def clients_on_both_workers(stack: AsyncExitStack, url: str) -> list[Client]:
    """Clients until both workers hold some (the kernel picks; 40 tries is plenty)."""
    clients: list[Client] = []
    pids: set[int] = set()
    for _ in range(40):
        client = Client(await stack.enter_async_context(websocket(url)))
        figures = await info(client)
        assert figures["worker"]["workers"] == 2
        pids.add(figures["worker"]["pid"])
        clients.append(client)
        if len(pids) == 2 and len(clients) >= 6:
            return clients
    raise AssertionError(f"every connection went to one worker: {pids}")


async def subscribed(clients: list[Client]) -> None:
    for client in clients:
        reply = await client.request(
            {"command": "subscribe", "streams": ["ledger", "transactions"], "api_version": 2}
        )
        assert reply["status"] == "success"


async def stream(client: Client, count: int, timeout: float = 15) -> list[Any]:  # noqa: ASYNC109
    """The next ``count`` stream messages, as ledger indexes and transaction hashes."""
    got: list[Any] = []
    with trio.fail_after(timeout):
        while len(got) < count:
            message = await client.recv(timeout)
            if message.get("type") == "ledgerClosed":
                got.append(message["ledger_index"])
            elif message.get("type") == "transaction":
                got.append(message["hash"])
    return got


def batch(index: int) -> list[dict[str, Any]]:
    return [ledger_closed(index, 2), xrp_payment(index, 0), xrp_payment(index, 1)]


def keys(messages: list[dict[str, Any]]) -> list[Any]:
    return [m["ledger_index"] if m["type"] == "ledgerClosed" else m["hash"] for m in messages]


async def publish_everywhere(hub: HubProcess, url: str) -> None:
    async with AsyncExitStack() as stack:
        clients = await clients_on_both_workers(stack, url)
        await subscribed(clients)
        sent: list[dict[str, Any]] = []
        admin = Client(await stack.enter_async_context(websocket(url)))  # not subscribed
        for index in range(1, 31):
            reply = await admin.request({"command": "publish", "messages": batch(index)})
            assert reply["result"] == {"published": 3}, reply
            sent += batch(index)
        for client in clients:
            assert await stream(client, len(sent)) == keys(sent)
        # and nothing more: the next message is the answer to a ping
        for client in clients:
            assert (await client.request({"command": "ping", "id": "end"}))["id"] == "end"
        hub.proc.send_signal(signal.SIGTERM)
        for client in clients:
            assert await expect_close(client) == 1001
        assert await hub.exit_code(within=15) == 0


async def test_workers_share_one_port_and_every_client_gets_every_event() -> None:
    async with hub_process(*workers("--source", "none")) as hub:
        url, _, _ = await hub.listening()
        await publish_everywhere(hub, url)
    assert hub.stdout.decode().count("listening on") == 1
    assert b"Traceback" not in hub.stderr


async def test_workers_run_one_simulator_in_the_parent() -> None:
    async with hub_process(*workers("--ledger-interval", "0.1", "--tx-per-ledger", "2")) as hub:
        url, _, _ = await hub.listening()
        async with AsyncExitStack() as stack:
            clients = await clients_on_both_workers(stack, url)
            for client in clients:
                await client.request({"command": "subscribe", "streams": ["ledger"]})
            for client in clients:
                indexes = []
                while len(indexes) < 4:
                    message = await client.recv(10)
                    if message.get("type") == "ledgerClosed":
                        indexes.append(message["ledger_index"])
                # one source: consecutive ledgers, never one twice
                assert indexes == list(range(indexes[0], indexes[0] + 4))
        hub.proc.send_signal(signal.SIGINT)
        assert await hub.exit_code(within=15) == 0


async def pid_of(client: Client) -> int:
    return int((await info(client))["worker"]["pid"])


async def client_on(stack: AsyncExitStack, url: str, pids: set[int]) -> Client:
    """A new client that landed on a worker outside ``pids`` (the kernel picks)."""
    for _ in range(60):
        async with AsyncExitStack() as attempt:
            client = Client(await attempt.enter_async_context(websocket(url)))
            if await pid_of(client) not in pids:
                stack.push_async_exit(attempt.pop_all())
                return client
    raise AssertionError(f"no connection landed outside {pids}")


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def logged(hub: HubProcess, line: str) -> None:
    """Until the parent has logged ``line`` (its stderr is read as it comes)."""
    with trio.fail_after(30):
        while line.encode() not in hub.stderr:  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_a_killed_worker_is_started_again_and_the_others_serve_on() -> None:
    async with hub_process(*workers("--source", "none")) as hub:
        url, _, _ = await hub.listening()
        async with AsyncExitStack() as stack:
            clients = await clients_on_both_workers(stack, url)
            pids = {await pid_of(client): client for client in clients}
            victim, survivor = sorted(pids)
            index = (await info(pids[victim]))["worker"]["index"]
            kept = pids[survivor]
            await subscribed([kept])
            os.kill(victim, signal.SIGKILL)

            # The survivor's client keeps its stream, and once the victim is gone (a
            # connection still queued on its socket then was reset by the kernel) a new
            # client is served.
            reply = await kept.request({"command": "publish", "messages": batch(1)})
            assert reply["result"] == {"published": 3}
            assert await stream(kept, 3) == keys(batch(1))
            await eventually(lambda: not running(victim), timeout=15)  # the parent reaped it
            newcomer = Client(await stack.enter_async_context(websocket(url)))
            assert (await newcomer.request({"command": "ping"}))["status"] == "success"

            # The dead worker is started again and plumbed into the sequencer: it gets
            # what is published elsewhere, and what is published on it reaches the rest.
            await logged(hub, f"worker {index} started again")
            reborn = await client_on(stack, url, set(pids))
            assert (await info(reborn))["worker"]["index"] == index
            await subscribed([reborn])
            await kept.request({"command": "publish", "messages": batch(2)})
            assert await stream(reborn, 3) == keys(batch(2))
            assert await stream(kept, 3) == keys(batch(2))
            await reborn.request({"command": "publish", "messages": batch(3)})
            assert await stream(kept, 3) == keys(batch(3))
            assert await stream(reborn, 3) == keys(batch(3))
            assert hub.proc.returncode is None
        hub.proc.send_signal(signal.SIGTERM)
        assert await hub.exit_code(within=15) == 0
    assert hub.stderr.count(b"was killed by SIGKILL") == 1
    assert f"worker {index} (pid {victim}) was killed by SIGKILL".encode() in hub.stderr


async def test_workers_that_cannot_start_fail_fast_in_one_line(tmp_path: Path) -> None:
    """Each worker process dies as it starts (a ``sitecustomize`` that ends every
    ``python -m hub.app.workers``): the settings the parent checks are all fine."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nif sys.orig_argv[-1:] == ['hub.app.workers']:\n    sys.exit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    async with hub_process(*workers("--source", "none"), env=env) as hub:
        assert await hub.exit_code(within=30) == 1
    assert hub.stdout == b""
    assert b"did not start" in hub.stderr
    assert b"started again" not in hub.stderr


def test_restarts_back_off_while_a_worker_keeps_dying_soon() -> None:
    restarts = Restarts(initial=0.5, maximum=4.0, settled=30.0)
    assert [restarts.died(1.0) for _ in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert restarts.died(30.0) == 0.0  # it had run a while: at once again
    assert restarts.died(0.1) == 0.5


async def test_workers_on_redis_share_events_through_it(redis: RedisServer) -> None:
    await redis.ready()
    async with hub_process(*workers("--source", "none", "--broker", redis.url)) as hub:
        url, _, _ = await hub.listening()
        async with AsyncExitStack() as stack:
            clients = await clients_on_both_workers(stack, url)
            for client in clients:
                with trio.fail_after(15):
                    while not (await info(client))["broker"]["connected"]:  # noqa: ASYNC110
                        await trio.sleep(0.05)
        await publish_everywhere(hub, url)
