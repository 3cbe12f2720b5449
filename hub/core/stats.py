"""Counters the hub keeps about itself, for ``server_info`` and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec


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
    accept_errors: int = 0
    internal_errors: int = 0
    """Connections ended by a bug met while serving them (closed 1011)."""


class Report:
    """A dataclass of figures that ``server_info`` shows whole, field by field."""

    __slots__ = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out
