"""Prometheus metrics of one hub, in a registry of its own (never the global one).

Almost everything is read from the node's state when Prometheus scrapes — the counters
:class:`~hub.core.stats.Stats` already keeps, the connections, the subscription index —
so serving clients pays nothing for it. Two things are recorded as they happen: HTTP
responses by route and status, and the publish-to-write latency, observed once per
socket write for the oldest stream message in it (see :mod:`hub.core.outbox`).

Components the hub depends on (an upstream rippled/Clio, a broker) register a probe
with :meth:`Metrics.probe`; each shows as ``hub_component_up{component, name}``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Set
from typing import TYPE_CHECKING, Final, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from hub.config import Config
    from hub.core.health import Health
    from hub.core.ledger import LedgerState
    from hub.core.ports import Bus, Leadership
    from hub.core.session import Session
    from hub.core.stats import Stats
    from hub.core.subscriptions import Subscriptions

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Fan-out to socket write: tens of microseconds when idle, up to seconds for a client
# that reads slowly (its queue then waits for the socket to drain).
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class Buckets:
    """A histogram that counts with one ``bisect`` and no lock: observed from the one
    thread of a hub (a fan-out's writes once per distinct stamp, with their count), and
    read only when scraped."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        """``count`` samples of ``value``."""
        self.counts[bisect_left(self.bounds, value)] += count
        self.total += value * count

    def metric(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return HistogramMetricFamily(name, documentation, buckets=cumulative, sum_value=self.total)


RENDER_EVERY: Final = 1.0
"""Seconds a rendered exposition is served again before it is rendered anew."""


class Metrics:
    """The registry of one hub, and the few metrics that are recorded as they happen."""

    def __init__(self, node: Observed, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._rendered: tuple[float, bytes] | None = None
        self.latency = Buckets(LATENCY_BUCKETS)
        self.http = PromCounter(
            "hub_http_responses",
            "Plain HTTP responses (JSON-RPC, health, metrics, dashboard) by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self._probes: dict[tuple[str, str], Callable[[], bool]] = {}
        self.registry.register(_HubCollector(node, self._probes, self.latency))

    def probe(self, component: str, name: str, up: Callable[[], bool]) -> None:
        """Report a component's state as ``hub_component_up{component, name}`` (1 or 0)."""
        self._probes[(component, name)] = up

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def latest(self) -> bytes:
        """:meth:`render`, at most once per :data:`RENDER_EVERY` seconds: scrapes in
        between get the same bytes, so scraping in a loop costs the hub next to nothing."""
        now = self._clock()
        if self._rendered is None or now - self._rendered[0] >= RENDER_EVERY:
            self._rendered = (now, self.render())
        return self._rendered[1]


class Observed(Protocol):
    """What the metrics read of a node at scrape time."""

    @property
    def stats(self) -> Stats: ...

    @property
    def sessions(self) -> Set[Session]: ...

    @property
    def subscriptions(self) -> Subscriptions[Session]: ...

    @property
    def ledger(self) -> LedgerState: ...

    @property
    def health(self) -> Health: ...

    @property
    def config(self) -> Config: ...

    @property
    def bus(self) -> Bus | None: ...

    @property
    def leadership(self) -> Leadership | None: ...

    def queue_figures(self) -> dict[str, int]: ...


class _HubCollector(Collector):
    """Reads the node's live state at scrape time."""

    def __init__(
        self,
        node: Observed,
        probes: dict[tuple[str, str], Callable[[], bool]],
        latency: Buckets,
    ) -> None:
        self._node = node
        self._probes = probes
        self._latency = latency

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        node = self._node
        yield from _connections(node)
        yield from _traffic(node.stats)
        yield from _queues(node)
        yield from _load(node)
        yield from _ledger(node)
        yield from self._components()
        yield from _cluster(node)
        yield self._latency.metric(
            "hub_publish_to_write_seconds",
            "Seconds from fan-out of a stream message to the socket write that carried it "
            "(observed once per write, for the oldest message in it).",
        )

    def _components(self) -> Iterable[Metric]:
        source = GaugeMetricFamily("hub_source_info", "The configured source.", labels=["source"])
        source.add_metric([self._node.config.source.source], 1)
        yield source
        components = GaugeMetricFamily(
            "hub_component_up",
            "State of an upstream or broker the hub depends on: 1 up, 0 down.",
            labels=["component", "name"],
        )
        for (component, name), up in sorted(self._probes.items()):
            components.add_metric([component, name], 1 if up() else 0)
        yield components


def _cluster(node: Observed) -> Iterable[Metric]:
    """A cluster node's leadership, and what Redis refused of a deposed term."""
    leadership = node.leadership
    if leadership is not None:
        yield _gauge(
            "hub_cluster_leader",
            "1 while this node holds the lease and runs the cluster's source.",
            leadership.leading,
        )
        yield _counter(
            "hub_cluster_leadership_changes",
            "Times this node became or stopped being the leader.",
            leadership.changes,
        )
    if node.bus is not None:
        yield _counter(
            "hub_broker_fenced_events",
            "Events of an ended leadership term that Redis refused to append.",
            node.bus.status.fenced,
        )


def _connections(node: Observed) -> Iterable[Metric]:
    by_kind: Counter[tuple[str, str]] = Counter(
        (str(session.stream_version), str(session.admin).lower()) for session in node.sessions
    )
    connections = GaugeMetricFamily(
        "hub_connections",
        "Open WebSocket connections by the API version of their streams and admin role.",
        labels=["api_version", "admin"],
    )
    for (version, admin), n in sorted(by_kind.items()):
        connections.add_metric([version, admin], n)
    yield connections
    stats = node.stats
    yield _counter(
        "hub_connections_accepted", "WebSocket upgrades accepted.", stats.connections_accepted
    )
    yield _counter(
        "hub_connections_refused",
        "Connections refused over a limit (HTTP 429 or 503).",
        stats.connections_refused,
    )
    yield _counter(
        "hub_accept_errors",
        "Connections the kernel could not hand over (out of file descriptors or memory).",
        stats.accept_errors,
    )
    subs = GaugeMetricFamily(
        "hub_subscriptions",
        "Subscribers per stream; accounts, accounts_proposed and books count connections "
        "with at least one such subscription.",
        labels=["stream"],
    )
    for stream, n in node.subscriptions.counts().items():
        subs.add_metric([stream], n)
    yield subs


def _traffic(stats: Stats) -> Iterable[Metric]:
    yield _counter("hub_requests", "Requests answered (WebSocket and JSON-RPC).", stats.requests)
    errors = CounterMetricFamily("hub_errors", "Error replies by error token.", labels=["token"])
    for token, n in sorted(stats.errors.items()):
        errors.add_metric([token], n)
    yield errors
    yield _counter("hub_events_published", "Stream messages fanned out.", stats.events_published)
    yield _counter(
        "hub_events_rejected", "Published messages rejected as invalid.", stats.events_rejected
    )
    yield _counter("hub_deliveries", "Stream messages queued to subscribers.", stats.deliveries)
    yield _counter("hub_sent_bytes", "Bytes written to WebSocket clients.", stats.bytes_sent)


def _queues(node: Observed) -> Iterable[Metric]:
    queues = node.queue_figures()
    yield _gauge(
        "hub_outbound_queue_messages",
        "Messages queued to clients, all connections.",
        queues["messages"],
    )
    yield _gauge(
        "hub_outbound_queue_bytes", "Bytes queued to clients, all connections.", queues["bytes"]
    )
    yield _gauge(
        "hub_outbound_queue_max_bytes",
        "Bytes queued to the most backed-up client.",
        queues["max_bytes"],
    )


def _load(node: Observed) -> Iterable[Metric]:
    stats = node.stats
    yield _counter("hub_load_warnings", "Replies that carried warning: load.", stats.load_warnings)
    yield _counter(
        "hub_load_drops",
        "Clients cut at the load drop threshold (WebSocket 1008, JSON-RPC 503).",
        stats.load_drops,
    )
    yield _counter(
        "hub_slow_consumer_closes", "Clients closed for falling behind.", stats.slow_closes
    )
    yield _gauge(
        "hub_warned_clients",
        "Open connections that have been sent warning: load.",
        sum(session.warned for session in node.sessions),
    )


def _ledger(node: Observed) -> Iterable[Metric]:
    index = node.ledger.index
    age = node.health.ledger_age()
    yield _gauge("hub_ledger_index", "Index of the latest ledger seen (0 before one).", index or 0)
    yield _gauge(
        "hub_ledger_age_seconds",
        "Seconds since the latest ledger arrived (-1 before one).",
        -1 if age is None else age,
    )
    yield _gauge(
        "hub_healthy",
        "1 while serving with a fresh ledger (GET /health is 200).",
        node.health.healthy(),
    )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
