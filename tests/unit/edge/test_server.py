"""The server's own small parts, without sockets."""

from __future__ import annotations

from hub.edge.server import Every


def test_a_repeated_warning_is_due_once_per_interval() -> None:
    every = Every(10.0)
    assert every.due(100.0)
    assert not every.due(100.1)
    assert not every.due(109.9)
    assert every.due(110.0)
    assert not every.due(115.0)
    assert every.due(121.0)
