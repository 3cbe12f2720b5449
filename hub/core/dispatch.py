"""Request to outcome: method lookup by version, admin checks, errors — no transport.

A method is a plain function of a :class:`Call` (answered in line, with no task) or an
``async def`` (given a task of its own, since it may wait); either returns the
``result`` object. A plain function that finds this request must wait returns a
:class:`Later` instead, run in a task like an ``async def`` (``subscribe`` with a book
snapshot), so whatever it refused before that was answered in line. Nothing here
charges a client or renders an envelope: an
:class:`Outcome` says what the request came to and what it costs, the node charges it
(:meth:`hub.core.node.Node.settle`) and each transport renders it in its own envelope.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from hub import logs
from hub.core.load import Verdict
from hub.core.session import Session
from hub.wire import envelope
from hub.wire.errors import RPCError
from hub.wire.versions import VersionedTable, VersionPolicy

if TYPE_CHECKING:
    from hub.core.outbox import Source

log = logging.getLogger(__name__)

N = TypeVar("N")
Handler = Callable[["Call[N]"], Any]
Costs = tuple[tuple[str, int], ...]
"""``(cost kind, units)`` pairs, priced by :class:`hub.core.load.LoadPolicy`."""

# Errors that say "no" to a well-formed request; everything else was the client's mistake.
_PLAIN_ERRORS = frozenset(
    {"forbidden", "noPermission", "notSupported", "lgrNotFound", "txnNotFound", "tooBusy"}
)


def cost_of(error: RPCError) -> str:
    """The cost kind of a request that ended in ``error``."""
    return "request" if error.token in _PLAIN_ERRORS else "malformed"


@dataclass(frozen=True, slots=True)
class Method(Generic[N]):
    name: str
    since: int
    handler: Handler[N]
    admin: bool = False
    cost: str = "request"
    inline: bool = field(init=False)
    """Whether it never waits (a plain function): answered at once, without a task.
    Worked out once, not per request."""
    costs: Costs = field(init=False)
    """What one call costs before the handler adds to it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "inline", not inspect.iscoroutinefunction(self.handler))
        object.__setattr__(self, "costs", ((self.cost, 1),))


@dataclass(slots=True)
class Call(Generic[N]):
    """What a handler gets: the node, the calling session and its validated request.

    A handler whose work grows with its input adds to its cost with :meth:`charge`;
    ``replay`` is what to send right after the reply (a resume's replay), pulled as the
    socket takes it.
    """

    node: N
    session: Session
    request: envelope.Request
    costs: list[tuple[str, int]] = field(default_factory=list)
    replay: Source | None = None

    @property
    def params(self) -> dict[str, Any]:
        return self.request.body

    @property
    def api_version(self) -> int:
        return self.request.api_version

    def charge(self, kind: str, units: int) -> None:
        self.costs.append((kind, units))


class Context(Protocol):
    """What dispatch needs of a node: its version policy and its method lookup."""

    @property
    def versions(self) -> VersionPolicy: ...

    def lookup(self, name: str, version: int) -> Method[Any]: ...


class Methods(Generic[N]):
    """The method table: each name with the versions at which its definition changed."""

    def __init__(self) -> None:
        self._table: VersionedTable[Method[N]] = VersionedTable()
        self._found: dict[tuple[str, int], Method[N]] = {}
        """Lookups already answered: names and versions are both few, so it stays small."""

    def register(
        self, name: str, *, since: int = 0, admin: bool = False, cost: str = "request"
    ) -> Callable[[Handler[N]], Handler[N]]:
        """Add the definition of ``name`` that starts at API version ``since``."""

        def decorate(handler: Handler[N]) -> Handler[N]:
            self._table.add(name, since, Method(name, since, handler, admin, cost))
            self._found.clear()
            return handler

        return decorate

    def lookup(self, name: str, version: int) -> Method[N]:
        method = self._found.get((name, version))
        if method is not None:
            return method
        method = self._table.get(name, version)
        if method is None:
            raise RPCError("unknownCmd")  # not remembered: clients choose unknown names
        self._found[name, version] = method
        return method

    def names(self) -> list[str]:
        return self._table.names()


@dataclass(slots=True)
class Outcome:
    """What one request came to, before it is charged and rendered.

    ``error`` is None on success, and then ``result`` is the result. ``body`` is the
    request object, or None when the input held none. ``verdict`` is set when the node
    charges ``costs``; at ``DROP`` the error is ``slowDown`` and the transport cuts the
    client (WebSocket: close 1008; JSON-RPC: HTTP 503).
    """

    body: dict[str, Any] | None
    result: Any = None
    error: RPCError | None = None
    costs: Costs = ()
    replay: Source | None = None
    verdict: Verdict = Verdict.OK


@dataclass(frozen=True, slots=True)
class Later:
    """A plain handler's answer when this request must wait: the rest of its work,
    started only in the task that awaits it."""

    rest: Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class Pending:
    """A request whose handler may wait: run :meth:`finish` in a task of its own."""

    body: dict[str, Any]
    method: Method[Any]
    call: Call[Any]
    later: Later | None = None
    """What a plain handler left to run, when it had to wait."""

    async def finish(self) -> Outcome:
        try:
            if self.later is not None:
                result = await self.later.rest()
            else:
                result = await self.method.handler(self.call)
        except Exception as exc:
            return _failed(self.call, self.body, exc)
        return _done(self.call, self.body, self.method, result)


def begin(node: Context, session: Session, data: bytes | str | dict[str, Any]) -> Outcome | Pending:
    """All of a request that needs no waiting: its outcome when it has one already (an
    error, or an inline method's result), else what is left to run.

    ``data`` is a text frame, or a request object a transport already decoded (JSON-RPC).
    """
    body: dict[str, Any] | None = None
    try:
        body = data if isinstance(data, dict) else envelope.decode(data)
        request = envelope.validate(body, node.versions)
        method = node.lookup(request.method, request.api_version)
        if method.admin and not session.admin:
            raise RPCError("forbidden")
    except RPCError as exc:
        return Outcome(body, error=exc, costs=((cost_of(exc), 1),))
    except Exception as exc:  # a bug: this request fails, nothing else does
        return _crashed("dispatch", body, exc, ())
    call = Call(node, session, request)
    if not method.inline:
        return Pending(body, method, call)
    try:
        result = method.handler(call)
    except Exception as exc:
        return _failed(call, body, exc)
    if isinstance(result, Later):
        return Pending(body, method, call, result)
    return _done(call, body, method, result)


def _done(call: Call[Any], body: dict[str, Any], method: Method[Any], result: Any) -> Outcome:
    costs = (*method.costs, *call.costs) if call.costs else method.costs
    return Outcome(body, result, None, costs, call.replay)


def _failed(call: Call[Any], body: dict[str, Any], exc: Exception) -> Outcome:
    """A handler's error, charged with what the handler had spent before it failed."""
    if isinstance(exc, RPCError):
        return Outcome(body, error=exc, costs=((cost_of(exc), 1), *call.costs))
    return _crashed(call.request.method, body, exc, tuple(call.costs))


def _crashed(where: str, body: dict[str, Any] | None, exc: Exception, spent: Costs) -> Outcome:
    """``internal`` for a bug; its traceback is logged once per kind and interval, with
    the request cut short and masked."""
    logs.throttled(
        log, logging.ERROR, (where, type(exc)),
        "%s failed for %s", where, logs.brief(body), exc_info=exc,
    )  # fmt: skip
    return Outcome(body, error=RPCError("internal"), costs=(("exception", 1), *spent))
