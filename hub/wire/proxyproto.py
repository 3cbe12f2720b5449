"""The PROXY protocol header, versions 1 and 2, parsed sans-IO and incrementally.

A load balancer in TCP mode (haproxy ``send-proxy``/``send-proxy-v2``, cloud load
balancers) cannot add HTTP headers, so it opens each connection with a PROXY header
naming the client. The format is haproxy's "The PROXY protocol" versions 1 and 2,
https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt (doc/proxy-protocol.txt in
the haproxy repository).

Feed the first bytes of a connection to a :class:`ProxyParser`: it answers
:class:`NeedMore`, :class:`Parsed` (the addresses, and the bytes after the header that
belong to the client's own stream) or :class:`Invalid` with a reason. It decides as
early as the bytes allow, so a client speaking HTTP straight to a PROXY port is refused
at its first byte. The caller must accept a header only from a trusted proxy, close the
connection on :class:`Invalid` (or on EOF before a verdict: a partial header is invalid
too), and bound the wait with a timeout.

- v1: ``PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`` or ``PROXY UNKNOWN ...\\r\\n``,
  at most 107 bytes, exactly one space between fields, no leading zeros.
- v2: the 12-byte signature, version 2, command LOCAL or PROXY, family UNSPEC, INET,
  INET6 or UNIX, stream or datagram, then the address block and TLVs, which must be
  well formed but are otherwise skipped (a CRC32C TLV is not checked).

``source`` is None when the header names no client: LOCAL (the proxy's own
connection, a health check), v1 UNKNOWN, UNSPEC, UNIX, or a datagram transport (which
the spec lets a receiver treat as UNSPEC). The connection's real peer then stands.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from typing import Final, Literal

import msgspec

V1_MAX: Final = 107
"""The longest v1 line, CRLF included."""
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX: Final = b"PROXY "
_V2_FIXED: Final = struct.Struct("!12sBBH")
_PORT: Final = re.compile(r"0|[1-9][0-9]{0,4}")
_HEX_COLON: Final = re.compile(r"[0-9A-Fa-f:]+")
_INET: Final = struct.Struct("!4s4sHH")
_INET6: Final = struct.Struct("!16s16sHH")
_UNIX_LENGTH: Final = 216

Family = Literal["tcp4", "tcp6", "unix", "unspec"]


class NeedMore(msgspec.Struct, frozen=True):
    """Not enough bytes yet to decide: feed more."""


NEED_MORE: Final = NeedMore()


class Parsed(msgspec.Struct, frozen=True):
    """A complete, valid header."""

    version: int
    """1 or 2."""
    local: bool
    """v2 LOCAL: the proxy's own connection; any address information is ignored."""
    family: Family
    source: str | None
    """The client's address; None when the header names none (the real peer stands)."""
    source_port: int | None
    destination: str | None
    destination_port: int | None
    remaining: bytes
    """What followed the header in the bytes fed: the start of the client's stream."""


class Invalid(msgspec.Struct, frozen=True):
    """Not a valid PROXY header; the connection must be closed."""

    reason: str


Result = NeedMore | Parsed | Invalid


class ProxyParser:
    """Accumulates a connection's first bytes until the header is complete or invalid.

    :meth:`feed` may be called again only while it answers :class:`NeedMore`.
    """

    __slots__ = ("_buffer", "_done")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._done = False

    def feed(self, data: bytes) -> Result:
        if self._done:
            raise RuntimeError("the PROXY header was already decided")
        self._buffer += data
        result = parse(self._buffer)
        self._done = not isinstance(result, NeedMore)
        return result


def looks_like(data: bytes) -> bool:
    """Whether a connection's first bytes are (the start of) a PROXY header."""
    return data.startswith((_V1_PREFIX, V2_SIGNATURE))


def parse(data: bytes | bytearray) -> Result:
    """The verdict on a connection's first bytes (all of them so far)."""
    if not data:
        return NEED_MORE
    if _V1_PREFIX.startswith(bytes(data[:6])):
        return _parse_v1(data)
    if V2_SIGNATURE.startswith(bytes(data[:12])):
        return _parse_v2(data)
    return Invalid("not a PROXY protocol header")


def _parse_v1(data: bytes | bytearray) -> Result:
    end = _line_end(data)
    if isinstance(end, NeedMore | Invalid):
        return end
    try:
        line = bytes(data[:end]).decode("ascii")
    except UnicodeDecodeError:
        return Invalid("v1: a non-ASCII byte in the line")
    remaining = bytes(data[end + 2 :])
    fields = line.split(" ")
    if fields[1:2] == ["UNKNOWN"]:
        return Parsed(1, False, "unspec", None, None, None, None, remaining)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        return Invalid(f"v1: expected 'PROXY TCP4|TCP6|UNKNOWN' and 4 fields: {line!r}")
    source, destination = _v1_address(fields[1], fields[2]), _v1_address(fields[1], fields[3])
    if source is None or destination is None:
        return Invalid(f"v1: bad {fields[1]} address in {line!r}")
    ports = [_v1_port(text) for text in fields[4:]]
    if None in ports:
        return Invalid(f"v1: bad port in {line!r}")
    family: Family = "tcp4" if fields[1] == "TCP4" else "tcp6"
    return Parsed(1, False, family, source, ports[0], destination, ports[1], remaining)


def _line_end(data: bytes | bytearray) -> int | NeedMore | Invalid:
    """Where the CRLF ending the v1 line starts; a lone CR or LF is invalid."""
    for at in range(min(len(data), V1_MAX - 1)):
        byte = data[at]
        if byte == 0x0A:
            return Invalid("v1: a line feed without a carriage return")
        if byte == 0x0D:
            if at + 1 == len(data):
                return NEED_MORE
            if data[at + 1] != 0x0A:
                return Invalid("v1: a carriage return without a line feed")
            return at
    if len(data) >= V1_MAX:
        return Invalid(f"v1: no CRLF in the first {V1_MAX} bytes")
    return NEED_MORE


def _v1_address(protocol: str, text: str) -> str | None:
    """The address in canonical text; IPv6 only as hex groups (no dotted tail, no scope)."""
    try:
        if protocol == "TCP4":
            return str(ipaddress.IPv4Address(text))
        return str(ipaddress.IPv6Address(text)) if _HEX_COLON.fullmatch(text) else None
    except ValueError:
        return None


def _v1_port(text: str) -> int | None:
    if not _PORT.fullmatch(text) or int(text) > 65535:
        return None
    return int(text)


def _parse_v2(data: bytes | bytearray) -> Result:
    if len(data) < _V2_FIXED.size:
        return NEED_MORE
    _, version_command, family_transport, length = _V2_FIXED.unpack_from(data)
    version, command = version_command >> 4, version_command & 0x0F
    family, transport = family_transport >> 4, family_transport & 0x0F
    if version != 2:
        return Invalid(f"v2: version {version}, not 2")
    if command > 1:
        return Invalid(f"v2: unknown command {command:#x}")
    if family > 3 or transport > 2:
        return Invalid(f"v2: unknown family/transport byte {family_transport:#04x}")
    end = _V2_FIXED.size + length
    if len(data) < end:
        return NEED_MORE
    block = bytes(data[_V2_FIXED.size : end])
    remaining = bytes(data[end:])
    if command == 0:
        return Parsed(2, True, "unspec", None, None, None, None, remaining)
    return _v2_addresses(family, transport, block, remaining)


def _v2_addresses(family: int, transport: int, block: bytes, remaining: bytes) -> Result:
    """The PROXY command's address block (family 1 INET, 2 INET6, 3 UNIX) and TLVs."""
    if family == 0 or transport == 0:
        return Parsed(2, False, "unspec", None, None, None, None, remaining)
    layout = {1: _INET.size, 2: _INET6.size, 3: _UNIX_LENGTH}[family]
    if len(block) < layout:
        return Invalid(f"v2: a {len(block)}-byte address block, at least {layout} needed")
    tlv_problem = _check_tlvs(block[layout:])
    if tlv_problem:
        return Invalid(f"v2: {tlv_problem}")
    if family == 3:
        return Parsed(2, False, "unix", None, None, None, None, remaining)
    if transport == 2:
        return Parsed(2, False, "unspec", None, None, None, None, remaining)
    if family == 1:
        src, dst, sport, dport = _INET.unpack_from(block)
        s4, d4 = ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst)
        return Parsed(2, False, "tcp4", str(s4), sport, str(d4), dport, remaining)
    src, dst, sport, dport = _INET6.unpack_from(block)
    s6, d6 = ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)
    return Parsed(2, False, "tcp6", str(s6), sport, str(d6), dport, remaining)


def _check_tlvs(tlvs: bytes) -> str:
    """Why the TLV area is malformed (each TLV: type, 2-byte length, value), or ''."""
    at = 0
    while at < len(tlvs):
        if at + 3 > len(tlvs):
            return f"a truncated TLV header at offset {at}"
        (size,) = struct.unpack_from("!H", tlvs, at + 1)
        at += 3 + size
        if at > len(tlvs):
            return f"a TLV of type {tlvs[at - 3 - size]:#04x} overruns the header"
    return ""
