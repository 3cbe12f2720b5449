"""The load generator: subscriber worker processes and the publisher process.

These run in processes of their own, pinned away from the server under test, so that
the server's CPU is the server's alone. They must never be what limits a figure, so
per byte they do C-speed work only, and per frame nothing at all except in one
connection per group:

* Subscribers that must get the same stream (one process's subscribers of one API
  version, in the broadcast scenarios) form a **group**. Its **reference** subscriber
  parses every frame (:class:`~benchmarks.wire.FrameParser`) and checks every message:
  sequence numbers contiguous from 1, the rendering of its API version, and it keeps
  each message's end offset in the stream and its publish time. The **raw readers**,
  all the others, only add each read to a byte count and a 64-bit XXH3 digest
  (``xxhash.xxh3_64``, ~20x ``zlib.crc32``'s speed here, so checking a 121 MB ledger
  costs milliseconds, not the 40 ms that put CRC32 on a burst's critical path) and
  note ``(offset, time)`` once per read. At the end a raw reader whose count and digest
  equal its reference's got the very same bytes, so every message, once, in order.
* Arrival times come from byte offsets: a message arrived at the time of the first read
  whose end offset reached the message's end (numpy's ``searchsorted``, after the run).
* Reads land in one buffer per process (``asyncio.BufferedProtocol``; uvloop when it is
  installed); no per-connection buffers, so 19 000 idle connections cost little here.
* With ``compression`` every connection offers permessage-deflate: the reference
  inflates each compressed frame (:class:`~benchmarks.wire.FrameParser`) and checks the
  message inside; raw readers still compare wire byte counts and digests with it, which
  holds because the hub sends the very same compressed bytes to every subscriber of a
  rendering. Byte offsets, and the wire bytes reported, are compressed bytes.
* Ping connections send pre-built masked frames (:class:`~benchmarks.wire.PingRing`)
  and count replies with ``bytes.count``, one send per read.

Each worker talks to the runner over a ``multiprocessing`` pipe (commands in, results
out) and publishes an estimate of its delivered-message count in a shared array (the
runner's progress, the publisher's flow-control window); the final counts are exact.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import socket
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection as Pipe
from typing import Any, Final, cast
from urllib.parse import urlsplit

import msgspec
import numpy as np
import xxhash
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from . import wire
from .messages import (
    BENCH_KEY,
    SEQ_DIGITS,
    TIME_DIGITS,
    Messages,
    ledger_sizes,
    owners,
    publish_request,
    subscriber_accounts,
)

HIST_SHIFT: Final = 12
"""Latency histogram bucket width: 2**12 ns (4.096 µs)."""
HIST_CAP: Final = 1 << 18
"""Buckets in the histogram (about 1.07 s); slower samples are kept whole."""
LEDGER_SHIFT: Final = 16
"""Per-ledger histogram bucket width: 2**16 ns (65.5 µs)."""
MAX_LEDGERS: Final = 64
"""Per-ledger histograms are kept for runs with at most this many publish stamps."""

_time_ns = time.time_ns
_TEXT = WSMsgType.TEXT
_SEQ = len(BENCH_KEY)
_SEQ_END = _SEQ + SEQ_DIGITS
_T = _SEQ_END + 1
_T_END = _T + TIME_DIGITS
_IP_BIND_ADDRESS_NO_PORT: Final = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
_RESPONSE: Final = b'"type":"response"'
_SUCCESS: Final = b'"status":"success"'
_CLOSE_FRAME: Final = wire.client_frame(b"\x03\xe8", opcode=wire.CLOSE)


class _Reply(msgspec.Struct):
    id: Any = None
    status: str = ""
    type: str = ""
    error: str = ""


_reply = msgspec.json.Decoder(_Reply).decode


def prepare_process(cpus: Iterable[int] | None) -> None:
    """Raise the fd limit to the hard limit, pin to ``cpus`` and switch off the cyclic GC."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    gc.disable()


def run_loop(main: Any) -> None:
    """``asyncio.run`` on uvloop when it is installed (less work per read)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _recv(pipe: Pipe) -> Any:
    """The next object from the runner without blocking the event loop."""
    loop = asyncio.get_running_loop()
    fd = pipe.fileno()
    while not pipe.poll():
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _resolve, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
            # uvloop leaves a watched fd non-blocking; a large answer needs it blocking.
            os.set_blocking(fd, True)
    return pipe.recv()


def arrival_latencies(
    read_ends: array[int], read_times: array[int], ends: np.ndarray, sent: np.ndarray
) -> np.ndarray:
    """Each message's publish→receive latency (ns), from where the reads ended.

    Message ``i`` ends at stream offset ``ends[i]`` and was stamped ``sent[i]``; the
    read that brought its last byte is the first whose end offset reaches it. Every
    message must end within the reads.
    """
    if not len(ends):
        return np.zeros(0, np.int64)
    offsets = np.frombuffer(read_ends, dtype=np.int64)
    times = np.frombuffer(read_times, dtype=np.int64)
    if not len(offsets) or offsets[-1] < ends[-1]:
        raise ValueError("a message ends past the last read")
    latencies: np.ndarray = times[np.searchsorted(offsets, ends, "left")] - sent
    return latencies


def by_ledger(latencies: np.ndarray, sent: np.ndarray) -> dict[int, dict[int, int]]:
    """One coarse histogram (2**LEDGER_SHIFT ns buckets) per publish stamp.

    In the burst scenarios a ledger's messages share the stamp the publisher gave its
    batch, so this is one histogram per ledger: a run's p99 is then seen to be set by
    its slowest ledgers or by all of them. Empty when there are more than
    :data:`MAX_LEDGERS` stamps (the throughput scenarios stamp every message).
    """
    stamps, which = np.unique(sent, return_inverse=True)
    if len(stamps) > MAX_LEDGERS:
        return {}
    buckets = np.maximum(latencies, 0) >> LEDGER_SHIFT
    out = {}
    for i, stamp in enumerate(stamps):
        counts = np.bincount(buckets[which == i])
        out[int(stamp)] = {int(b): int(counts[b]) for b in np.flatnonzero(counts)}
    return out


def after_warmup(latencies: np.ndarray, sent: np.ndarray, warmup: int) -> np.ndarray:
    """The latencies of the messages past the first ``warmup`` publish stamps (ledgers)."""
    if not warmup:
        return latencies
    stamps = np.unique(sent)
    if len(stamps) <= warmup:
        return latencies[:0]
    kept: np.ndarray = latencies[sent >= stamps[warmup]]
    return kept


def histogram(latencies: np.ndarray) -> tuple[dict[int, int], list[int]]:
    """Latencies (ns) as ``{bucket: count}`` of 2**HIST_SHIFT ns, and the slow ones whole."""
    buckets = latencies >> HIST_SHIFT
    fast = (buckets >= 0) & (buckets < HIST_CAP)
    counts = np.bincount(buckets[fast]) if fast.any() else np.zeros(0, np.int64)
    hist = {int(b): int(counts[b]) for b in np.flatnonzero(counts)}
    return hist, [int(x) for x in latencies[~fast]]


class Check:
    """A reference subscriber's verdict on its messages, and where each one ended."""

    def __init__(self, api_version: int, rendering: bool) -> None:
        self.api_version = api_version
        self.rendering_checked = not rendering
        self.ends = array("q")
        self.sent = array("q")
        self.next = 1
        self.last = 0
        self.back = 0
        self.gaps = 0
        self.wrong = 0
        self.close_code: int | None = None
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        if len(self.notes) < 5:
            self.notes.append(text)

    def frame(self, opcode: int, payload: bytes, end: int) -> int | None:
        """Check one frame; its sequence number when it is a benchmark message."""
        if opcode != wire.TEXT:
            if opcode == wire.CLOSE and len(payload) >= 2:
                self.close_code = int.from_bytes(payload[:2], "big")
            self.wrong += opcode == wire.CLOSE
            self.note(f"frame with opcode {opcode}: {payload[:100]!r}")
            return None
        i = payload.find(BENCH_KEY, 0, 64)
        if i < 0:
            self.wrong += 1
            self.note(f"unexpected frame: {payload[:200]!r}")
            return None
        seq = int(payload[i + _SEQ : i + _SEQ_END])
        self.ends.append(end)
        self.sent.append(int(payload[i + _T : i + _T_END]))
        if not self.rendering_checked and b'"type":"transaction"' in payload:
            self.rendering_checked = True
            marker = b'"tx_json":' if self.api_version >= 2 else b'"transaction":'
            if marker not in payload:
                self.wrong += 1
                self.note(f"v{self.api_version} subscriber got {payload[:120]!r}")
        return seq

    def contiguous(self, seq: int) -> None:
        """Broadcast: every message, from 1, in order."""
        if seq == self.next:
            self.next = seq + 1
        elif seq > self.next:
            self.gaps += seq - self.next
            self.next = seq + 1
        else:
            self.back += 1

    def increasing(self, seq: int, index: int, subscribers: int) -> None:
        """Filters: only the transactions of this subscriber's accounts, in order."""
        if seq > self.last:
            self.last = seq
        else:
            self.back += 1
        if index not in owners(seq, subscribers):
            self.wrong += 1


HANDSHAKE, OPEN, SUBSCRIBING, STREAM, PINGING, DONE = range(6)
SMALL_READ: Final = 16384
"""In the throughput scenarios a raw reader whose read was smaller than this pauses
(``read_pause`` s, see :class:`~benchmarks.scenarios.Scenario`), so that a server
writing one frame per ``send`` does not cost a read per frame here: the next read
brings what arrived meanwhile, timed up to the pause late (pessimistic). References
never pause; the latency scenarios never do: they coalesce wake-ups instead
(:meth:`Worker.nap_soon`)."""


class Group:
    """Subscribers of one process that must all get the very same bytes."""

    __slots__ = ("check", "members", "nbytes", "reference")

    def __init__(self, reference: SubConn, check: Check) -> None:
        self.reference = reference
        self.check = check
        self.members: list[SubConn] = []
        self.nbytes = 0

    def delivered(self) -> int:
        """Messages the members have read, estimated from their mean offset."""
        n = len(self.members)
        return n * bisect_right(self.check.ends, self.nbytes // n) if n else 0


class SubConn(asyncio.BufferedProtocol):
    """One connection: handshake and subscribe parsed, then the stream read raw."""

    def __init__(self, worker: Worker, index: int, api_version: int, request: bytes) -> None:
        self.worker = worker
        self.view = worker.view
        self.index = index
        self.api_version = api_version
        self.key = wire.new_key()
        self.request = request.replace(b"@KEY@", self.key)
        self.transport: asyncio.Transport | None = None
        self.state = HANDSHAKE
        self.opened: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.head = bytearray()
        self.pre = bytearray()
        self.parser = wire.FrameParser(worker.compression)
        self.group: Group | None = None
        self.check: Check | None = None
        self.digest = xxhash.xxh3_64()
        self.nbytes = 0
        self.read_ends = array("q")
        self.read_times = array("q")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(f"connection lost during the handshake: {exc!r}")
        if self.state != DONE and not self.worker.finishing:
            self.worker.dropped += 1
        self.state = DONE

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if self.state == STREAM:
            now = _time_ns()
            data = self.view[:nbytes]
            self.digest.update(data)
            self.nbytes += nbytes
            self.read_ends.append(self.nbytes)
            self.read_times.append(now)
            assert self.group is not None
            self.group.nbytes += nbytes
            worker = self.worker
            if worker.coalesce and not worker.napping:
                worker.nap_soon()
            if self.check is not None:
                self.parse(data)
            elif nbytes < SMALL_READ and worker.read_pause:
                worker.pause(self)
        else:
            self.setup(bytes(self.view[:nbytes]))

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(wire.client_frame(payload))

    def close(self) -> None:
        if self.transport is not None and self.state != DONE:
            self.state = DONE
            self.transport.write(_CLOSE_FRAME)
            self.transport.close()

    def setup(self, data: bytes) -> None:
        """Bytes before the stream: the upgrade response, then the subscribe reply."""
        if self.state == HANDSHAKE:
            self.head += data
            parts = wire.split_head(bytes(self.head))
            if parts is None:
                return
            head, data = parts
            problem = wire.handshake_problem(head, self.key, self.worker.compression)
            self.state = OPEN
            self.opened.set_result(problem)
            if problem:
                self.close()
                return
        if self.state in (OPEN, SUBSCRIBING) and data:
            self.pre += data
            try:
                frames = self.parser.feed(data)
            except wire.FrameError as exc:
                self.worker.note(f"bad frame before the stream: {exc}")
                self.close()
                return
            if frames:
                opcode, payload, end = frames[0]
                self.subscribed(opcode, payload, bytes(self.pre[end:]))

    def subscribed(self, opcode: int, payload: bytes, rest: bytes) -> None:
        """The first frame after ``subscribe`` is its reply; the stream starts after it."""
        reply = _reply(payload) if opcode == wire.TEXT else _Reply()
        if self.state != SUBSCRIBING or reply.type != "response" or reply.status != "success":
            self.worker.note(f"not a subscribe reply: {payload[:200]!r}")
            self.close()
            return
        self.state = STREAM
        self.parser = wire.FrameParser(self.worker.compression)
        self.pre = bytearray()
        self.worker.on_subscribed()
        if rest:
            self.view[: len(rest)] = rest
            self.buffer_updated(len(rest))

    def parse(self, data: memoryview) -> None:
        """The reference's work: every frame checked."""
        check = self.check
        assert check is not None
        try:
            frames = self.parser.feed(data)
        except wire.FrameError as exc:
            check.wrong += 1
            check.note(f"bad frame: {exc}")
            self.check = None
            return
        order = self.worker.order
        for opcode, payload, end in frames:
            seq = check.frame(opcode, payload, end)
            if seq is not None:
                order(check, seq, self.index)


class PingConn(SubConn):
    """Keeps ``inflight`` pings outstanding: each reply read sends one more."""

    def __init__(self, worker: Worker, index: int, api_version: int, request: bytes) -> None:
        super().__init__(worker, index, api_version, request)
        self.ring = wire.PingRing(1024)
        self.running = False
        self.sent = 0
        self.replies = 0
        self.successes = 0
        self._tail_r = b""
        self._tail_s = b""

    def buffer_updated(self, nbytes: int) -> None:
        if self.state != PINGING:
            self.setup(bytes(self.view[:nbytes]))
            return
        data = bytes(self.view[:nbytes])
        replies, self._tail_r = wire.count_marker(self._tail_r, data, _RESPONSE)
        ok, self._tail_s = wire.count_marker(self._tail_s, data, _SUCCESS)
        self.replies += replies
        self.successes += ok
        if self.running and replies:
            self.ping(replies)

    def ping(self, count: int) -> None:
        assert self.transport is not None
        self.transport.write(self.ring.take(count))
        self.sent += count


class Worker:
    """A process's share of the connections, driven by the runner's commands."""

    def __init__(
        self, slot: int, counters: Any, connected: Any, read_bytes: Any, pipe: Pipe
    ) -> None:
        self.slot = slot
        self.counters = counters
        self.connected = connected
        self.read_bytes = read_bytes
        self.pipe = pipe
        self.view = memoryview(bytearray(1 << 18))
        self.conns: list[SubConn] = []
        self.groups: list[Group] = []
        self.paused: list[SubConn] = []
        self.read_pause = 0.0
        self.coalesce = 0.0
        self.napping = False
        self.compression = False
        self.mode = "broadcast"
        self.subscribers = 1
        self.finishing = False
        self.dropped = 0
        self.notes: list[str] = []
        self._subscribed = 0
        self._all_subscribed = asyncio.Event()

    def note(self, text: str) -> None:
        if len(self.notes) < 10:
            self.notes.append(text)

    def pause(self, conn: SubConn) -> None:
        """Stop reading ``conn`` until the next resume, at most ``read_pause`` s away."""
        assert conn.transport is not None
        conn.transport.pause_reading()
        self.paused.append(conn)
        if len(self.paused) == 1:
            asyncio.get_running_loop().call_later(self.read_pause, self._resume)

    def nap_soon(self) -> None:
        """Sleep ``coalesce`` s once this pass of the event loop has read what was ready.

        In the latency scenarios a process that read stream bytes sleeps before it polls
        again, instead of waiting in ``epoll_wait``. On loopback the receiver's wake-up
        is the sender's work: with every process asleep there, each socket the server
        wrote woke one with a cross-core interrupt, about 480 a ledger, which in this VM
        cost the server's core a sixth of its ``sendfile`` time (``sock_def_readable``
        in a profile). Asleep in ``nanosleep`` a process is not woken; it reads all that
        arrived when it wakes, each read timed up to ``coalesce`` late (pessimistic),
        as with a network card's interrupt coalescing.
        """
        self.napping = True
        asyncio.get_running_loop().call_soon(self._nap)

    def _nap(self) -> None:
        time.sleep(self.coalesce)
        self.napping = False

    def _resume(self) -> None:
        paused, self.paused = self.paused, []
        for conn in paused:
            if conn.state == STREAM and conn.transport is not None:
                conn.transport.resume_reading()

    def on_subscribed(self) -> None:
        self._subscribed += 1
        if self._subscribed == len(self.conns):
            self._all_subscribed.set()

    def order(self, check: Check, seq: int, index: int) -> None:
        if self.mode == "filters":
            check.increasing(seq, index, self.subscribers)
        else:
            check.contiguous(seq)

    async def serve(self) -> None:
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                command, args = await _recv(self.pipe)
                if command == "exit":
                    return
                handler: Callable[..., Any] = getattr(self, f"_cmd_{command}")
                self.pipe.send(await handler(**args))
        finally:
            ticker.cancel()

    def delivered(self) -> int:
        if self.mode == "requests":
            return sum(c.replies for c in self.conns if isinstance(c, PingConn))
        return sum(g.delivered() for g in self.groups)

    async def _tick(self) -> None:
        """Publish this worker's delivered count for the runner and the publisher."""
        while True:
            self.counters[self.slot] = self.delivered()
            self.read_bytes[self.slot] = sum(g.nbytes for g in self.groups)
            await asyncio.sleep(0.004 if len(self.groups) <= 64 else 0.02)

    async def _open(
        self, kind: type[SubConn], index: int, version: int, request: bytes, target: Any
    ) -> SubConn | str:
        """One connection from ``target``'s source address, upgraded; or why it failed."""
        source, host, port = target
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, port))
            _, conn = await loop.create_connection(
                lambda: kind(self, index, version, request), sock=sock
            )
        except OSError as exc:
            sock.close()
            return f"connect failed: {exc!r}"
        problem = await asyncio.wait_for(conn.opened, 60)
        if problem:
            conn.close()
            return problem
        return conn

    async def _cmd_connect(
        self,
        url: str,
        conns: Sequence[tuple[int, int]],
        mode: str,
        subscribers: int,
        check_rendering: bool,
        concurrency: int,
        sources: Sequence[str],
        read_pause: float,
        coalesce: float = 0.0,
        compression: bool = False,
    ) -> dict[str, Any]:
        self.mode = mode
        self.compression = compression
        self.read_pause = read_pause
        self.coalesce = coalesce
        self.subscribers = subscribers
        self.finishing = False
        self.dropped = 0
        self.notes = []
        self._subscribed = 0
        self._all_subscribed = asyncio.Event()
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        request = wire.handshake_request(host, port, parts.path or "/", b"@KEY@", compression)
        kind = PingConn if mode == "requests" else SubConn
        gate = asyncio.Semaphore(concurrency)
        opened: list[SubConn] = []
        failures = 0

        async def one(i: int, index: int, version: int) -> None:
            nonlocal failures
            async with gate:
                target = (sources[i % len(sources)], host, port)
                result = await self._open(kind, index, version, request, target)
            if isinstance(result, str):
                failures += 1
                self.note(result)
            else:
                opened.append(result)
                self.connected[self.slot] = len(opened)

        started = time.time()
        await asyncio.gather(*(one(i, x, v) for i, (x, v) in enumerate(conns)))
        done = time.time()
        self.conns = sorted(opened, key=lambda c: c.index)
        self.form_groups(check_rendering)
        return {"started": started, "done": done, "opened": len(opened), "failed": failures}

    def form_groups(self, rendering: bool) -> None:
        """Broadcast: one group per API version; filters: each connection its own."""
        self.groups = []
        if self.mode == "requests":
            return
        by_key: dict[int, Group] = {}
        for conn in self.conns:
            key = conn.index if self.mode == "filters" else conn.api_version
            group = by_key.get(key)
            if group is None:
                check = Check(conn.api_version, rendering)
                group = by_key[key] = Group(conn, check)
                conn.check = check
                self.groups.append(group)
            group.members.append(conn)
            conn.group = group

    async def _cmd_subscribe(
        self, streams: list[str], accounts: bool, wait_s: float
    ) -> dict[str, Any]:
        if not self.conns:
            return {"subscribed": 0}
        for conn in self.conns:
            request: dict[str, Any] = {"id": 0, "command": "subscribe", "streams": streams}
            if accounts:
                request["accounts"] = list(subscriber_accounts(conn.index))
            request["api_version"] = conn.api_version
            conn.state = SUBSCRIBING
            conn.send(msgspec.json.encode(request))
        try:
            await asyncio.wait_for(self._all_subscribed.wait(), wait_s)
        except TimeoutError:
            self.note(f"only {self._subscribed}/{len(self.conns)} subscribe replies")
        return {"subscribed": self._subscribed}

    def _pingers(self) -> list[PingConn]:
        return [c for c in self.conns if isinstance(c, PingConn)]

    async def _cmd_pings(self, inflight: int) -> str:
        for conn in self._pingers():
            conn.state = PINGING
            conn.running = True
            conn.ping(inflight)
        return "pinging"

    async def _cmd_stop_pings(self, wait_s: float) -> str:
        conns = self._pingers()
        for conn in conns:
            conn.running = False
        deadline = time.monotonic() + wait_s
        # Polled: replies arrive in protocol callbacks; 10 ms is nothing next to the run.
        while any(c.replies < c.sent for c in conns) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return "drained"

    def _expected(self, published: int) -> Callable[[int], int]:
        """How many messages subscriber ``index`` should get of ``published``."""
        if self.mode != "filters":
            return lambda index: published
        mine = {c.index for c in self.conns}
        counts = dict.fromkeys(mine, 0)
        for seq in range(1, published + 1):
            a, b = owners(seq, self.subscribers)
            if a in mine:
                counts[a] += 1
            if b in mine and b != a:
                counts[b] += 1
        return counts.__getitem__

    @staticmethod
    def tally(
        group: Group,
        expected: Callable[[int], int],
        totals: dict[str, int],
        latencies: list[np.ndarray],
        stamps: list[np.ndarray],
    ) -> None:
        """Each member against the reference: the same bytes, or how far it fell short."""
        check, ref = group.check, group.reference
        ends = np.array(check.ends, dtype=np.int64)
        sent = np.array(check.sent, dtype=np.int64)
        digest = ref.digest.intdigest()
        for conn in group.members:
            same = conn is ref or (conn.nbytes == ref.nbytes and conn.digest.intdigest() == digest)
            got = bisect_right(check.ends, conn.nbytes)
            want = expected(conn.index)
            totals["received"] += got
            totals["expected"] += want
            totals["wire_bytes"] += conn.nbytes
            totals["references"] += conn is ref
            if same:
                totals["lost"] += max(0, want - (got - check.back))
                totals["out_of_order"] += check.back
                totals["gaps"] += check.gaps
                totals["wrong"] += check.wrong
                totals["closed"] += check.close_code is not None
                totals["verified"] += conn is not ref
            else:
                totals["diverged"] += 1
                totals["lost"] += max(0, want - got)
            if got:
                latencies.append(
                    arrival_latencies(conn.read_ends, conn.read_times, ends[:got], sent[:got])
                )
                stamps.append(sent[:got])

    async def _cmd_finish(self, published: int, warmup: int = 0) -> dict[str, Any]:
        """Count what each connection got against what it should have got; then close.
        The first ``warmup`` ledgers count in every check and in ``ledgers``, not in
        ``hist``/``slow``."""
        self.finishing = True
        self.counters[self.slot] = self.delivered()
        totals = dict.fromkeys(TOTALS, 0)
        latencies: list[np.ndarray] = []
        stamps: list[np.ndarray] = []
        if self.mode == "requests":
            for c in self._pingers():
                totals["received"] += c.replies
                totals["expected"] += c.sent
                totals["lost"] += max(0, c.sent - c.replies)
                totals["wrong"] += c.replies - c.successes
        else:
            expected = self._expected(published)
            for group in self.groups:
                self.tally(group, expected, totals, latencies, stamps)
        for group in self.groups:
            self.notes.extend(group.check.notes[: 10 - len(self.notes)])
        last_rx = max((c.read_times[-1] for c in self.conns if c.read_times), default=0)
        for conn in self.conns:
            conn.close()
        await asyncio.sleep(0)
        totals["dropped"] = self.dropped
        hist, slow, ledgers = ({}, [], {})
        if latencies:
            every, sent = np.concatenate(latencies), np.concatenate(stamps)
            hist, slow = histogram(after_warmup(every, sent, warmup))
            ledgers = by_ledger(every, sent)
        self.conns, self.groups = [], []
        self.connected[self.slot] = 0
        return {
            **totals,
            "hist": hist,
            "slow": slow,
            "ledgers": ledgers,
            "last_rx": last_rx,
            "notes": self.notes,
        }


TOTALS: Final = (
    "received",
    "expected",
    "lost",
    "out_of_order",
    "gaps",
    "wrong",
    "closed",
    "diverged",
    "verified",
    "references",
    "wire_bytes",
)


def worker_main(
    slot: int, cpus: list[int] | None, counters: Any, connected: Any, read_bytes: Any, pipe: Pipe
) -> None:
    """Entry point of a subscriber worker process."""
    prepare_process(cpus)
    run_loop(Worker(slot, counters, connected, read_bytes, pipe).serve())


class _PublisherConn(WSListener):
    """The publisher's admin connection: counts replies, keeps the first error."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self.replies = 0
        self.errors = 0
        self.first_error = ""
        self.closed = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != _TEXT:
            return
        data = frame.get_payload_as_bytes()
        reply = _reply(data)
        self.replies += 1
        if reply.status != "success":
            self.errors += 1
            self.first_error = self.first_error or data[:300].decode(errors="replace")


class Publisher:
    """Injects the scenario's messages through the admin ``publish`` method."""

    def __init__(self, counters: Any, pipe: Pipe) -> None:
        self.counters = counters
        self.pipe = pipe

    async def serve(self) -> None:
        while True:
            command, args = await _recv(self.pipe)
            if command == "exit":
                return
            self.pipe.send(await self.run(**args))

    async def run(self, url: str, mode: str, **params: Any) -> dict[str, Any]:
        _, conn = await ws_connect(_PublisherConn, url, max_frame_size=1 << 26)
        assert isinstance(conn, _PublisherConn)
        started = time.time()
        if mode == "burst":
            out = await self._burst(conn, **params)
        elif mode == "flood":
            out = await self._flood(conn, **params)
        else:
            out = await self._ledgers(conn, **params)
        finished = time.time()
        deadline = time.monotonic() + 30
        while conn.replies < out["requests"] and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        assert conn.transport is not None
        conn.transport.disconnect()
        return {
            **out,
            "started": started,
            "finished": finished,
            "replies": conn.replies,
            "errors": conn.errors,
            "first_error": conn.first_error,
        }

    async def _burst(
        self,
        conn: _PublisherConn,
        subscribers: int,
        ledgers: int,
        interval: float,
        tx_per_ledger: int | list[int],
    ) -> dict[str, Any]:
        """A ledger close every ``interval``: ledgerClosed plus its transactions, one
        batch; ``tx_per_ledger`` is a count or a ``[low, high]`` range (see
        :func:`benchmarks.messages.ledger_sizes`)."""
        assert conn.transport is not None
        build = Messages(0)
        seq = 0
        start = time.monotonic() + 0.05
        for n, size in enumerate(ledger_sizes(tx_per_ledger, ledgers)):
            await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
            index = 1000 + n
            now = _time_ns()
            batch = [build.ledger_closed(seq + 1, now, index, size)]
            batch += [build.transaction(seq + 2 + i, now, index) for i in range(size)]
            seq += len(batch)
            conn.transport.send(_TEXT, publish_request(n + 1, batch))
        return {"published": seq, "requests": ledgers, "expected": seq * subscribers}

    async def _flood(
        self,
        conn: _PublisherConn,
        subscribers: int,
        duration: float,
        size: int,
        batch: int,
        window: int,
        rate: float,
        routed: bool,
        count: int = 0,
        max_requests: int = 8,
    ) -> dict[str, Any]:
        """As fast as the window allows (or at ``rate`` messages/s) for ``duration``.

        ``window`` bounds the deliveries published but not yet received by the workers;
        ``count`` > 0 stops after that many messages (whole batches).
        """
        assert conn.transport is not None
        transport = conn.transport
        build = Messages(size, subscribers)
        make = build.routed_transaction if routed else build.transaction
        counters = self.counters
        seq = 0
        requests = 0
        expected = 0
        began = time.monotonic()
        end = began + duration
        while True:
            now = time.monotonic()
            if now >= end or (count and seq >= count):
                break
            if rate and seq >= rate * (now - began):
                await asyncio.sleep(min(0.001, end - now))
                continue
            if expected - sum(counters) > window or requests - conn.replies >= max_requests:
                # Not shorter: polling faster takes the core the subscribers read on.
                await asyncio.sleep(0.001)
                continue
            stamp = _time_ns()
            ledger = 1000 + seq // 1000
            messages = [make(seq + 1 + i, stamp, ledger) for i in range(batch)]
            if routed:
                for i in range(batch):
                    a, b = owners(seq + 1 + i, subscribers)
                    expected += 1 if a == b else 2
            else:
                expected += batch * subscribers
            seq += batch
            requests += 1
            transport.send(_TEXT, publish_request(requests, messages))
            await asyncio.sleep(0)
        return {"published": seq, "requests": requests, "expected": expected}

    async def _ledgers(
        self, conn: _PublisherConn, subscribers: int, ledgers: int, interval: float
    ) -> dict[str, Any]:
        """A few ledger closes, to prove that every idle connection is alive."""
        assert conn.transport is not None
        build = Messages(0)
        for n in range(ledgers):
            batch = [build.ledger_closed(n + 1, _time_ns(), 1000 + n)]
            conn.transport.send(_TEXT, publish_request(n + 1, batch))
            await asyncio.sleep(interval)
        return {"published": ledgers, "requests": ledgers, "expected": ledgers * subscribers}


def publisher_main(cpus: list[int] | None, counters: Any, pipe: Pipe) -> None:
    """Entry point of the publisher process."""
    prepare_process(cpus)
    run_loop(Publisher(counters, pipe).serve())
