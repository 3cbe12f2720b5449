"""The five scenarios of the benchmark, at full size and at smoke size.

Each is data only: how many connections, what they subscribe to, how the worker checks
what arrives (``broadcast``: every message, contiguous; ``filters``: only those touching
its accounts; ``requests``: ping round trips), what the publisher does, and whether the
peer servers (which have no account filtering and no request methods) take part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Final

NAMES: Final = ("burst", "saturation", "idle", "requests", "filters")


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
    peers: bool = False
    inflight: int = 0
    window_per_subscriber: int = 64
    memory: bool = False

    def publisher_params(self) -> dict[str, Any]:
        """The publisher's ``run`` arguments for this scenario's size."""
        params = dict(self.publish)
        params["subscribers"] = self.connections
        if params.get("mode") == "burst":
            params["ledgers"] = max(1, math.ceil(self.duration / params["interval"]))
        elif params.get("mode") == "flood":
            params["duration"] = self.duration
            params["window"] = self.window_per_subscriber * self.connections
        return params


def full() -> dict[str, Scenario]:
    return {
        "burst": Scenario(
            "burst",
            "mainnet burst: ledger + 100 tx every 3.5 s",
            1000,
            "broadcast",
            streams=("ledger", "transactions"),
            duration=35.0,
            publish={"mode": "burst", "interval": 3.5, "tx_per_ledger": 100},
            peers=True,
        ),
        "saturation": Scenario(
            "saturation",
            "saturation: ~600-byte transactions as fast as delivered",
            1000,
            "broadcast",
            streams=("transactions",),
            duration=20.0,
            publish={"mode": "flood", "size": 600, "batch": 20, "rate": 0.0, "routed": False},
            peers=True,
            # Deep enough that no server idles waiting for the publisher: saturation
            # latency is queueing by construction; the burst scenario measures latency.
            window_per_subscriber=256,
        ),
        "idle": Scenario(
            "idle",
            "idle: connections subscribed to ledger, 3 closes",
            10_000,
            "broadcast",
            streams=("ledger",),
            publish={"mode": "ledgers", "ledgers": 3, "interval": 0.5},
            memory=True,
        ),
        "requests": Scenario(
            "requests",
            "requests: ping, 16 in flight per connection",
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
    }


def smoke() -> dict[str, Scenario]:
    """Every scenario at a size that finishes in seconds: checks the tool, not the hub."""
    sized = full()
    return {
        "burst": replace(
            sized["burst"],
            connections=20,
            duration=1.0,
            publish={"mode": "burst", "interval": 0.5, "tx_per_ledger": 20},
        ),
        "saturation": replace(sized["saturation"], connections=20, duration=1.0),
        "idle": replace(
            sized["idle"], connections=200, publish={**sized["idle"].publish, "interval": 0.1}
        ),
        "requests": replace(sized["requests"], connections=10, duration=1.0),
        "filters": replace(sized["filters"], connections=20, duration=1.0),
    }
