"""JSON text from outside the hub to Python values, bounded in nesting.

msgspec decodes any depth up to the interpreter's recursion limit, and a value nested
a thousand deep is a trap for everything that walks it afterwards (``repr``, masking,
encoding an error reply that echoes it). :func:`decode` refuses anything nested deeper
than :data:`MAX_DEPTH`, which no request or ledger message comes near, so nothing past
this point has to worry about depth.

The depth is measured on the bytes, not by walking the decoded value: the text is cut
down to its brackets and quotes with C-speed ``bytes`` operations and the running depth
summed by ``itertools.accumulate``. Most requests skip even that: a text with no more
than :data:`MAX_DEPTH` opening brackets in all cannot nest deeper.
"""

from __future__ import annotations

import itertools
from typing import Any, Final

import msgspec

MAX_DEPTH: Final = 64
"""The deepest nesting of arrays and objects accepted; the hub's own figure (ledger
messages nest about ten deep)."""

_decoder: Final = msgspec.json.Decoder()
_NOT_STRUCTURE: Final = bytes(range(256)).translate(None, b'[]{}"')
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class JSONError(ValueError):
    """The text is not JSON, or is nested deeper than :data:`MAX_DEPTH`."""


def decode(data: bytes | str) -> Any:
    """The value of a JSON text; raises :class:`JSONError` saying what is wrong."""
    try:
        value = _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise JSONError(str(exc) if isinstance(exc, msgspec.DecodeError) else _TOO_DEEP) from None
    raw = data.encode() if isinstance(data, str) else data
    if depth(raw) > MAX_DEPTH:
        raise JSONError(_TOO_DEEP)
    return value


_TOO_DEEP: Final = f"JSON is nested more than {MAX_DEPTH} levels deep"


def depth(data: bytes | bytearray | memoryview) -> int:
    """How deep the arrays and objects of a valid JSON text nest; a lower bound of 0
    when the text holds no more than :data:`MAX_DEPTH` opening brackets at all."""
    data = bytes(data)
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return 0
    if b"\\" in data:  # escaped quotes and backslashes would upset the pairing below
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = data.translate(None, _NOT_STRUCTURE)
    # Strings with no bracket inside shrink to '""' and go in one pass; if any quote is
    # left, a string held a bracket, and the quoted parts are cut out one by one.
    shape = shape.replace(b'""', b"")
    if b'"' in shape:
        shape = b"".join(shape.split(b'"')[::2])
    steps = memoryview(shape.translate(_STEPS)).cast("b")
    return max(itertools.accumulate(steps), default=0)


def decode_object(data: bytes | str) -> dict[str, Any]:
    """:func:`decode` for a text that must hold a JSON object (a request, a peer's
    message); raises :class:`JSONError` for anything else."""
    value = decode(data)
    if not isinstance(value, dict):
        raise JSONError(f"expected a JSON object, got {type(value).__name__}")
    return value
