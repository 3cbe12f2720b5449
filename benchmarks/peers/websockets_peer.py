"""A minimal broadcast server on the ``websockets`` library (asyncio), as a yardstick.

It does the hub's fan-out and nothing else: ``subscribe`` adds the connection to the
subscriber set (no streams, no filters, no API versions); the admin-less ``publish``
``{"command": "publish", "messages": [...]}`` encodes each message once and hands it
to ``websockets.broadcast()``, which writes it to every subscriber without waiting;
``ping`` answers ``{}``. Replies have the hub's envelope so the same load generator
drives both. Prints ``listening on ws://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

subscribers: set[ServerConnection] = set()


def _reply(request: dict[str, Any], result: dict[str, Any]) -> str:
    return json.dumps(
        {"id": request.get("id"), "status": "success", "type": "response", "result": result}
    )


async def handler(ws: ServerConnection) -> None:
    try:
        async for text in ws:
            request = json.loads(text)
            command = request.get("command")
            if command == "subscribe":
                subscribers.add(ws)
                await ws.send(_reply(request, {}))
            elif command == "publish":
                messages = request.get("messages", [])
                for message in messages:
                    broadcast(subscribers, json.dumps(message, separators=(",", ":")))
                await ws.send(_reply(request, {"published": len(messages)}))
            else:
                await ws.send(_reply(request, {}))
    finally:
        subscribers.discard(ws)


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=None,
        max_queue=None,
        ping_interval=None,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://127.0.0.1:{bound}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
