"""``hub`` on the command line: ``hub serve`` today; one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

from . import config as _config
from .server import Hub


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub")
    serve.add_argument("--config", help="TOML settings file; flags override it")
    serve.add_argument("--host", help="address to listen on [server] host (127.0.0.1)")
    serve.add_argument("--port", type=int, help="[server] port (6006; 0 picks a free one)")
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="[server] log_level"
    )
    serve.add_argument("--source", help="[source] source: simulator (default) or none")
    serve.add_argument("--ledger-interval", type=float, help="[source] ledger_interval (3.5 s)")
    serve.add_argument("--tx-per-ledger", type=int, help="[source] tx_per_ledger (20)")
    serve.add_argument("--seed", type=int, help="[source] seed, for a reproducible simulator")
    return parser


_FLAGS = {
    "host": "server",
    "port": "server",
    "log_level": "server",
    "source": "source",
    "ledger_interval": "source",
    "tx_per_ledger": "source",
    "seed": "source",
}


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, section in _FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            out.setdefault(section, {})[name] = value
    return out


async def _serve(hub: Hub) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await nursery.start(hub.run)
            print(f"listening on {hub.url}", flush=True)
            async for signum in signals:
                logging.getLogger("hub").info("%s: shutting down", signal.Signals(signum).name)
                hub.shutdown()
                break


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = _config.load(args.config, _overrides(args))
    except _config.ConfigError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=cfg.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "serve":
        try:
            trio.run(_serve, Hub(cfg))
        except OSError as exc:
            print(
                f"hub: cannot listen on {cfg.server.host}:{cfg.server.port}: {exc}", file=sys.stderr
            )
            return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
