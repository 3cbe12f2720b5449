"""``hub serve --workers N``: one port, N processes, every event to every client in order."""

from __future__ import annotations

import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import trio
import trio.testing

from tests.helpers.hubs import Client, eventually, websocket
from tests.helpers.processes import HubProcess, hub_process
from tests.helpers.workers import (
    batch,
    clients_on_both_workers,
    info,
    keys,
    publish_everywhere,
    stream,
    subscribed,
    workers,
)


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
