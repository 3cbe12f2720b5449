"""Request to handler to reply: method lookup by version, admin checks, load, errors.

Handlers are ``async def handler(call) -> result`` and return data; they never write to
a socket. Everything here is the same for every transport.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from . import protocol
from .errors import RPCError
from .load import Verdict
from .versions import VersionedTable

if TYPE_CHECKING:
    from .server import Hub
    from .session import Session

log = logging.getLogger(__name__)

Handler = Callable[["Call"], Coroutine[Any, Any, Any]]
Inline = bool | Callable[[dict[str, Any]], bool]
"""Whether a method never waits: always, never, or as its request says."""

# Errors that say "no" to a well-formed request; everything else was the client's mistake.
_PLAIN_ERRORS = frozenset({"forbidden", "noPermission", "notSupported", "lgrNotFound", "tooBusy"})


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    since: int
    handler: Handler
    admin: bool
    cost: str
    inline: Inline = False

    def runs_inline(self, body: dict[str, Any]) -> bool:
        return self.inline if isinstance(self.inline, bool) else self.inline(body)


@dataclass(slots=True)
class Call:
    """What a handler gets: the hub, the calling session and its validated request.

    A handler whose work grows with its input adds to ``extra_cost`` (load units);
    ``followups`` are frames to send right after the reply (a resume's replay).
    """

    hub: Hub
    session: Session
    request: protocol.Request
    extra_cost: int = 0
    followups: list[bytes] = field(default_factory=list)

    @property
    def params(self) -> dict[str, Any]:
        return self.request.body

    @property
    def api_version(self) -> int:
        return self.request.api_version


class Methods:
    """The method table: each name with the versions at which its definition changed."""

    def __init__(self) -> None:
        self._table: VersionedTable[Method] = VersionedTable()

    def register(
        self,
        name: str,
        *,
        since: int = 0,
        admin: bool = False,
        cost: str = "request",
        inline: Inline = False,
    ) -> Callable[[Handler], Handler]:
        """Add a definition. ``inline`` declares a handler that never waits: the
        connection answers it at once instead of starting a task for it. A predicate
        on the request says so per request (``subscribe`` waits only for snapshots)."""

        def decorate(handler: Handler) -> Handler:
            self._table.add(name, since, Method(name, since, handler, admin, cost, inline))
            return handler

        return decorate

    def lookup(self, name: str, version: int) -> Method:
        method = self._table.get(name, version)
        if method is None:
            raise RPCError("unknownCmd")
        return method

    def names(self) -> list[str]:
        return self._table.names()


class Reply(NamedTuple):
    """An encoded reply, and whether the client must be cut after it is sent."""

    payload: bytes
    drop: bool = False
    followups: tuple[bytes, ...] = ()


@dataclass(slots=True)
class Outcome:
    """What one request came to, before a transport renders it.

    Exactly one of ``result`` and ``error`` is meaningful: ``error`` is None on success.
    ``body`` is the request object, or None when the input held none. ``verdict`` is the
    load verdict of the charge; at ``DROP`` the error is ``slowDown`` and the transport
    cuts the client (WebSocket: close 1008; JSON-RPC: HTTP 503).
    """

    body: dict[str, Any] | None
    verdict: Verdict
    result: Any = None
    error: RPCError | None = None
    followups: tuple[bytes, ...] = ()


async def execute(hub: Hub, session: Session, data: bytes | str | dict[str, Any]) -> Outcome:
    """Run one request through the method table: the core every transport shares.

    ``data`` is a text frame, or a request object a transport already decoded (JSON-RPC).
    Never raises: every failure becomes an error outcome, charged to the client.
    """
    begun = begin(hub, session, data)
    return begun if isinstance(begun, Outcome) else await begun.finish()


@dataclass(slots=True)
class Pending:
    """A request whose handler may wait: run :meth:`finish` in a task of its own."""

    body: dict[str, Any]
    method: Method
    call: Call

    async def finish(self) -> Outcome:
        try:
            result = await self.method.handler(self.call)
        except Exception as exc:
            return _failed(self.call, self.body, exc)
        return _done(self.call, self.body, self.method, result)


def begin(hub: Hub, session: Session, data: bytes | str | dict[str, Any]) -> Outcome | Pending:
    """All of a request that needs no waiting: its outcome when it has one already (an
    error, or a method registered ``inline``), else what is left to run."""
    hub.stats.requests += 1
    body: dict[str, Any] | None = None
    try:
        body = data if isinstance(data, dict) else protocol.decode(data)
        request = protocol.validate(body, hub.versions)
        method = hub.lookup(request.method, request.api_version)
        if method.admin and not session.admin:
            raise RPCError("forbidden")
    except RPCError as exc:
        kind = "request" if exc.token in _PLAIN_ERRORS else "malformed"
        return judge(hub, session, exc, body, kind)
    call = Call(hub, session, request)
    if not method.runs_inline(body):
        return Pending(body, method, call)
    coroutine = method.handler(call)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return _done(call, body, method, done.value)
    except Exception as exc:
        return _failed(call, body, exc)
    coroutine.close()
    return _failed(call, body, RuntimeError(f"inline method {method.name!r} waited"))


def _done(call: Call, body: dict[str, Any], method: Method, result: Any) -> Outcome:
    hub = call.hub
    verdict = hub.charge(call.session, hub.load.policy.cost(method.cost) + call.extra_cost)
    if verdict is Verdict.DROP:
        return _dropped(hub, body)
    return Outcome(body, verdict, result, followups=tuple(call.followups))


def _failed(call: Call, body: dict[str, Any], exc: Exception) -> Outcome:
    if isinstance(exc, RPCError):
        kind = "request" if exc.token in _PLAIN_ERRORS else "malformed"
        return judge(call.hub, call.session, exc, body, kind)
    log.error("handler failed for %r", protocol.masked(body), exc_info=exc)
    return judge(call.hub, call.session, RPCError("internal"), body, "exception")


def judge(
    hub: Hub,
    session: Session,
    error: RPCError,
    body: dict[str, Any] | None = None,
    kind: str = "malformed",
) -> Outcome:
    """An error outcome, charged to the client as ``kind``."""
    verdict = hub.charge(session, hub.load.policy.cost(kind))
    if verdict is Verdict.DROP:
        return _dropped(hub, body)
    hub.stats.errors[error.token] += 1
    return Outcome(body, verdict, error=error)


def _dropped(hub: Hub, body: dict[str, Any] | None) -> Outcome:
    hub.stats.errors["slowDown"] += 1
    return Outcome(body, Verdict.DROP, error=RPCError("slowDown"))


def render(hub: Hub, session: Session, outcome: Outcome) -> Reply:
    """The WebSocket envelope of an outcome (seed 001's WebSocket shape)."""
    extras = hub.extras(session, outcome.verdict)
    if outcome.error is None:
        assert outcome.body is not None
        payload = protocol.success(outcome.body, outcome.result, extras)
        return Reply(payload, followups=outcome.followups)
    payload = protocol.failure(outcome.body, outcome.error, extras)
    return Reply(payload, drop=outcome.verdict is Verdict.DROP)


async def dispatch(hub: Hub, session: Session, data: bytes | str) -> Reply:
    """Answer one text frame. Never raises: every failure becomes an error reply."""
    return render(hub, session, await execute(hub, session, data))


def refuse(
    hub: Hub,
    session: Session,
    error: RPCError,
    body: dict[str, Any] | None = None,
    kind: str = "malformed",
) -> Reply:
    """An error reply, charged to the client as ``kind``."""
    return render(hub, session, judge(hub, session, error, body, kind))
