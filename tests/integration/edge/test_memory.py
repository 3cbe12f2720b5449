"""Memory stays bounded: a subscriber that never reads cannot grow the hub.

A hub process with a 4 MiB send queue bound, one subscriber that never reads (a small
receive buffer, then silence) and a few that read everything. 20 000 events of about
700 bytes (14 MiB) are published in batches of 100 while the hub's RSS is sampled: the
silent client is cut once its queue passes the bound, the readers get every event in
order, and the RSS grows by no more than the bound and a small constant.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import psutil
import trio

from tests.helpers.hubs import Client, websocket
from tests.helpers.processes import hub_process, serve, write_config
from tests.helpers.samples import xrp_payment
from tests.helpers.sockets import silent_subscriber

QUEUE = 4 * 1024 * 1024
EVENTS = 20_000
READERS = 5
BATCH = 100


class PeakRss:
    """The highest resident set size of a process, sampled every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await trio.sleep(0.02)  # a sampling period, not a wait for an event


async def subscribed_readers(stack: AsyncExitStack, url: str) -> list[Client]:
    readers = []
    for _ in range(READERS):
        reader = Client(await stack.enter_async_context(websocket(url, message_queue_size=BATCH)))
        reply = await reader.request({"command": "subscribe", "streams": ["transactions"]})
        assert reply["status"] == "success"
        readers.append(reader)
    return readers


async def publish_all(publisher: Client, readers: list[Client]) -> None:
    """Every event, a batch at a time; each reader takes the whole batch before the next."""
    for start in range(0, EVENTS, BATCH):
        batch = [xrp_payment(1, seq) for seq in range(start, start + BATCH)]
        reply = await publisher.request({"command": "publish", "messages": batch}, timeout=30)
        assert reply["status"] == "success", reply
        for reader in readers:
            for seq in range(start, start + BATCH):
                message = await reader.recv()
                assert message["transaction"]["Sequence"] == seq


async def hub_figures(client: Client) -> dict[str, Any]:
    reply = await client.request({"command": "server_info"})
    return dict(reply["result"]["info"]["hub"])


async def test_a_silent_subscriber_cannot_grow_the_hub(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"[limits]\nsend_queue_bytes = {QUEUE}\nsend_queue_messages = {EVENTS * 2}\n"
        # The resume history is memory kept on purpose; this measures the send queue.
        "[history]\nledgers = 0\n",
    )
    args = serve("--config", config, "--log-level", "warning")
    async with hub_process(*args) as hub, AsyncExitStack() as stack:
        url, _, port = await hub.listening()
        readers = await subscribed_readers(stack, url)
        publisher = Client(await stack.enter_async_context(websocket(url)))
        silent = await silent_subscriber(port)
        stack.push_async_callback(silent.aclose)
        rss = PeakRss(hub.proc.pid)
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(rss.run)
                await publish_all(publisher, readers)
                nursery.cancel_scope.cancel()
        with trio.fail_after(10):  # the hub aborts the silent client's socket
            while await silent.receive_some(1 << 20):
                pass
        figures = await hub_figures(publisher)
    assert figures["load"]["slow_consumer_closes"] == 1
    # The events are 14 MiB: the hub keeps at most the queue bound of them for the
    # silent client, plus a small constant.
    assert (rss.peak - rss.baseline) / 2**20 < QUEUE / 2**20 + 8
