"""Filling a node's history as the hub does: each message parsed and rendered, then kept."""

from __future__ import annotations

from typing import Any

from hub.core.history import History
from hub.core.render import Renderings
from hub.xrpl import events


def keep(history: History, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        event = events.parse(message)
        history.add(event, Renderings(event))
