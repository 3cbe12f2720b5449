"""How large a resume a reading client gets: the whole history, from ``since_ledger_min``.

    python -m benchmarks.resume_size --ledgers 264 --tx-per-ledger 20 [--last 71]

Runs a hub in this process with the default limits and history, publishes simulated
ledgers through the node, then one client (trio-websocket, reading as fast as it can)
subscribes to the ledger-bound streams with ``since_ledger`` at the oldest ledger the
history serves (or, with ``--last N``, after the N-th newest ledger) and reads every
replayed message. Prints the history held, the reply's
``resumed_*`` fields, and what the client received (or how it was closed).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import msgspec
import trio
from trio_websocket import ConnectionClosed

from hub import Hub
from hub import config as hub_config
from hub.links.connect import connect
from hub.sources.simulator import LedgerSimulator
from hub.xrpl import events

STREAMS = ["ledger", "transactions", "validations", "book_changes"]


async def measure(ledgers: int, tx_per_ledger: int, last: int | None) -> dict[str, Any]:
    config = hub_config.load(None, {"server": {"port": 0}, "source": {"source": "none"}})
    node = Hub(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        sim = LedgerSimulator(seed=1, tx_per_ledger=tx_per_ledger)
        for _ in range(ledgers):
            await node.publish_batch([events.parse(m) for m in sim.close_ledger()])
        history = node.node.history
        assert await node.node.arrivals.wait(sim.ledger_index - 1, timeout=600)
        since = history.resumable_from
        if last is not None and history.latest is not None:
            since = history.latest - last
        out: dict[str, Any] = {
            "history": {"since_ledger_min": history.resumable_from, "latest": history.latest,
                        "messages": len(history), "frame_bytes": history.nbytes},
            "send_queue_bytes": config.limits.send_queue_bytes,
            "since_ledger": since,
        }  # fmt: skip
        out.update(await resume(node.url, since))
        node.shutdown()
        nursery.cancel_scope.cancel()
    return out


async def resume(url: str, since: int | None) -> dict[str, Any]:
    started = time.perf_counter()
    received = nbytes = 0
    async with connect(url, max_message_size=1 << 24) as ws:
        request = {"command": "subscribe", "streams": STREAMS, "api_version": 2,
                   "since_ledger": since}  # fmt: skip
        await ws.send_message(msgspec.json.encode(request).decode())
        try:
            reply = msgspec.json.decode(await ws.get_message())
            result = reply.get("result", reply)
            for _ in range(result.get("resumed_messages", 0)):
                nbytes += len(await ws.get_message())
                received += 1
        except ConnectionClosed as exc:
            return {"closed": [exc.reason.code, exc.reason.reason], "received": received}
    return {
        "reply": {k: v for k, v in result.items() if k.startswith("resumed")},
        "received": received,
        "received_bytes": nbytes,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledgers", type=int, default=264)
    parser.add_argument("--tx-per-ledger", type=int, default=20)
    parser.add_argument("--last", type=int, help="resume only the last N ledgers")
    args = parser.parse_args()
    print(json.dumps(trio.run(measure, args.ledgers, args.tx_per_ledger, args.last), indent=2))


if __name__ == "__main__":
    main()
