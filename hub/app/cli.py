"""``hub`` on the command line: serve, record, call, tail, one subcommand per job.

Every failure ends in one line on stderr and a documented exit status
(:mod:`hub.app.failures`), never a traceback. ``hub serve`` follows the convention of
gunicorn and nginx for its signals: SIGINT stops at once, SIGTERM drains first.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Final

import trio
from trio_websocket import ConnectionClosed, HandshakeError

from hub import config as _config
from hub.app import gcpolicy, logsetup, tools
from hub.app.compose import Hub, check
from hub.app.failures import EXIT_STATUS, USAGE, Failure, check_ws_url, connect_error, listen_error
from hub.app.rlimit import raise_open_files

log = logging.getLogger("hub")

DESCRIPTION: Final = """\
A WebSocket subscription and notification hub that speaks the XRP Ledger
rippled/Clio API. One subcommand per job; 'hub COMMAND --help' describes each."""
SIGNALS: Final = """\
signals:
  SIGINT (Ctrl-C)  close every client at once, with 1001 and the since_ledger to
                   resume from, and exit 0
  SIGTERM          drain, then exit 0: /health answers 503, connected clients keep
                   their streams for drain_seconds, then are closed with 1001 spread
                   over drain_spread; a second SIGTERM, or a SIGINT, closes them at once
  SIGHUP           reload the TLS certificate and key
  With --workers the parent passes SIGINT or SIGTERM on to every worker.

"""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; each option's default, when it has one,
    after its help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default:" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """A parser with :class:`_Help` that knows its subcommands' parsers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        self.commands = action.choices
        return action


_FLAGS = {
    "host": "server",
    "port": "server",
    "log_level": "server",
    "log_format": "server",
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
_DEFAULTS: Final = _config.Config()


def _flag(
    parser: argparse.ArgumentParser, flag: str, text: str, unset: str = "unset", **kwargs: Any
) -> None:
    """A flag of ``hub serve``: it overrides its config key, whose default it shows
    (``unset`` says what no value means)."""
    name = flag.removeprefix("--").replace("-", "_")
    section = _FLAGS[name]
    value = getattr(getattr(_DEFAULTS, section), name)
    shown = unset if value is None else str(value).lower() if isinstance(value, bool) else value
    parser.add_argument(flag, help=f"{text} ([{section}] {name}; default: {shown})", **kwargs)


def _serve_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the hub",
        description="Run the hub: WebSocket, JSON-RPC, /health, /metrics and the dashboard\n"
        "on one port. Flags override the --config file; each names its config key.",
        epilog=SIGNALS + EXIT_STATUS,
    )
    serve.add_argument("--config", help="TOML settings file (see hub.example.toml)")
    _flag(serve, "--host", "address to listen on; 0.0.0.0 or :: for every interface")
    _flag(serve, "--port", "port to listen on; 0 picks a free one", type=int)
    _flag(serve, "--log-level", "log threshold", choices=["debug", "info", "warning", "error"])
    _flag(
        serve, "--log-format", "one line per record, or one JSON object", choices=["text", "json"]
    )
    _flag(
        serve,
        "--source",
        "where events come from: simulator, none, upstream:ws://A[,ws://B...] or replay:FILE",
    )
    _flag(serve, "--ledger-interval", "simulator: seconds between ledgers", type=float)
    _flag(serve, "--tx-per-ledger", "simulator: transactions per ledger", type=int)
    _flag(serve, "--seed", "simulator: a seed for a reproducible run", "random", type=int)
    _flag(serve, "--speed", "replay: speed factor; 0 plays without pauses", type=float)
    _flag(serve, "--loop", "replay: play forever", action="store_true", default=None)
    _flag(serve, "--tls-cert", "PEM certificate (chain) to serve wss:// and https://", "no TLS")
    _flag(serve, "--tls-key", "PEM private key of --tls-cert", "no TLS")
    _flag(serve, "--drain-seconds", "on SIGTERM, seconds to keep serving clients", type=float)
    _flag(serve, "--drain-spread", "then, seconds to spread their closes over", type=float)
    _flag(
        serve,
        "--broker",
        "redis://host:port/db: this hub is a node of a cluster (needs the redis extra)",
        "none, a hub on its own",
    )
    _flag(serve, "--workers", "processes accepting on the port", type=int)


def _record_parser(sub: Any) -> None:
    record = sub.add_parser(
        "record",
        help="write a hub's, rippled's or Clio's stream to a file",
        description="Subscribe to a hub, rippled or Clio and write every stream message to\n"
        "FILE, one JSON line each, until --count, --duration or Ctrl-C;\n"
        "'hub serve --source replay:FILE' plays it back.",
        epilog=EXIT_STATUS,
    )
    record.add_argument("url", help="ws:// or wss:// URL to subscribe to")
    record.add_argument("file", help="JSON-lines file to write")
    record.add_argument(
        "--streams",
        default="ledger,transactions,validations,book_changes",
        help="comma-separated streams",
    )
    record.add_argument("--count", type=int, help="stop after this many messages")
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    record.add_argument("--cafile", help="PEM file of the CAs to trust for a wss:// URL")


def _version() -> str:
    try:
        return metadata.version("xrpl-stream-hub")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def _parser() -> _Parser:
    parser = _Parser(prog="hub", description=DESCRIPTION, epilog=EXIT_STATUS)
    parser.add_argument("--version", action="version", version=f"hub {_version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _serve_parser(sub)
    _record_parser(sub)
    tools.add_parsers(sub)
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; an option the subcommand does not know is refused with the
    subcommand's usage (argparse would print the top-level one)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, section in _FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            out.setdefault(section, {})[name] = value
    return out


async def _serve(hub: Hub) -> None:
    """Serve until a signal: SIGINT closes every client at once, SIGTERM drains first
    (a second signal then closes at once), SIGHUP reloads the TLS certificate."""
    cfg = hub.config.server
    try:
        listeners = await trio.open_tcp_listeners(cfg.port, host=cfg.host)
    except OSError as exc:
        raise listen_error(cfg.host, cfg.port, exc) from None
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:

            async def serve(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                await hub.run(listeners=listeners, task_status=task_status)
                nursery.cancel_scope.cancel()

            await nursery.start(serve)
            nursery.start_soon(gcpolicy.run, hub.connection_counts)
            print(f"listening on {hub.url}", flush=True)
            stopping = False
            async for signum in signals:
                if signum == signal.SIGHUP:
                    hub.reload_tls()
                    continue
                name = signal.Signals(signum).name
                if signum == signal.SIGINT or stopping:
                    log.info("%s: closing every connection now, then shutting down", name)
                    hub.shutdown()
                    hub.shutdown()  # a second call skips the drain (Server.shutdown)
                else:
                    log.info("%s: draining, then shutting down", name)
                    hub.shutdown()
                stopping = True


def main(argv: Sequence[str] | None = None) -> int:
    """``hub ARGS``: the exit status; every failure is one line on stderr."""
    args = parse(argv)
    try:
        if args.command == "record":
            return _record(args)
        if args.command in ("call", "tail"):
            return tools.main(args)
        return _serve_main(args)
    except Failure as exc:
        print(f"{_prog(args)}: {exc}", file=sys.stderr)
        return exc.status
    except _config.ConfigError as exc:
        print(f"{_prog(args)}: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are in place
        return 130


def _prog(args: argparse.Namespace) -> str:
    return "hub" if args.command == "serve" else f"hub {args.command}"


def _serve_main(args: argparse.Namespace) -> int:
    cfg = _config.load(args.config, _overrides(args))
    check(cfg)
    logsetup.configure(cfg.server.log_level, cfg.server.log_format)
    raise_open_files()  # worker processes inherit it
    try:
        if cfg.cluster.workers > 1:
            from hub.app.workers import serve_workers

            return serve_workers(cfg)
        trio.run(_serve, Hub(cfg))
    except BaseExceptionGroup as group:
        _not_a_recording(group, cfg.source.source)
        raise
    return 0


def _not_a_recording(group: BaseExceptionGroup[Any], source: str) -> None:
    """Raise the usage Failure for a replay file that is not a recording, when that is
    all that went wrong (it is found as the source starts, inside the hub's nurseries)."""
    from hub.sources.playback import RecordingError

    found, rest = group.split(RecordingError)
    if found is None or rest is not None:
        return
    leaf: BaseException = found
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    raise Failure(
        f"[source] source {source}: not a recording ({leaf}); give a file written by "
        "`hub record URL FILE`",
        USAGE,
    ) from None


def _record(args: argparse.Namespace) -> int:
    from hub.sources.record import RecordError, record

    check_ws_url(args.url, "URL")
    directory = os.path.dirname(os.path.abspath(args.file))
    if not os.path.isdir(directory) or os.path.isdir(args.file):
        raise Failure(f"cannot write {args.file}: no such directory; check FILE", USAGE)
    logsetup.configure("info")
    streams = [name for name in args.streams.split(",") if name]

    async def until_signal() -> None:
        try:
            async with trio.open_nursery() as nursery:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

                    async def stop_on_signal() -> None:
                        async for _ in signals:
                            nursery.cancel_scope.cancel()

                    nursery.start_soon(stop_on_signal)
                    await record(
                        args.url,
                        args.file,
                        streams=streams,
                        count=args.count,
                        duration=args.duration,
                        ssl_context=tools.ssl_context(args.url, args.cafile),
                    )
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # the nursery's: a lone error as itself
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0]  # noqa: B904 (keeps trio's cause: why it failed)
            raise

    try:
        trio.run(until_signal)
    except (OSError, HandshakeError) as exc:
        raise connect_error(args.url, exc) from None
    except RecordError as exc:
        raise Failure(str(exc)) from None
    except ConnectionClosed as exc:
        raise Failure(f"{args.url} closed the connection ({exc.reason})") from None
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
