"""Start the source ``[source] source`` names: into a given channel, from a given point.

A hub on its own starts its source once, into its publisher channel. A cluster node
starts it each time it becomes the leader (:mod:`hub.leader`), into a channel whose
events are appended under its lease, from the :class:`~hub.history.Tail` of the
cluster's stream: the upstream relay publishes nothing up to that ledger and first
what it still owed; the simulator numbers its ledgers on from it; a replay plays its
recording as always.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

import trio

from ..config import ConfigError, SourceConfig
from ..history import Tail
from .upstream import Relay, UpstreamStatus, run_upstream

KINDS: Final = frozenset({"none", "simulator", "upstream", "replay"})


def kind_of(source: str) -> str:
    """The kind of source a ``[source] source`` value names; raises ConfigError."""
    kind = source.partition(":")[0]
    if kind not in KINDS or (kind in ("none", "simulator") and source != kind):
        raise ConfigError(f"unknown source {source!r}")
    if kind == "upstream" and not upstream_urls(source):
        raise ConfigError("upstream: needs at least one ws:// or wss:// URL")
    return kind


def upstream_urls(source: str) -> list[str]:
    """The URLs of ``upstream:ws://a,ws://b`` (empty for any other source)."""
    kind, _, where = source.partition(":")
    if kind != "upstream":
        return []
    return [url.strip() for url in where.split(",") if url.strip()]


async def launch(
    nursery: trio.Nursery,
    send: trio.MemorySendChannel[Any],
    start: Tail | None,
    *,
    cfg: SourceConfig,
    upstream: UpstreamStatus | None,
) -> None:
    """Start the source in ``nursery``, sending into ``send``; returns once it runs."""
    kind = kind_of(cfg.source)
    if kind == "upstream":
        assert upstream is not None
        relay = Relay(upstream_urls(cfg.source), streams=cfg.upstream_streams)
        await nursery.start(partial(run_upstream, send, relay, upstream, start=start))
    elif kind == "replay":
        from .replay import Replay, run_replay

        replay = Replay(cfg.source.partition(":")[2], speed=cfg.speed, loop=cfg.loop)
        await nursery.start(run_replay, send, replay)
    elif kind == "simulator":
        from .simulator import LedgerSimulator, run_simulator

        first = {} if start is None else {"start_ledger": start.ledger_index + 1}
        sim = LedgerSimulator(
            seed=cfg.seed, tx_per_ledger=cfg.tx_per_ledger, validators=cfg.validators, **first
        )
        await nursery.start(partial(run_simulator, send, interval=cfg.ledger_interval, sim=sim))
