"""``hub serve --workers N``: N processes accepting on one port, one event order for all.

The parent process binds nothing it accepts on. It reserves the port (a socket bound
with ``SO_REUSEPORT`` that never listens, so port 0 becomes one fixed port), starts N
workers (``python -m hub.app.workers``) and tells each, in the first frame on its stdin,
its settings and its number. Each worker is a whole hub listening on its own
``SO_REUSEPORT`` socket on that port; the kernel spreads new connections over them.

Events:

- **With** ``[cluster] broker`` every worker is a cluster node (:mod:`hub.cluster.broker`) and
  only worker 0 runs the source: the others run ``none``, and Redis gives all of them
  one order.
- **Without** a broker the parent is the sequencer, as Redis would be: it runs the
  source, and each worker sends what is published on it (admin ``publish``) up its
  stdout; the parent puts both into one order and writes each batch as one frame
  (:mod:`hub.cluster.pipe`) to every worker's stdin. A worker delivers only what
  comes down its pipe (:class:`~hub.cluster.pipebus.PipeBus`, the worker's bus), so
  a publish on one worker reaches the clients of all of them, in the same order. An
  upstream source also gives each worker a forwarding pool for the methods the hub
  does not answer itself.

Per worker, not per machine: the load balance of an IP address, ``max_connections``
and ``max_connections_per_ip`` (a client's connections may land on different
workers), and ``server_info``'s figures, which name the worker that answered
(``hub.worker``: index, pid, workers).

Lifecycle: the parent prints ``listening on ws://HOST:PORT`` once every worker
listens; if one cannot start then, it says so in one line, stops the others and
exits 1. SIGINT or SIGTERM to the parent is passed to every worker as SIGTERM; each
closes its clients with 1001 and exits, and the parent exits 0. A worker that dies
(a crash, a kill, an OOM kill) is logged once with its exit status and started again,
at once or, while it keeps dying soon after starting, after a delay that doubles up
to 30 s (:class:`Restarts`); the others serve on throughout, and the parent stays.
Its clients are gone (they reconnect, and the kernel spreads them over the workers
listening); in pipe mode the new process is plumbed into the sequencer like the first
and gets every event from the moment it listens, with no history before it. A worker
whose stdin closes (the parent died) shuts down too.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from hub import config as _config
from hub import sources
from hub.app import gcpolicy
from hub.app.compose import Hub, build_node
from hub.cluster.pipe import FrameError, FrameReader, frame, read_frames, run_pipe
from hub.cluster.pipebus import PipeBus
from hub.edge.server import netloc

log = logging.getLogger(__name__)

READY = b"ready\n"
STOP_GRACE = 5.0
"""Seconds a worker may take past its drain before it is killed."""
START_TIMEOUT = 60.0
"""Seconds a worker may take from its start to listening (a cold interpreter on a busy
machine) before it counts as one that cannot start."""


class Assignment(msgspec.Struct, frozen=True):
    """The first frame a worker reads: who it is and how to run."""

    index: int
    workers: int
    config: dict[str, Any]
    pipe: bool
    upstream: list[str] = []


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``, not yet listening."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def reuse_port_listener(host: str, port: int, backlog: int = 65535) -> trio.SocketListener:
    sock = trio.socket.from_stdlib_socket(reuse_port_socket(host, port))
    sock.listen(backlog)
    return trio.SocketListener(sock)


def assignments(cfg: _config.Config, port: int) -> list[Assignment]:
    """What each worker runs: the port fixed, one source at most, as the module says."""
    count = cfg.cluster.workers
    clustered = cfg.cluster.broker is not None
    base = msgspec.to_builtins(cfg)
    upstream = sources.upstream_urls(cfg.source.source)
    out = []
    for index in range(count):
        data = msgspec.json.decode(msgspec.json.encode(base))
        data["server"]["port"] = port
        data["cluster"]["workers"] = 1
        if not clustered or index > 0:
            data["source"]["source"] = "none"
        pipe = not clustered
        out.append(Assignment(index, count, data, pipe, upstream if pipe else []))
    return out


def serve_workers(cfg: _config.Config) -> int:
    """``hub serve`` with ``workers > 1``: the parent process; its exit status."""
    try:
        reserved = reuse_port_socket(cfg.server.host, cfg.server.port)
    except OSError as exc:
        print(f"hub: cannot listen on {cfg.server.host}:{cfg.server.port}: {exc}", file=sys.stderr)
        return 2
    with reserved:
        return trio.run(_parent, cfg, reserved.getsockname()[1])


class Restarts:
    """How long to wait before starting a dead worker again: at once after a worker that
    ran at least ``settled`` seconds, then doubling from ``initial`` up to ``maximum``
    while it keeps dying sooner (a worker that cannot run is not started in a loop)."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, settled: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.settled = settled
        self._quick = 0

    def died(self, ran: float) -> float:
        """The delay before the next start of a worker that ran ``ran`` seconds."""
        if ran >= self.settled:
            self._quick = 0
        delay = 0.0 if self._quick == 0 else self.initial * 2 ** (self._quick - 1)
        self._quick += 1
        return min(delay, self.maximum)


@dataclass(eq=False, slots=True)
class _Worker:
    """One worker's place: its plan and the process running it now. ``ready`` once the
    process listens: only then may event frames follow the plan down its stdin."""

    plan: Assignment
    proc: trio.Process | None = None
    started: float = 0.0
    ready: bool = False


async def _parent(cfg: _config.Config, port: int) -> int:
    workers = [_Worker(plan) for plan in assignments(cfg, port)]
    pipe = not cfg.cluster.broker
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            # Pipe mode: the parent runs the source and is the sequencer.
            send, receive = trio.open_memory_channel[Any](cfg.source.publish_queue)
            if pipe:
                await sources.start(cfg.source, send.clone(), nursery, cfg.server.network_id or 0)
            if not await _launch(workers):
                nursery.cancel_scope.cancel()
                return 1
            if pipe:
                nursery.start_soon(_relay, receive, workers)
            print(f"listening on ws://{netloc(cfg.server.host, port)}", flush=True)
            await _supervise(workers, signals, send if pipe else None, _stop_timeout(cfg))
            nursery.cancel_scope.cancel()
    return 0


async def _launch(workers: list[_Worker]) -> bool:
    """Start every worker and wait until each listens; if one cannot, say so in one
    line, stop them all and return False."""
    failed: list[int] = []

    async def start(worker: _Worker) -> None:
        if not await _start(worker):
            failed.append(worker.plan.index)

    async with trio.open_nursery() as nursery:
        for worker in workers:
            nursery.start_soon(start, worker)
    if failed:
        print(f"hub: worker {min(failed)} did not start", file=sys.stderr)
        await _stop([worker.proc for worker in workers if worker.proc is not None])
        return False
    return True


async def _start(worker: _Worker) -> bool:
    """Start the worker's process, hand it its plan and wait until it listens; False
    (its process stopped) when it does not within ``START_TIMEOUT``."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hub.app.workers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    worker.proc, worker.started = proc, trio.current_time()
    stdin, stdout = _pipes(proc)
    with trio.move_on_after(START_TIMEOUT):
        try:
            await stdin.send_all(frame(worker.plan))
            if await _read_exactly(stdout, len(READY)) == READY:
                worker.ready = True
                return True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await _stop([proc])
    return False


async def _supervise(
    workers: list[_Worker],
    signals: AsyncIterator[int],
    uploads: trio.MemorySendChannel[Any] | None,
    grace: float,
) -> None:
    """Keep every worker running until SIGINT or SIGTERM, then stop them all."""
    async with trio.open_nursery() as nursery:
        for worker in workers:
            nursery.start_soon(_keep, worker, uploads)
        async for signum in signals:
            log.info("%s: stopping the workers", signal.Signals(signum).name)
            break
        nursery.cancel_scope.cancel()
    await _stop([worker.proc for worker in workers if worker.proc is not None], grace)


async def _keep(worker: _Worker, uploads: trio.MemorySendChannel[Any] | None) -> None:
    """Run one worker for good: read what is published on it (pipe mode) while it
    lives; when it dies, say so once and start it again after :class:`Restarts`' delay.
    The others serve on meanwhile; the relay skips it until the new one listens."""
    restarts = Restarts()
    while True:
        proc = worker.proc
        assert proc is not None
        async with trio.open_nursery() as plumbing:  # uploads end at the pipe's end
            if uploads is not None:
                plumbing.start_soon(_uploads, proc, uploads.clone())
            code = await proc.wait()
        worker.ready = False
        await _stop([proc])
        delay = restarts.died(trio.current_time() - worker.started)
        log.error(
            "worker %d (pid %d) %s; starting it again in %.1f s",
            worker.plan.index,
            proc.pid,
            _exit_status(code),
            delay,
        )
        await trio.sleep(delay)
        while not await _start(worker):
            delay = restarts.died(0.0)
            log.error("worker %d did not start; trying again in %.1f s", worker.plan.index, delay)
            await trio.sleep(delay)
        log.info("worker %d started again", worker.plan.index)


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _stop_timeout(cfg: _config.Config) -> float:
    return cfg.server.drain_seconds + cfg.server.drain_spread + STOP_GRACE


def _pipes(proc: trio.Process) -> tuple[trio.abc.SendStream, trio.abc.ReceiveStream]:
    assert proc.stdin is not None
    assert proc.stdout is not None
    return proc.stdin, proc.stdout


async def _read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


async def _stop(procs: list[trio.Process], grace: float = STOP_GRACE) -> None:
    """SIGTERM every worker still running (each drains) and wait for each; SIGKILL
    after ``grace`` seconds. Their pipes are closed."""
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    with trio.move_on_after(grace):
        for proc in procs:
            await proc.wait()
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                await pipe.aclose()


async def _uploads(proc: trio.Process, send: trio.MemorySendChannel[Any]) -> None:
    """What is published on one worker, into the parent's one order."""
    try:
        await run_pipe(send, _pipes(proc)[1])
    except (trio.BrokenResourceError, trio.ClosedResourceError, FrameError) as exc:
        log.warning("worker pid %d: %s", proc.pid, exc or type(exc).__name__)


async def _relay(receive: trio.MemoryReceiveChannel[Any], workers: list[_Worker]) -> None:
    """Everything published, to every worker that listens, one frame per batch, in one
    order. One that died or is starting again misses what is sent meanwhile (a worker
    starts with no history)."""
    async for item in receive:
        batch = _messages(item)
        while True:
            try:
                batch.extend(_messages(receive.receive_nowait()))
            except trio.WouldBlock:
                break
        data = frame(batch)
        for worker in workers:
            if not worker.ready or worker.proc is None:
                continue
            try:
                await _pipes(worker.proc)[0].send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # it died: its keeper starts it again


def _messages(item: Any) -> list[Any]:
    items = item if isinstance(item, list | tuple) else [item]
    return [getattr(message, "body", message) for message in items]


# --- the worker process ---------------------------------------------------------------


def _worker_main() -> int:
    stdin = trio.lowlevel.FdStream(os.dup(0))
    stdout = trio.lowlevel.FdStream(os.dup(1))
    reader = FrameReader()

    async def start() -> int:
        frames = await read_frames(stdin, reader)
        if not frames:
            return 1
        plan = msgspec.convert(frames[0], Assignment)
        cfg = msgspec.convert(plan.config, _config.Config)
        logging.basicConfig(
            level=cfg.server.log_level.upper(),
            format=f"%(asctime)s %(levelname)s worker {plan.index} %(name)s: %(message)s",
            stream=sys.stderr,
        )
        await _worker(plan, cfg, stdin, stdout, reader)
        return 0

    return trio.run(start)


async def _worker(
    plan: Assignment,
    cfg: _config.Config,
    stdin: trio.abc.ReceiveStream,
    stdout: trio.abc.SendStream,
    reader: FrameReader,
) -> None:
    def parent_gone() -> None:
        hub.shutdown()

    node = build_node(
        cfg,
        bus=PipeBus(stdout, stdin, reader, parent_gone) if plan.pipe else None,
        upstream_urls=plan.upstream or None,
        worker={"index": plan.index, "pid": os.getpid(), "workers": plan.workers},
    )
    hub = Hub(node=node)
    listener = reuse_port_listener(cfg.server.host, cfg.server.port)
    # Listening already: connections wait in the backlog until the hub accepts them.
    await stdout.send_all(READY)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def serve(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                await hub.run(listeners=[listener], task_status=task_status)
                nursery.cancel_scope.cancel()

            async def on_signal() -> None:
                async for _ in signals:
                    hub.shutdown()

            async def until_parent_goes() -> None:
                while await stdin.receive_some(65536):
                    pass
                hub.shutdown()

            nursery.start_soon(on_signal)
            await nursery.start(serve)
            nursery.start_soon(gcpolicy.run, hub.connection_counts)
            if not plan.pipe:
                nursery.start_soon(until_parent_goes)


if __name__ == "__main__":
    sys.exit(_worker_main())
