"""Relay a rippled, Clio or another hub: subscribe upstream, republish in order, mend gaps.

The relay is one task reading one upstream socket, so order is the upstream's order.
It subscribes with API v2 (the hub's native form). On disconnect it backs off
exponentially with jitter and moves to the next URL of the list. When a
``ledgerClosed`` is not the successor of the last one published, it first asks the
upstream for each missing ledger (``ledger`` with transactions expanded, and the
ledger's fee settings) and publishes what those ledgers held, in ledger order, so
subscribers see an unbroken sequence. What the upstream no longer has is logged as a
gap, never invented. Ledgers and transactions the hub already published (a fail-over
to a node that is behind) are dropped, and so are transactions of a ledger whose
``ledgerClosed`` this connection did not publish (it joined mid-ledger): that ledger
is mended whole when the next ``ledgerClosed`` shows it missing.

On each connection the relay also mends at once up to the ledger the ``subscribe``
answer names as the upstream's latest, instead of waiting for its next close.

A relay may start where another left off (a cluster's new leader, :mod:`hub.cluster.leader`):
given the :class:`~hub.core.history.Tail` of the stream, it publishes nothing up to that
ledger, and first publishes what that ledger still owed (the transactions the last
source had not published yet, fetched with ``ledger``).

The decisions are sans-IO (:class:`Sequencer`, :func:`ledger_messages`);
:func:`run_upstream` is the trio edge.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
)

from hub.backoff import Backoff
from hub.config import UPSTREAM_STREAMS
from hub.core.history import Tail
from hub.core.stats import Report
from hub.links.connect import connect
from hub.wire.decode import decode_object
from hub.xrpl.identity import UpstreamIdentity, from_server_info
from hub.xrpl.ids import fill_ids
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX, TES_MESSAGE, book_changes, ripple_time_iso

log = logging.getLogger(__name__)

# rippled's result codes for the results a validated ledger can hold (TER.h).
RESULT_CODES: Final = {
    "tesSUCCESS": 0,
    **{
        name: 100 + i
        for i, name in enumerate(
            [
                "tecCLAIM",
                "tecPATH_PARTIAL",
                "tecUNFUNDED_ADD",
                "tecUNFUNDED_OFFER",
                "tecUNFUNDED_PAYMENT",
                "tecFAILED_PROCESSING",
            ]
        )
    },
    **{
        name: 121 + i
        for i, name in enumerate(
            [
                "tecDIR_FULL",
                "tecINSUF_RESERVE_LINE",
                "tecINSUF_RESERVE_OFFER",
                "tecNO_DST",
                "tecNO_DST_INSUF_XRP",
                "tecNO_LINE_INSUF_RESERVE",
                "tecNO_LINE_REDUNDANT",
                "tecPATH_DRY",
                "tecUNFUNDED",
                "tecNO_ALTERNATIVE_KEY",
                "tecNO_REGULAR_KEY",
                "tecOWNERS",
                "tecNO_ISSUER",
                "tecNO_AUTH",
                "tecNO_LINE",
                "tecINSUFF_FEE",
                "tecFROZEN",
                "tecNO_TARGET",
                "tecNO_PERMISSION",
                "tecNO_ENTRY",
                "tecINSUFFICIENT_RESERVE",
                "tecNEED_MASTER_KEY",
                "tecDST_TAG_NEEDED",
                "tecINTERNAL",
                "tecOVERSIZE",
                "tecCRYPTOCONDITION_ERROR",
                "tecINVARIANT_FAILED",
                "tecEXPIRED",
                "tecDUPLICATE",
                "tecKILLED",
                "tecHAS_OBLIGATIONS",
                "tecTOO_SOON",
            ]
        )
    },
}

_encode = msgspec.json.Encoder().encode


class UpstreamError(Exception):
    """The upstream answered a request with an error, or not at all."""


@dataclass(slots=True)
class UpstreamStatus(Report):
    """What ``server_info`` reports as ``hub.upstream``."""

    urls: list[str]
    url: str | None = None
    connected: bool = False
    last_ledger: int | None = None
    reconnects: int = 0
    repaired_ledgers: int = 0
    missing_ledgers: int = 0
    build_version: str | None = None
    network_id: int | None = None

    def linked(self, url: str) -> bool:
        """Whether the relay is connected to this upstream right now."""
        return self.connected and self.url == url

    @property
    def identity(self) -> UpstreamIdentity | None:
        """What the upstream's ``server_info`` said when the link came up, if it did."""
        if self.build_version is None and self.network_id is None:
            return None
        return UpstreamIdentity(self.build_version, self.network_id)

    def told(self, identity: UpstreamIdentity | None) -> None:
        if identity is not None:
            self.build_version, self.network_id = identity.build_version, identity.network_id


class Action(enum.Enum):
    PUBLISH = "publish"
    DROP = "drop"
    REPAIR = "repair"


@dataclass(slots=True)
class Sequencer:
    """Which upstream messages to publish so subscribers see each ledger once, in order.

    ``current`` is the ledger whose transactions this connection may still publish: a
    ledger's transactions follow its ``ledgerClosed`` (rippled's and Clio's order), so
    once a ledger was published, validated transactions and book changes of any other
    ledger are dropped (a later ledger's are mended with it).
    """

    last: int | None = None
    current: int | None = None

    def reconnected(self) -> None:
        self.current = None

    def classify(self, message: Mapping[str, Any]) -> Action:
        kind = message.get("type")
        if kind == "ledgerClosed":
            index = message.get("ledger_index")
            if not isinstance(index, int):
                return Action.PUBLISH
            if self.last is None or index == self.last + 1:
                return Action.PUBLISH
            return Action.DROP if index <= self.last else Action.REPAIR
        if kind in ("transaction", "bookChanges") and (
            kind == "bookChanges" or message.get("validated") is True
        ):
            index = message.get("ledger_index")
            if isinstance(index, int) and self.last is not None:
                return Action.PUBLISH if index == self.current else Action.DROP
        return Action.PUBLISH

    def published(self, message: Mapping[str, Any]) -> None:
        if message.get("type") == "ledgerClosed" and isinstance(message.get("ledger_index"), int):
            self.last = self.current = message["ledger_index"]


def fees_of(node: Mapping[str, Any]) -> dict[str, int]:
    """``fee_base``, ``reserve_base``, ``reserve_inc`` from a FeeSettings ledger entry."""
    if "BaseFeeDrops" in node:
        return {
            "fee_base": int(node["BaseFeeDrops"]),
            "reserve_base": int(node["ReserveBaseDrops"]),
            "reserve_inc": int(node["ReserveIncrementDrops"]),
        }
    return {
        "fee_base": int(node["BaseFee"], 16),
        "reserve_base": int(node["ReserveBase"]),
        "reserve_inc": int(node["ReserveIncrement"]),
    }


def ledger_messages(ledger: Mapping[str, Any], fees: Mapping[str, int]) -> list[dict[str, Any]]:
    """The stream messages a ledger produced, rebuilt from a ``ledger`` answer.

    Returns ``ledgerClosed``, ``bookChanges`` (when offers crossed) and the validated
    transactions in ``TransactionIndex`` order: rippled's publish order. Accepts the
    v2 expanded form (``tx_json``, ``meta``, ``hash``) and the v1 form (fields at the
    top, ``metaData``).
    """
    contents = ledger_contents(ledger)
    closed = {
        "type": "ledgerClosed",
        "ledger_index": int(ledger["ledger_index"]),
        "ledger_hash": ledger.get("ledger_hash") or ledger["hash"],
        "ledger_time": int(ledger["close_time"]),
        **fees,
        "txn_count": sum(message["type"] == "transaction" for message in contents),
    }
    return [closed, *contents]


def ledger_contents(ledger: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What follows a ledger's ``ledgerClosed``: its ``bookChanges`` (when offers
    crossed) and validated transactions in ``TransactionIndex`` order."""
    index = int(ledger["ledger_index"])
    ledger_hash = ledger.get("ledger_hash") or ledger["hash"]
    close_time = int(ledger["close_time"])
    close_iso = ripple_time_iso(close_time)
    entries = [_split_entry(entry) for entry in ledger.get("transactions", [])]
    entries.sort(key=lambda e: int(e[1].get("TransactionIndex", 0)))
    out: list[dict[str, Any]] = []
    changes = book_changes([(tx, meta) for tx, meta, _ in entries])
    if changes:
        out.append(
            {
                "type": "bookChanges",
                "ledger_index": index,
                "ledger_hash": ledger_hash,
                "ledger_time": close_time,
                "validated": True,
                "changes": changes,
            }
        )
    for tx, meta, tx_hash in entries:
        result = meta.get("TransactionResult", "")
        message: dict[str, Any] = {
            "type": "transaction",
            "tx_json": {**tx, "date": tx.get("date", close_time)},
            "hash": tx_hash,
            "meta": meta,
            "validated": True,
            "ledger_index": index,
            "ledger_hash": ledger_hash,
            "close_time_iso": close_iso,
            "status": "closed",
            "engine_result": result,
        }
        if result in RESULT_CODES:
            message["engine_result_code"] = RESULT_CODES[result]
        if result == "tesSUCCESS":
            message["engine_result_message"] = TES_MESSAGE
        out.append(message)
    return out


def _split_entry(entry: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    if "tx_json" in entry:
        tx = dict(entry["tx_json"])
        meta = dict(entry.get("meta") or entry.get("metaData") or {})
        tx_hash = entry.get("hash") or tx.pop("hash")
        tx.pop("hash", None)
        return tx, meta, str(tx_hash)
    tx = {k: v for k, v in entry.items() if k not in ("metaData", "meta", "hash")}
    meta = dict(entry.get("metaData") or entry.get("meta") or {})
    return tx, meta, str(entry["hash"])


class _Link:
    """One upstream socket: requests answered in line, stream messages kept in order."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.backlog: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(1)

    async def request(self, body: Mapping[str, Any], timeout: float = 10) -> dict[str, Any]:  # noqa: ASYNC109
        request_id = f"hub-relay-{next(self._ids)}"
        await self.ws.send_message(_encode({**body, "id": request_id, "api_version": 2}).decode())
        with trio.fail_after(timeout):
            while True:
                message = decode_object(await self.ws.get_message())
                if message.get("id") == request_id and message.get("type") == "response":
                    if message.get("status") != "success":
                        raise UpstreamError(f"{body.get('command')}: {message.get('error')}")
                    result: dict[str, Any] = message["result"]
                    return result
                self.backlog.append(message)

    async def next_message(self) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.popleft()
        message: dict[str, Any] = decode_object(await self.ws.get_message())
        return message


@dataclass(slots=True)
class Relay:
    """Settings of one relay: where to connect and what to subscribe to."""

    urls: Sequence[str]
    streams: Sequence[str] = UPSTREAM_STREAMS
    backoff: Backoff = field(default_factory=Backoff)
    request_timeout: float = 10.0


async def run_upstream(
    send: trio.MemorySendChannel[Any],
    relay: Relay,
    status: UpstreamStatus,
    *,
    start: Tail | None = None,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Relay upstream messages into ``send`` forever, reconnecting and mending gaps;
    after ``start`` when given."""
    sequencer = Sequencer(last=None if start is None else start.ledger_index)
    owed = start if start is not None and not start.complete else None
    if start is not None:
        status.last_ledger = start.ledger_index
    task_status.started()
    for url in itertools.cycle(relay.urls):
        status.url = url
        try:
            async with connect(url, message_queue_size=10_000) as ws:
                link = _Link(ws)
                status.told(await _identify(link, relay.request_timeout))
                reply = await link.request({"command": "subscribe", "streams": list(relay.streams)})
                status.connected = True
                relay.backoff.reset()
                log.info("upstream %s: connected, subscribed to %s", url, ", ".join(relay.streams))
                sequencer.reconnected()
                if owed is not None:
                    await _finish(link, send, relay, status, owed)
                    owed = None
                await _catch_up(link, send, relay, sequencer, status, reply.get("ledger_index"))
                await _relay(link, send, relay, sequencer, status)
        except (OSError, HandshakeError, ConnectionClosed, UpstreamError, trio.TooSlowError) as exc:
            log.warning("upstream %s: %s", url, exc or type(exc).__name__)
        except Exception as exc:  # an upstream that lies costs its link, never the hub
            log.error("upstream %s sent what the relay cannot use; reconnecting", url, exc_info=exc)
        status.connected = False
        status.reconnects += 1
        delay = relay.backoff.next()
        log.info("upstream: reconnecting in %.2f s", delay)
        await trio.sleep(delay)


async def _identify(link: _Link, timeout: float) -> UpstreamIdentity | None:  # noqa: ASYNC109
    """The upstream's build version and network ID, asked before subscribing so that
    everything relayed afterwards is stamped with the right network."""
    try:
        return from_server_info(await link.request({"command": "server_info"}, timeout))
    except UpstreamError as exc:
        log.warning("upstream: server_info failed (%s); its network ID is unknown", exc)
        return None


def _stamped(message: dict[str, Any], status: UpstreamStatus) -> dict[str, Any]:
    """A message with the ctid / network_id an older upstream leaves out (hub.xrpl.ids)."""
    if status.network_id is not None:
        fill_ids(message, status.network_id)
    return message


async def _relay(
    link: _Link,
    send: trio.MemorySendChannel[Any],
    relay: Relay,
    sequencer: Sequencer,
    status: UpstreamStatus,
) -> None:
    while True:
        message = await link.next_message()
        if message.get("type") == "response":
            continue
        action = sequencer.classify(message)
        if action is Action.DROP:
            log.debug("upstream: dropped a message already published: %s", message.get("type"))
            continue
        if action is Action.REPAIR:
            assert sequencer.last is not None
            await _repair(link, send, relay, sequencer, status, message["ledger_index"])
        await send.send(_stamped(message, status))
        sequencer.published(message)
        if message.get("type") == "ledgerClosed":
            status.last_ledger = sequencer.last


async def _repair(
    link: _Link,
    send: trio.MemorySendChannel[Any],
    relay: Relay,
    sequencer: Sequencer,
    status: UpstreamStatus,
    upto: int,
) -> None:
    """Publish ledgers ``last+1 .. upto-1`` from upstream history, in order."""
    assert sequencer.last is not None
    first = sequencer.last + 1
    log.info("upstream: ledgers %d-%d were missed; fetching them", first, upto - 1)
    for index in range(first, upto):
        try:
            answer = await link.request(
                {"command": "ledger", "ledger_index": index, "transactions": True, "expand": True},
                relay.request_timeout,
            )
            fee_entry = await link.request(
                {"command": "ledger_entry", "index": FEE_SETTINGS_INDEX, "ledger_index": index},
                relay.request_timeout,
            )
        except UpstreamError as exc:
            status.missing_ledgers += 1
            log.error("upstream: ledger %d is unavailable (%s); gap left", index, exc)
            continue
        for message in ledger_messages(answer["ledger"], fees_of(fee_entry["node"])):
            await send.send(_stamped(message, status))
            sequencer.published(message)
        status.repaired_ledgers += 1
        status.last_ledger = index


async def _catch_up(
    link: _Link,
    send: trio.MemorySendChannel[Any],
    relay: Relay,
    sequencer: Sequencer,
    status: UpstreamStatus,
    latest: object,
) -> None:
    """Mend at once up to the upstream's latest ledger (its ``subscribe`` answer names
    it), rather than at its next close: a relay that takes over, or comes back, need not
    wait a ledger interval to publish what it missed. Live messages of those ledgers
    that follow are dropped (``current`` is none of them)."""
    if sequencer.last is None or not isinstance(latest, int) or latest <= sequencer.last:
        return
    await _repair(link, send, relay, sequencer, status, latest + 1)
    sequencer.reconnected()


async def _finish(
    link: _Link, send: trio.MemorySendChannel[Any], relay: Relay, status: UpstreamStatus, tail: Tail
) -> None:
    """Publish what ledger ``tail`` still owed: its book changes and transactions that
    the source before this one had not published when it stopped, in order."""
    index = tail.ledger_index
    log.info("upstream: ledger %d was cut short; publishing the rest of it", index)
    try:
        answer = await link.request(
            {"command": "ledger", "ledger_index": index, "transactions": True, "expand": True},
            relay.request_timeout,
        )
    except UpstreamError as exc:
        status.missing_ledgers += 1
        log.error("upstream: ledger %d is unavailable (%s); its rest is a gap", index, exc)
        return
    for message in ledger_contents(answer["ledger"]):
        if message["type"] == "bookChanges" and (tail.book_changes or tail.transactions):
            continue
        if message["type"] == "transaction" and message["hash"].upper() in tail.transactions:
            continue
        await send.send(_stamped(message, status))
    status.repaired_ledgers += 1
