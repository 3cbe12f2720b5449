"""The methods the hub answers itself. Each returns the ``result`` object of its reply.

Registered the way seed 003 describes: ``since`` is the API version at which that
definition starts; a request at version N runs the newest definition at or below N.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from . import books, events, identity
from .dispatch import Call, Methods
from .errors import RPCError
from .fanout import route
from .session import Session
from .subscriptions import Change, Subscriptions, parse_change, wants_snapshot

METHODS = Methods()

try:
    BUILD_VERSION = version("hub")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    BUILD_VERSION = "0.0.0"


@METHODS.register("ping", inline=True)
async def ping(call: Call) -> dict[str, Any]:
    """rippled's doPing: an admin learns its role, and on a WebSocket (the only
    transport with a consumer to be exempt) that it is never charged."""
    if not call.session.admin:
        return {}
    return {"role": "admin", "unlimited": True} if call.session.streams else {"role": "admin"}


@METHODS.register("version", inline=True)
async def version_v1(call: Call) -> dict[str, Any]:
    return {"version": {"first": "1.0.0", "good": "1.0.0", "last": "1.0.0"}}


@METHODS.register("version", since=2, inline=True)
async def version_v2(call: Call) -> dict[str, Any]:
    versions = call.hub.versions
    return {"version": {"first": versions.first, "last": versions.last}}


@METHODS.register("server_info", inline=True)
async def server_info(call: Call) -> dict[str, Any]:
    hub = call.hub
    upstream = hub.upstream_identity
    info: dict[str, Any] = {
        "build_version": (upstream and upstream.build_version)
        or identity.build_version(BUILD_VERSION),
        "server_state": _server_state(call),
        "uptime": int(time.monotonic() - hub.started),
        "complete_ledgers": hub.ledger.complete_ledgers(),
        "load_factor": 1,
        "peers": 0,
        "network_id": hub.network_id,
        "hostid": hub.identity.hostid(call.session.admin),
        "pubkey_node": hub.identity.pubkey_node,
    }
    validated = hub.ledger.validated_ledger(time.monotonic())
    if validated is not None:
        info["validated_ledger"] = validated
    info["hub"] = {"build_version": BUILD_VERSION, **_hub_figures(call)}
    return {"info": info}


def _server_state(call: Call) -> str:
    """rippled's operating mode as the hub can know it: ``full`` once it has a
    ledger, ``connected`` before."""
    return "full" if call.hub.ledger.latest is not None else "connected"


def _hub_figures(call: Call) -> dict[str, Any]:
    """The hub's own live figures; client addresses only for admins."""
    hub, stats = call.hub, call.hub.stats
    queued = [len(conn.session.outbox) for conn in hub.connections]
    queued_bytes = [conn.session.outbox.nbytes for conn in hub.connections]
    top = [
        {"client": str(key), "balance": round(balance)}
        if call.session.admin
        else {"balance": round(balance)}
        for key, balance in hub.load.top(5)
    ]
    return {
        "connections": len(hub.connections),
        "in_flight_requests": sum(conn.inflight for conn in hub.connections),
        "requests": stats.requests,
        "events_published": stats.events_published,
        "events_rejected": stats.events_rejected,
        "deliveries": stats.deliveries,
        "bytes_sent": stats.bytes_sent,
        "subscribers": hub.subscriptions.counts(),
        "queues": {
            "messages": sum(queued),
            "bytes": sum(queued_bytes),
            "max_bytes": max(queued_bytes, default=0),
        },
        **({"upstream": hub.upstream.as_json()} if hub.upstream else {}),
        **({"broker": hub.broker.status.as_json()} if hub.broker else {}),
        **({"worker": hub.worker} if hub.worker else {}),
        "load": {
            "warnings": stats.load_warnings,
            "drops": stats.load_drops,
            "slow_consumer_closes": stats.slow_closes,
            "connections_refused": stats.connections_refused,
            "warned_clients": sum(conn.session.warned for conn in hub.connections),
            "top_balances": top,
        },
    }


@METHODS.register("connections", admin=True, inline=True)
async def connections(call: Call) -> dict[str, Any]:
    """Every open connection, for operators hunting a noisy or stuck client."""
    hub = call.hub
    out = []
    for conn in sorted(hub.connections, key=lambda c: c.session.id):
        session = conn.session
        own = hub.subscriptions.own(session)
        out.append(
            {
                "id": session.id,
                "remote": session.remote,
                "admin": session.admin,
                "api_version": session.stream_version,
                "balance": round(hub.load.balance(session.load_key)),
                "warned": session.warned,
                "in_flight": conn.inflight,
                "queued_messages": len(session.outbox),
                "queued_bytes": session.outbox.nbytes,
                "subscriptions": {
                    "streams": sorted(own.streams),
                    "accounts": len(own.accounts),
                    "accounts_proposed": len(own.accounts_proposed),
                    "books": len(own.books),
                },
            }
        )
    return {"connections": out}


@METHODS.register("subscribe", inline=lambda body: not wants_snapshot(body))
async def subscribe(call: Call) -> dict[str, Any]:
    """Add subscriptions; this connection's streams now render at this request's version.

    Book snapshots are read first (the only wait), then everything goes live in one
    step: a failed snapshot changes nothing, and what was published while it was read
    follows the reply from the history, so snapshot and stream meet without a gap.
    """
    hub, session = call.hub, call.session
    _needs_a_stream(call)
    change = parse_change(call.params, admin=session.admin)
    _within_limit(call, change)
    since = _since_ledger(call)
    snapshot = await _snapshot(call, change) if change.snapshots else None
    _within_limit(call, change)
    call.extra_cost = hub.load.policy.cost("subscribe_item", change.size)
    if snapshot is not None:
        call.extra_cost += hub.load.policy.cost("snapshot", len(change.snapshots))
    hub.subscriptions.subscribe(session, change)
    session.stream_version = call.api_version
    result = hub.ledger.subscribe_fields() if "ledger" in change.streams else {}
    if "server" in change.streams:
        result.update(
            identity.server_fields(
                hub.identity, admin=session.admin, server_status=_server_state(call)
            )
        )
    if since is not None:
        result.update(_replay(call, change, since))
    if snapshot is not None:
        result.update(snapshot.result)
        if since is None and snapshot.ledger_index is not None:
            _catch_up(call, change, snapshot.ledger_index)
    return result


def _within_limit(call: Call, change: Change) -> None:
    limit = call.hub.config.limits.max_subscriptions_per_connection
    if call.hub.subscriptions.own(call.session).size + change.size > limit:
        raise RPCError(
            "invalidParams", f"Too many subscriptions on one connection (limit {limit})."
        )


async def _snapshot(call: Call, change: Change) -> books.Snapshot:
    source = call.hub.book_source
    if source is None:
        raise RPCError(
            "notSupported", "Book snapshots need a source that holds books (simulator, upstream)."
        )
    return await books.take_snapshot(source, change.snapshots, call.hub.ledger.index)


def _catch_up(call: Call, change: Change, read_at: int) -> None:
    """Queue after the reply the book messages of ledgers published after the one the
    snapshot was read from (a ledger that closed while an upstream was asked)."""
    only_books = Change(books=change.books)
    if call.hub.history.latest is not None and call.hub.history.latest > read_at:
        _replay(call, only_books, read_at)


def _since_ledger(call: Call) -> int | None:
    """The validated ``since_ledger`` of a resume, or None; raises before anything changes."""
    if "since_ledger" not in call.params:
        return None
    since = call.params["since_ledger"]
    if type(since) is not int or since < 0:
        raise RPCError("invalidParams", "Field 'since_ledger' must be a ledger index.")
    floor = call.hub.history.resumable_from
    if floor is None or since < floor:
        where = "no ledger yet" if floor is None else f"since_ledger {floor} at the earliest"
        raise RPCError(
            "lgrNotFound",
            f"Cannot resume after ledger {since}: the history holds {where}.",
            since_ledger_min=floor,
        )
    return since


def _replay(call: Call, change: Change, since: int) -> dict[str, Any]:
    """Queue, after the reply, what the new subscriptions missed after ledger ``since``.

    Routed with the live rules against this request's subscriptions alone and sent as
    the very frames live subscribers got; no await separates it from going live, so
    nothing is missed or sent twice at the seam.
    """
    session = call.session
    only_these: Subscriptions[Session] = Subscriptions()
    only_these.subscribe(session, change)
    version = call.api_version
    for entry in call.hub.history.since(since):
        for group in route(entry.event, only_these):
            if session in group:
                call.followups.append(entry.frames(version))
    latest = call.hub.history.latest
    return {
        "resumed_from": since + 1,
        "resumed_to": max(since, latest if latest is not None else since),
        "resumed_messages": len(call.followups),
    }


def _needs_a_stream(call: Call) -> None:
    """A transport without a stream (JSON-RPC) needs a callback ``url``, as in rippled;
    the hub sends no callbacks, so with one it is ``noPermission`` or ``notSupported``."""
    if call.session.streams:
        return
    if "url" not in call.params:
        raise RPCError("invalidParams", "Over JSON-RPC, subscriptions need a callback 'url'.")
    if not call.session.admin:
        raise RPCError("noPermission")
    raise RPCError("notSupported", "The hub does not send subscription callbacks to a URL.")


@METHODS.register("unsubscribe", inline=True)
async def unsubscribe(call: Call) -> dict[str, Any]:
    _needs_a_stream(call)
    change = parse_change(call.params, admin=call.session.admin)
    call.hub.subscriptions.unsubscribe(call.session, change)
    return {}


@METHODS.register("ledger_closed", inline=True)
async def ledger_closed(call: Call) -> dict[str, Any]:
    latest = call.hub.ledger.latest
    if latest is None:
        raise RPCError("lgrNotFound", "No ledger has closed yet.")
    return {"ledger_hash": latest["ledger_hash"], "ledger_index": latest["ledger_index"]}


@METHODS.register("ledger_current", inline=True)
async def ledger_current(call: Call) -> dict[str, Any]:
    index = call.hub.ledger.index
    if index is None:
        raise RPCError("lgrNotFound", "No ledger has closed yet.")
    return {"ledger_current_index": index + 1}


@METHODS.register("publish", admin=True)
async def publish(call: Call) -> dict[str, Any]:
    """Publish a batch of stream messages in order; one invalid message rejects them all."""
    messages = call.params.get("messages")
    if not isinstance(messages, list):
        raise RPCError("invalidParams", "Field 'messages' must be an array.")
    batch = []
    for i, message in enumerate(messages):
        try:
            batch.append(events.parse(message))
        except events.EventError as exc:
            raise RPCError("invalidParams", f"messages[{i}]: {exc}") from None
    await call.hub.publish_batch(batch)
    return {"published": len(batch)}
