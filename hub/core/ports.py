"""What the node is handed: the ports its adapters plug into.

The node (:mod:`hub.core.node`) knows these protocols and nothing behind them; the
composition root (:mod:`hub.app.compose`) builds the adapters from the configuration
and hands them in, the way centrifuge's ``Node`` is given its ``Broker``:

- :class:`Bus`: the Redis broker (:mod:`hub.cluster.broker`), or a worker's pipe to its
  parent (:mod:`hub.cluster.pipebus`);
- :class:`Forwarder`: the upstream pool (:mod:`hub.links.forward`);
- :class:`SourceStarter`: the simulator, the upstream relay, a playback
  (:func:`hub.sources.start`);
- :class:`Leadership`: the lease on Redis that decides which node runs the source
  (:mod:`hub.cluster.leader`);
- :class:`BookSource`: the simulator's books, or the upstream's ``book_offers``;
- :class:`Upstream`: what a relay knows of its upstream (:mod:`hub.links.upstream`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import trio

from hub.xrpl.books import BookPage, BookQuery
from hub.xrpl.events import Event
from hub.xrpl.identity import UpstreamIdentity

if TYPE_CHECKING:
    from hub.core.dispatch import Method
    from hub.core.history import Tail


class BusStatus(Protocol):
    """What a bus says of itself in ``server_info`` and the metrics."""

    url: str
    connected: bool
    fenced: int
    """Events of an ended leadership term that the bus refused (0 for a bus without)."""

    def as_json(self) -> dict[str, Any]: ...


class Bus(Protocol):
    """Where a node's published events go and its delivered events come from, in the one
    order every node of a cluster (or every worker of a process group) delivers."""

    @property
    def status(self) -> BusStatus: ...

    async def submit(self, batch: list[Event]) -> None: ...

    async def run(
        self,
        apply: Callable[[Event], None],
        remember: Callable[[Event], None],
        *,
        task_status: Any = ...,
    ) -> None:
        """Deliver every event in the one order with ``apply``; ``remember`` takes what
        was published before this node joined (its history), delivering it to nobody."""
        ...


class Forwarder(Protocol):
    """The methods the hub does not answer itself, asked of an upstream."""

    @property
    def method(self) -> Method[Any]:
        """The handler the node falls back to for a method it does not know."""
        ...

    @property
    def identity(self) -> UpstreamIdentity | None:
        """What the upstream said of itself (build version, network ID), once it has."""
        ...

    async def forward(self, request: dict[str, Any], api_version: int) -> dict[str, Any]:
        """The upstream's whole reply to ``request``."""
        ...

    async def run(self, *, task_status: Any = ...) -> None: ...


class BookSource(Protocol):
    """Anything that can answer a book page: the simulator's books, an upstream."""

    async def book_page(self, query: BookQuery) -> BookPage | None:
        """The page, or None while the source has no ledger yet (rippled then answers
        the entry with no offers field at all)."""
        ...


class Upstream(Protocol):
    """What a relay knows of the upstream it follows."""

    @property
    def urls(self) -> tuple[str, ...] | list[str]: ...

    @property
    def identity(self) -> UpstreamIdentity | None: ...

    def linked(self, url: str) -> bool:
        """Whether the relay is connected to ``url`` now."""
        ...

    def as_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Started:
    """What a started source reports back: ``upstream`` for a relay, ``books`` for a
    source whose order books answer snapshots (the simulator)."""

    upstream: Upstream | None = None
    books: BookSource | None = None


class SourceStarter(Protocol):
    """Starts the node's source in ``nursery``, publishing into ``send``, from ``tail``
    (where the cluster's stream stands, for a source started by a new leader)."""

    def __call__(
        self, nursery: trio.Nursery, send: trio.MemorySendChannel[Any], tail: Tail | None
    ) -> Awaitable[Started]: ...


Lead = Callable[[trio.Nursery, trio.MemorySendChannel[Any], "Tail | None"], Awaitable[None]]
"""What a leadership runs while it leads: the source, started in its own nursery."""


class Leadership(Protocol):
    """This node's candidacy for running a cluster's source."""

    @property
    def leading(self) -> bool: ...

    @property
    def changes(self) -> int:
        """Times this node became or stopped being the leader."""
        ...

    def as_json(self) -> dict[str, Any]: ...

    async def run(self, lead: Lead, *, task_status: Any = ...) -> None: ...
