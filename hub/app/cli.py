"""``hub`` on the command line: serve, record, call, tail — one subcommand per job."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

from hub import config as _config
from hub.app import gcpolicy, tools
from hub.app.compose import Hub
from hub.app.rlimit import raise_open_files


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
    serve.add_argument(
        "--source",
        help="[source] source: simulator (default), none, upstream:ws://A[,ws://B…],"
        " or replay:FILE",
    )
    serve.add_argument("--ledger-interval", type=float, help="[source] ledger_interval (3.5 s)")
    serve.add_argument("--tx-per-ledger", type=int, help="[source] tx_per_ledger (20)")
    serve.add_argument("--seed", type=int, help="[source] seed, for a reproducible simulator")
    serve.add_argument("--speed", type=float, help="[source] speed of a replay (1; 0 = no pauses)")
    serve.add_argument(
        "--loop", action="store_true", default=None, help="[source] loop: replay forever"
    )
    serve.add_argument("--tls-cert", help="[server] tls_cert: PEM certificate (chain) for wss://")
    serve.add_argument("--tls-key", help="[server] tls_key: PEM private key")
    serve.add_argument(
        "--drain-seconds", type=float, help="[server] drain_seconds: serve on after SIGTERM (10)"
    )
    serve.add_argument(
        "--drain-spread", type=float, help="[server] drain_spread: seconds to close them over (2)"
    )
    serve.add_argument(
        "--broker", help="[cluster] broker: redis://host:port/db makes this hub a cluster node"
    )
    serve.add_argument(
        "--workers", type=int, help="[cluster] workers: processes accepting on the port (1)"
    )
    record = sub.add_parser("record", help="write a hub's, rippled's or Clio's stream to a file")
    record.add_argument("url", help="ws:// or wss:// URL to subscribe to")
    record.add_argument("file", help="JSON-lines file to write")
    record.add_argument(
        "--streams",
        default="ledger,transactions,validations,book_changes",
        help="comma-separated streams (ledger,transactions,validations,book_changes)",
    )
    record.add_argument("--count", type=int, help="stop after this many messages")
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    tools.add_parsers(sub)
    return parser


_FLAGS = {
    "host": "server",
    "port": "server",
    "log_level": "server",
    "tls_cert": "server",
    "tls_key": "server",
    "drain_seconds": "server",
    "drain_spread": "server",
    "source": "source",
    "ledger_interval": "source",
    "tx_per_ledger": "source",
    "seed": "source",
    "speed": "source",
    "loop": "source",
    "broker": "cluster",
    "workers": "cluster",
}


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, section in _FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            out.setdefault(section, {})[name] = value
    return out


async def _serve(hub: Hub) -> None:
    """Serve until a signal: SIGTERM or SIGINT drains (a second one closes at once),
    SIGHUP reloads the TLS certificate."""
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:

            async def serve(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                await hub.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            await nursery.start(serve)
            nursery.start_soon(gcpolicy.run, hub.connection_counts)
            print(f"listening on {hub.url}", flush=True)
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    hub.reload_tls()
                    continue
                logging.getLogger("hub").info("%s: draining, then shutting down", name)
                hub.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "record":
        return _record(args)
    if args.command in ("call", "tail"):
        return tools.main(args)
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
    raise_open_files()  # worker processes inherit it
    if args.command == "serve" and cfg.cluster.workers > 1:
        from hub.app.workers import serve_workers

        return serve_workers(cfg)
    if args.command == "serve":
        try:
            trio.run(_serve, Hub(cfg))
        except _config.ConfigError as exc:
            print(f"hub: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(
                f"hub: cannot listen on {cfg.server.host}:{cfg.server.port}: {exc}", file=sys.stderr
            )
            return 2
    return 0


def _record(args: argparse.Namespace) -> int:
    from hub.sources.record import record

    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    streams = [name for name in args.streams.split(",") if name]

    async def until_signal() -> None:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(stop_on_signal)
                await record(
                    args.url, args.file, streams=streams, count=args.count, duration=args.duration
                )
                nursery.cancel_scope.cancel()

    try:
        trio.run(until_signal)
    except (OSError, RuntimeError) as exc:
        print(f"hub record: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
