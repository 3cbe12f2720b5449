"""Requests in, envelopes out: the rippled/Clio WebSocket wire format, without any I/O.

A request is a JSON object with ``command`` (or ``method``), an optional ``id`` of any
JSON type echoed verbatim, and an optional ``api_version``. Replies follow the XRPL docs'
"Response Formatting" page
(https://xrpl.org/docs/references/http-websocket-apis/api-conventions/response-formatting):
``{"id", "status", "type": "response", "result"}`` on success; errors lift ``error``,
``error_code`` and ``error_message`` to the top level and carry the masked ``request``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

from hub.wire.decode import JSONError
from hub.wire.decode import decode as json_decode
from hub.wire.errors import RPCError
from hub.wire.versions import VersionPolicy

SHUTTING_DOWN: Final = "server shutting down"
_RESUME_HINT: Final = re.compile(r"since_ledger (\d+)")

MASKED_FIELDS: Final = frozenset({"secret", "seed", "seed_hex", "passphrase", "admin_password"})
MASK: Final = "<masked>"
# How a masked key begins in the lower-cased encoding of a request; a key is always
# followed by ':', a string value never is, so only keys (and keys holding a quote) match.
_MASKED_KEYS: Final = tuple(f'"{name}":'.encode() for name in MASKED_FIELDS)

_encoder: Final = msgspec.json.Encoder()
encode: Final = _encoder.encode


class Warning(Struct, frozen=True):
    """One entry of the ``warnings`` array ("Response Formatting", "API Warnings")."""

    id: int
    message: str
    details: dict[str, Any] | UnsetType = UNSET


class Extras(Struct, frozen=True):
    """Envelope fields that depend on the client's or the hub's state, not on the result."""

    warning: Literal["load"] | UnsetType = UNSET
    warnings: tuple[Warning, ...] | UnsetType = UNSET
    forwarded: bool | UnsetType = UNSET


NO_EXTRAS: Final = Extras()
LOAD_WARNING: Final = Extras(warning="load")


class _Success(Struct, kw_only=True):
    id: Any | UnsetType = UNSET
    status: Literal["success"] = "success"
    type: Literal["response"] = "response"
    api_version: Any | UnsetType = UNSET
    result: Any
    warning: Literal["load"] | UnsetType = UNSET
    warnings: tuple[Warning, ...] | UnsetType = UNSET
    forwarded: bool | UnsetType = UNSET


class _Failure(Struct, kw_only=True):
    id: Any | UnsetType = UNSET
    status: Literal["error"] = "error"
    type: Literal["response"] = "response"
    api_version: Any | UnsetType = UNSET
    error: str
    error_code: int
    error_message: str
    request: dict[str, Any] | UnsetType = UNSET
    warning: Literal["load"] | UnsetType = UNSET
    warnings: tuple[Warning, ...] | UnsetType = UNSET
    forwarded: bool | UnsetType = UNSET


@dataclass(frozen=True, slots=True)
class Forwarded:
    """A whole reply from the upstream, to be passed on as the client's own."""

    reply: dict[str, Any]


_UPSTREAM_ENVELOPE: Final = frozenset({"id", "api_version", "request", "forwarded"})


def forwarded(body: dict[str, Any], forwarded: Forwarded, extras: Extras = NO_EXTRAS) -> bytes:
    """The upstream's reply with the client's ``id``, ``api_version`` and ``request``."""
    out: dict[str, Any] = {}
    if "id" in body:
        out["id"] = body["id"]
    out.update((k, v) for k, v in forwarded.reply.items() if k not in _UPSTREAM_ENVELOPE)
    if "api_version" in body:
        out["api_version"] = body["api_version"]
    if out.get("status") == "error":
        out["request"] = masked(body)
    if isinstance(extras.warning, str):
        out["warning"] = extras.warning
    if isinstance(extras.warnings, tuple):
        theirs = out.get("warnings")
        out["warnings"] = [*(theirs if isinstance(theirs, list) else ()), *extras.warnings]
    out["forwarded"] = True
    return encode(out)


@dataclass(slots=True)
class Request:
    """A request that named a method and a supported version."""

    body: dict[str, Any]
    method: str
    api_version: int


def decode(data: bytes | str) -> dict[str, Any]:
    """The request object of one text frame; anything else (nesting past
    :data:`hub.wire.decode.MAX_DEPTH` included) is ``badSyntax``."""
    try:
        body = json_decode(data)
    except JSONError as exc:
        raise RPCError("badSyntax", f"Syntax error: {exc}") from None
    if not isinstance(body, dict):
        raise RPCError("badSyntax", "Syntax error: a request must be a JSON object.")
    return body


def validate(body: dict[str, Any], versions: VersionPolicy) -> Request:
    """Check the method name and the version before anything is dispatched.

    The version is checked first, as rippled and Clio do, so a request with both wrong
    learns about its version.
    """
    version = versions.resolve(body.get("api_version"), given="api_version" in body)
    command = body.get("command", UNSET)
    method = body.get("method", UNSET)
    name = method if command is UNSET else command
    if not isinstance(name, str) or not name:
        raise RPCError("missingCommand")
    if command is not UNSET and method is not UNSET and command != method:
        raise RPCError("missingCommand", "Fields 'command' and 'method' must be equal.")
    return Request(body, name, version)


def masked(body: dict[str, Any]) -> dict[str, Any]:
    """The request as received, with credentials replaced so replies and logs never echo
    them: the value of every key that is one of :data:`MASKED_FIELDS` in any letter case,
    at any depth (``tx_json.Secret``, a ``passphrase`` in a list), whatever that value is.

    Any JSON may arrive here, of any size and depth, so nothing recurses: a request
    with nothing to mask is recognized in its encoding (one C pass) and returned as
    is; otherwise :func:`_masked_copy` rebuilds it with an explicit stack."""
    try:
        encoded = encode(body).lower()
    except (RecursionError, TypeError, ValueError, msgspec.EncodeError):
        return _masked_copy(body)
    if not any(pattern in encoded for pattern in _MASKED_KEYS):
        return body
    return _masked_copy(body)


def _masked_copy(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` with each masked field's value replaced at any depth.

    Each container is copied once and its children queued, not recursed into: depth
    costs no stack, and the copy is one pass over the request.
    """
    root = dict(body)
    todo: list[dict[Any, Any] | list[Any]] = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and key.lower() in MASKED_FIELDS:
                    node[key] = MASK
                elif isinstance(value, dict | list):
                    node[key] = _queued_copy(value, todo)
        else:
            for index, value in enumerate(node):
                if isinstance(value, dict | list):
                    node[index] = _queued_copy(value, todo)
    return root


def _queued_copy(
    value: dict[Any, Any] | list[Any], todo: list[dict[Any, Any] | list[Any]]
) -> dict[Any, Any] | list[Any]:
    copy = dict(value) if isinstance(value, dict) else list(value)
    todo.append(copy)
    return copy


def success(body: dict[str, Any], result: Any, extras: Extras = NO_EXTRAS) -> bytes:
    """The WebSocket success envelope of a request's result."""
    if isinstance(result, Forwarded):
        return forwarded(body, result, extras)
    return encode(
        _Success(
            id=body.get("id", UNSET),
            api_version=body.get("api_version", UNSET),
            result=result,
            warning=extras.warning,
            warnings=extras.warnings,
            forwarded=extras.forwarded,
        )
    )


def failure(body: dict[str, Any] | None, error: RPCError, extras: Extras = NO_EXTRAS) -> bytes:
    """The WebSocket error envelope; ``body`` is None when the frame held no request."""
    reply = _Failure(
        error=error.token,
        error_code=error.code,
        error_message=error.message,
        warning=extras.warning,
        warnings=extras.warnings,
        forwarded=extras.forwarded,
    )
    if body is not None:
        reply.id = body.get("id", UNSET)
        reply.api_version = body.get("api_version", UNSET)
        reply.request = masked(body)
    if not error.extra:
        return encode(reply)
    merged = msgspec.to_builtins(reply)
    merged.update(error.extra)
    return encode(merged)


def goodbye(resume_point: int | None) -> str:
    """The close reason of a client the hub drains: where it resumes without loss."""
    if resume_point is None:
        return SHUTTING_DOWN
    return f"{SHUTTING_DOWN}; resume with since_ledger {resume_point}"


def resume_hint(reason: str | None) -> int | None:
    """The ``since_ledger`` a close reason from :func:`goodbye` names, if any."""
    match = _RESUME_HINT.search(reason or "")
    return int(match[1]) if match else None
