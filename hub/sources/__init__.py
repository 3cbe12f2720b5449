"""Event sources: where the hub's stream messages come from, chosen by ``[source] source``.

| ``source`` | what runs |
| --- | --- |
| ``simulator`` | :mod:`hub.sources.simulator`: a ledger every ``ledger_interval`` seconds |
| ``upstream:URL[,URL...]`` | :mod:`hub.links.upstream`: relay a rippled, Clio or hub |
| ``replay:FILE`` | :mod:`hub.sources.playback`: a recording made by ``hub record`` |
| ``none`` | nothing (only admin ``publish`` and the in-process API) |

:func:`start` is the one place that turns the setting into a running task, so a node,
a worker's parent and a test compose sources the same way. A cluster node starts its
source each time it becomes the leader (:mod:`hub.cluster.leader`), from the
:class:`~hub.core.history.Tail` of the cluster's stream: the upstream relay publishes
nothing up to that ledger and first what it still owed; the simulator numbers its
ledgers on from it; a replay plays its recording as always.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from hub.config import ConfigError, SourceConfig
from hub.core.history import Tail
from hub.core.ports import Started
from hub.links.upstream import UpstreamStatus


def upstream_urls(source: str) -> list[str]:
    """The URLs of an ``upstream:`` source, [] for any other; raises ConfigError if empty."""
    kind, _, where = source.partition(":")
    if kind != "upstream":
        return []
    urls = [url.strip() for url in where.split(",") if url.strip()]
    if not urls:
        raise ConfigError("upstream: needs at least one ws:// or wss:// URL")
    return urls


def check(source: str) -> None:
    """Raise ConfigError unless ``source`` names a source :func:`start` can run."""
    kind = source.partition(":")[0]
    if source in ("none", "simulator") or kind == "replay":
        return
    if kind != "upstream":
        raise ConfigError(f"unknown source {source!r}")
    upstream_urls(source)


async def start(
    cfg: SourceConfig,
    send: trio.MemorySendChannel[Any],
    nursery: trio.Nursery,
    network_id: int = 0,
    *,
    tail: Tail | None = None,
    upstream: UpstreamStatus | None = None,
) -> Started:
    """Start the configured source in ``nursery``, publishing into ``send`` (a clone the
    source owns and closes), after ``tail`` when given; returns once it runs. Raises
    ConfigError for an unknown one. ``network_id`` is the simulator's (``[server]
    network_id``); a relay reports into ``upstream`` when given (a new status otherwise).
    """
    kind, _, where = cfg.source.partition(":")
    if cfg.source == "none":
        send.close()
        return Started()
    if kind == "upstream":
        from hub.links.upstream import Relay, run_upstream

        urls = upstream_urls(cfg.source)
        status = upstream or UpstreamStatus(urls)
        relay = Relay(urls, streams=cfg.upstream_streams)
        await nursery.start(partial(run_upstream, send, relay, status, start=tail))
        return Started(upstream=status)
    if kind == "replay":
        from hub.sources.playback import Playback, run_playback

        await nursery.start(partial(run_playback, send, Playback(where, cfg.speed, cfg.loop)))
        return Started()
    if cfg.source == "simulator":
        return await _start_simulator(cfg, send, nursery, network_id, tail)
    send.close()
    raise ConfigError(f"unknown source {cfg.source!r}")


async def _start_simulator(
    cfg: SourceConfig,
    send: trio.MemorySendChannel[Any],
    nursery: trio.Nursery,
    network_id: int,
    tail: Tail | None,
) -> Started:
    from hub.sources.rounds import ServerLoad, run_simulator
    from hub.sources.simbooks import SimulatorBooks
    from hub.sources.simulator import LedgerSimulator

    sim = LedgerSimulator(
        seed=cfg.seed,
        tx_per_ledger=cfg.tx_per_ledger,
        validators=cfg.validators,
        network_id=network_id,
        **({} if tail is None else {"start_ledger": tail.ledger_index + 1}),
    )
    runner = partial(
        run_simulator,
        send,
        interval=cfg.ledger_interval,
        sim=sim,
        proposed=cfg.proposed,
        consensus=cfg.consensus,
        load=ServerLoad(sim.seed) if cfg.server_status else None,
    )
    await nursery.start(runner)
    return Started(books=SimulatorBooks(sim.book_state))
