"""The node: a hub's state and policy, knowing no socket.

It owns the subscriptions, the ledger, the history, the load balances, health, the
counters, the method table and the sessions of its clients; it applies published
events and answers requests. Transports (:mod:`hub.edge.connection` for WebSocket,
:mod:`hub.edge.routes` for JSON-RPC) hand it bytes or request objects and render what it
returns in their own envelope; :mod:`hub.edge.server` is the trio edge that composes them.

Requests go ``begin`` → (``finish`` for a handler that waits) → an :class:`Outcome`
charged by :meth:`Node.settle`, the one place a request's cost reaches the client's
balance. Events go ``publisher()`` → the fan-out task → :meth:`Node.apply` (or, on a
bus, the bus → ``apply``), which updates state, delivers and keeps the history.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import trio

from hub import config as _config
from hub import logs
from hub.core import lookup
from hub.core.dispatch import Method, Methods, Outcome, Pending, begin
from hub.core.fanout import deliver, place
from hub.core.feed import PLAIN, Feeds, Join
from hub.core.health import STALE, STALE_LOAD, Health
from hub.core.history import History, Tail
from hub.core.lanes import Lanes
from hub.core.ledger import LedgerState
from hub.core.load import DEFAULT_COSTS, LoadPolicy, LoadTracker, Verdict
from hub.core.methods import METHODS
from hub.core.metrics import Metrics
from hub.core.occupancy import Occupancy, Slot
from hub.core.ports import (
    BookSource,
    Bus,
    Forwarder,
    Leadership,
    SourceStarter,
    Started,
    Upstream,
)
from hub.core.render import Renderings
from hub.core.session import NO_STREAM, Session, Sink
from hub.core.stats import Stats
from hub.core.subscriptions import Subscriptions
from hub.wire import admission
from hub.wire.admission import Identity
from hub.wire.clientaddr import UNKNOWN, ClientAddress
from hub.wire.deflate import DeflateParams
from hub.wire.envelope import LOAD_WARNING, NO_EXTRAS, Extras
from hub.wire.errors import RPCError
from hub.wire.versions import VersionPolicy
from hub.xrpl import events, identity
from hub.xrpl.ids import fill_ids

log = logging.getLogger(__name__)

Message = dict[str, Any] | events.Event | Sequence[dict[str, Any] | events.Event]

CROWDED = (429, "Too many connections from your address.")
FULL = (503, "The hub has reached its connection limit.")
OVERLOADED = (503, "Server is overloaded")
"""What a client past the drop threshold is answered (rippled's JSON-RPC reply to it)."""


class Node:
    """A hub node's state and policy; run its tasks with :meth:`run`.

    It is handed its adapters (:mod:`hub.core.ports`) and builds none: the bus it
    publishes through, the forwarder for methods it does not answer, the source it
    runs, where book snapshots come from, and after construction the leadership that
    decides when a cluster node runs its source (:meth:`lead_with`). Without them it is
    a node on its own that only publishes what it is given. :mod:`hub.app.compose`
    builds them from the configuration. ``join`` is how its feeds join a batch for
    their readers (:class:`~hub.core.feed.Join`); the edge passes its spooling one.
    """

    def __init__(
        self,
        config: _config.Config | None = None,
        *,
        methods: Methods[Node] | None = None,
        bus: Bus | None = None,
        forwarder: Forwarder | None = None,
        source: SourceStarter | None = None,
        upstream: Upstream | None = None,
        book_source: BookSource | None = None,
        worker: dict[str, int] | None = None,
        hostname: str = "",
        join: Join = PLAIN,
    ) -> None:
        self.config = config = config or _config.Config()
        self.clock: Callable[[], float] = trio.current_time
        self.versions = VersionPolicy(config.api.default_version, config.api.beta_api)
        self.methods = methods or METHODS
        self.stats = Stats()
        self.started: float | None = None
        self.sessions: set[Session] = set()
        self.subscriptions: Subscriptions[Session] = Subscriptions()
        self.feeds = Feeds(join)
        self._touched: set[Sink] = set()
        self._flush_due = trio.Event()
        self.ledger = LedgerState()
        self.history = History(config.history.ledgers, config.history.max_bytes)
        self.arrivals = lookup.Arrivals(self.history)
        self.load = LoadTracker(_load_policy(config.load), clock=self._now)
        self.health = Health(config.health.max_ledger_age, self._now)
        self.metrics = Metrics(self)
        self.bus = bus
        self.forwarder = forwarder
        self.leadership: Leadership | None = None
        self.upstream: Upstream | None = None
        self._source = source
        self.worker = worker
        self.identity = identity.NodeIdentity.create(config.source.seed, hostname)
        self.book_source = book_source
        """Where book snapshots are read from: the upstream's book_offers when there is
        one, the simulator's books once it runs (:attr:`Started.books`)."""
        self._policy = admission.AdminPolicy.from_config(config)
        self._proxy_warned = False
        self._withheld_warned = False
        self.lanes = Lanes()
        self.lane = self.lanes.lane
        self.occupancy = Occupancy(
            config.limits.max_connections, config.limits.max_connections_per_ip
        )
        self._send, self._receive = trio.open_memory_channel[Message](config.source.publish_queue)
        if bus is not None:
            status = bus.status
            self.metrics.probe("broker", status.url, lambda: status.connected)
        if upstream is not None:
            self._watch_upstream(upstream)

    def lead_with(self, leadership: Leadership) -> None:
        """Run the source only while ``leadership`` holds the cluster's lease (it is
        made after the node, since it reads the node's :meth:`tail`)."""
        self.leadership = leadership

    def _now(self) -> float:
        return self.clock()

    # ---- tasks ------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the bus, the fan-out, the forwarding pool and the source until cancelled;
        reports started once all of them run."""
        async with trio.open_nursery() as nursery:
            if self.bus is not None:
                await nursery.start(self.bus.run, self.apply, self.remember)
            nursery.start_soon(self._fan_out)
            nursery.start_soon(self._flush_loop)
            if self.forwarder is not None:
                await nursery.start(self.forwarder.run)
            if self.leadership is not None:
                await nursery.start(self.leadership.run, self._lead)
            elif self._source is not None:
                self._took(await self._source(nursery, self.publisher(), None))
            self.started = self.clock()
            self.health.start()
            task_status.started()

    async def _lead(
        self, nursery: trio.Nursery, send: trio.MemorySendChannel[Any], tail: Tail | None
    ) -> None:
        """What the leadership runs while this node leads: the source, from ``tail``."""
        if self._source is not None:
            self._took(await self._source(nursery, send, tail))

    def _took(self, started: Started) -> None:
        """What a started source offers the node: its relay's status, its books."""
        if started.upstream is not None and started.upstream is not self.upstream:
            self._watch_upstream(started.upstream)
        if started.books is not None:
            self.book_source = started.books

    def _watch_upstream(self, upstream: Upstream) -> None:
        self.upstream = upstream
        for url in upstream.urls:  # hub_component_up{component="upstream", name=url}
            self.metrics.probe("upstream", url, partial(upstream.linked, url))

    def tail(self) -> Tail | None:
        """Where this node's stream stands: its history's tail, or with no history kept
        the latest ledger (its transactions then count as all published). A new leader
        starts the source from here."""
        tail = self.history.tail()
        if tail is None and self.ledger.index is not None:
            return Tail(self.ledger.index)
        return tail

    async def _fan_out(self) -> None:
        """Apply published events in order; writers run only once the queue is drained.

        Everything already waiting in the channel is applied before yielding, so each
        connection's writer wakes once for all of it and writes it in one go. A node on
        a bus delivers only what it reads back from it, so all nodes deliver one order.
        """
        receive = self._receive
        if self.bus is not None:
            async for item in receive:
                await self.bus.submit(self.parsed(item))
            return
        async for item in receive:
            while True:
                for event in self.parsed(item):
                    self.apply(event)
                try:
                    item = receive.receive_nowait()
                except trio.WouldBlock:
                    break

    async def _flush_loop(self) -> None:
        """Flush after every batch applied: whatever task applied it (fan-out, bus), the
        sockets are written once it yields, once per connection for the whole batch."""
        while True:
            await self._flush_due.wait()
            self._flush_due = trio.Event()
            self.flush()

    def flush(self) -> None:
        """Have every sink with frames due from fan-out write them now; the latencies
        of the writes that went out whole are observed once per distinct stamp, with
        one reading of the clock (a batch's writes mostly share one)."""
        now = self.clock()
        written = self.feeds.flush()
        touched, self._touched = self._touched, set()
        for sink in touched:
            stamp = sink.flush()
            if stamp is not None:
                written.append(stamp)
        observe = self.metrics.latency.observe
        for stamp, count in Counter(written).items():
            observe(now - stamp, count)

    def parsed(self, item: Message) -> list[events.Event]:
        """The valid events of what a source or publisher sent; the rest are counted."""
        messages = item if isinstance(item, Sequence) else (item,)
        return events.parse_valid(messages, self._rejected)

    def _rejected(self, error: events.EventError) -> None:
        self.stats.events_rejected += 1

    # ---- events -----------------------------------------------------------------------

    def publisher(self) -> trio.MemorySendChannel[Message]:
        """A send end of the publisher channel for a source; close it when done.

        Messages may be dicts (validated as they leave the channel; invalid ones are
        logged and counted, never delivered), :class:`~hub.xrpl.events.Event` objects, or
        lists of either, which are delivered back to back.
        """
        return self._send.clone()

    async def publish(self, message: dict[str, Any] | events.Event) -> events.Event:
        """Validate one message and queue it for every subscriber; raises EventError."""
        event = events.parse(message)
        await self._send.send(event)
        return event

    async def publish_batch(self, batch: list[events.Event]) -> None:
        """Queue already validated events so that nothing is interleaved with them."""
        await self._send.send(batch)

    def apply(self, event: events.Event) -> None:
        """Update the node's state from an event, then deliver it; never waits. An event
        that passed validation and still breaks something is counted as rejected and
        logged: a source or publisher that lies costs that event, never the node."""
        try:
            self._take(event)
            self.stats.events_published += 1
            frames = Renderings(event)
            self.stats.deliveries += deliver(
                event, self.subscriptions, self.feeds, self._touched, self.clock(), frames
            )
            self._flush_due.set()
            self.history.add(event, frames)
        except Exception as exc:
            self._unusable(event, exc)

    def remember(self, event: events.Event) -> None:
        """Take an event published before this node started into its state and history,
        delivering it to nobody (it is not live)."""
        try:
            self._take(event)
            self.history.add(event, Renderings(event))
        except Exception as exc:
            self._unusable(event, exc)

    def _unusable(self, event: events.Event, exc: Exception) -> None:
        self.stats.events_rejected += 1
        logs.throttled(
            log, logging.ERROR, ("event", event.kind, type(exc)),
            "could not apply a %s message: %s", event.kind, logs.brief(event.body), exc_info=exc,
        )  # fmt: skip

    def _take(self, event: events.Event) -> None:
        fill_ids(event.body, self.network_id)
        if event.kind == "ledgerClosed":
            self.ledger.update(event.body, self.clock())
            self.health.ledger_seen()

    @property
    def upstream_identity(self) -> identity.UpstreamIdentity | None:
        """What the upstream (relayed or forwarded to) said of itself, if anything."""
        told = self.upstream.identity if self.upstream else None
        return told or (self.forwarder.identity if self.forwarder else None)

    @property
    def network_id(self) -> int:
        """The network ID reported and stamped (:func:`hub.xrpl.identity.network_id`)."""
        return identity.network_id(self.config.server.network_id, self.upstream_identity)

    # ---- clients ----------------------------------------------------------------------

    def identify(
        self, peer: str, headers: Iterable[tuple[bytes, bytes]], *, jsonrpc: bool = False
    ) -> Identity:
        """Who a handshake or HTTP request comes from (:func:`hub.wire.admission.identify`):
        the client's address through ``[server] trusted_proxies``, and whether it is
        admin; ``jsonrpc`` for a JSON-RPC ``POST``.

        Admin by address only when no forwarding header was ignored (behind a proxy
        nobody configured, every client would arrive from its loopback address) and no
        browser mark says a web page from elsewhere sent it (``Origin``, ``Host``,
        ``Content-Type``: a page in a browser on this machine reaches 127.0.0.1 too).
        A bearer token is admin wherever it comes from: no page can learn or send it.
        """
        who = admission.identify(peer, headers, self._policy, jsonrpc=jsonrpc)
        client = who.client
        if client is not None:
            self._note(peer, client)
        if who.wrong_token:
            logs.throttled(
                log, logging.WARNING, "wrong token", "a wrong admin token from %s", who.address
            )
        if who.withheld:
            level = logging.DEBUG if self._withheld_warned else logging.WARNING
            self._withheld_warned = True
            log.log(level, "%s is not admin by address: %s", who.address, who.withheld)
        return who

    def _note(self, peer: str, client: ClientAddress) -> None:
        """Log what the forwarding headers said: once an unconfigured proxy, and why a
        trusted proxy's headers gave no address."""
        if client.unconfigured_proxy and peer != UNKNOWN and not self._proxy_warned:
            self._proxy_warned = True
            log.warning(
                "%s sent %s but is not in [server] trusted_proxies: probably a proxy that "
                "is not configured; nobody is admin by address through it",
                peer,
                ", ".join(client.ignored),
            )
        if client.problem:
            logs.throttled(
                log, logging.INFO, "client address", "client address from %s: %s", peer,
                client.problem,
            )  # fmt: skip

    def trusts(self, peer: str) -> bool:
        """Whether ``peer`` is one of ``[server] trusted_proxies``."""
        return peer in self._policy.trusted

    def admit(self, peer: str) -> Slot:
        """Count a socket from the moment it is accepted (:mod:`hub.core.occupancy`), under
        its TCP ``peer``; :meth:`release` when it closes.

        Under no address while the peer is a trusted proxy (its sockets count under
        their clients once a PROXY header or the request names them; a proxy's own
        address must not cap everyone behind it) or in ``[admin] ips`` (admins by
        address are exempt from the per-IP limit, and a TCP peer cannot be forged).
        """
        return self.occupancy.open(self._counted(peer))

    def proxied(self, slot: Slot, source: str) -> None:
        """A PROXY header named the client: count the socket under it from now on."""
        self.occupancy.move(slot, self._counted(source))

    def identified(self, slot: Slot, who: Identity) -> None:
        """The request head named the client: count the socket under its address, or
        under none for an admin (exempt; a token admin counted as its address until
        then)."""
        self.occupancy.move(slot, None if who.admin else who.address)

    def crowded(self, slot: Slot) -> bool:
        """Whether the socket's address holds more than ``max_connections_per_ip``."""
        return self.occupancy.crowded(slot.address)

    def release(self, slot: Slot) -> None:
        self.occupancy.close(slot)

    def _counted(self, address: str) -> str | None:
        policy = self._policy
        return None if address in policy.trusted or address in policy.admin else address

    def refusal(self, remote: str, admin: bool) -> tuple[int, str] | None:
        """Whether a counted client is over a limit: (HTTP status, reason) or None."""
        if self.health.draining:
            return 503, "The hub is shutting down; connect to another node."
        if self.occupancy.full():
            return FULL
        if not admin and self.occupancy.crowded(remote):
            return CROWDED
        if not admin and self.load.balance(remote) >= self.load.policy.drop:
            self.stats.load_drops += 1  # it was warned and cut: a new socket changes nothing
            return OVERLOADED
        return None

    def open_session(
        self, who: Identity, sink: Sink, deflate: DeflateParams | None = None
    ) -> Session:
        """A client whose stream messages go to ``sink`` (compressed with ``deflate``);
        :meth:`close_session` ends it. A wrong admin token is charged like a malformed
        request."""
        session = Session(
            who.address, who.admin, sink, stream_version=self.versions.default, deflate=deflate
        )
        session.load_key = who.address if self.config.load.key == "ip" else session.id
        session.warned = self.load.balance(session.load_key) >= self.load.policy.warning
        self.sessions.add(session)
        self.load.attach(session.load_key)
        self.stats.connections_accepted += 1
        if who.wrong_token:
            self.charge(session, (("malformed", 1),))
        return session

    def close_session(self, session: Session) -> None:
        """Drop every trace of a closed session."""
        self.sessions.discard(session)
        self.subscriptions.drop(session)
        self.feeds.follow(session.sink, None)
        self._touched.discard(session.sink)
        self.load.detach(session.load_key)

    def place(self, session: Session) -> None:
        """Have a session read the feed of its streams, after its subscriptions or its
        rendering changed (:func:`hub.core.fanout.place`)."""
        place(self.feeds, session, self.subscriptions.own(session).streams)

    def stop_streams(self, session: Session) -> None:
        """No more stream frames for a session whose connection is closing."""
        place(self.feeds, session, ())

    def transient_session(self, who: Identity) -> Session:
        """A session for one request over a transport without streams (JSON-RPC), charged
        to its IP. It counts as warned when that balance is already past the warning
        level: every reply in that range carried ``warning: "load"``."""
        session = Session(who.address, who.admin, NO_STREAM, stream_version=self.versions.default)
        session.load_key = who.address
        session.warned = self.load.balance(who.address) >= self.load.policy.warning
        if who.wrong_token:
            self.charge(session, (("malformed", 1),))
        return session

    def over_limit(self, session: Session) -> bool:
        """Whether the client's balance is past ``[load] drop`` already (admins never are)."""
        return not session.admin and self.load.balance(session.load_key) >= self.load.policy.drop

    # ---- requests ---------------------------------------------------------------------

    def begin(
        self,
        session: Session,
        data: bytes | str | dict[str, Any],
        now: float | None = None,
        size: int = 0,
    ) -> Outcome | Pending:
        """A request's outcome if it needs no waiting, else what is left to run. ``now``
        is the transport's one reading of the clock for everything it read at once;
        ``size`` the length of a request the transport decoded itself (JSON-RPC).

        A large request pays for its text before it is decoded, and a client already
        past the drop threshold (and warned) is refused before any work is done."""
        self.stats.requests += 1
        if not isinstance(data, dict):
            size = len(data)
        if not session.admin and self._refused(session, size, now):
            refused = Outcome(None, error=RPCError("slowDown"), costs=(("request", 1),))
            return self.settle(session, refused, now)
        begun = begin(self, session, data)
        return begun if isinstance(begun, Pending) else self.settle(session, begun, now)

    def _refused(self, session: Session, size: int, now: float | None) -> bool:
        if size >= 2048:
            self.charge(session, (("kilobyte", (size >> 10) - 1),), now)
        return session.warned and self.over_limit(session)

    async def finish(self, session: Session, pending: Pending) -> Outcome:
        return self.settle(session, await pending.finish())

    async def execute(
        self, session: Session, data: bytes | str | dict[str, Any], size: int = 0
    ) -> Outcome:
        """One request start to end; never raises: failures are error outcomes."""
        begun = self.begin(session, data, size=size)
        return begun if isinstance(begun, Outcome) else await self.finish(session, begun)

    def refuse(self, session: Session, error: RPCError, kind: str = "malformed") -> Outcome:
        """An error outcome for input that never became a request (a binary frame)."""
        return self.settle(session, Outcome(None, error=error, costs=((kind, 1),)))

    def settle(self, session: Session, outcome: Outcome, now: float | None = None) -> Outcome:
        """Charge an outcome to its client: the verdict, and ``slowDown`` at the drop."""
        verdict = self.charge(session, outcome.costs, now)
        if verdict is Verdict.DROP:
            self.stats.errors["slowDown"] += 1
            return Outcome(outcome.body, error=RPCError("slowDown"), verdict=Verdict.DROP)
        if outcome.error is not None:
            self.stats.errors[outcome.error.token] += 1
        outcome.verdict = verdict
        return outcome

    def charge(
        self, session: Session, costs: Iterable[tuple[str, int]], now: float | None = None
    ) -> Verdict:
        """Add ``(cost kind, units)`` pairs to the client's balance; admins never pay."""
        if session.admin:
            return Verdict.OK
        price = self.load.policy.cost
        cost = 0
        for kind, units in costs:  # usually one pair: no generator for it
            cost += price(kind, units)
        verdict = self.load.charge(session.load_key, cost, warned=session.warned, now=now)
        if verdict is Verdict.WARN:
            session.warned = True
            self.stats.load_warnings += 1
        elif verdict is Verdict.DROP:
            self.stats.load_drops += 1
        return verdict

    def extras(self, verdict: Verdict = Verdict.OK, now: float | None = None) -> Extras:
        """Envelope fields owed with a reply right now: the load warning, and Clio's
        warning 2002 while the latest ledger is stale (see :mod:`hub.core.health`)."""
        if self.health.stale(now):
            return STALE if verdict is Verdict.OK else STALE_LOAD
        return NO_EXTRAS if verdict is Verdict.OK else LOAD_WARNING

    def wrote(self, stamp: float) -> None:
        """A write that ended outside :meth:`flush` (a reply's, the poller's, a writer
        task's) held stream messages: ``stamp`` is the fan-out time of the oldest, and
        now minus it the publish-to-write latency."""
        self.metrics.latency.observe(self.clock() - stamp)

    def lookup(self, name: str, version: int) -> Method[Any]:
        """The method for a request; unknown ones go upstream when there is one."""
        try:
            return self.methods.lookup(name, version)
        except RPCError:
            if self.forwarder is None:
                raise
            return self.forwarder.method

    # ---- figures ----------------------------------------------------------------------

    def queue_figures(self) -> dict[str, int]:
        """Outbound queues of every session: messages, bytes, and the longest in bytes."""
        sinks = [session.sink for session in self.sessions]
        sizes = [sink.queued_bytes for sink in sinks]
        return {
            "messages": sum(sink.queued_messages for sink in sinks),
            "bytes": sum(sizes),
            "max_bytes": max(sizes, default=0),
        }

    @property
    def serving(self) -> bool:
        """Between the start of :meth:`run` and :meth:`stop_serving`."""
        return self.health.serving

    def drain(self) -> None:
        """Shutting down: ``/health`` says ``draining``, new clients are refused 503."""
        self.health.drain()

    def stop_serving(self) -> None:
        self.health.stop()

    def resume_point(self) -> int | None:
        """The ``since_ledger`` a client closed now resumes from without loss."""
        return self.history.complete_through()

    def health_report(self) -> tuple[bool, dict[str, Any]]:
        """Whether the node is fit to serve, and the body of ``GET /health``."""
        report = self.health.report()
        report["ledger_index"] = self.ledger.index
        report["connections"] = len(self.sessions)
        return self.health.healthy(), report

    def uptime(self) -> int:
        return 0 if self.started is None else int(self.clock() - self.started)


def _load_policy(load: _config.LoadConfig) -> LoadPolicy:
    return LoadPolicy(
        warning=load.warning,
        drop=load.drop,
        decay_window=load.decay_window,
        costs={**DEFAULT_COSTS, **load.costs},
    )
