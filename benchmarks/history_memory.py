"""What the resume history costs: the default 256 ledgers of simulated mainnet-like traffic.

    python -m benchmarks.history_memory --tx-per-ledger 20 --ledgers 256

Feeds the simulator's messages through the same path as the hub (parse, render the
frames live subscribers get at v1 and v2, keep them) and reports the memory the history
holds once it is full, measured with tracemalloc.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc

from hub.core.history import History
from hub.core.render import Renderings
from hub.sources.simulator import LedgerSimulator
from hub.xrpl import events


def measure(ledgers: int, tx_per_ledger: int, versions: tuple[int, ...]) -> dict[str, float]:
    sim = LedgerSimulator(seed=1, tx_per_ledger=tx_per_ledger)
    batches = [sim.close_ledger() for _ in range(ledgers + 8)]
    gc.collect()
    tracemalloc.start()
    history = History(ledgers)
    for batch in batches:
        for message in batch:
            event = events.parse(message)
            frames = Renderings(event)
            for version in versions:
                frames(version)
            history.add(event, frames)
    gc.collect()
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "ledgers": ledgers,
        "tx_per_ledger": tx_per_ledger,
        "versions_rendered": len(versions),
        "messages_kept": len(history),
        "mib": round(held / 2**20, 1),
        "kib_per_ledger": round(held / 1024 / ledgers, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledgers", type=int, default=256)
    parser.add_argument("--tx-per-ledger", type=int, default=20)
    args = parser.parse_args()
    results = [measure(args.ledgers, args.tx_per_ledger, versions) for versions in ((2,), (1, 2))]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
