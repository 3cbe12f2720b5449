"""rippled's JSON-RPC envelope, without any I/O: request bodies in, reply bodies out.

A request is ``{"method": NAME, "params": [{...}]}``; the one object in ``params`` is
the request proper (``api_version`` included), exactly what a WebSocket client would
send with ``command`` set to ``NAME`` — so the hub answers it through the same core
(:meth:`hub.core.node.Node.execute`). Replies follow the JSON-RPC shape of the XRPL docs'
"Response Formatting" page
(https://xrpl.org/docs/references/http-websocket-apis/api-conventions/response-formatting),
which the command line shares: ``status`` moves inside ``result``; an error's ``error``,
``error_code``, ``error_message`` and the masked ``request`` sit in ``result`` too;
``warning``, ``warnings`` and ``forwarded`` stay at the top level. ``id``, ``jsonrpc``
and ``ripplerpc`` are echoed at the top level when given, as rippled does.

Bodies rippled refuses before dispatch answer HTTP 400 with a short text
(:class:`BadRequest`): not JSON, not an object, no ``method``, ``params`` not an array
of one object.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, Struct, UnsetType

from hub.wire.decode import JSONError
from hub.wire.decode import decode as json_decode
from hub.wire.envelope import NO_EXTRAS, Extras, Forwarded, Warning, masked
from hub.wire.errors import RPCError

_encoder: Final = msgspec.json.Encoder()

ECHOED: Final = ("id", "jsonrpc", "ripplerpc")
# The WebSocket envelope's own fields; anything else at the top of an error reply is
# extra detail of the error, which JSON-RPC keeps inside ``result``.
_WS_ENVELOPE: Final = frozenset(
    {"id", "status", "type", "api_version", "result", "warning", "warnings", "forwarded"}
)


class BadRequest(Exception):
    """A body rippled refuses before dispatch: HTTP 400 with this text."""


class _Reply(Struct, kw_only=True):
    id: Any | UnsetType = UNSET
    jsonrpc: Any | UnsetType = UNSET
    ripplerpc: Any | UnsetType = UNSET
    result: dict[str, Any]
    warning: str | UnsetType = UNSET
    warnings: tuple[Warning, ...] | list[Any] | UnsetType = UNSET
    forwarded: bool | UnsetType = UNSET


def parse(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request object for the core, and the fields to echo; raises BadRequest.

    rippled sets the request's ``command`` to the JSON-RPC ``method``, whatever
    ``params`` said, and drops a ``method`` inside ``params``; so does the hub.
    """
    try:
        envelope = json_decode(data)
    except JSONError as exc:
        raise BadRequest(f"Unable to parse request: {exc}") from None
    if not isinstance(envelope, dict):
        raise BadRequest("Unable to parse request: the body must be a JSON object")
    method = envelope.get("method")
    if method is None:
        raise BadRequest("Null method")
    if not isinstance(method, str):
        raise BadRequest("method is not string")
    if not method:
        raise BadRequest("method is empty")
    params = envelope.get("params")
    if params is None:
        params = [{}]
    if not isinstance(params, list) or len(params) != 1:
        raise BadRequest("params unparseable")
    first = params[0] if params[0] is not None else {}
    if not isinstance(first, dict):
        raise BadRequest("params unparseable")
    body = {key: value for key, value in first.items() if key != "method"}
    body["command"] = method
    echo = {key: envelope[key] for key in ECHOED if key in envelope}
    return body, echo


def success(
    result: Any,
    extras: Extras = NO_EXTRAS,
    echo: dict[str, Any] | None = None,
    *,
    body: dict[str, Any] | None = None,
) -> bytes:
    """``{"result": {..., "status": "success"}}``, plus the envelope's extras.

    A reply the hub forwarded upstream (:class:`~hub.wire.envelope.Forwarded`) is the
    upstream's WebSocket reply in this shape, with the client's own masked ``request``
    when it is an error, and ``forwarded: true``.
    """
    if isinstance(result, Forwarded):
        return _forwarded(result, extras, echo, body)
    inner = dict(result) if isinstance(result, dict) else {"value": result}
    inner["status"] = "success"
    return _encode(inner, extras, echo)


def _forwarded(
    result: Forwarded, extras: Extras, echo: dict[str, Any] | None, body: dict[str, Any] | None
) -> bytes:
    out = from_websocket(result.reply)
    if out["result"]["status"] == "error" and body is not None:
        out["result"]["request"] = masked(body)
    out.update((key, value) for key, value in (echo or {}).items())
    if isinstance(extras.warning, str):
        out["warning"] = extras.warning
    if isinstance(extras.warnings, tuple):
        out["warnings"] = [*out.get("warnings", ()), *extras.warnings]
    out["forwarded"] = True
    return _encoder.encode(out)


def failure(
    body: dict[str, Any] | None,
    error: RPCError,
    extras: Extras = NO_EXTRAS,
    echo: dict[str, Any] | None = None,
) -> bytes:
    """``{"result": {"error", "error_code", "error_message", "request", "status"}}``."""
    inner: dict[str, Any] = {
        "error": error.token,
        "error_code": error.code,
        "error_message": error.message,
        **error.extra,
    }
    if body is not None:
        inner["request"] = masked(body)
    inner["status"] = "error"
    return _encode(inner, extras, echo)


def _encode(inner: dict[str, Any], extras: Extras, echo: dict[str, Any] | None) -> bytes:
    echo = echo or {}
    return _encoder.encode(
        _Reply(
            id=echo.get("id", UNSET),
            jsonrpc=echo.get("jsonrpc", UNSET),
            ripplerpc=echo.get("ripplerpc", UNSET),
            result=inner,
            warning=extras.warning,
            warnings=extras.warnings,
            forwarded=extras.forwarded,
        )
    )


def from_websocket(reply: dict[str, Any]) -> dict[str, Any]:
    """A WebSocket reply in the JSON-RPC (and command line) shape, as ``hub call`` prints.

    Success: the ``result`` object with ``status`` inside. Error: ``error``,
    ``error_code``, ``error_message``, any extra detail and the ``request``, with
    ``status`` inside ``result``. ``warning``, ``warnings`` and ``forwarded`` stay
    beside ``result``; ``id``, ``type`` and ``api_version`` are the WebSocket's own.
    """
    if reply.get("status") == "error" or "error" in reply:
        inner = {key: value for key, value in reply.items() if key not in _WS_ENVELOPE}
        request = inner.pop("request", UNSET)
        if request is not UNSET:
            inner["request"] = request
        inner["status"] = "error"
    else:
        result = reply.get("result")
        inner = dict(result) if isinstance(result, dict) else {"value": result}
        inner["status"] = "success"
    out: dict[str, Any] = {"result": inner}
    for key in ("warning", "warnings", "forwarded"):
        if key in reply:
            out[key] = reply[key]
    return out
