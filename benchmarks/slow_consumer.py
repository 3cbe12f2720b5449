"""Memory stays bounded: a subscriber that never reads cannot grow the hub.

Starts a hub in its own process, connects one subscriber that never reads (a tiny
receive buffer, then silence) and a few that read everything, publishes N events, and
samples the hub's RSS throughout. The silent client must be cut with 1008 once its
queue passes ``send_queue_bytes``; the readers must get every event in order; the
hub's RSS must stay within the queue bound plus a small constant.

    python -m benchmarks.slow_consumer --events 20000
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil
import trio
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.frame_protocol import FrameProtocol, Opcode

ACCOUNT = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"


def event(seq: int) -> dict[str, Any]:
    """A ~700-byte validated transaction message carrying its sequence number."""
    return {
        "type": "transaction",
        "tx_json": {
            "TransactionType": "Payment",
            "Account": ACCOUNT,
            "Destination": ACCOUNT,
            "DeliverMax": "1000000",
            "Fee": "12",
            "Sequence": seq,
            "SigningPubKey": "02" + "AB" * 32,
            "TxnSignature": "30" * 70,
        },
        "hash": f"{seq:064X}",
        "meta": {"AffectedNodes": [], "TransactionIndex": 0, "TransactionResult": "tesSUCCESS"},
        "validated": True,
        "ledger_index": 1,
        "engine_result": "tesSUCCESS",
    }


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)


async def silent_subscriber(
    port: int, streams: tuple[str, ...] = ("transactions",)
) -> trio.SocketStream:
    """A subscriber with a tiny receive buffer that never reads after subscribing."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host="127.0.0.1", target="/")))
    while not any(isinstance(e, AcceptConnection) for e in ws.events()):
        ws.receive_data(await stream.receive_some(4096))
    subscribe = {"command": "subscribe", "streams": list(streams)}
    await stream.send_all(ws.send(TextMessage(msgspec.json.encode(subscribe).decode())))
    return stream


async def close_code_of(stream: trio.SocketStream) -> int | None:
    """Read what the hub sent the silent client until EOF; the close code if one arrived.

    A client that never reads usually never gets the close frame: it sits behind data
    the hub could not write, and the hub aborts the socket after ``close_timeout``.
    """
    proto = FrameProtocol(client=True, extensions=[])
    while True:
        data = await stream.receive_some(1 << 20)
        if not data:
            return None
        proto.receive_bytes(data)
        for frame in proto.received_frames():
            if frame.opcode is Opcode.CLOSE:
                code = frame.payload[0] if isinstance(frame.payload, tuple) else None
                return int(code) if code is not None else None


async def run(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1])
    sampler = RssSampler(pid)
    async with trio.open_nursery() as nursery:
        readers = []
        for _ in range(args.readers):
            ws = await nursery.start(_open, url)
            await ws.send_message('{"command":"subscribe","streams":["transactions"]}')
            await ws.get_message()
            readers.append(ws)
        async with open_websocket_url(url) as publisher:
            await publisher.send_message('{"command":"ping"}')
            await publisher.get_message()
            silent = await silent_subscriber(port)
            baseline = psutil.Process(pid).memory_info().rss
            sampler.start()
            received = [0] * len(readers)
            for start in range(0, args.events, 100):
                batch = [event(s) for s in range(start, min(start + 100, args.events))]
                await publisher.send_message(
                    msgspec.json.encode({"command": "publish", "messages": batch}).decode()
                )
                reply = msgspec.json.decode(await publisher.get_message())
                assert reply["status"] == "success", reply
                # Readers that keep up: each takes the whole batch before the next.
                for k, ws in enumerate(readers):
                    for expected in range(start, start + len(batch)):
                        message = msgspec.json.decode(await ws.get_message())
                        assert message["transaction"]["Sequence"] == expected, (k, expected)
                        received[k] += 1
            sampler.stop.set()
            sampler.join()
            with trio.fail_after(10):
                code = await close_code_of(silent)
            await publisher.send_message('{"command":"server_info"}')
            info = msgspec.json.decode(await publisher.get_message())["result"]["info"]["hub"]
            after = psutil.Process(pid).memory_info().rss
        nursery.cancel_scope.cancel()
    return {
        "events": args.events,
        "readers": args.readers,
        "received_per_reader": received,
        "all_received": all(n == args.events for n in received),
        "silent_client_cut": info["load"]["slow_consumer_closes"] == 1,
        "silent_close_frame": code,
        "send_queue_bytes": args.queue_bytes,
        "rss_baseline_mib": round(baseline / 2**20, 1),
        "rss_peak_mib": round(sampler.peak / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "rss_growth_mib": round((sampler.peak - baseline) / 2**20, 1),
    }


async def _open(url: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with open_websocket_url(url, message_queue_size=10_000) as ws:
        task_status.started(ws)
        await trio.sleep_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--queue-bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "hub.toml"
        config.write_text(
            f"[limits]\nsend_queue_bytes = {args.queue_bytes}\n"
            f"send_queue_messages = {args.events * 2}\n"
            # The resume history is memory kept on purpose; this measures the send queue.
            "[history]\nledgers = 0\n"
        )
        command = [sys.executable, "-m", "hub", "serve", "--port", "0", "--source", "none"]
        command += ["--config", str(config), "--log-level", "warning"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as hub:
            try:
                assert hub.stdout is not None
                url = hub.stdout.readline().split()[-1]
                result = trio.run(run, args, url, hub.pid)
            finally:
                hub.terminate()
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["all_received"] and result["silent_client_cut"] else 1


if __name__ == "__main__":
    sys.exit(main())
