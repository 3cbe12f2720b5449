"""The benchmark's scenarios, at full size and at smoke size.

Each is data only: how many connections, what they subscribe to, how the worker checks
what arrives (``broadcast``: every message, contiguous; ``filters``: only those touching
its accounts; ``requests``: ping round trips), what the publisher does, and which
servers take part (the peers have no account filtering, no request methods and no
worker processes, so they run only where they do the same work as the hub).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Final

NAMES: Final = (
    "delivery",
    "saturation",
    "burst",
    "mainnet",
    "idle",
    "idle-workers",
    "requests",
    "filters",
    "delivery-deflate",
)
ALL_SERVERS: Final = ("hub", "raw", "websockets", "ws")
DEFLATE_PAIR: Final = ("hub", "hub-deflate")
"""The same hub twice: plain subscribers, then subscribers that negotiate permessage-deflate."""


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    connections: int
    mode: str
    streams: tuple[str, ...] = ()
    accounts: bool = False
    duration: float = 10.0
    publish: dict[str, Any] = field(default_factory=dict)
    servers: tuple[str, ...] = ("hub",)
    inflight: int = 0
    window_per_subscriber: int = 64
    memory: bool = False
    workers: int = 1
    read_pause: float = 0.0
    """Seconds a raw reader waits after a small read (batching; see benchmarks.loadgen)."""
    coalesce: float = 0.0
    """Seconds a load-generator process sleeps after a pass that read stream bytes, so
    that the server's core does not wake it once per socket (see benchmarks.loadgen)."""
    warmup: int = 0
    """Ledgers published before the measured ones (burst mode): checked like the rest,
    their latencies reported apart (``warmup_ms``), not in p50/p99/max. A connection's
    first ledger meets a receive window that has not yet grown; see WARMUP."""

    def publisher_params(self) -> dict[str, Any]:
        """The publisher's ``run`` arguments for this scenario's size."""
        params = dict(self.publish)
        params["subscribers"] = self.connections
        if params.get("mode") == "burst":
            measured = max(1, math.ceil(self.duration / params["interval"]))
            params["ledgers"] = measured + self.warmup
        elif params.get("mode") == "flood":
            params["duration"] = self.duration
            params["window"] = self.window_per_subscriber * self.connections
        return params


COALESCE: Final = 0.0005
"""The latency scenarios' wake-up coalescing: at most half a millisecond added to a
read's time, against ~480 cross-core wake-ups a ledger taken off the server's core."""
WARMUP: Final = 1
"""Warm-up ledgers in the latency scenarios. All their connections opened moments
before, so the first ledger (121 kB a subscriber) meets receive windows that have not
grown: the hub's sockets still held 3.3 MB unsent on 113 of 1 000 when its first flush
ended, none after later ones, and the rest went out only as the load generator read.
A hub's subscribers in service opened their windows long ago."""
_BURST: Final = {"mode": "burst", "interval": 3.5, "tx_per_ledger": 100}
MAINNET_TX_PER_LEDGER: Final = (200, 400)
"""Transactions in an XRP Ledger mainnet ledger today, low and high; each ledger of the
mainnet scenario carries a count between them (see benchmarks.messages.ledger_sizes)."""
_MAINNET: Final = {**_BURST, "tx_per_ledger": list(MAINNET_TX_PER_LEDGER)}
_FLOOD_600: Final = {"mode": "flood", "size": 600, "rate": 0.0, "routed": False}
_FLOOD_PAYMENTS: Final = {"mode": "flood", "size": 0, "rate": 0.0, "routed": False}
"""Full mainnet-like payments (~1.25 kB, AffectedNodes and all; deflate 2.0x alone):
compression figures need realistic JSON, not the 600-byte rows' memo padding."""


def full() -> dict[str, Scenario]:
    delivery = Scenario(
        "delivery",
        "per-delivery CPU: 1 000 subscribers x 2 000 messages of ~600 bytes",
        1000,
        "broadcast",
        streams=("transactions",),
        duration=120.0,
        publish={**_FLOOD_600, "batch": 100, "count": 2000},
        servers=ALL_SERVERS,
        window_per_subscriber=256,
        read_pause=0.005,
    )
    return {
        "delivery": delivery,
        "saturation": Scenario(
            "saturation",
            "saturation: ~600-byte transactions as fast as delivered, server on one core",
            1000,
            "broadcast",
            streams=("transactions",),
            duration=20.0,
            publish={**_FLOOD_600, "batch": 20},
            servers=ALL_SERVERS,
            # Deep enough that no server idles waiting for the publisher: saturation
            # latency is queueing by construction; the burst scenarios measure latency.
            window_per_subscriber=256,
            read_pause=0.005,
        ),
        "burst": Scenario(
            "burst",
            "burst: 1 000 subscribers, ledger + 100 tx (~1.2 kB) every 3.5 s",
            1000,
            "broadcast",
            streams=("ledger", "transactions"),
            duration=35.0,
            publish=_BURST,
            servers=ALL_SERVERS,
            coalesce=COALESCE,
            warmup=WARMUP,
        ),
        "mainnet": Scenario(
            "mainnet",
            "mainnet scale: 10 000 subscribers, ledger + 200-400 tx (~1.2 kB) every 3.5 s",
            10_000,
            "broadcast",
            streams=("ledger", "transactions"),
            duration=35.0,
            publish=_MAINNET,
            servers=("hub", "raw"),
            coalesce=COALESCE,
            warmup=WARMUP,
        ),
        "idle": Scenario(
            "idle",
            "idle: 19 000 connections on ledger in one process, 3 closes",
            19_000,
            "broadcast",
            streams=("ledger",),
            publish={"mode": "ledgers", "ledgers": 3, "interval": 0.5},
            memory=True,
        ),
        "idle-workers": Scenario(
            "idle-workers",
            "idle: 50 000 connections on ledger across hub serve --workers 3",
            50_000,
            "broadcast",
            streams=("ledger",),
            publish={"mode": "ledgers", "ledgers": 3, "interval": 0.5},
            memory=True,
            workers=3,
        ),
        "requests": Scenario(
            "requests",
            "requests: 100 connections x 16 pings in flight, server on one core",
            100,
            "requests",
            duration=10.0,
            inflight=16,
        ),
        "filters": Scenario(
            "filters",
            "filters: 10 accounts per subscriber",
            1000,
            "filters",
            accounts=True,
            duration=10.0,
            publish={"mode": "flood", "size": 0, "batch": 100, "rate": 0.0, "routed": True},
            window_per_subscriber=8,
        ),
        "delivery-deflate": replace(
            delivery,
            name="delivery-deflate",
            title="wire bytes and CPU per delivery, plain vs permessage-deflate:"
            " 1 000 subscribers x 2 000 payments of ~1.25 kB",
            publish={**_FLOOD_PAYMENTS, "batch": 100, "count": 2000},
            servers=DEFLATE_PAIR,
        ),
    }


def smoke() -> dict[str, Scenario]:
    """Every scenario at a size that finishes in seconds: checks the tool, not the hub."""
    sized = full()
    small_burst = {"mode": "burst", "interval": 0.5, "tx_per_ledger": 20}
    quick = {**sized["idle"].publish, "interval": 0.1}
    return {
        "delivery": replace(
            sized["delivery"], connections=20, publish={**sized["delivery"].publish, "count": 200}
        ),
        "saturation": replace(
            sized["saturation"], connections=20, duration=1.0, servers=("hub", "raw")
        ),
        "burst": replace(
            sized["burst"],
            connections=20,
            duration=1.0,
            publish=small_burst,
            servers=("hub", "websockets"),
        ),
        "mainnet": replace(
            sized["mainnet"],
            connections=60,
            duration=1.0,
            publish={**small_burst, "tx_per_ledger": [10, 30]},
            servers=("hub",),
        ),
        "idle": replace(sized["idle"], connections=200, publish=quick),
        "idle-workers": replace(sized["idle-workers"], connections=300, publish=quick),
        "requests": replace(sized["requests"], connections=10, duration=1.0),
        "filters": replace(sized["filters"], connections=20, duration=1.0),
        "delivery-deflate": replace(
            sized["delivery-deflate"],
            connections=20,
            publish={**sized["delivery-deflate"].publish, "count": 200},
        ),
    }
