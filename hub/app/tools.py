"""``hub call`` and ``hub tail``: the command line face of the API, over WebSocket.

``hub call METHOD [PARAMS]`` sends one request and prints the answer in the command
line format of the XRPL docs' "Response Formatting" page — the JSON-RPC shape,
``{"result": {..., "status": ...}}``, indented by three spaces as rippled prints it — at
the latest API version unless ``--api-version`` says otherwise (rippled's command line
does the same). It exits 0 on success, 1 on an error reply or when it cannot ask (no
connection, no answer), 2 on a usage error (bad arguments, not a WebSocket URL).

``hub tail [STREAMS...] [--accounts ...]`` subscribes and prints every stream message
as one JSON line (``--pretty``: one short human-readable line). When the connection
drops it reconnects with backoff and resumes where it left off (``since_ledger``,
served from the hub's history), printing nothing twice; where the history no longer
reaches, it subscribes afresh and says on stderr which ledgers it missed. A first
connection that fails ends it (exit 1): there is nothing yet to follow.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import msgspec
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
)

from hub.app.failures import EXIT_STATUS, USAGE, Failure, check_ws_url, connect_error
from hub.backoff import Backoff
from hub.edge.tls import client_context
from hub.links.connect import connect
from hub.wire.envelope import resume_hint
from hub.wire.jsonrpc import from_websocket
from hub.wire.versions import MAX_VERSION
from hub.xrpl.ledgerdata import RIPPLE_EPOCH_OFFSET

DEFAULT_URL: Final = "ws://127.0.0.1:6006"
DEFAULT_STREAMS: Final = ("ledger", "transactions")

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

Emit = Callable[[str], None]


class CallError(Failure):
    """The request could not be asked: no connection, or no reply in time."""


def add_parsers(sub: Any) -> None:
    """Add ``call`` and ``tail`` to the ``hub`` command's subparsers."""
    call = sub.add_parser(
        "call",
        help="send one request and print the answer (JSON-RPC / command line shape)",
        description="Send one request to a hub (or rippled, or Clio) over WebSocket and\n"
        "print the answer as rippled's command line does: the JSON-RPC shape, indented.",
        epilog=EXIT_STATUS,
    )
    call.add_argument("method", help="method name, e.g. server_info")
    call.add_argument("params", nargs="?", help="JSON object of parameters, e.g. '{\"x\": 1}'")
    _common(call)
    call.add_argument("--timeout", type=float, default=10.0, help="seconds to wait")

    tail = sub.add_parser(
        "tail",
        help="subscribe and print stream messages as they come",
        description="Subscribe and print every stream message as one JSON line (--pretty:\n"
        "one readable line). When the connection drops, it reconnects and resumes where\n"
        "it left off, printing nothing twice; a first connection that fails ends it.",
        epilog=EXIT_STATUS,
    )
    tail.add_argument(
        "streams", nargs="*", help=f"streams to follow (default: {' '.join(DEFAULT_STREAMS)})"
    )
    tail.add_argument("--accounts", nargs="+", default=[], help="accounts to follow")
    tail.add_argument("--pretty", action="store_true", help="one readable line per message")
    tail.add_argument("--count", type=int, help="stop after this many messages")
    _common(tail)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL, help="the hub's ws:// or wss:// URL")
    parser.add_argument(
        "--api-version", type=int, default=MAX_VERSION, help="API version of the request"
    )
    parser.add_argument("--token", help="admin bearer token ([admin] token)")
    parser.add_argument("--cafile", help="PEM file of the CAs to trust for a wss:// URL")


def main(args: argparse.Namespace) -> int:
    """``hub call`` or ``hub tail``: the exit status; raises Failure for its one line."""
    check_ws_url(args.url)
    try:
        if args.command == "call":
            return _call_main(args)
        return _tail_main(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hub tail | head`: the reader is gone, so are we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def ssl_context(url: str, cafile: str | None) -> ssl.SSLContext | None:
    """The context that verifies a ``wss://`` ``url``: ``cafile``'s CAs, or the system's."""
    return client_context(cafile) if url.startswith("wss:") else None


# ---- hub call ---------------------------------------------------------------------------


def _call_main(args: argparse.Namespace) -> int:
    try:
        params = _params(args.params)
    except ValueError as exc:
        raise Failure(f'{exc}; e.g. \'{{"ledger_index": "validated"}}\'', USAGE) from None
    reply = trio.run(
        partial(call, cafile=args.cafile),
        args.url,
        args.method,
        params,
        args.api_version,
        args.token,
        args.timeout,
    )
    print(format_reply(reply))
    return 1 if reply.get("status") == "error" or "error" in reply else 0


def _params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"params must be a JSON object: {exc}") from None
    if not isinstance(params, dict):
        raise ValueError("params must be a JSON object")
    return params


def format_reply(reply: dict[str, Any]) -> str:
    """A WebSocket reply as the command line prints it: JSON-RPC shape, indent 3."""
    return json.dumps(from_websocket(reply), indent=3)


async def call(
    url: str,
    method: str,
    params: dict[str, Any],
    api_version: int | None = MAX_VERSION,
    token: str | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109
    *,
    cafile: str | None = None,
) -> dict[str, Any]:
    """The hub's WebSocket reply to one request; raises CallError if it cannot get one."""
    # No ``id``: the one request's reply is the one ``response`` on this socket, and the
    # echoed ``request`` is then exactly what JSON-RPC would echo.
    request = {key: value for key, value in params.items() if key not in ("method", "id")}
    request["command"] = method
    if api_version is not None:
        request["api_version"] = api_version
    try:
        with trio.fail_after(timeout):
            async with _websocket(url, token, cafile) as ws:
                try:
                    await ws.send_message(_encode(request).decode())
                    while True:
                        reply = _decode(await ws.get_message())
                        if isinstance(reply, dict) and reply.get("type") == "response":
                            return reply
                except ConnectionClosed as exc:
                    raise CallError(f"{url} closed the connection: {exc.reason}") from None
    except (OSError, HandshakeError) as exc:
        raise CallError(str(connect_error(url, exc))) from None
    except trio.TooSlowError:
        raise CallError(
            f"no answer from {url} within {timeout} s; try a longer --timeout"
        ) from None


def _websocket(
    url: str, token: str | None, cafile: str | None
) -> AbstractAsyncContextManager[WebSocketConnection]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return connect(url, extra_headers=headers, ssl_context=ssl_context(url, cafile))


# ---- hub tail ---------------------------------------------------------------------------


def _tail_main(args: argparse.Namespace) -> int:
    streams = list(args.streams) or ([] if args.accounts else list(DEFAULT_STREAMS))
    return trio.run(
        _run_tail,
        args.url,
        streams,
        args.accounts,
        args.api_version,
        args.pretty,
        args.token,
        args.count,
        args.cafile,
    )


async def _run_tail(
    url: str,
    streams: list[str],
    accounts: list[str],
    api_version: int,
    pretty: bool,
    token: str | None,
    count: int | None,
    cafile: str | None,
) -> int:
    def out(line: str) -> None:
        print(line, flush=True)

    def note(line: str) -> None:
        print(f"hub tail: {line}", file=sys.stderr, flush=True)

    return await tail(
        url,
        streams,
        accounts,
        api_version=api_version,
        pretty=pretty,
        token=token,
        count=count,
        emit=out,
        note=note,
        cafile=cafile,
    )


async def tail(
    url: str,
    streams: Sequence[str],
    accounts: Sequence[str] = (),
    *,
    api_version: int = MAX_VERSION,
    pretty: bool = False,
    token: str | None = None,
    count: int | None = None,
    emit: Emit,
    note: Emit,
    backoff: Backoff | None = None,
    cafile: str | None = None,
) -> int:
    """Print stream messages until ``count`` of them (forever if None); 1 if refused.

    Reconnects with backoff and subscribes again whenever the connection drops; a
    subscribe the hub refuses (bad stream name, bad account) ends it with 1. Raises
    :class:`~hub.app.failures.Failure` when the first connection cannot be opened.
    """
    follower = _Follower(url, streams, accounts, api_version, pretty, count, emit, note)
    backoff = backoff or Backoff(initial=0.5, maximum=10.0)
    connected = False
    while True:
        try:
            async with _websocket(url, token, cafile) as ws:
                connected = True
                try:
                    done = await follower.follow(ws, backoff)
                except ConnectionClosed as exc:
                    reason = exc.reason
                    why = f"{reason.code} {reason.reason or ''}".strip() if reason else "closed"
                    follower.hint = resume_hint(reason.reason if reason else None)
                    note(f"connection closed ({why})")
                else:
                    return done
        except (OSError, HandshakeError) as exc:
            if not connected:
                raise connect_error(url, exc) from None
            note(str(connect_error(url, exc)))
        delay = backoff.next()
        note(f"reconnecting in {delay:.1f} s")
        await trio.sleep(delay)


class _Follower:
    """One ``tail``'s subscription and what it has printed, across reconnections.

    On a reconnection it asks the hub to resume (``since_ledger``: everything after the
    ledger before the newest one it printed anything of) and skips what it already
    printed of that ledger. A hub whose history no longer reaches back (or a server
    that keeps none) gets a plain subscribe instead, and the gap is reported.
    """

    _REMEMBERED = 100_000  # keys of recent ledger-bound messages, to skip replayed ones

    def __init__(
        self,
        url: str,
        streams: Sequence[str],
        accounts: Sequence[str],
        api_version: int,
        pretty: bool,
        count: int | None,
        emit: Emit,
        note: Emit,
    ) -> None:
        self.url = url
        self.request: dict[str, Any] = {"command": "subscribe", "api_version": api_version}
        if streams:
            self.request["streams"] = list(streams)
        if accounts:
            self.request["accounts"] = list(accounts)
        self.pretty = pretty
        self.count = count
        self.emit = emit
        self.note = note
        self.printed = 0
        self.last_ledger: int | None = None
        self.hint: int | None = None
        self._seen: set[tuple[Any, ...]] = set()
        self._order: deque[tuple[Any, ...]] = deque()

    async def follow(self, ws: WebSocketConnection, backoff: Backoff) -> int:
        """Subscribe on ``ws`` and print until done: 0 at ``count``, 1 if refused."""
        since = None if self.last_ledger is None else self.last_ledger - 1
        if self.hint is not None and since is not None:
            # A draining hub said where nothing is lost; it may save a ledger's replay.
            since = max(since, self.hint)
        self.hint = None
        if since is None:
            await self._send(ws, "live")
        else:
            await self._send(ws, "resume", since_ledger=since)
        while True:
            message = _decode(await ws.get_message())
            if not isinstance(message, dict):
                continue
            if message.get("type") == "response":
                tag = message.get("id")
                ok = message.get("status") == "success"
                if tag == "resume" and not ok:
                    why = message.get("error_message", message.get("error"))
                    self.note(f"cannot resume after ledger {since}: {why}")
                    await self._send(ws, "live")
                elif tag in ("live", "resume") and not ok:
                    self.note(f"subscribe refused:\n{format_reply(message)}")
                    return 1
                elif tag in ("live", "resume"):
                    backoff.reset()
                    self._subscribed(message.get("result") or {})
                continue
            if self._already_printed(message):
                continue
            self.emit(pretty_line(message) if self.pretty else _encode(message).decode())
            self.printed += 1
            if self.count is not None and self.printed >= self.count:
                return 0

    async def _send(self, ws: WebSocketConnection, tag: str, **extra: Any) -> None:
        await ws.send_message(_encode({**self.request, **extra, "id": tag}).decode())

    def _already_printed(self, message: dict[str, Any]) -> bool:
        """Remember a ledger-bound message; True if it was printed before (a replay)."""
        kind = message.get("type")
        index = message.get("ledger_index")
        if kind == "transaction" and message.get("validated"):
            key: tuple[Any, ...] = (kind, message.get("hash"))
        elif kind in ("ledgerClosed", "bookChanges"):
            key = (kind, index)
        elif kind == "validationReceived":
            key = (kind, index, message.get("validation_public_key"))
        else:
            return False
        if isinstance(index, int) and (self.last_ledger is None or index > self.last_ledger):
            self.last_ledger = index
        if key in self._seen:
            return True
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._REMEMBERED:
            self._seen.discard(self._order.popleft())
        return False

    def _subscribed(self, result: dict[str, Any]) -> None:
        if "resumed_from" in result:
            self.note(
                f"resumed {self.url} from ledger {result['resumed_from']} "
                f"({result.get('resumed_messages', 0)} messages replayed)"
            )
            return
        self.note(f"subscribed to {self.url}")
        index = result.get("ledger_index")
        last = self.last_ledger
        if last is not None and isinstance(index, int) and index > last + 1:
            self.note(f"missed ledgers {last + 1}-{index - 1} while reconnecting")


# ---- --pretty ---------------------------------------------------------------------------


def pretty_line(message: dict[str, Any]) -> str:
    """One compact line for a human: the fields that matter for each kind of message."""
    kind = message.get("type")
    if kind == "ledgerClosed":
        return (
            f"ledger {message.get('ledger_index')}  {_short(message.get('ledger_hash'), 8, 6)}  "
            f"{message.get('txn_count', '?')} txns  {_ripple_time(message.get('ledger_time'))}"
        )
    if kind == "transaction":
        tx = message.get("tx_json") or message.get("transaction") or {}
        meta = message.get("meta") or {}
        who = str(tx.get("Account", "?"))
        if tx.get("Destination"):
            who += f" -> {tx['Destination']}"
        amount = _amount(meta.get("delivered_amount") or tx.get("DeliverMax") or tx.get("Amount"))
        result = meta.get("TransactionResult") or message.get("engine_result") or ""
        state = "" if message.get("validated", True) else " (proposed)"
        parts = [
            f"tx {message.get('ledger_index', '?')}",
            f"{tx.get('TransactionType', '?'):<14}",
            who,
            amount,
            f"{result}{state}",
            _short(message.get("hash") or tx.get("hash"), 8, 4),
        ]
        return "  ".join(part for part in parts if part)
    if kind == "validationReceived":
        return (
            f"validation ledger {message.get('ledger_index')} "
            f"by {_short(message.get('validation_public_key'), 10, 4)}"
        )
    text = _encode({k: v for k, v in message.items() if k != "type"}).decode()
    return f"{kind} {text if len(text) <= 160 else text[:157] + '...'}"


def _short(value: Any, head: int, tail: int) -> str:
    text = str(value or "")
    return text if len(text) <= head + tail + 1 else f"{text[:head]}…{text[-tail:]}"


def _ripple_time(seconds: Any) -> str:
    if not isinstance(seconds, int):
        return ""
    return datetime.fromtimestamp(seconds + RIPPLE_EPOCH_OFFSET, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _amount(amount: Any) -> str:
    if isinstance(amount, str) and amount.isdigit():
        return f"{int(amount) / 1_000_000:g} XRP"
    if isinstance(amount, dict) and "value" in amount:
        return f"{amount['value']} {amount.get('currency', '')}"
    return ""
