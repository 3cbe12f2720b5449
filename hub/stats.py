"""Counters the hub keeps about itself, for ``server_info`` and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    connections_accepted: int = 0
    connections_refused: int = 0
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    events_published: int = 0
    events_rejected: int = 0
    deliveries: int = 0
    bytes_sent: int = 0
    slow_closes: int = 0
    load_warnings: int = 0
    load_drops: int = 0
