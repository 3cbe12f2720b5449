"""``python -m benchmarks``: measure the hub, and peers doing the same fan-out, in one run.

Scenarios: delivery (server CPU per delivery), saturation (deliveries/s), burst and
mainnet (ledger closes to 1 000 and 10 000 subscribers: latency, losses, the kernel's
share), delivery-deflate (the hub with plain and with permessage-deflate subscribers:
wire bytes and CPU per delivery), idle and idle-workers (memory per connection,
handshakes/s), requests (ping round trips/s), filters (accounts subscriptions). Peers:
raw (a pre-framed trio broadcaster, the floor), websockets, ws (Node). The server under
test runs pinned to one CPU; the load generator (several processes) runs on the others,
and its CPU is printed with every figure: one whose load generator passed 80 % of its
core is marked as bounded by it. Prints a table on stdout, progress on stderr, and
writes every figure to a JSON file. Exits 1 when a message was lost, duplicated,
reordered, misrouted or a stream was not byte-identical to its reference.

python -m benchmarks report FILE.json... --out DIR turns result files into
DIR/figures.md (markdown tables) and DIR/chart.png (python -m benchmarks report --help).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import scenarios
from .report import Progress, compression, ratios, table, write_json
from .runner import Affinity, Pool, machine, node_peer_problem, raise_fd_limit, run_one

SERVERS = (*scenarios.ALL_SERVERS, "hub-deflate")


def _cpus(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenario",
        default="all",
        help="comma-separated: "
        + ", ".join(scenarios.NAMES)
        + ", or all (default); or the cluster scenarios redis3, workers1, workers2"
        " (python -m benchmarks.cluster --help)",
    )
    p.add_argument("--subscribers", type=int, help="connections per scenario (default: its own)")
    p.add_argument("--duration", type=float, help="seconds of load per scenario")
    p.add_argument(
        "--peers",
        default=",".join(SERVERS),
        help="servers to run where a scenario has them: hub,hub-deflate,raw,websockets,ws"
        " (default: all; hub-deflate is the hub with compressing subscribers)",
    )
    p.add_argument("--json", default="bench-results.json", help="figures for machines")
    p.add_argument("--smoke", action="store_true", help="every scenario at a tiny size (< 40 s)")
    p.add_argument(
        "--clients",
        type=int,
        default=4,
        help="subscriber processes (4; each stays under the fd limit, 50 000 needs >= 3)",
    )
    p.add_argument(
        "--api-versions",
        default="1,2",
        help="api_version of the hub's subscribers, cycled over connections (1,2)",
    )
    p.add_argument("--server-cpus", type=_cpus, help="CPUs of the server under test (0)")
    p.add_argument("--loadgen-cpus", type=_cpus, help="CPUs of the load generator (the rest)")
    p.add_argument("--window", type=int, help="outstanding deliveries per subscriber (flood)")
    p.add_argument(
        "--rate", type=float, help="messages/s to publish (flood; 0: as fast as possible)"
    )
    return p


def _selected(args: argparse.Namespace) -> list[scenarios.Scenario]:
    table_ = scenarios.smoke() if args.smoke else scenarios.full()
    names = list(scenarios.NAMES) if args.scenario == "all" else args.scenario.split(",")
    unknown = [n for n in names if n not in table_]
    if unknown:
        raise SystemExit(f"unknown scenario {', '.join(unknown)}")
    out = []
    for name in names:
        s = table_[name]
        if args.subscribers:
            s = replace(s, connections=args.subscribers)
        if args.duration:
            s = replace(s, duration=args.duration)
        if args.window:
            s = replace(s, window_per_subscriber=args.window)
        if args.rate is not None and s.publish.get("mode") == "flood":
            s = replace(s, publish={**s.publish, "rate": args.rate})
        out.append(s)
    return out


CLUSTER = ("redis3", "workers1", "workers2")
FD_SHARE = 19_000
"""Connections one load-generator process may hold (the hard fd limit here is 20 000)."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:
        from . import summary

        return summary.main(argv[1:])
    args = parser().parse_args(argv)
    names = args.scenario.split(",")
    if any(name in CLUSTER for name in names):
        # The cluster scenarios start their own redis-server and hub processes.
        from . import cluster

        if not all(name in CLUSTER for name in names):
            raise SystemExit("run the cluster scenarios (redis3, workers1, workers2) apart")
        paced = ["--events", "10000", "--rate", "500"]  # unpaced, Python subscribers fall behind
        return cluster.main(paced + [arg for name in names for arg in ("--scenario", name)])
    chosen = _selected(args)
    servers = [s for s in args.peers.split(",") if s]
    bad = [s for s in servers if s not in SERVERS]
    if bad:
        raise SystemExit(f"unknown server {', '.join(bad)}")
    versions = [int(v) for v in args.api_versions.split(",")]
    crowded = [s.name for s in chosen if s.connections / max(args.clients, 1) > FD_SHARE]
    if crowded:
        raise SystemExit(
            f"{', '.join(crowded)}: more than {FD_SHARE:,} connections per load-generator"
            " process (each may hold at most 20 000 open files): raise --clients"
        )
    progress = Progress()
    fd_limit = raise_fd_limit()
    default = Affinity.default()
    affinity = Affinity(args.server_cpus or default.server, args.loadgen_cpus or default.loadgen)
    if affinity.loadgen:
        # This process (progress, the CPU sampler's thread) measures; left free to run on
        # the server's CPU it took a slice of it in the middle of a burst.
        os.sched_setaffinity(0, set(affinity.loadgen))
    skipped: list[str] = []
    if "ws" in servers and any("ws" in s.servers for s in chosen):
        problem = node_peer_problem()
        if problem:
            skipped.append(problem)
            progress.line(f"skipping {problem}")
            servers.remove("ws")
    progress.line(
        f"server on CPUs {affinity.server}, load generator on CPUs {affinity.loadgen}"
        f" ({args.clients} worker processes + 1 publisher), fd limit {fd_limit}"
    )
    results: dict[str, Any] = {
        "command": "python -m benchmarks " + shlex.join(argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(affinity, args.clients),
        "scenarios": {},
        "skipped": skipped,
    }
    pool = Pool(args.clients, affinity.loadgen)
    try:
        for scenario in chosen:
            runs: dict[str, Any] = {}
            order = [s for s in servers if s in scenario.servers]
            for kind in order:
                runs[kind] = run_one(scenario, kind, pool, affinity, versions, progress)
            entry: dict[str, Any] = {
                "title": scenario.title,
                "params": {
                    "connections": scenario.connections,
                    "duration_s": scenario.duration,
                    "streams": list(scenario.streams),
                    "hub_workers": scenario.workers,
                    "accounts_per_subscriber": 10 if scenario.accounts else 0,
                    "inflight": scenario.inflight,
                    "publisher": scenario.publisher_params() if scenario.publish else None,
                    "api_versions": versions,
                },
                "runs": runs,
            }
            if "hub" in runs:
                entry["ratios"] = {
                    peer: ratios(runs["hub"], run)
                    for peer, run in runs.items()
                    if peer not in ("hub", "hub-deflate")
                }
                if "hub-deflate" in runs:
                    entry["compression"] = compression(runs["hub"], runs["hub-deflate"])
            results["scenarios"][scenario.name] = entry
    finally:
        pool.close()
    write_json(args.json, results)
    print(table(results))
    print(f"\nfigures written to {args.json}")
    lost = sum(run["lost"] for s in results["scenarios"].values() for run in s["runs"].values())
    if lost:
        print(f"LOST {lost} messages", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
