"""Failover figures: kill the leader of a three-node cluster, time until ledgers flow again.

Standalone: starts its own ``redis-server``, an upstream (``hub serve`` on its
simulator) and three nodes (``hub serve --source upstream:… --broker redis://…``,
``[cluster] lease_seconds`` from ``--lease``), all on free ports of 127.0.0.1, with a
subscriber to ``ledger`` and ``transactions`` on every node. Then ``--kills`` times:
find the leader, ``kill -9`` it, and measure

- *named*: from the kill until a surviving node's ``server_info`` names a new leader;
- *next ledger*: from the kill until every surviving node's subscriber has received
  the first ledger the new leader appended (read from Redis: the first
  ``ledgerClosed`` entry carrying the new term's token);
- *pause*: the longest gap between two ledgers a surviving subscriber saw around it.

The killed node is started again before the next kill. Every subscriber's stream is
checked: each ledger once, in order, with exactly its ``txn_count`` transactions
(``duplicates``/``gaps`` count what was not). Prints one JSON line per kill, then the
p50 and max of each figure.

    python -m benchmarks.failover --kills 10 --lease 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from benchmarks.cluster import redis_server

LISTENING = re.compile(rb"listening on (ws://\S+)")


@dataclass
class Process:
    """One ``hub serve``; its stderr goes to a log file."""

    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self) -> None:
        command = [sys.executable, "-m", "hub", "serve", "--port", "0", *self.args]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        assert self.proc.stdout is not None
        match = LISTENING.search(self.proc.stdout.readline())
        if match is None:
            raise RuntimeError(f"hub serve {self.args} did not start; see {self.log}")
        self.url = match[1].decode()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Stream:
    """What one subscriber received: (arrival, message) in order."""

    url: str
    got: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    open: bool = True

    def ledgers(self) -> list[tuple[float, int]]:
        return [(t, m["ledger_index"]) for t, m in self.got if m.get("type") == "ledgerClosed"]

    def check(self) -> tuple[int, int]:
        """(ledgers repeated or skipped, ledgers short of transactions)."""
        repeats = short = 0
        last: int | None = None
        count = want = 0
        for _, message in self.got:
            kind = message.get("type")
            if kind == "ledgerClosed":
                if last is not None and want != count:
                    short += 1
                index = message["ledger_index"]
                if last is not None and index != last + 1:
                    repeats += 1
                last, want, count = index, message["txn_count"], 0
            elif kind == "transaction" and last is not None:
                count += 1
        return repeats, short


async def request(url: str, body: dict[str, Any]) -> Any:
    async with open_websocket_url(url) as ws:
        await ws.send_message(json.dumps(body))
        while True:
            reply = json.loads(await ws.get_message())
            if reply.get("type") == "response":
                return reply


async def cluster_info(url: str) -> dict[str, Any] | None:
    try:
        reply = await request(url, {"command": "server_info", "api_version": 2})
    except (OSError, ConnectionClosed, trio.BrokenResourceError):
        return None
    return dict(reply["result"]["info"]["hub"].get("cluster") or {})


async def follow(stream: Stream, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    decode = msgspec.json.decode
    async with open_websocket_url(stream.url, max_message_size=2**24) as ws:
        await ws.send_message(json.dumps({"command": "subscribe", "api_version": 2,
                                          "streams": ["ledger", "transactions"]}))  # fmt: skip
        task_status.started()
        try:
            while True:
                message = decode(await ws.get_message())
                if message.get("type") != "response":
                    stream.got.append((time.monotonic(), message))
        except ConnectionClosed:
            stream.open = False


async def leader(nodes: list[Process], timeout: float = 30) -> tuple[int, dict[str, Any]]:  # noqa: ASYNC109
    with trio.fail_after(timeout):
        while True:
            for i, node in enumerate(nodes):
                info = await cluster_info(node.url)
                if info and info.get("role") == "leader":
                    return i, info
            await trio.sleep(0.02)


async def first_ledger_of_term(redis_url: str, token: str, after: int) -> int:
    """The index of the first ``ledgerClosed`` appended under ``token`` past seq ``after``."""
    import coredis

    client: coredis.Redis[bytes] = coredis.Redis.from_url(redis_url)
    async with client:
        with trio.fail_after(30):
            while True:
                for entry in await client.xrange("{hub}:events:ledgerClosed", f"{after + 1}-0"):
                    if entry.field_values.get(b"f") == token.encode():
                        return int(msgspec.json.decode(entry.field_values[b"e"])["ledger_index"])
                await trio.sleep(0.05)


async def redis_seq(redis_url: str) -> int:
    import coredis

    client: coredis.Redis[bytes] = coredis.Redis.from_url(redis_url)
    async with client:
        return int(await client.get("{hub}:seq") or 0)


async def one_kill(
    nodes: list[Process], streams: list[Stream], redis_url: str, nursery: trio.Nursery
) -> dict[str, Any]:
    index, _ = await leader(nodes)
    seq = await redis_seq(redis_url)
    killed = time.monotonic()
    nodes[index].kill()
    survivors = [stream for i, stream in enumerate(streams) if i != index]
    others = [node for i, node in enumerate(nodes) if i != index]
    _, info = await leader(others)
    named = time.monotonic() - killed
    token = info["token"]
    first = await first_ledger_of_term(redis_url, token, seq)
    with trio.fail_after(60):
        while not all(any(i >= first for _, i in s.ledgers()) for s in survivors):  # noqa: ASYNC110
            await trio.sleep(0.01)
    arrived = max(next(t for t, i in s.ledgers() if i >= first) for s in survivors)
    pause = 0.0
    for stream in survivors:
        times = [t for t, _ in stream.ledgers() if killed - 10 <= t <= arrived]
        pause = max([pause, *(b - a for a, b in itertools.pairwise(times))])
    # The killed node comes back with a fresh subscriber, for the next round.
    await trio.to_thread.run_sync(nodes[index].start)
    streams[index] = Stream(nodes[index].url)
    await nursery.start(follow, streams[index])
    return {
        "named_s": round(named, 3),
        "next_ledger_s": round(arrived - killed, 3),
        "pause_s": round(pause, 3),
        "first_ledger": first,
    }


async def run(args: argparse.Namespace, redis_url: str, nodes: list[Process]) -> int:
    streams = [Stream(node.url) for node in nodes]
    finished: list[Stream] = []
    results = []
    async with trio.open_nursery() as nursery:
        for stream in streams:
            await nursery.start(follow, stream)
        await leader(nodes)
        await trio.sleep(3 * args.ledger_interval)  # a few ledgers before the first kill
        for _ in range(args.kills):
            before = list(streams)
            figures = await one_kill(nodes, streams, redis_url, nursery)
            finished += [s for s in before if s not in streams]
            results.append(figures)
            print(json.dumps(figures), flush=True)
            await trio.sleep(2 * args.ledger_interval)
        nursery.cancel_scope.cancel()
    repeats = short = 0
    for stream in finished + streams:
        r, s = stream.check()
        repeats, short = repeats + r, short + s
    summary: dict[str, Any] = {"kills": len(results), "lease_s": args.lease,
                               "ledger_interval_s": args.ledger_interval}  # fmt: skip
    for key in ("named_s", "next_ledger_s", "pause_s"):
        values = [r[key] for r in results]
        summary[key] = {"p50": round(statistics.median(values), 3), "max": max(values)}
    summary["ledgers_repeated_or_skipped"] = repeats
    summary["ledgers_short_of_transactions"] = short
    print(json.dumps(summary), flush=True)
    return 1 if repeats or short else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--lease", type=float, default=3.0, help="[cluster] lease_seconds")
    parser.add_argument("--ledger-interval", type=float, default=1.0, help="upstream's (s)")
    parser.add_argument("--tx-per-ledger", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
        redis_url = stack.enter_context(redis_server())
        logs = Path(directory)
        upstream = Process(["--ledger-interval", str(args.ledger_interval), "--tx-per-ledger",
                            str(args.tx_per_ledger)], logs / "upstream.log")  # fmt: skip
        upstream.start()
        stack.callback(upstream.stop)
        config = logs / "node.toml"
        config.write_text(f"[cluster]\nlease_seconds = {args.lease}\n")
        node_args = ["--config", str(config), "--broker", redis_url,
                     "--source", f"upstream:{upstream.url}", "--log-level", "warning"]  # fmt: skip
        nodes = [Process(node_args, logs / f"node{i}.log") for i in range(3)]
        for node in nodes:
            node.start()
            stack.callback(node.stop)
        return trio.run(run, args, redis_url, nodes)


if __name__ == "__main__":
    sys.exit(main())
