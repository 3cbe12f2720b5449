"""Who a request is from, and whether it is admin: a pure function of the peer, the
headers and the settings.

A client is admin by a bearer token (:mod:`hub.wire.bearer`) or by its address
(``[admin] ips``, through ``[server] trusted_proxies``: :mod:`hub.wire.clientaddr`). Admin
by address trusts the machine a request comes from, so it must not be lent to whatever
runs on that machine: a web page from any site, opened in a browser there, reaches
127.0.0.1 too. Browsers mark what they send, and a request from an admin address is
admin by it only when none of these marks says a page from elsewhere made it:

- **Origin.** Browsers send ``Origin`` on every WebSocket handshake and on every
  ``POST`` (``fetch`` in ``no-cors`` mode included; a page that hides its origin sends
  ``null``). A request carrying one is admin by address only if that origin is the
  hub's own (the dashboard: scheme and ``host:port`` those of the request's own
  ``Host``) or one of ``[server] allowed_origins``. Programs other than browsers send
  no ``Origin`` and are unaffected.
- **Host.** DNS rebinding gives an attacker's name (``evil.example``) the address
  127.0.0.1: the page's origin is then ``http://evil.example:6006``, the hub's own by
  the rule above. So ``Host`` must be an IP address literal (no name can be rebound to
  one) or one of ``[server] hostnames`` (``localhost`` by default), with any port; a
  request without ``Host`` (HTTP/1.0) names nothing to rebind.
- **Content-Type (JSON-RPC).** A page may ``POST`` without asking the server first
  (no CORS preflight) only with ``text/plain``, ``application/x-www-form-urlencoded``
  or ``multipart/form-data`` bodies, or none; browsers too old to send ``Origin`` on
  such a ``POST`` send one of these. So a JSON-RPC request is admin by address only
  with ``Content-Type: application/json``, which a page cannot send without a
  preflight the hub never answers.

The bearer token stays admin whatever these say: a page can neither learn it nor send
it (a script cannot set ``Authorization`` on a WebSocket handshake, nor on a
cross-origin ``fetch`` without a preflight; what browsers add on their own is
``Basic``, never ``Bearer``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from hub.wire.bearer import Bearer, check_bearer
from hub.wire.clientaddr import ClientAddress, Networks, client_address

if TYPE_CHECKING:
    from hub.config import Config

_ORIGIN: Final = re.compile(
    r"([a-z][a-z0-9+.-]*)://(\[[0-9a-f:.]+\]|[^\s/?#@:\[\]]+)(?::(\d{1,5}))?"
)
_HOST: Final = re.compile(r"(\[[0-9a-f:.]+\]|[^\s/?#@:\[\]]+)(?::(\d{1,5}))?")
_NAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_LONGEST: Final = 300  # a DNS name is at most 253 characters; a scheme and a port add few
_DEFAULT_PORTS: Final = {"http": 80, "ws": 80, "https": 443, "wss": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """A serialized origin (``scheme://host[:port]``), its port made explicit when the
    scheme has a default; IPv6 hosts keep their brackets."""

    scheme: str
    host: str
    port: int | None

    def __str__(self) -> str:
        default = _DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port is None or self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def parse_origin(text: str) -> Origin | None:
    """An ``Origin`` header's value as an :class:`Origin`; None for ``null`` or garbage.

    Cached, like :func:`parse_host`: a hub sees the same few on every handshake. Text
    longer than any host name with a scheme and a port is garbage, and never cached."""
    return None if len(text) > _LONGEST else _parse_origin(text)


@functools.lru_cache(maxsize=1024)
def _parse_origin(text: str) -> Origin | None:
    found = _ORIGIN.fullmatch(text.strip().lower())
    if found is None:
        return None
    scheme, host, port = found.groups()
    number = int(port) if port else _DEFAULT_PORTS.get(scheme)
    if number is not None and number > 65535:
        return None
    return Origin(scheme, host, number)


@dataclass(frozen=True, slots=True)
class HostHeader:
    """A ``Host`` header's host (lower case, IPv6 in brackets) and its port, if given."""

    host: str
    port: int | None
    literal: bool
    """Whether the host is an IP address literal, which no DNS answer can rebind."""

    @property
    def name(self) -> str:
        """The host as a name to look up in ``[server] hostnames`` (no trailing dot)."""
        return self.host.removesuffix(".")


def parse_host(text: str) -> HostHeader | None:
    """A ``Host`` header's value; None when it is no ``host[:port]``."""
    return None if len(text) > _LONGEST else _parse_host(text)


@functools.lru_cache(maxsize=1024)
def _parse_host(text: str) -> HostHeader | None:
    found = _HOST.fullmatch(text.strip().lower())
    if found is None or (found[2] and int(found[2]) > 65535):
        return None
    host = found[1]
    return HostHeader(host, int(found[2]) if found[2] else None, _literal(host))


def _literal(host: str) -> bool:
    bracketed = host.startswith("[")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        return False
    return bracketed == (address.version == 6)


def hostname(text: str) -> str:
    """A ``[server] hostnames`` entry, normalized; ValueError when it is not a name."""
    name = text.strip().lower()
    if not _NAME.fullmatch(name):
        raise ValueError(f"{text!r} is not a host name")
    return name.removesuffix(".")


def allowed_origin(text: str) -> Origin:
    """A ``[server] allowed_origins`` entry; ValueError unless ``scheme://host[:port]``."""
    origin = parse_origin(text)
    if origin is None:
        raise ValueError(f"{text!r} is not an origin (scheme://host[:port], no path)")
    return origin


@dataclass(frozen=True, slots=True)
class AdminPolicy:
    """What decides admin: the settings :func:`identify` reads, parsed once."""

    admin: Networks
    trusted: Networks
    token: str | None = None
    origins: frozenset[Origin] = frozenset()
    hostnames: frozenset[str] = frozenset({"localhost"})
    secure: bool = False
    """Whether the hub's port speaks TLS: the scheme of its own origin."""

    @classmethod
    def from_config(cls, config: Config) -> AdminPolicy:
        server = config.server
        return cls(
            admin=Networks.parse(config.admin.ips),
            trusted=Networks.parse(server.trusted_proxies),
            token=config.admin.token,
            origins=frozenset(allowed_origin(text) for text in server.allowed_origins),
            hostnames=frozenset(hostname(text) for text in server.hostnames),
            secure=server.tls_cert is not None,
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a client is, as its handshake or HTTP request says."""

    address: str
    admin: bool
    wrong_token: bool = False
    withheld: str = ""
    """Why a client at an ``[admin] ips`` address is not admin by it ("" when it is,
    or when its address is not listed)."""
    client: ClientAddress | None = None
    """How the address was found (for the caller's logs)."""


def identify(
    peer: str,
    headers: Iterable[tuple[bytes, bytes]],
    policy: AdminPolicy,
    *,
    jsonrpc: bool = False,
) -> Identity:
    """The identity of a request from TCP ``peer`` (its address, a PROXY header's
    source, or ``unknown``) with these headers; ``jsonrpc`` for a JSON-RPC ``POST``."""
    headers = list(headers)
    client = client_address(peer, headers, policy.trusted)
    bearer = check_bearer(headers, policy.token)
    withheld = ""
    by_address = client.admin_by_address(policy.admin)
    if by_address:
        withheld = browser_mark(headers, policy, jsonrpc=jsonrpc)
    admin = bearer is Bearer.OK or (by_address and not withheld)
    return Identity(client.address, admin, bearer is Bearer.WRONG, withheld, client)


def browser_mark(
    headers: Iterable[tuple[bytes, bytes]], policy: AdminPolicy, *, jsonrpc: bool = False
) -> str:
    """Why these headers may come from a web page not the hub's own; "" when they cannot."""
    found: dict[bytes, list[str]] = {b"host": [], b"origin": [], b"content-type": []}
    for name, value in headers:
        values = found.get(name.lower())
        if values is not None:
            values.append(value.decode("latin-1"))
    hosts, origins = found[b"host"], found[b"origin"]
    if len(hosts) > 1:
        return "more than one Host header"
    host = parse_host(hosts[0]) if hosts else None
    if hosts and (host is None or not (host.literal or host.name in policy.hostnames)):
        return f"Host {hosts[0]!r} is neither an IP address nor one of [server] hostnames"
    if origins:
        origin = parse_origin(origins[0]) if len(origins) == 1 else None
        if origin is None or not (origin in policy.origins or _own(origin, host, policy)):
            shown = ", ".join(repr(text) for text in origins)
            return f"Origin {shown} is neither the hub's own nor one of [server] allowed_origins"
    if jsonrpc and not _json_body(found[b"content-type"]):
        return "a JSON-RPC request without Content-Type: application/json"
    return ""


def _own(origin: Origin, host: HostHeader | None, policy: AdminPolicy) -> bool:
    """Whether ``origin`` is the hub's own as the request reached it: its dashboard."""
    if host is None:
        return False
    scheme = "https" if policy.secure else "http"
    port = host.port if host.port is not None else _DEFAULT_PORTS[scheme]
    return origin == Origin(scheme, host.host, port)


def _json_body(content_types: list[str]) -> bool:
    """One ``Content-Type`` whose media type is ``application/json``, parameters aside."""
    if len(content_types) != 1:
        return False
    essence = content_types[0].partition(";")[0].strip().lower()
    return essence == "application/json"
