"""Cluster figures: three hub nodes on one Redis, and ``--workers 2`` against ``--workers 1``.

Standalone: it starts its own ``redis-server`` and ``hub serve`` processes on free
ports of 127.0.0.1, runs subscriber processes and one publisher, prints one line per
scenario and stops everything. Nothing else in ``benchmarks/`` is used.

Scenarios:

- ``redis3``: three nodes (``--source none --broker redis://...``), subscribers spread
  round-robin over them, the publisher on node 0 (so every event crosses Redis).
- ``workers1`` / ``workers2``: ``hub serve --workers N --source none``, subscribers on
  the one port (the kernel spreads them), the publisher on the same port.

The publisher sends ``publish`` batches of ``--batch`` transactions, paced to
``--rate`` events per second (0: as fast as the hub answers), each message carrying
its sequence number and publish time. Each subscriber takes the ``transactions``
stream and checks it got every sequence number once, in order.

Figures: deliveries/s (messages received by all subscribers over the time from the
first publish to the last message), lost (expected minus received, a subscriber cut
as too slow included), out of order or repeated, and publish-to-receive latency p50
and p99 (the same machine's monotonic clock on both sides).

    python -m benchmarks.cluster --events 20000 --subscribers 30 --rate 0
    python -m benchmarks.cluster --scenario redis3 --rate 5000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

LISTENING = re.compile(rb"listening on (ws://\S+)")
HASH = "%064X"


class _Bench(msgspec.Struct):
    bench: tuple[int, int] | None = None


_decode = msgspec.json.Decoder(_Bench).decode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def hub_serve(*args: str) -> Iterator[str]:
    """``hub serve --port 0 ARGS``; its URL once it printed the listening line."""
    command = [sys.executable, "-m", "hub", "serve", "--port", "0", "--log-level", "warning"]
    proc = subprocess.Popen([*command, *args], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = LISTENING.search(line)
        if match is None:
            raise RuntimeError(f"hub serve {args} did not start: {line!r}")
        yield match[1].decode()
    finally:
        proc.send_signal(2)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def message(seq: int, stamp: int) -> dict[str, Any]:
    return {
        "type": "transaction",
        "tx_json": {"TransactionType": "Payment", "Fee": "12", "Sequence": seq},
        "hash": HASH % seq,
        "validated": True,
        "ledger_index": 1 + seq // 100,
        "engine_result": "tesSUCCESS",
        "bench": [seq, stamp],
    }


async def _request(ws: Any, body: dict[str, Any]) -> Any:
    await ws.send_message(json.dumps(body))
    while True:
        reply = json.loads(await ws.get_message())
        if reply.get("type") == "response":
            return reply


async def server_info(url: str) -> dict[str, Any]:
    async with open_websocket_url(url) as ws:
        reply = await _request(ws, {"command": "server_info", "api_version": 2})
        return dict(reply["result"]["info"]["hub"])


async def until_connected(urls: list[str]) -> None:
    with trio.fail_after(30):
        for url in urls:
            while not (await server_info(url)).get("broker", {}).get("connected"):  # noqa: ASYNC110
                await trio.sleep(0.05)


# --- subscriber processes -------------------------------------------------------------


@dataclass
class Received:
    messages: int = 0
    disorder: int = 0
    closed: int = 0
    latencies: list[float] | None = None
    first: float = 0.0
    last: float = 0.0


def subscriber_process(urls: list[str], events: int, ready: Any, results: Any) -> None:
    results.put(trio.run(_subscribers, urls, events, ready))


async def _subscribers(urls: list[str], events: int, ready: Any) -> Received:
    total = Received(latencies=[])
    assert total.latencies is not None

    async def one(url: str, task_status: Any) -> None:
        async with open_websocket_url(url, max_message_size=2**24) as ws:
            await _request(ws, {"command": "subscribe", "streams": ["transactions"]})
            task_status.started()
            expected = 0
            try:
                while expected < events:
                    with trio.move_on_after(20) as idle:
                        data = await ws.get_message()
                    if idle.cancelled_caught:
                        return
                    now = time.monotonic_ns()
                    bench = _decode(data).bench
                    if bench is None:
                        continue
                    seq, stamp = bench
                    total.messages += 1
                    total.first = total.first or now / 1e9
                    total.last = now / 1e9
                    if seq != expected:
                        total.disorder += 1
                    expected = seq + 1
                    if seq % 7 == 0:
                        assert total.latencies is not None
                        total.latencies.append((now - stamp) / 1e6)
            except ConnectionClosed:
                total.closed += 1

    async with trio.open_nursery() as nursery:
        for url in urls:
            await nursery.start(one, url)
        ready.put(len(urls))
    return total


# --- the publisher --------------------------------------------------------------------


async def publish(url: str, events: int, batch: int, rate: float) -> float:
    """Publish ``events`` messages; returns the time of the first publish."""
    async with open_websocket_url(url, max_message_size=2**24) as ws:
        start = time.monotonic()
        for first in range(0, events, batch):
            if rate > 0:
                await trio.sleep_until(
                    trio.current_time() + max(0.0, start + first / rate - time.monotonic())
                )
            stamp = time.monotonic_ns()
            messages = [message(seq, stamp) for seq in range(first, min(events, first + batch))]
            reply = await _request(ws, {"command": "publish", "messages": messages})
            if reply.get("status") != "success":
                raise RuntimeError(f"publish failed: {reply}")
        return start


# --- scenarios ------------------------------------------------------------------------


def run(name: str, pub_url: str, sub_urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    groups = [sub_urls[i :: args.procs] for i in range(args.procs)]
    procs = [
        ctx.Process(target=subscriber_process, args=(group, args.events, ready, results))
        for group in groups
        if group
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    start = trio.run(publish, pub_url, args.events, args.batch, args.rate)
    parts: list[Received] = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(30)
    received = sum(part.messages for part in parts)
    latencies = sorted(x for part in parts for x in part.latencies or [])
    last = max(part.last for part in parts)
    expected = args.events * len(sub_urls)
    seconds = max(1e-9, last - start)
    return {
        "scenario": name,
        "events": args.events,
        "subscribers": len(sub_urls),
        "deliveries": received,
        "seconds": round(seconds, 2),
        "deliveries_per_s": round(received / seconds),
        "lost": expected - received,
        "out_of_order": sum(part.disorder for part in parts),
        "cut": sum(part.closed for part in parts),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
    }


def redis3(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        urls = [
            stack.enter_context(hub_serve("--source", "none", "--broker", redis)) for _ in range(3)
        ]
        trio.run(until_connected, urls)
        subs = [urls[i % 3] for i in range(args.subscribers)]
        return run("redis3", urls[0], subs, args)


def workers(count: int, args: argparse.Namespace) -> dict[str, Any]:
    with hub_serve("--source", "none", "--workers", str(count)) as url:
        return run(f"workers{count}", url, [url] * args.subscribers, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=["redis3", "workers1", "workers2"])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--subscribers", type=int, default=30)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0, help="events/s; 0 = unpaced")
    parser.add_argument("--procs", type=int, default=2, help="subscriber processes")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name in args.scenario or ["redis3", "workers1", "workers2"]:
        figures = redis3(args) if name == "redis3" else workers(int(name[-1]), args)
        print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
