"""The load generator: subscriber worker processes and the publisher process.

These run in processes of their own, pinned away from the server under test, so that
the server's CPU is the server's alone. They use picows (a Cython WebSocket client)
and do the least work that still checks every message:

* a stream message is never decoded; ``"bench":"seq-t"`` is found with one bytes
  search bounded to the first 64 bytes (it is the first key) and the two fixed-width
  integers are parsed from their slices;
* the receive time is read once per socket read (picows's ``last_in_buffer``), not
  once per frame, so a burst coalesced into one read is timed as it arrived rather
  than as the Python loop got to each frame;
* latencies go into a fixed histogram of 4.1 µs buckets (a list index per message),
  and only the rare ones over ~1 s are kept whole;
* the cyclic garbage collector is off: these processes allocate no cycles.

Each worker owns some connections, talks to the runner over a ``multiprocessing``
pipe (commands in, results out) and publishes its received-message count in a shared
array, which the runner shows as progress and the publisher uses as its flow-control
window (it never lets more than ``window`` deliveries be outstanding, so a subscriber
that keeps up never overflows the server's send queue).
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection as Pipe
from typing import Any, Final

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from .messages import (
    BENCH_KEY,
    SEQ_DIGITS,
    TIME_DIGITS,
    Messages,
    owners,
    publish_request,
    subscriber_accounts,
)

HIST_SHIFT: Final = 12
"""Latency histogram bucket width: 2**12 ns (4.096 µs)."""
HIST_CAP: Final = 1 << 18
"""Buckets in the histogram (about 1.07 s); slower samples are kept whole."""

_time_ns = time.time_ns
_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
_SEQ = len(BENCH_KEY)
_SEQ_END = _SEQ + SEQ_DIGITS
_T = _SEQ_END + 1
_T_END = _T + TIME_DIGITS


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
    return pipe.recv()


class Stats:
    """One worker's latency histogram and counters."""

    def __init__(self) -> None:
        self.hist = [0] * HIST_CAP
        self.slow: list[int] = []
        self.first_rx = 0
        self.last_rx = 0

    def export(self) -> dict[str, Any]:
        buckets = {i: n for i, n in enumerate(self.hist) if n}
        return {"hist": buckets, "slow": self.slow}


class _Conn(WSListener):
    """One subscriber connection; the subclasses differ only in how they check messages."""

    def __init__(self, worker: Worker, index: int, api_version: int) -> None:
        super().__init__()
        self.worker = worker
        self.stats = worker.stats
        self.hist = worker.stats.hist
        self.index = index
        self.api_version = api_version
        self.transport: WSTransport | None = None
        self.count = 0
        self.next = 1
        self.last = 0
        self.back = 0
        self.gaps = 0
        self.wrong = 0
        self.now = 0
        self.fresh = True
        self.rendering_checked = not worker.check_rendering
        self.subscribed = False
        self.close_code: int | None = None
        self.disconnected = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected = True
        if not self.worker.finishing:
            self.worker.dropped += 1

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.send(_TEXT, data)

    def _record(self, sent_ns: int) -> None:
        lat = self.now - sent_ns
        bucket = lat >> HIST_SHIFT
        if 0 <= bucket < HIST_CAP:
            self.hist[bucket] += 1
        else:
            self.stats.slow.append(lat)

    def other(self, frame: WSFrame, data: bytes) -> None:
        """A frame without a bench field: a reply, a close, or something wrong."""
        if frame.msg_type == _CLOSE:
            self.close_code = frame.get_close_code().value
            return
        if frame.msg_type != _TEXT:
            return
        reply = _reply(data)
        if reply.type == "response" and reply.status == "success" and not self.subscribed:
            self.subscribed = True
            self.worker.on_subscribed()
            return
        self.wrong += 1
        self.worker.note(f"unexpected frame: {data[:200]!r}")

    def check_rendering(self, data: bytes) -> None:
        """Once per connection: a transaction is rendered for this connection's version."""
        if b'"type":"transaction"' not in data:
            return
        self.rendering_checked = True
        marker = b'"tx_json":' if self.api_version >= 2 else b'"transaction":'
        if marker not in data:
            self.wrong += 1
            self.worker.note(f"v{self.api_version} subscriber got {data[:120]!r}")


class BroadcastConn(_Conn):
    """Gets every published message: sequence numbers must be contiguous from 1."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self.fresh:
            self.now = self.stats.last_rx = _time_ns()
        self.fresh = frame.last_in_buffer
        data = frame.get_payload_as_bytes()
        i = data.find(BENCH_KEY, 0, 64)
        if i < 0:
            self.other(frame, data)
            return
        seq = int(data[i + _SEQ : i + _SEQ_END])
        if seq == self.next:
            self.next = seq + 1
        elif seq > self.next:
            self.gaps += seq - self.next
            self.next = seq + 1
        else:
            self.back += 1
        self.count += 1
        lat = self.now - int(data[i + _T : i + _T_END])
        bucket = lat >> HIST_SHIFT
        if 0 <= bucket < HIST_CAP:
            self.hist[bucket] += 1
        else:
            self.stats.slow.append(lat)
        if not self.rendering_checked:
            self.check_rendering(data)


class FilterConn(_Conn):
    """Gets the transactions that touch its accounts: increasing, and only those."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self.fresh:
            self.now = self.stats.last_rx = _time_ns()
        self.fresh = frame.last_in_buffer
        data = frame.get_payload_as_bytes()
        i = data.find(BENCH_KEY, 0, 64)
        if i < 0:
            self.other(frame, data)
            return
        seq = int(data[i + _SEQ : i + _SEQ_END])
        if seq > self.last:
            self.last = seq
        else:
            self.back += 1
        if self.index not in owners(seq, self.worker.subscribers):
            self.wrong += 1
        self.count += 1
        self._record(int(data[i + _T : i + _T_END]))
        if not self.rendering_checked:
            self.check_rendering(data)


class PingConn(_Conn):
    """Keeps ``inflight`` pings outstanding; each reply must answer one of them."""

    def __init__(self, worker: Worker, index: int, api_version: int) -> None:
        super().__init__(worker, index, api_version)
        self.pending: dict[int, int] = {}
        self.request_id = 0
        self.running = False

    def ping(self) -> None:
        self.request_id += 1
        self.pending[self.request_id] = _time_ns()
        assert self.transport is not None
        self.transport.send(_TEXT, b'{"id":%d,"command":"ping"}' % self.request_id)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != _TEXT:
            self.other(frame, b"")
            return
        self.now = _time_ns()
        reply = _reply(frame.get_payload_as_bytes())
        sent = self.pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        if sent is None:
            self.back += 1
            return
        if reply.status != "success":
            self.wrong += 1
        self.count += 1
        self._record(sent)
        if self.running:
            self.ping()


_KINDS: Final[dict[str, type[_Conn]]] = {
    "broadcast": BroadcastConn,
    "filters": FilterConn,
    "requests": PingConn,
}


class Worker:
    """A process's share of the connections, driven by the runner's commands."""

    def __init__(self, slot: int, counters: Any, connected: Any, pipe: Pipe) -> None:
        self.slot = slot
        self.counters = counters
        self.connected = connected
        self.pipe = pipe
        self.stats = Stats()
        self.conns: list[_Conn] = []
        self.subscribers = 1
        self.check_rendering = False
        self.finishing = False
        self.dropped = 0
        self.notes: list[str] = []
        self._subscribed = 0
        self._all_subscribed = asyncio.Event()

    def note(self, text: str) -> None:
        if len(self.notes) < 10:
            self.notes.append(text)

    def on_subscribed(self) -> None:
        self._subscribed += 1
        if self._subscribed == len(self.conns):
            self._all_subscribed.set()

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

    async def _tick(self) -> None:
        """Publish this worker's received count for the runner and the publisher."""
        while True:
            conns = self.conns
            self.counters[self.slot] = sum(c.count for c in conns)
            await asyncio.sleep(0.004 if len(conns) <= 2000 else 0.02)

    async def _cmd_connect(
        self,
        url: str,
        conns: Sequence[tuple[int, int]],
        mode: str,
        subscribers: int,
        check_rendering: bool,
        concurrency: int,
        read_buffer: int,
    ) -> dict[str, Any]:
        self.stats = Stats()
        self.subscribers = subscribers
        self.check_rendering = check_rendering
        self.finishing = False
        self.dropped = 0
        self.notes = []
        self._subscribed = 0
        self._all_subscribed = asyncio.Event()
        kind = _KINDS[mode]
        gate = asyncio.Semaphore(concurrency)
        failures = 0
        opened: list[_Conn] = []

        async def one(index: int, api_version: int) -> None:
            nonlocal failures
            async with gate:
                try:
                    _, conn = await ws_connect(
                        lambda: kind(self, index, api_version),
                        url,
                        websocket_handshake_timeout=60,
                        max_frame_size=1 << 26,
                        read_buffer_init_size=read_buffer,
                    )
                except Exception as exc:
                    failures += 1
                    self.note(f"connect failed: {exc!r}")
                    return
                assert isinstance(conn, _Conn)
                opened.append(conn)
                self.connected[self.slot] = len(opened)

        started = time.time()
        await asyncio.gather(*(one(i, v) for i, v in conns))
        self.conns = opened
        return {"started": started, "done": time.time(), "opened": len(opened), "failed": failures}

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
            conn.send(msgspec.json.encode(request))
        try:
            await asyncio.wait_for(self._all_subscribed.wait(), wait_s)
        except TimeoutError:
            self.note(f"only {self._subscribed}/{len(self.conns)} subscribe replies")
        return {"subscribed": self._subscribed}

    async def _cmd_pings(self, inflight: int) -> str:
        for conn in self.conns:
            assert isinstance(conn, PingConn)
            conn.running = True
            for _ in range(inflight):
                conn.ping()
        return "pinging"

    async def _cmd_stop_pings(self, wait_s: float) -> str:
        conns = [c for c in self.conns if isinstance(c, PingConn)]
        for conn in conns:
            conn.running = False
        deadline = time.monotonic() + wait_s
        # Polled: replies arrive in picows callbacks; 10 ms is nothing next to the run.
        while any(c.pending for c in conns) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return "drained"

    async def _cmd_finish(self, published: int) -> dict[str, Any]:
        """Count what each connection got against what it should have got; then close."""
        self.finishing = True
        self.counters[self.slot] = sum(c.count for c in self.conns)
        expected_filters: dict[int, int] = {}
        if self.conns and isinstance(self.conns[0], FilterConn):
            mine = {c.index for c in self.conns}
            for seq in range(1, published + 1):
                a, b = owners(seq, self.subscribers)
                if a in mine:
                    expected_filters[a] = expected_filters.get(a, 0) + 1
                if b in mine and b != a:
                    expected_filters[b] = expected_filters.get(b, 0) + 1
        totals = dict.fromkeys(
            ("received", "expected", "lost", "out_of_order", "gaps", "wrong", "closed"), 0
        )
        for conn in self.conns:
            if isinstance(conn, PingConn):
                expected = conn.request_id
                lost = len(conn.pending)
            else:
                if isinstance(conn, FilterConn):
                    expected = expected_filters.get(conn.index, 0)
                else:
                    expected = published
                lost = max(0, expected - (conn.count - conn.back))
            totals["received"] += conn.count
            totals["expected"] += expected
            totals["lost"] += lost
            totals["out_of_order"] += conn.back
            totals["gaps"] += conn.gaps
            totals["wrong"] += conn.wrong
            totals["closed"] += conn.close_code is not None
        for conn in self.conns:
            if conn.transport is not None and not conn.disconnected:
                conn.transport.disconnect()
        await asyncio.sleep(0)
        totals["dropped"] = self.dropped
        result = {
            **totals,
            **self.stats.export(),
            "last_rx": self.stats.last_rx,
            "notes": self.notes,
        }
        self.conns = []
        self.connected[self.slot] = 0
        return result


def worker_main(
    slot: int, cpus: list[int] | None, counters: Any, connected: Any, pipe: Pipe
) -> None:
    """Entry point of a subscriber worker process."""
    prepare_process(cpus)
    asyncio.run(Worker(slot, counters, connected, pipe).serve())


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
        tx_per_ledger: int,
    ) -> dict[str, Any]:
        """A ledger close every ``interval``: ledgerClosed plus its transactions, one batch."""
        assert conn.transport is not None
        build = Messages(0)
        seq = 0
        start = time.monotonic() + 0.05
        for n in range(ledgers):
            await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
            index = 1000 + n
            now = _time_ns()
            batch = [build.ledger_closed(seq + 1, now, index)]
            batch += [build.transaction(seq + 2 + i, now, index) for i in range(tx_per_ledger)]
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
        max_requests: int = 8,
    ) -> dict[str, Any]:
        """As fast as the window allows (or at ``rate`` messages/s) for ``duration``.

        ``window`` bounds the deliveries published but not yet received by the workers.
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
            if now >= end:
                break
            if rate and seq >= rate * (now - began):
                await asyncio.sleep(min(0.001, end - now))
                continue
            if expected - sum(counters) > window or requests - conn.replies >= max_requests:
                await asyncio.sleep(0.0002)
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
    asyncio.run(Publisher(counters, pipe).serve())
