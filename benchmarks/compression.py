"""Bytes on the wire and CPU of permessage-deflate, compressed once per message.

``python -m benchmarks.compression [--ledgers N] [--subscribers N]`` renders the
simulator's stream messages (ledger, transactions, validations, book changes) as the
hub does for a plain connection and for one that negotiated permessage-deflate, and
reports, per message: frame bytes both ways, and the CPU of building the compressed
frame once, spread over ``--subscribers`` deliveries (what fan-out pays per delivery
for it, since every subscriber gets the same bytes). In-process and without sockets:
the socket benchmark (``python -m benchmarks``) measures the rest of a delivery.
"""

from __future__ import annotations

import argparse
import time

from hub.core.render import Renderings
from hub.sources.simulator import LedgerSimulator
from hub.wire.deflate import DeflateParams
from hub.xrpl import events


def measure(ledgers: int, subscribers: int) -> dict[str, float]:
    sim = LedgerSimulator(seed=7, tx_per_ledger=20, validators=5)
    parsed = [events.parse(m) for _ in range(ledgers) for m in sim.close_ledger()]
    params = DeflateParams()
    plain = sum(len(Renderings(event)(2)) for event in parsed)
    started = time.process_time()
    packed = sum(len(Renderings(event)(2, params)) for event in parsed)
    compress_cpu = time.process_time() - started
    started = time.process_time()
    for event in parsed:
        Renderings(event)(2)
    render_cpu = time.process_time() - started
    n = len(parsed)
    return {
        "messages": n,
        "plain_bytes_per_message": plain / n,
        "compressed_bytes_per_message": packed / n,
        "ratio": plain / packed,
        "render_us_per_message": render_cpu / n * 1e6,
        "render_and_compress_us_per_message": compress_cpu / n * 1e6,
        "compress_us_per_delivery": (compress_cpu - render_cpu) / n / subscribers * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledgers", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    for key, value in measure(args.ledgers, args.subscribers).items():
        print(f"{key:36} {value:,.3f}")


if __name__ == "__main__":
    main()
