"""Honest clients under a flood of silent sockets from one address.

Starts a hub in its own process with a small open-file limit (soft and hard, so it
cannot raise it), has a flooder process hold ``--flood`` sockets from 127.0.0.2 that
never send a byte (``--reopen``: each opened again as soon as the hub drops it), then
times WebSocket handshakes (with a ping) and ``GET /health`` from 127.0.0.3, one after
another, each given ``--timeout`` seconds.

    python -m benchmarks.silent_flood --flood 1100 --open-files 1024 --reopen

``--hub-path DIR`` runs the ``hub`` package found in DIR instead (another checkout).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

HONEST_SOURCE = "127.0.0.3"
FLOOD_SOURCE = "127.0.0.2"
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
PING = b'{"command":"ping"}'
HEALTH = b"GET /health HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n"


def _limit(files: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))


async def _upgrade_and_ping(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=HONEST_SOURCE)
    try:
        await stream.send_all(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101 "):
            raise ConnectionError(head.split(b"\r\n")[0].decode())
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(PING))
        await stream.send_all(bytes([0x81, 0x80 | len(PING)]) + mask + payload)
        reply = head.partition(b"\r\n\r\n")[2]
        while b"success" not in reply:
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise ConnectionError("closed before the ping's reply")
            reply += chunk
    finally:
        await trio.aclose_forcefully(stream)


async def _health(port: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=HONEST_SOURCE)
    try:
        await stream.send_all(HEALTH)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        if not data.startswith(b"HTTP/1.1 200 "):
            raise ConnectionError(data.split(b"\r\n")[0].decode() or "closed")
    finally:
        await trio.aclose_forcefully(stream)


async def _hold(port: int, reopen: bool, opened: Callable[[], None]) -> None:
    """One silent socket, opened again when the hub drops it if ``reopen``; calls
    ``opened`` once the first is open."""
    while True:
        stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=FLOOD_SOURCE)
        opened()
        opened = _nothing
        try:
            if not reopen:
                await trio.sleep_forever()
            while await stream.receive_some(4096):
                pass
        except trio.BrokenResourceError:
            pass
        finally:
            await trio.aclose_forcefully(stream)


def _nothing() -> None:
    pass


async def flooder(port: int, count: int, reopen: bool) -> None:
    """The flooding process: print ``ready`` once every socket was opened, run until
    SIGTERM."""
    left = count
    ready = trio.Event()

    def opened() -> None:
        nonlocal left
        left -= 1
        if not left:
            ready.set()

    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(_hold, port, reopen, opened)
            await ready.wait()
            print("ready", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()


async def _timed(kind: str, port: int, within: float) -> tuple[str, str, float]:
    start = time.monotonic()
    outcome = "ok"
    with trio.move_on_after(within) as scope:
        try:
            await (_upgrade_and_ping(port) if kind == "ws" else _health(port))
        except (OSError, ConnectionError) as exc:
            outcome = f"failed: {exc}"
    if scope.cancelled_caught:
        outcome = "timed out"
    return kind, outcome, time.monotonic() - start


async def run(args: argparse.Namespace, config: Path) -> None:
    env = dict(os.environ)
    if args.hub_path:
        env["PYTHONPATH"] = args.hub_path
    command = [sys.executable, "-m", "hub", "serve", "--port", "0", "--source", "none"]
    hub = await trio.lowlevel.open_process(
        [*command, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=config.parent,  # not this checkout's directory, which would shadow --hub-path
        preexec_fn=partial(_limit, args.open_files),
    )
    assert hub.stdout is not None
    assert hub.stderr is not None
    line = b""
    while b"\n" not in line:
        line += await hub.stdout.receive_some(1024)
    found = re.search(rb":(\d+)\n", line)
    assert found, line
    port = int(found[1])
    log = bytearray()

    async def read_log() -> None:  # as it comes: a full pipe would stall the hub
        assert hub.stderr is not None
        async for chunk in hub.stderr:
            log.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_log)
        results = await _flooded(args, port)
        hub.terminate()
    await hub.wait()
    _report(args, results, log.decode(errors="replace"))


async def _flooded(args: argparse.Namespace, port: int) -> list[tuple[str, str, float]]:
    """The honest requests' outcomes while the flooder process runs."""
    flood = [sys.executable, "-m", "benchmarks.silent_flood", "--flooder", str(port)]
    flood += ["--flood", str(args.flood), *(["--reopen"] if args.reopen else [])]
    flooding = await trio.lowlevel.open_process(flood, stdout=subprocess.PIPE)
    assert flooding.stdout is not None
    await flooding.stdout.receive_some(16)  # "ready"
    results = [await _timed(("ws", "health")[i % 2], port, args.timeout) for i in range(9)]
    flooding.send_signal(signal.SIGTERM)
    await flooding.wait()
    return results


def _report(args: argparse.Namespace, results: list[tuple[str, str, float]], log: str) -> None:
    mode = "reopened when dropped" if args.reopen else "held"
    print(f"{args.flood} silent sockets {mode}; hub open-file limit {args.open_files}")
    for kind, outcome, took in results:
        print(f"  {kind:6s} {took * 1000:9.1f} ms  {outcome}")
    done = [took for _, outcome, took in results if outcome == "ok"]
    if done:
        median, slowest = statistics.median(done) * 1000, max(done) * 1000
        print(f"  {len(done)}/9 completed; median {median:.1f} ms, max {slowest:.1f} ms")
    else:
        print("  0/9 completed")
    lines = log.splitlines()
    timed_out = sum("timed out" in line for line in lines)
    print(f"  hub log: {len(lines)} lines, {timed_out} of them 'timed out'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood", type=int, default=1100, help="silent sockets (1100)")
    parser.add_argument("--open-files", type=int, default=1024, help="the hub's limit (1024)")
    parser.add_argument("--reopen", action="store_true", help="reopen each dropped socket")
    parser.add_argument("--timeout", type=float, default=15.0, help="per honest request (15 s)")
    parser.add_argument("--handshake-timeout", type=float, default=10.0, help="the hub's (10 s)")
    parser.add_argument("--hub-path", help="run the hub package found in this directory")
    parser.add_argument("--flooder", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flooder is not None:
        trio.run(flooder, args.flooder, args.flood, args.reopen)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "hub.toml"
        config.write_text(
            f"[server]\nhandshake_timeout = {args.handshake_timeout}\n[admin]\nips = []\n"
            "[health]\nmax_ledger_age = 86400\n"  # no source: /health stays 200
        )
        trio.run(run, args, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
