"""The client's address behind trusted proxies: ``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``.

Behind nginx or haproxy every client arrives from the proxy's address, so a hub that
trusted the TCP peer would make the whole internet share 127.0.0.1 (and its admin
rights). :func:`client_address` believes the forwarding headers only when the peer is
one of ``[server] trusted_proxies``:

- ``Forwarded`` (RFC 7239, https://www.rfc-editor.org/rfc/rfc7239) is read first, then
  ``X-Forwarded-For``, then ``X-Real-IP``; repeated header lines are one list, in order.
- In a chain the client is the rightmost entry that is not itself a trusted proxy: each
  proxy appends the address it saw, so entries left of it are whatever the client wrote.
- Garbage never raises. A chain the proxy made unreadable, or one whose client is
  ``unknown`` or an obfuscated ``_name``, leaves the address at the peer and says why in
  :attr:`ClientAddress.problem`; such a client is never admin by address.
- From any other peer the headers are ignored, and :attr:`ClientAddress.ignored` names
  them: the caller refuses admin by address and logs that the hub is probably behind a
  proxy missing from ``trusted_proxies``.

The proxy must set or clear each header the hub reads, or a client could write its own:
``docs/deploy/nginx.conf`` clears ``Forwarded`` for that reason.

Addresses are canonical text: IPv4-mapped IPv6 (``::ffff:192.0.2.1``, what a dual-stack
listener reports for IPv4 peers) becomes the IPv4 address, IPv6 is compressed and loses
any ``%scope``; a peer that is no IP address at all (a UNIX socket) is kept as given.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import msgspec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Source = Literal["peer", "forwarded", "x-forwarded-for", "x-real-ip"]

UNKNOWN: Final = "unknown"
"""The address of a client nobody named: a trusted proxy's PROXY header that gives no
source (v2 ``LOCAL`` or ``UNSPEC``, v1 ``UNKNOWN``), or a socket whose peer is gone. It
is no IP address, so never admin by address; all such clients share it as their key for
``max_connections_per_ip`` and the load balance, and it is what the upstream is told
(RFC 7239's ``for=unknown``)."""
_HEADERS: Final[tuple[tuple[bytes, Source], ...]] = (
    (b"forwarded", "forwarded"),
    (b"x-forwarded-for", "x-forwarded-for"),
    (b"x-real-ip", "x-real-ip"),
)
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_PORT: Final = re.compile(r"[0-9]{1,5}|_[A-Za-z0-9._-]+")


@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an address, IPv4-mapped IPv6 unwrapped and the scope dropped; or None.

    Cached: the same few peers and proxies are parsed for every handshake, and
    ``ipaddress`` is slow next to a lookup (addresses are immutable)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(text.partition("%")[0])
    return address


def canonical(peer: str) -> str:
    """The canonical text of an address; anything that is not one comes back unchanged."""
    address = parse_ip(peer)
    return peer if address is None else str(address)


class Networks:
    """An immutable set of addresses and CIDR blocks, as ``trusted_proxies`` or ``[admin] ips``.

    IPv4 entries written as IPv4-mapped IPv6 (``::ffff:10.0.0.0/104``) are stored as IPv4,
    so they match whichever way a peer's address is reported.
    """

    __slots__ = ("_networks", "entries")

    def __init__(self, networks: Iterable[IPNetwork] = (), entries: tuple[str, ...] = ()) -> None:
        self._networks = tuple(networks)
        self.entries = entries

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Networks:
        """Parse addresses and CIDRs; ValueError names the first entry that is neither."""
        texts = tuple(entries)
        networks = []
        for text in texts:
            try:
                network = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an IP address or CIDR block") from None
            if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
                base = network.network_address.ipv4_mapped
                assert base is not None
                network = ipaddress.IPv4Network((base, network.prefixlen - 96))
            networks.append(network)
        return cls(networks, texts)

    def __contains__(self, address: object) -> bool:
        ip = parse_ip(address if isinstance(address, str) else str(address))
        return ip is not None and any(ip in network for network in self._networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __repr__(self) -> str:
        return f"Networks({list(self.entries)!r})"


class ClientAddress(msgspec.Struct, frozen=True):
    """Who a connection or request is from, and how the hub knows."""

    address: str
    """The client's canonical address: drives admin by IP, per-IP limits, load keys, logs."""
    source: Source = "peer"
    """Where ``address`` came from: the TCP peer or one of the forwarding headers."""
    ignored: tuple[str, ...] = ()
    """Forwarding headers an untrusted peer sent (ignored): probably an unconfigured proxy."""
    problem: str = ""
    """Why a trusted proxy's headers gave no address (then ``address`` is the peer's)."""

    @property
    def unconfigured_proxy(self) -> bool:
        """Forwarding headers arrived from a peer that is not in ``trusted_proxies``."""
        return bool(self.ignored)

    def admin_by_address(self, admin: Networks) -> bool:
        """Whether ``address`` may make the client admin: listed, and known for certain.

        Never when the headers were ignored (the address may be a proxy's) or unusable.
        """
        return not self.ignored and not self.problem and self.address in admin


def client_address(
    peer: str, headers: Iterable[tuple[bytes, bytes]], trusted: Networks
) -> ClientAddress:
    """The client's address for a request from TCP ``peer`` with these headers.

    ``headers`` are (name, value) pairs as h11 and wsproto give them.
    """
    found: dict[Source, list[str]] = {}
    for name, value in headers:
        for header, source in _HEADERS:
            if name.lower() == header and value.strip():
                found.setdefault(source, []).append(value.decode("latin-1"))
    peer = canonical(peer)
    if not found:
        return ClientAddress(peer)
    if peer not in trusted:
        return ClientAddress(peer, ignored=tuple(found))
    for _, source in _HEADERS:
        if source not in found:
            continue
        joined = ",".join(found[source])
        try:
            nodes = _forwarded_for(joined) if source == "forwarded" else joined.split(",")
            if all(node is None for node in nodes):
                continue
            return ClientAddress(str(_rightmost_untrusted(nodes, trusted)), source)
        except _Unusable as exc:
            return ClientAddress(peer, source, problem=f"{source}: {exc}")
    return ClientAddress(peer, problem="forwarded: no element has a for= parameter")


class _Unusable(Exception):
    """The header gives no usable client address; the message says why."""


def _rightmost_untrusted(nodes: Sequence[str | None], trusted: Networks) -> IPAddress:
    """The hop nearest the hub that is not a trusted proxy (the leftmost if all are).

    Hops are read from the right and only as far as needed, so whatever the client wrote
    left of its own address is never parsed. A hop the walk reaches that is empty, or
    (``None``) a ``Forwarded`` element without ``for=``, is unusable, never skipped:
    skipping it would hand the decision to an entry the client may have written.
    """
    address: IPAddress | None = None
    for node in reversed(nodes):
        if node is None or not node.strip():
            raise _Unusable("a hop without an address")
        address = _node_address(node.strip())
        if address not in trusted:
            return address
    assert address is not None
    return address


def _node_address(node: str) -> IPAddress:
    """One hop: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:443``, bare IPv6; else _Unusable."""
    if node.lower() == "unknown" or node.startswith("_"):
        raise _Unusable(f"the client's address is withheld ({node!r})")
    host, port = node, ""
    if node.startswith("["):
        host, bracket, port = node[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise _Unusable(f"{node!r} is not an address")
        port = port[1:] if port else ""
    elif node.count(":") == 1:
        host, _, port = node.partition(":")
    address = parse_ip(host)
    if address is None or (port and not _PORT.fullmatch(port)):
        raise _Unusable(f"{node!r} is not an address")
    return address


def _forwarded_for(value: str) -> list[str | None]:
    """The ``for=`` value of each element of a ``Forwarded`` header (None: it has none);
    _Unusable on a syntax error (RFC 7239 §4) or a parameter repeated in an element."""
    nodes: list[str | None] = []
    for element in _ForwardedParser(value).elements():
        params = dict(element)
        if len(params) != len(element):
            raise _Unusable("a parameter is repeated within one element")
        nodes.append(params.get("for"))
    return nodes


class _ForwardedParser:
    """A scanner for ``element *( "," element )``, ``element = pair *( ";" pair )``.

    Lenient where RFC 7239 is strict but the meaning is plain: an unquoted value may
    hold ``:`` and brackets, and whitespace is allowed around separators.
    """

    _TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
    _BARE: Final = re.compile(r'[^\s,;"]+')
    _SPACE: Final = re.compile(r"[ \t]*")

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def elements(self) -> list[list[tuple[str, str]]]:
        elements: list[list[tuple[str, str]]] = [[]]
        while True:
            self._skip_space()
            if self._at == len(self._text):
                return [element for element in elements if element]
            char = self._text[self._at]
            if char in ",;":
                self._at += 1
                if char == ",":
                    elements.append([])
                continue
            elements[-1].append(self._pair())

    def _pair(self) -> tuple[str, str]:
        name = self._match(self._TOKEN, "a parameter name")
        self._skip_space()
        if not self._text.startswith("=", self._at):
            raise _Unusable(f"no '=' after {name!r}")
        self._at += 1
        self._skip_space()
        if self._text.startswith('"', self._at):
            return name.lower(), self._quoted()
        return name.lower(), self._match(self._BARE, f"a value for {name!r}")

    def _quoted(self) -> str:
        out: list[str] = []
        at = self._at + 1
        while at < len(self._text):
            char = self._text[at]
            if char == '"':
                self._at = at + 1
                return "".join(out)
            if char == "\\":
                at += 1
                if at == len(self._text):
                    break
                char = self._text[at]
            out.append(char)
            at += 1
        raise _Unusable("an unterminated quoted string")

    def _match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self._text, self._at)
        if found is None:
            raise _Unusable(f"expected {what} at offset {self._at}")
        self._at = found.end()
        return found.group()

    def _skip_space(self) -> None:
        found = self._SPACE.match(self._text, self._at)
        assert found is not None
        self._at = found.end()
