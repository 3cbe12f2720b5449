"""A WebSocket subscription and notification hub speaking the rippled/Clio API.

The public names are imported on first use, so that importing one part of the package
(a parser, say) does not load the server, trio's I/O, Redis or Prometheus:

- :class:`Hub`: run a hub in your own trio nursery (:mod:`hub.app.compose`);
- :class:`Config` and :func:`load_config`: its settings (:mod:`hub.config`);
- :class:`RPCError`: a request's error, one of the tokens of :data:`hub.wire.errors.ERRORS`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.app.compose import Hub
    from hub.config import Config
    from hub.config import load as load_config
    from hub.wire.errors import RPCError

__all__ = ["Config", "Hub", "RPCError", "load_config"]

_WHERE = {
    "Config": ("hub.config", "Config"),
    "load_config": ("hub.config", "load"),
    "Hub": ("hub.app.compose", "Hub"),
    "RPCError": ("hub.wire.errors", "RPCError"),
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    value = getattr(import_module(where[0]), where[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
