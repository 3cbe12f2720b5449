"""The methods the hub answers itself. Each returns the ``result`` object of its reply.

Registered the way ejabberd's "API Versioning" describes
(https://docs.ejabberd.im/developer/ejabberd-api/api_versioning/): ``since`` is the
API version at which that definition starts; a request at version N runs the newest
definition at or below N. Plain functions are answered in line; ``publish`` may wait
for room in the publish queue, ``subscribe`` when it reads book snapshots, and the
lookups (``ledger``, ``tx``, ``ledger_entry``) for a ledger still arriving or for the
upstream.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, TypeAlias

import trio

from hub.core import lookup, snapshots
from hub.core.dispatch import Call as _Call
from hub.core.dispatch import Later, Methods
from hub.core.load import Verdict
from hub.core.resume import Replay, owed
from hub.core.subscriptions import Change, Work, change_steps, drive, heavy, too_many
from hub.wire.envelope import Forwarded
from hub.wire.errors import RPCError
from hub.xrpl import events, identity

if TYPE_CHECKING:
    from hub.core.node import Node

Call: TypeAlias = _Call["Node"]
METHODS: Methods[Node] = Methods()

try:
    BUILD_VERSION = version("xrpl-stream-hub")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    BUILD_VERSION = "0.0.0"


@METHODS.register("ping")
def ping(call: Call) -> dict[str, Any]:
    """rippled's doPing: an admin learns its role, and on a WebSocket (the only
    transport with a consumer to be exempt) that it is never charged."""
    if not call.session.admin:
        return {}
    return {"role": "admin", "unlimited": True} if call.session.streams else {"role": "admin"}


@METHODS.register("version")
def version_v1(call: Call) -> dict[str, Any]:
    return {"version": {"first": "1.0.0", "good": "1.0.0", "last": "1.0.0"}}


@METHODS.register("version", since=2)
def version_v2(call: Call) -> dict[str, Any]:
    versions = call.node.versions
    return {"version": {"first": versions.first, "last": versions.last}}


@METHODS.register("server_info")
def server_info(call: Call) -> dict[str, Any]:
    node = call.node
    upstream = node.upstream_identity
    info: dict[str, Any] = {
        "build_version": (upstream and upstream.build_version)
        or identity.build_version(BUILD_VERSION),
        "server_state": _server_state(call),
        "uptime": node.uptime(),
        "complete_ledgers": node.ledger.complete_ledgers(),
        "load_factor": 1,
        "peers": 0,
        "network_id": node.network_id,
        "hostid": node.identity.hostid(call.session.admin),
        "pubkey_node": node.identity.pubkey_node,
    }
    validated = node.ledger.validated_ledger(node.clock())
    if validated is not None:
        info["validated_ledger"] = validated
    info["hub"] = {"build_version": BUILD_VERSION, **_hub_figures(call)}
    return {"info": info}


def _server_state(call: Call) -> str:
    """rippled's operating mode as the hub can know it: ``full`` once it has a
    ledger, ``connected`` before."""
    return "full" if call.node.ledger.latest is not None else "connected"


def _hub_figures(call: Call) -> dict[str, Any]:
    """The hub's own live figures; client addresses only for admins."""
    node, stats = call.node, call.node.stats
    sessions = node.sessions
    return {
        "connections": len(sessions),
        "in_flight_requests": sum(session.sink.in_flight for session in sessions),
        "requests": stats.requests,
        "events_published": stats.events_published,
        "events_rejected": stats.events_rejected,
        "deliveries": stats.deliveries,
        "bytes_sent": stats.bytes_sent,
        "subscribers": node.subscriptions.counts(),
        "queues": node.queue_figures(),
        **({"upstream": node.upstream.as_json()} if node.upstream else {}),
        **({"broker": node.bus.status.as_json()} if node.bus else {}),
        **({"cluster": node.leadership.as_json()} if node.leadership else {}),
        **({"worker": node.worker} if node.worker else {}),
        "load": {
            "warnings": stats.load_warnings,
            "drops": stats.load_drops,
            "slow_consumer_closes": stats.slow_closes,
            "connections_refused": stats.connections_refused,
            "warned_clients": sum(session.warned for session in sessions),
            "top_balances": _top_balances(node, admin=call.session.admin),
        },
    }


def _top_balances(node: Node, *, admin: bool) -> list[dict[str, Any]]:
    return [
        {"client": str(key), "balance": round(balance)} if admin else {"balance": round(balance)}
        for key, balance in node.load.top(5)
    ]


@METHODS.register("connections", admin=True)
def connections(call: Call) -> dict[str, Any]:
    """Every open connection, for operators hunting a noisy or stuck client."""
    node = call.node
    out = []
    for session in sorted(node.sessions, key=lambda s: s.id):
        own = node.subscriptions.own(session)
        out.append(
            {
                "id": session.id,
                "remote": session.remote,
                "admin": session.admin,
                "api_version": session.stream_version,
                "compression": session.deflate is not None,
                "balance": round(node.load.balance(session.load_key)),
                "warned": session.warned,
                "in_flight": session.sink.in_flight,
                "queued_messages": session.sink.queued_messages,
                "queued_bytes": session.sink.queued_bytes,
                "subscriptions": {
                    "streams": sorted(own.streams),
                    "accounts": len(own.accounts),
                    "accounts_proposed": len(own.accounts_proposed),
                    "books": len(own.books),
                },
            }
        )
    return {"connections": out}


@METHODS.register("subscribe")
def subscribe(call: Call) -> dict[str, Any] | Later:
    """Add subscriptions; this connection's streams now render at this request's version.

    Everything is checked first, and charged as it is checked. A request naming many
    accounts or books is checked in a task of its own, a chunk at a time (see
    :func:`_paced`); book snapshots are the other wait. Then the rest is awaited in a
    task (a failed snapshot has changed nothing), and goes live in one step once they
    are read; what was published meanwhile follows the reply from the history, so
    snapshot and stream meet without a gap.
    """
    _needs_a_stream(call)
    steps = _change_steps(call, limited=True)
    if heavy(call.params):
        return Later(partial(_subscribe_paced, call, steps))
    return _subscribe(call, drive(steps, call.charge))


async def _subscribe_paced(call: Call, steps: Steps) -> dict[str, Any]:
    result = _subscribe(call, await _paced(call, steps))
    return await result.rest() if isinstance(result, Later) else result


def _subscribe(call: Call, change: Change) -> dict[str, Any] | Later:
    _within_limit(call, change)
    since = _since_ledger(call)
    if change.snapshots:
        return Later(partial(_subscribe_after_snapshot, call, change, since))
    return _go_live(call, change, since, None)


Steps: TypeAlias = Generator[Work, None, Change]


def _change_steps(call: Call, *, limited: bool) -> Steps:
    limit = call.node.config.limits.max_subscriptions_per_connection if limited else None
    held = call.node.subscriptions.own(call.session)
    return change_steps(call.params, admin=call.session.admin, limit=limit, held=held)


async def _paced(call: Call, steps: Steps) -> Change:
    """Run a long parse a chunk at a time, one such request per client at a time
    (:meth:`hub.core.node.Node.lane`), letting every other task run between chunks; each
    chunk is charged before it is checked, and a client that reaches the drop
    threshold stops there."""
    node, session = call.node, call.session
    async with node.lane(session.load_key):
        while True:
            try:
                work = next(steps)
            except StopIteration as done:
                change: Change = done.value
                return change
            if node.charge(session, (work,)) is Verdict.DROP:
                raise RPCError("slowDown")
            await trio.lowlevel.checkpoint()


async def _subscribe_after_snapshot(
    call: Call, change: Change, since: int | None
) -> dict[str, Any]:
    snapshot = await _snapshot(call, change)
    _within_limit(call, change)
    if since is not None:
        since = _since_ledger(call)  # the history may have moved on meanwhile
    call.charge("snapshot", len(change.snapshots))
    return _go_live(call, change, since, snapshot)


def _go_live(
    call: Call, change: Change, since: int | None, snapshot: snapshots.Snapshot | None
) -> dict[str, Any]:
    node, session = call.node, call.session
    node.subscriptions.subscribe(session, change)
    session.stream_version = call.api_version
    node.place(session)
    result = node.ledger.subscribe_fields() if "ledger" in change.streams else {}
    if "server" in change.streams:
        status = _server_state(call)
        result.update(
            identity.server_fields(node.identity, admin=session.admin, server_status=status)
        )
    if since is not None:
        result.update(_replay(call, change, since))
    if snapshot is not None:
        result.update(snapshot.result)
        if since is None and snapshot.ledger_index is not None:
            _catch_up(call, change, snapshot.ledger_index)
    return result


def _within_limit(call: Call, change: Change) -> None:
    """The exact count, once the request is parsed: what it adds to what is held."""
    limit = call.node.config.limits.max_subscriptions_per_connection
    own = call.node.subscriptions.own(call.session)
    if own.size + own.added_by(change) > limit:
        raise too_many(limit)


async def _snapshot(call: Call, change: Change) -> snapshots.Snapshot:
    source = call.node.book_source
    if source is None:
        raise RPCError(
            "notSupported", "Book snapshots need a source that holds books (simulator, upstream)."
        )
    return await snapshots.take_snapshot(source, change.snapshots, call.node.ledger.index)


def _catch_up(call: Call, change: Change, read_at: int) -> None:
    """Queue after the reply the book messages of ledgers published after the one the
    snapshot was read from (a ledger that closed while an upstream was asked)."""
    latest = call.node.history.latest
    if latest is not None and latest > read_at:
        _replay(call, Change(books=change.books), read_at)


def _since_ledger(call: Call) -> int | None:
    """The validated ``since_ledger`` of a resume, or None; raises before anything changes.

    It must lie from ``since_ledger_min`` (the history holds every later ledger) to
    ``since_ledger_max`` (the newest ledger: nothing after it to replay yet); both are
    in the error of one outside, so a client knows which way it is wrong.
    """
    if "since_ledger" not in call.params:
        return None
    since = call.params["since_ledger"]
    if type(since) is not int or since < 0:
        raise RPCError("invalidParams", "Field 'since_ledger' must be a ledger index.")
    history = call.node.history
    floor, newest = history.resumable_from, history.resumable_to
    if floor is None or newest is None:
        where = "the history holds no ledger yet"
    elif since < floor:
        where = f"the history holds since_ledger {floor} at the earliest"
    elif since > newest:
        where = f"the history holds since_ledger {newest} at the latest (its newest ledger)"
    else:
        return since
    raise RPCError(
        "lgrNotFound",
        f"Cannot resume after ledger {since}: {where}.",
        since_ledger_min=floor,
        since_ledger_max=newest,
    )


def _replay(call: Call, change: Change, since: int) -> dict[str, Any]:
    """Owe, after the reply, what the new subscriptions missed after ledger ``since``.

    Routed now (:func:`hub.core.resume.owed`) with the live rules against this request's
    subscriptions alone, in the same step that makes them live (no await between): the
    entries are fixed here and every live frame queues behind them, so nothing is
    missed or sent twice at the seam. The frames, the very ones live subscribers got,
    are rendered and queued only as the socket takes them (:class:`hub.core.resume.Replay`).
    Routing is charged here, ``replay`` per history message routed.
    """
    session, history = call.session, call.node.history
    entries = list(history.since(since))
    due = owed(entries, session, change)
    call.charge("replay", len(entries))
    if due:
        call.replay = Replay(due, call.api_version, session.deflate)
    latest = history.latest
    return {
        "resumed_from": since + 1,
        "resumed_to": since if latest is None else max(since, latest),
        "resumed_messages": len(due),
    }


def _needs_a_stream(call: Call) -> None:
    """A transport without a stream (JSON-RPC) needs a callback ``url``, as in rippled;
    one with a ``url`` is refused by :func:`~hub.core.subscriptions.parse_change`, since the
    hub sends no callbacks."""
    if not call.session.streams and "url" not in call.params:
        raise RPCError("invalidParams", "Over JSON-RPC, subscriptions need a callback 'url'.")


@METHODS.register("unsubscribe")
def unsubscribe(call: Call) -> dict[str, Any] | Later:
    _needs_a_stream(call)
    steps = _change_steps(call, limited=False)
    if heavy(call.params):
        return Later(partial(_unsubscribe_paced, call, steps))
    return _unsubscribe(call, drive(steps, call.charge))


async def _unsubscribe_paced(call: Call, steps: Steps) -> dict[str, Any]:
    return _unsubscribe(call, await _paced(call, steps))


def _unsubscribe(call: Call, change: Change) -> dict[str, Any]:
    call.node.subscriptions.unsubscribe(call.session, change)
    call.node.place(call.session)
    return {}


@METHODS.register("ledger_closed")
def ledger_closed(call: Call) -> dict[str, Any]:
    latest = call.node.ledger.latest
    if latest is None:
        raise RPCError("lgrNotFound", "No ledger has closed yet.")
    return {"ledger_hash": latest["ledger_hash"], "ledger_index": latest["ledger_index"]}


@METHODS.register("ledger_current")
def ledger_current(call: Call) -> dict[str, Any]:
    index = call.node.ledger.index
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
    await call.node.publish_batch(batch)
    return {"published": len(batch)}


# --- lookups from the history (hub.core.lookup) ------------------------------------------

_BEYOND: dict[str, str] = {
    "binary": "The hub keeps ledgers as JSON: 'binary' is not available.",
    "full": "The hub keeps no ledger state.",
    "accounts": "The hub keeps no ledger state.",
    "queue": "The hub has no open ledger and no queue.",
}
_NO_OPEN_LEDGER = (
    "The hub has no open ledger: it sees ledgers once they have closed. Ask for 'validated'."
)


async def _upstream_or(call: Call, error: RPCError) -> Forwarded:
    """Ask the upstream when the hub relays one; otherwise answer ``error``."""
    forwarder = call.node.forwarder
    if forwarder is None:
        raise error
    return Forwarded(await forwarder.forward(call.params, call.api_version))


async def _ledger_of(call: Call, query: lookup.LedgerQuery) -> int | None:
    """The index of the ledger a request names, after waiting for one still arriving."""
    if query.shortcut == "current":
        return None
    node = call.node
    index = lookup.resolve(node.history, query)
    held = index is not None and node.history.closed(index) is not None
    if index is not None and (query.transactions or not held) and node.arrivals.due(index):
        await node.arrivals.wait(index)
    return index


def _not_found(call: Call, query: lookup.LedgerQuery, index: int | None) -> RPCError:
    if query.shortcut == "current":
        return RPCError("lgrNotFound", _NO_OPEN_LEDGER)
    if index is not None and call.node.history.closed(index) is not None:
        return RPCError("lgrNotFound", f"Ledger {index} is not complete in the hub's history.")
    return RPCError("lgrNotFound", "ledgerNotFound")


@METHODS.register("ledger")
async def ledger(call: Call) -> Any:
    """A ledger the history holds, in rippled's shape; others go upstream or are not found."""
    query = lookup.ledger_query(call.params)
    if query.beyond is not None:
        return await _upstream_or(call, RPCError("notSupported", _BEYOND[query.beyond]))
    index = await _ledger_of(call, query)
    history = call.node.history
    result = None
    if index is not None and (not query.transactions or history.complete(index)):
        result = lookup.ledger_result(history, index, query, call.api_version)
    if result is None:
        return await _upstream_or(call, _not_found(call, query, index))
    return result


@METHODS.register("tx")
async def tx(call: Call) -> Any:
    """A transaction of a ledger the history holds, by hash, in rippled's shape."""
    tx_hash = lookup.tx_hash_of(call.params)
    if tx_hash is None:
        message = "The hub looks transactions up by hash ('transaction'), not by 'ctid'."
        return await _upstream_or(call, RPCError("notSupported", message))
    if call.params.get("binary") is True:
        return await _upstream_or(call, RPCError("notSupported", _BEYOND["binary"]))
    result = lookup.tx_result(call.node.history, tx_hash, call.api_version)
    if result is None:
        return await _upstream_or(call, RPCError("txnNotFound"))
    return result


@METHODS.register("ledger_entry")
async def ledger_entry(call: Call) -> Any:
    """The FeeSettings object of a ledger the history holds (what a relaying hub asks
    to mend a gap); every other object goes upstream, or is not supported."""
    query = lookup.ledger_query(call.params)
    if not lookup.wants_fee_settings(call.params) or query.beyond is not None:
        message = "The hub keeps no ledger state: ledger_entry answers FeeSettings only."
        return await _upstream_or(call, RPCError("notSupported", message))
    index = await _ledger_of(call, query)
    result = None if index is None else lookup.fee_settings_result(call.node.history, index)
    if result is None:
        return await _upstream_or(call, _not_found(call, query, index))
    return result
