"""Who the hub says it is: build version, network ID, node key, and the ``server`` fields.

Client libraries read ``server_info`` to decide how to sign: xrpl.js (``autofill.ts``,
``txNeedsNetworkID``) and xrpl-py (``transaction/main.py``, ``_tx_needs_networkID``) add
``NetworkID`` to a transaction only when ``network_id`` is above 1024 and
``build_version`` parses as a rippled version of at least 1.11.0. So the hub reports a
rippled-style version: on a relay the upstream's own (learned from its ``server_info``
when the link comes up, :func:`from_server_info`), otherwise :data:`RIPPLED_VERSION`
tagged with the hub's release (``2.3.0-hub.0.1.0``: both libraries compare only the
leading ``major.minor.patch`` here). The hub's own release stays under ``hub``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hub.xrpl.addresses import base58check_encode

RIPPLED_VERSION: Final = "2.3.0"
"""The rippled release whose API the hub's own answers follow."""
LOAD_BASE: Final = 256
_NODE_PUBLIC: Final = b"\x1c"
_CONSONANTS: Final = "BCDFGHJKLMNPRSTVWZ"
_VOWELS: Final = "AEIOU"


def build_version(hub_release: str) -> str:
    """The ``build_version`` a hub that relays nothing reports."""
    return f"{RIPPLED_VERSION}-hub.{hub_release}"


@dataclass(frozen=True, slots=True)
class UpstreamIdentity:
    """What an upstream said of itself in ``server_info``."""

    build_version: str | None = None
    network_id: int | None = None


def from_server_info(result: object) -> UpstreamIdentity | None:
    """The identity in a ``server_info`` result (``{"info": {...}}``); None if absent."""
    info = result.get("info") if isinstance(result, Mapping) else None
    if not isinstance(info, Mapping):
        return None
    version = info.get("build_version")
    network = info.get("network_id")
    return UpstreamIdentity(
        version if isinstance(version, str) else None,
        network if type(network) is int and network >= 0 else None,
    )


def network_id(configured: int | None, upstream: UpstreamIdentity | None) -> int:
    """The network ID to report: an upstream's when it told one, else ``[server]
    network_id``, else 0 (rippled's default, the XRP Ledger mainnet)."""
    if upstream is not None and upstream.network_id is not None:
        return upstream.network_id
    return configured if configured is not None else 0


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """The hub's node public key (rippled's ``pubkey_node``) and the names it gives."""

    public_key: bytes
    hostname: str = ""
    """The machine's name, told to admins only (the composition root reads it)."""

    @classmethod
    def create(cls, seed: int | None = None, hostname: str = "") -> NodeIdentity:
        """A compressed secp256k1-shaped key: random, or derived from ``seed``."""
        material = secrets.token_bytes(32) if seed is None else f"node:{seed}".encode()
        digest = hashlib.sha256(material).digest()
        return cls(bytes([2 + (digest[0] & 1)]) + digest, hostname)

    @property
    def pubkey_node(self) -> str:
        return base58check_encode(_NODE_PUBLIC + self.public_key)

    def hostid(self, admin: bool) -> str:
        """rippled's ``getHostId``: the machine's name for an admin, otherwise one
        short word derived from the node key, so clients can tell servers apart
        without learning host names."""
        if admin and self.hostname:
            return self.hostname
        letters = (_CONSONANTS, _VOWELS) * 2
        digest = hashlib.sha256(self.public_key).digest()
        pairs = zip(letters, digest, strict=False)
        return "".join(chars[byte % len(chars)] for chars, byte in pairs)


def server_fields(
    node: NodeIdentity, *, admin: bool, server_status: str, load_factor: int = LOAD_BASE
) -> dict[str, Any]:
    """What ``subscribe`` to ``server`` answers (rippled's ``subServer``)."""
    return {
        "random": secrets.token_hex(32).upper(),
        "server_status": server_status,
        "load_base": LOAD_BASE,
        "load_factor": load_factor,
        "hostid": node.hostid(admin),
        "pubkey_node": node.pubkey_node,
    }
