"""Process orchestration: the server under test, the worker pool, one measured run.

The server (the hub, or a peer) runs as a subprocess pinned to its own CPUs before it
execs, so every thread it starts stays there; the load generator (subscriber workers
and the publisher) runs on the other CPUs. The runner itself mostly sleeps: it hands
out connections, starts the publisher, samples the server's CPU and RSS with psutil,
waits for the subscribers to drain, and collects their counts and histograms.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import platform
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import psutil

from .loadgen import TOTALS as LOADGEN_TOTALS
from .loadgen import publisher_main, worker_main
from .report import Progress, latency_figures
from .scenarios import Scenario

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"
MIB = 1024 * 1024

HUB_CONFIG = """\
# Written by benchmarks/runner.py: limits raised so that only speed is measured.
[server]
log_level = "warning"
max_message_size = 67108864
handshake_timeout = 60
ping_interval = 600
ping_timeout = 600

[source]
source = "none"
publish_queue = 100000

[limits]
max_connections = 200000
max_connections_per_ip = 200000
send_queue_bytes = 1073741824
send_queue_messages = 1000000

[load]
# Subscribers connect from 127.0.0.2, 127.0.0.3, ... (not admins, so they are charged
# like any client); per connection, and never near a threshold.
key = "connection"
warning = 1e15
drop = 1e16
"""

SERVERS = ("hub", "hub-deflate", "raw", "websockets", "ws")
HUBS = ("hub", "hub-deflate")
"""``hub-deflate`` is the same hub, its subscribers negotiating permessage-deflate."""


def source_address(slot: int) -> str:
    """Load-generator process ``slot``'s own loopback address: 127.0.0.2, .3, ..."""
    return f"127.0.{(slot + 2) // 256}.{(slot + 2) % 256}"


def raise_fd_limit() -> int:
    """Soft fd limit up to the hard one (children inherit it); returns the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Affinity:
    server: list[int] | None
    loadgen: list[int] | None

    @classmethod
    def default(cls) -> Affinity:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None)
        return cls(cpus[:1], cpus[1:])


class ServerProcess:
    """A server under test: the hub or a peer, started and pinned, stopped on exit.

    Pinned and with its fd soft limit at the hard limit before it execs, so every
    thread and worker process it starts inherits both. CPU and RSS count its worker
    processes too (``hub serve --workers N``).
    """

    def __init__(self, kind: str, cpus: list[int] | None, workdir: Path, workers: int = 1) -> None:
        self.kind = kind
        if kind in HUBS:
            config = workdir / "hub.toml"
            config.write_text(HUB_CONFIG)
            cmd = [sys.executable, "-m", "hub", "serve", "--port", "0", "--source", "none"]
            cmd += ["--config", str(config), "--workers", str(workers)]
        elif kind == "raw":
            cmd = [sys.executable, "-m", "benchmarks.peers.raw_peer", "--port", "0"]
        elif kind == "websockets":
            cmd = [sys.executable, "-m", "benchmarks.peers.websockets_peer", "--port", "0"]
        elif kind == "ws":
            cmd = ["node", str(PEERS / "ws_peer.mjs"), "0"]
        else:
            raise ValueError(f"unknown server {kind!r}")
        self.log = workdir / f"{kind}.log"

        def prepare() -> None:
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            if cpus:
                os.sched_setaffinity(0, set(cpus))

        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                preexec_fn=prepare,
            )
        self.url = self._read_url(timeout=60)
        self.ps = [psutil.Process(self.proc.pid)]
        self.ps += self.ps[0].children(recursive=True)
        self.peak_rss = 0

    def _read_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("listening on "):
            self.stop()
            tail = self.log.read_text()[-2000:]
            raise RuntimeError(f"{self.kind} did not start (said {line!r}); log:\n{tail}")
        return line.removeprefix("listening on ").strip()

    def rss(self) -> int:
        """The server's resident memory, every thread and worker process included."""
        rss = sum(int(p.memory_info().rss) for p in self.ps)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds so far: utime and stime of ``/proc/PID/stat``."""
        times = [p.cpu_times() for p in self.ps]
        return sum(t.user for t in times), sum(t.system for t in times)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def node_peer_problem() -> str | None:
    """Why the Node ``ws`` peer cannot run here (None when it can); installs it if needed."""
    if shutil.which("node") is None:
        return "ws peer: node is not on this machine"
    if (PEERS / "node_modules" / "ws").is_dir():
        return None
    if shutil.which("npm") is None:
        return "ws peer: npm is not on this machine to install ws"
    done = subprocess.run(
        ["npm", "ci", "--prefix", str(PEERS), "--no-audit", "--no-fund", "--loglevel=error"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return f"ws peer: npm ci failed: {done.stderr.strip()[-300:]}"
    return None


class Pool:
    """The load generator: subscriber worker processes plus one publisher process."""

    def __init__(self, workers: int, cpus: list[int] | None) -> None:
        ctx = mp.get_context("spawn")
        self.cpus = cpus
        self.counters = ctx.RawArray("q", workers)
        self.connected = ctx.RawArray("q", workers)
        self.read_bytes = ctx.RawArray("q", workers)
        self.pipes: list[Pipe] = []
        self.procs: list[Any] = []
        for slot in range(workers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                args=(slot, cpus, self.counters, self.connected, self.read_bytes, theirs),
                daemon=True,
                name=f"bench-worker-{slot}",
            )
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.publisher, theirs = ctx.Pipe()
        self.publisher_proc = ctx.Process(
            target=publisher_main,
            args=(cpus, self.counters, theirs),
            daemon=True,
            name="bench-publisher",
        )
        self.publisher_proc.start()
        self.ps = [psutil.Process(p.pid) for p in [*self.procs, self.publisher_proc]]

    def received(self) -> int:
        return sum(self.counters)

    def progress(self) -> tuple[int, int]:
        """(messages delivered, an estimate; bytes read): either moving means progress."""
        return sum(self.counters), sum(self.read_bytes)

    def cpu(self) -> list[float]:
        """CPU seconds so far of each process: the workers, then the publisher."""
        return [sum(p.cpu_times()[:2]) for p in self.ps]

    def ask(
        self,
        messages: Sequence[tuple[Pipe, str, dict[str, Any]]],
        progress: Callable[[], None],
        timeout: float = 600,
    ) -> list[Any]:
        """Send each pipe its command and wait for every answer, updating progress."""
        for pipe, command, args in messages:
            pipe.send((command, args))
        answers: dict[int, Any] = {}
        pending = {id(pipe): pipe for pipe, _, _ in messages}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError("the load generator did not answer")
            for ready in wait(list(pending.values()), timeout=0.25):
                assert isinstance(ready, Pipe)
                answers[id(ready)] = ready.recv()
                del pending[id(ready)]
            for proc in [*self.procs, self.publisher_proc]:
                if not proc.is_alive():
                    raise RuntimeError(f"{proc.name} died (exit code {proc.exitcode})")
            progress()
        return [answers[id(pipe)] for pipe, _, _ in messages]

    def close(self) -> None:
        for pipe in [*self.pipes, self.publisher]:
            with contextlib.suppress(OSError):
                pipe.send(("exit", {}))
        for proc in [*self.procs, self.publisher_proc]:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()


class Sampler:
    """Server and load-generator CPU every 0.1 s in a thread: averages and the peak.

    The peak is the busiest 0.5 s: a burst that saturates the load generator for a
    moment shows there even when the average over the run is low.
    """

    PERIOD = 0.1
    SPAN = 5

    def __init__(self, server: ServerProcess, pool: Pool) -> None:
        self.server = server
        self.pool = pool
        self.samples: list[tuple[float, float, list[float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        user, system = self.server.cpu()
        self.samples.append((time.monotonic(), user + system, self.pool.cpu()))

    def _run(self) -> None:
        while not self._stop.wait(self.PERIOD):
            with contextlib.suppress(psutil.Error):
                self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def figures(self) -> dict[str, Any]:
        """Percent of one core: each load-generator process's average, their sum, peaks."""
        (t0, s0, l0), (t1, s1, l1) = self.samples[0], self.samples[-1]
        span = max(t1 - t0, 1e-9)
        per_proc = [round(100 * (b - a) / span, 1) for a, b in zip(l0, l1, strict=True)]
        peak_load = 100 * (sum(l1) - sum(l0)) / span
        peak_server = 100 * (s1 - s0) / span
        for (ta, sa, la), (tb, sb, lb) in zip(
            self.samples, self.samples[self.SPAN :], strict=False
        ):
            dt = max(tb - ta, 1e-9)
            peak_load = max(peak_load, 100 * (sum(lb) - sum(la)) / dt)
            peak_server = max(peak_server, 100 * (sb - sa) / dt)
        return {
            "loadgen_cpu_percent": round(sum(per_proc), 1),
            "loadgen_cpu_per_process": per_proc,
            "loadgen_cpu_peak_percent": round(peak_load, 1),
            "server_cpu_peak_percent": round(peak_server, 1),
        }


def loadgen_bound(figures: dict[str, Any], cores: int) -> bool:
    """Whether the load generator passed 80 % of its cores, on average or at its peak."""
    busiest = max(figures["loadgen_cpu_per_process"], default=0.0)
    total = max(figures["loadgen_cpu_percent"], figures["loadgen_cpu_peak_percent"])
    return busiest > 80 or total > 80 * cores


def api_versions_for(count: int, versions: Sequence[int]) -> list[int]:
    return [versions[i % len(versions)] for i in range(count)]


def run_one(
    scenario: Scenario,
    kind: str,
    pool: Pool,
    affinity: Affinity,
    versions: Sequence[int],
    progress: Progress,
) -> dict[str, Any]:
    """One scenario against one server: connect, subscribe, load, drain, count."""
    label = f"[{scenario.name}/{kind}]"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        server = ServerProcess(kind, affinity.server, Path(tmp), scenario.workers)
        try:
            run = _measure(scenario, kind, server, pool, versions, progress, label)
        finally:
            server.stop()
    cores = len(pool.cpus) if pool.cpus else os.cpu_count() or 1
    run["bounded_by_loadgen"] = loadgen_bound(run, cores)
    run["handshakes_bounded_by_loadgen"] = loadgen_bound(run["connecting"], cores)
    progress.line(f"{label} done: {summary(run)}")
    return run


def _connect(
    scenario: Scenario,
    kind: str,
    server: ServerProcess,
    pool: Pool,
    versions: Sequence[int],
    show: Callable[[str], Callable[[], None]],
) -> tuple[int, float | None]:
    """Every connection opened and subscribed: (opened, handshakes/s)."""
    workers = len(pool.pipes)
    assigned: list[list[tuple[int, int]]] = [[] for _ in range(workers)]
    for index, version in enumerate(
        api_versions_for(scenario.connections, versions if kind in HUBS else [2])
    ):
        assigned[index % workers].append((index, version))
    connects = pool.ask(
        [
            (
                pipe,
                "connect",
                {
                    "url": server.url,
                    "conns": assigned[slot],
                    "mode": scenario.mode,
                    "subscribers": scenario.connections,
                    "check_rendering": kind in HUBS,
                    "compression": kind == "hub-deflate",
                    "concurrency": 64,
                    "sources": [source_address(slot)],
                    "read_pause": scenario.read_pause,
                    "coalesce": scenario.coalesce,
                },
            )
            for slot, pipe in enumerate(pool.pipes)
        ],
        show("connecting"),
    )
    opened = sum(c["opened"] for c in connects)
    started = min(c["started"] for c in connects if c["opened"] or c["failed"])
    done = max(c["done"] for c in connects)
    if scenario.mode != "requests":
        subscribe = {"streams": list(scenario.streams), "accounts": scenario.accounts}
        pool.ask(
            [(pipe, "subscribe", {**subscribe, "wait_s": 120}) for pipe in pool.pipes],
            show("subscribing"),
        )
    return opened, (opened / (done - started) if done > started else None)


def _load(
    scenario: Scenario, server: ServerProcess, pool: Pool, progress: Progress, label: str
) -> tuple[dict[str, Any], float | None]:
    """The scenario's load: pings for its duration, or the publisher's run, then drained."""
    if scenario.mode == "requests":
        pool.ask([(p, "pings", {"inflight": scenario.inflight}) for p in pool.pipes], lambda: None)
        before, t_start = pool.received(), time.monotonic()
        end = t_start + scenario.duration
        while time.monotonic() < end:
            time.sleep(0.25)
            rate = (pool.received() - before) / (time.monotonic() - t_start)
            progress.update(f"{label} pinging: {pool.received():,} round trips, {rate:,.0f}/s")
        pool.ask([(p, "stop_pings", {"wait_s": 10}) for p in pool.pipes], lambda: None)
        rate = (pool.received() - before) / (time.monotonic() - t_start)
        return {"published": 0, "expected": 0, "errors": 0, "first_error": ""}, rate
    params = scenario.publisher_params()
    t_pub = time.monotonic()

    def publishing() -> None:
        elapsed = time.monotonic() - t_pub
        got = pool.received()
        progress.update(
            f"{label} publishing {elapsed:5.1f}s: {got:,} deliveries"
            f" ({got / max(elapsed, 1e-9):,.0f}/s), server RSS {server.rss() / MIB:.0f} MiB"
        )

    (published,) = pool.ask([(pool.publisher, "run", {"url": server.url, **params})], publishing)
    _drain(pool, published["expected"], progress, label)
    return published, None


TOTALS = (*LOADGEN_TOTALS, "dropped")


def _measure(
    scenario: Scenario,
    kind: str,
    server: ServerProcess,
    pool: Pool,
    versions: Sequence[int],
    progress: Progress,
    label: str,
) -> dict[str, Any]:
    n = scenario.connections
    base_rss = server.rss()

    def show(phase: str) -> Callable[[], None]:
        def status() -> None:
            progress.update(
                f"{label} {phase}: connected {sum(pool.connected):,}/{n:,}"
                f"  received {pool.received():,}  server RSS {server.rss() / MIB:.0f} MiB"
            )

        return status

    with Sampler(server, pool) as connecting:
        opened, handshakes = _connect(scenario, kind, server, pool, versions, show)
    time.sleep(0.5)
    connected_rss = server.rss()
    progress.line(
        f"{label} {opened:,}/{n:,} connected"
        + (f" at {handshakes:,.0f} handshakes/s" if handshakes else "")
        + f", server RSS {base_rss / MIB:.1f} -> {connected_rss / MIB:.1f} MiB"
    )
    (user0, sys0), t0 = server.cpu(), time.time()
    with Sampler(server, pool) as sampler:
        published, requests_per_s = _load(scenario, server, pool, progress, label)
    t1 = time.time()
    user1, sys1 = server.cpu()
    final_rss = server.rss()
    results = pool.ask(
        [
            (p, "finish", {"published": published["published"], "warmup": scenario.warmup})
            for p in pool.pipes
        ],
        lambda: None,
    )
    totals = {key: sum(r[key] for r in results) for key in TOTALS}
    last_rx = max(r["last_rx"] for r in results) / 1e9
    deliveries_per_s = None
    if scenario.mode != "requests" and last_rx > published.get("started", t0):
        deliveries_per_s = totals["received"] / (last_rx - published["started"])
    window = max(t1 - t0, 1e-9)
    cpu = (user1 - user0) + (sys1 - sys0)
    run = {
        "server": kind,
        "workers": scenario.workers,
        "connections": n,
        "opened": opened,
        "published": published["published"],
        "publish_errors": published["errors"],
        **totals,
        "lost": totals["lost"] + (n - opened) + totals["wrong"] + totals["diverged"],
        "deliveries_per_s": round(deliveries_per_s) if deliveries_per_s else None,
        "requests_per_s": round(requests_per_s) if requests_per_s else None,
        **latency_figures(results, scenario.warmup),
        "server_cpu_percent": round(100 * cpu / window, 1),
        "server_cpu_us_per_delivery": round(1e6 * cpu / totals["received"], 3)
        if totals["received"]
        else None,
        "server_kernel_share_percent": round(100 * (sys1 - sys0) / cpu, 1) if cpu else None,
        "wire_bytes_per_delivery": round(totals["wire_bytes"] / totals["received"], 1)
        if totals["received"]
        else None,
        **sampler.figures(),
        "server_rss_base_mib": round(base_rss / MIB, 1),
        "server_rss_mib": round(max(final_rss, connected_rss) / MIB, 1),
        "server_rss_peak_mib": round(server.peak_rss / MIB, 1),
        "rss_per_conn_kib": (
            round((connected_rss - base_rss) / 1024 / n, 2) if n and scenario.memory else None
        ),
        "handshakes_per_s": round(handshakes) if handshakes else None,
        "connecting": connecting.figures(),
        "elapsed_s": round(t1 - t0, 2),
        "notes": [note for r in results for note in r["notes"]][:10],
    }
    if published.get("first_error"):
        run["notes"].append(f"publish error: {published['first_error']}")
    return run


def _drain(pool: Pool, expected: int, progress: Progress, label: str, stall: float = 10.0) -> None:
    """Wait until the subscribers received everything, or read nothing for ``stall`` s."""
    last, since = pool.progress(), time.monotonic()
    while True:
        now = pool.progress()
        if now[0] >= expected:
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            return
        progress.update(f"{label} draining: {now[0]:,}/{expected:,}")
        time.sleep(0.01)


def summary(run: dict[str, Any]) -> str:
    lat = run["latency_ms"]
    parts = []
    if run["deliveries_per_s"]:
        parts.append(f"{run['deliveries_per_s']:,} deliveries/s")
    if run["requests_per_s"]:
        parts.append(f"{run['requests_per_s']:,} req/s")
    if run["server_cpu_us_per_delivery"] is not None:
        what = "request" if run["requests_per_s"] else "delivery"
        parts.append(f"{run['server_cpu_us_per_delivery']} µs CPU/{what}")
    if lat["p50"] is not None:
        parts.append(f"p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms")
    ledgers = sorted(run.get("ledgers_ms", {}).get("p99", []))
    if ledgers:
        parts.append(
            f"{len(ledgers)} ledgers' p99: min {ledgers[0]}, median"
            f" {ledgers[len(ledgers) // 2]}, max {ledgers[-1]} ms"
        )
    warmup = run.get("warmup_ms", {}).get("p99", [])
    if warmup:
        counted = run["with_warmup_ms"]["p99"]
        parts.append(
            f"warm-up ledger p99 {', '.join(map(str, warmup))} ms (not in p99;"
            f" p99 with it {counted} ms)"
        )
    parts.append(f"lost {run['lost']}")
    parts.append(
        f"server CPU {run['server_cpu_percent']}% ({run['server_kernel_share_percent']}% kernel)"
    )
    parts.append(f"RSS {run['server_rss_mib']} MiB")
    parts.append(
        f"loadgen CPU {run['loadgen_cpu_percent']}% (peak {run['loadgen_cpu_peak_percent']}%,"
        f" per process {run['loadgen_cpu_per_process']})"
    )
    if run.get("bounded_by_loadgen"):
        parts.append("BOUNDED BY THE LOAD GENERATOR")
    return ", ".join(parts)


def machine(affinity: Affinity, workers: int) -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node = shutil.which("node")
    node_version = (
        subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if node
        else None
    )
    from importlib.metadata import version

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except Exception:
            return None

    return {
        "platform": platform.platform(),
        "cpu": model or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "node": node_version,
        "packages": {n: pkg(n) for n in ("picows", "websockets", "msgspec", "trio", "wsproto")},
        "server_cpus": affinity.server,
        "loadgen_cpus": affinity.loadgen,
        "loadgen_processes": workers,
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
