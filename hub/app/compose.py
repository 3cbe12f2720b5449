"""The composition root: a node and its adapters, built from the configuration.

The node (:mod:`hub.core.node`) builds none of its adapters; this module does, and
hands them in: the Redis bus for ``[cluster] broker``, the forwarding pool and the
relay's status for an ``upstream:`` source, the source itself, where book snapshots
come from, and on a cluster node with a source the leadership that runs it while it
holds the lease. :class:`Hub` is the edge's server on such a node: what
``hub serve`` runs and what the in-process API (``from hub import Hub``) gives.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import trio

from hub import config as _config
from hub import sources
from hub.cluster import broker as _broker
from hub.cluster.leader import Leadership
from hub.core.dispatch import Methods
from hub.core.history import Tail
from hub.core.node import Node
from hub.core.ports import Bus, Started
from hub.edge import spool
from hub.edge.server import Server
from hub.links.forward import Forwarder, UpstreamBooks
from hub.links.upstream import UpstreamStatus


def build_node(
    config: _config.Config,
    *,
    methods: Methods[Node] | None = None,
    bus: Bus | None = None,
    upstream_urls: Sequence[str] | None = None,
    worker: dict[str, int] | None = None,
) -> Node:
    """A node with every adapter ``config`` asks for. ``bus`` replaces the Redis bus
    (a worker's pipe); ``upstream_urls`` gives the forwarding pool an upstream when
    this process runs no relay itself (a worker whose parent runs the source).

    Raises :class:`~hub.config.ConfigError` for a source it does not know."""
    cfg = config.source
    sources.check(cfg.source)
    urls = sources.upstream_urls(cfg.source)
    forwarder = _forwarder(cfg, urls if upstream_urls is None else upstream_urls)
    redis = _broker.from_config(config.cluster)
    upstream = UpstreamStatus(urls) if urls else None
    node = Node(
        config,
        methods=methods,
        bus=bus if bus is not None else redis,
        forwarder=forwarder,
        source=_starter(config, upstream) if cfg.source != "none" else None,
        upstream=upstream,
        book_source=UpstreamBooks(forwarder.forward) if forwarder is not None else None,
        worker=worker,
        hostname=socket.gethostname(),
        join=spool.JOIN,
    )
    if bus is None and redis is not None and cfg.source != "none":
        node.lead_with(
            Leadership(redis, lease=config.cluster.lease_seconds, tail=node.tail, parse=node.parsed)
        )
    return node


def _forwarder(cfg: _config.SourceConfig, urls: Sequence[str]) -> Forwarder | None:
    """The pool for an upstream (none without one)."""
    if not urls:
        return None
    return Forwarder(urls, cfg.forward_pool, cfg.forward_timeout, client_ip=cfg.forward_client_ip)


def _starter(config: _config.Config, upstream: UpstreamStatus | None) -> Any:
    """The node's :class:`~hub.core.ports.SourceStarter`: the configured source, fed
    into whatever channel the node or its leadership gives it."""
    network_id = config.server.network_id or 0

    async def start(
        nursery: trio.Nursery, send: trio.MemorySendChannel[Any], tail: Tail | None
    ) -> Started:
        return await sources.start(
            config.source, send, nursery, network_id, tail=tail, upstream=upstream
        )

    return start


class Hub(Server):
    """A hub built from its configuration: the node with its adapters, and the edge
    that serves it. Run it in your own nursery with ``port = await
    nursery.start(hub.run)`` and stop it with :meth:`shutdown`."""

    def __init__(
        self,
        config: _config.Config | None = None,
        *,
        methods: Methods[Node] | None = None,
        node: Node | None = None,
    ) -> None:
        config = config or _config.Config()
        super().__init__(config, node=node or build_node(config, methods=methods))


__all__ = ["Hub", "build_node"]
