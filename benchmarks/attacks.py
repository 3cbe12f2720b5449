"""One hostile client against a hub, and what an honest neighbour sees meanwhile.

Starts ``hub serve`` in its own process (no client is admin by address), connects a
neighbour from 127.0.0.2 that pings every 20 ms, and lets one attacker from 127.0.0.3
run one attack for a while over several connections, reconnecting whenever it is cut.
Reports the neighbour's ping round trips during the attack, what became of the attacker
(answers, load warnings, closes, refusals), the hub's CPU, and the bytes the hub logged.

    python -m benchmarks.attacks                       # every attack, 10 s each
    python -m benchmarks.attacks --attack accounts --seconds 20 --json out.json

Attacks:

- ``accounts``: ``subscribe`` with 25 000 valid accounts (about 1 MB), over the limit.
- ``accounts-within``: ``subscribe`` with 9 000 valid accounts (within the limit).
- ``unsubscribe``: ``unsubscribe`` with 25 000 valid accounts.
- ``deep``: a 2 kB ``subscribe`` whose ``streams`` nest 976 arrays deep.
- ``failing``: 1 MB requests that fail (the last of 25 000 accounts is malformed).
- ``crashing``: 900 kB ``subscribe`` requests whose ``streams`` hold a list (once a
  crash in the handler, logged whole).
- ``metrics``: ``GET /metrics`` in a loop on 8 keep-alive connections.
- ``tokens``: WebSocket handshakes with a wrong admin token.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import psutil
import trio
from trio_websocket import ConnectionClosed, HandshakeError, wrap_client_stream

from hub.xrpl.addresses import encode_account_id

NEIGHBOUR, ATTACKER = "127.0.0.2", "127.0.0.3"
PING_EVERY = 0.02


def accounts(n: int, salt: str = "") -> list[str]:
    return [
        encode_account_id(hashlib.sha256(f"{salt}{i}".encode()).digest()[:20]) for i in range(n)
    ]


class Tally:
    """What the attacker saw."""

    def __init__(self) -> None:
        self.sent = self.answered = self.warned = self.closes = self.refused = 0
        self.first_warning: float | None = None
        self.first_close: float | None = None
        self.codes: dict[str, int] = {}
        self.start = time.monotonic()

    def closed(self, code: object) -> None:
        self.closes += 1
        key = str(code)
        self.codes[key] = self.codes.get(key, 0) + 1
        if self.first_close is None:
            self.first_close = round(time.monotonic() - self.start, 2)

    def reply(self, reply: dict[str, Any]) -> None:
        self.answered += 1
        if reply.get("warning") == "load":
            self.warned += 1
            if self.first_warning is None:
                self.first_warning = round(time.monotonic() - self.start, 2)


async def ws_from(source: str, port: int, nursery: trio.Nursery, **kw: Any) -> Any:
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    return await wrap_client_stream(nursery, stream, "127.0.0.1", "/", **kw)


async def request_loop(port: int, tally: Tally, frame: str, **kw: Any) -> None:
    """Send ``frame`` and wait for its reply, again and again; reconnect when cut."""
    while True:
        try:
            async with trio.open_nursery() as nursery:
                ws = await ws_from(ATTACKER, port, nursery, **kw)
                while True:
                    tally.sent += 1
                    await ws.send_message(frame)
                    while True:
                        reply = json.loads(await ws.get_message())
                        if reply.get("type") == "response":
                            break
                    tally.reply(reply)
        except* ConnectionClosed as group:
            first = group.exceptions[0]
            assert isinstance(first, ConnectionClosed)
            tally.closed(first.reason.code if first.reason else None)
        except* (HandshakeError, OSError, trio.BrokenResourceError):
            tally.refused += 1
            await trio.sleep(0.05)


async def metrics_loop(port: int, tally: Tally) -> None:
    request = b"GET /metrics HTTP/1.1\r\nHost: hub\r\n\r\n"
    while True:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=ATTACKER)
        except OSError:
            tally.refused += 1
            await trio.sleep(0.05)
            continue
        async with stream:
            try:
                while True:
                    tally.sent += 1
                    await stream.send_all(request)
                    status = await _read_response(stream)
                    if status != 200:
                        tally.closed(status)
                        break
                    tally.answered += 1
            except (trio.BrokenResourceError, OSError, EOFError):
                tally.closed("reset")


async def _read_response(stream: trio.SocketStream) -> int:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )  # fmt: skip
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError
        body += chunk
    return status


def attacks() -> dict[str, Callable[[int, Tally], Awaitable[None]]]:
    many = accounts(25_000)
    within = accounts(9_000, "w")
    failing = [*many[:-1], "rNotAnAccountAtAllxxxxxxxxxxxxxx"]
    depth = 976
    frames = {
        "accounts": {"command": "subscribe", "accounts": many},
        "accounts-within": {"command": "subscribe", "accounts": within},
        "unsubscribe": {"command": "unsubscribe", "accounts": many},
        "failing": {"command": "subscribe", "accounts": failing},
    }
    out: dict[str, Callable[[int, Tally], Awaitable[None]]] = {}
    for name, body in frames.items():
        text = msgspec.json.encode(body).decode()
        out[name] = lambda port, tally, text=text: request_loop(port, tally, text)
    deep = '{"command":"subscribe","streams":' + "[" * depth + "]" * depth + ',"id":1}'
    crashing = msgspec.json.encode(
        {"command": "subscribe", "streams": [[]], "pad": "x" * 900_000}
    ).decode()
    out["crashing"] = lambda port, tally: request_loop(port, tally, crashing)
    out["deep"] = lambda port, tally: request_loop(port, tally, deep)
    out["metrics"] = metrics_loop
    wrong = [("Authorization", "Bearer not-the-token")]
    ping = '{"command":"ping"}'
    out["tokens"] = lambda port, tally: request_loop(port, tally, ping, extra_headers=wrong)
    return out


CONNECTIONS = {"metrics": 8, "tokens": 4}


async def neighbour(port: int, rtts: list[float], stop: trio.Event, lost: list[str]) -> None:
    """Ping every PING_EVERY seconds until ``stop``; a lost connection is noted in
    ``lost`` (the hub went down, or cut the neighbour: either is a finding)."""
    try:
        async with trio.open_nursery() as nursery:
            ws = await ws_from(NEIGHBOUR, port, nursery)
            while not stop.is_set():
                start = time.perf_counter()
                await ws.send_message('{"command":"ping"}')
                await ws.get_message()
                rtts.append((time.perf_counter() - start) * 1000)
                await trio.sleep(PING_EVERY)
            await ws.aclose()
    except* (ConnectionClosed, HandshakeError, OSError) as group:
        lost.append(repr(group.exceptions[0]))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def run_attack(name: str, port: int, seconds: float, proc: psutil.Process) -> dict[str, Any]:
    tally, rtts, stop, lost = Tally(), [], trio.Event(), []
    attack = attacks()[name]
    proc.cpu_percent()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(neighbour, port, rtts, stop, lost)
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as attackers:
                for _ in range(CONNECTIONS.get(name, 4)):
                    attackers.start_soon(attack, port, tally)
        stop.set()
    cpu = proc.cpu_percent()
    return {
        "attack": name,
        "seconds": seconds,
        "neighbour_ping_ms": {
            "count": len(rtts),
            "p50": round(statistics.median(rtts), 2) if rtts else None,
            "p99": round(percentile(rtts, 0.99), 2),
            "max": round(max(rtts, default=0), 2),
            "lost": lost[0] if lost else None,
        },
        "attacker": {k: v for k, v in vars(tally).items() if k != "start"},
        "hub_cpu_percent": cpu,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(hub_dir: Path, log: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hub", "serve", "--config", str(config),
               "--port", str(port), "--source", "none"]  # fmt: skip
    return subprocess.Popen(command, cwd=hub_dir, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the hub exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the hub did not listen")


def one(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    config, log, port = workdir / "hub.toml", workdir / f"{name}.log", free_port()
    config.write_text('[admin]\nips = []\ntoken = "the-token"\n')
    proc = serve(args.hub_dir, log, config, port)
    try:
        wait_listening(port, proc)
        result = trio.run(run_attack, name, port, args.seconds, psutil.Process(proc.pid))
        result["hub_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    size = log.stat().st_size
    sent = result["attacker"]["sent"] or 1
    result["log_bytes"] = size
    result["log_bytes_per_attack"] = round(size / sent, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.attacks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--attack", action="append", choices=sorted(attacks()), help="repeatable; default: all"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each attack")
    parser.add_argument("--hub-dir", type=Path, default=Path.cwd(),
                        help="checkout whose hub to run (default: this one)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.attack or sorted(attacks()):
            result = one(name, args, Path(tmp))
            results.append(result)
            ping = result["neighbour_ping_ms"]
            who = result["attacker"]
            print(
                f"{name:16} neighbour ping p50 {ping['p50']} p99 {ping['p99']} max {ping['max']} ms"
                f" | attacker sent {who['sent']} answered {who['answered']} warned"
                f" {who['warned']} closes {who['closes']} (first {who['first_close']} s)"
                f" refused {who['refused']} | hub cpu {result['hub_cpu_percent']:.0f}%"
                f" alive {result['hub_alive']} | log {result['log_bytes']} B"
                f" ({result['log_bytes_per_attack']} B each)",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
