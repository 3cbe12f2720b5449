"""XRP Ledger classic addresses (base58check with the Ripple alphabet).

A classic address is ``base58(0x00 || account_id || checksum)`` where
``account_id`` is 20 bytes and ``checksum`` is the first four bytes of
SHA-256(SHA-256(0x00 || account_id)).  Subscribe requests may name thousands
of accounts and every published transaction is scanned for addresses, so
validation results are memoised in a bounded cache.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TypeGuard

__all__ = [
    "ACCOUNT_ONE",
    "ACCOUNT_ZERO",
    "ALPHABET",
    "base58check_encode",
    "decode_classic_address",
    "encode_account_id",
    "is_classic_address",
]

ALPHABET = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"

_VERSION = b"\x00"
_ACCOUNT_ID_LEN = 20
_CHECKSUM_LEN = 4
_PAYLOAD_LEN = len(_VERSION) + _ACCOUNT_ID_LEN + _CHECKSUM_LEN
# Documented bounds for classic addresses; a cheap screen before decoding.
_MIN_LEN = 25
_MAX_LEN = 35
_DIGITS = {ch: i for i, ch in enumerate(ALPHABET)}

ACCOUNT_ZERO = "rrrrrrrrrrrrrrrrrrrrrhoLvTp"
"""The all-zero account ID: the "issuer" of XRP; never a real account."""

ACCOUNT_ONE = "rrrrrrrrrrrrrrrrrrrrBZbvji"
"""Account ID 00..01: placeholder issuer in RippleState balances; no owner."""


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:_CHECKSUM_LEN]


def _b58encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\x00"))
    num = int.from_bytes(data, "big")
    out: list[str] = []
    while num:
        num, rem = divmod(num, 58)
        out.append(ALPHABET[rem])
    return ALPHABET[0] * zeros + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    num = 0
    for ch in text:
        digit = _DIGITS.get(ch)
        if digit is None:
            raise ValueError(f"character {ch!r} is not in the XRPL base58 alphabet")
        num = num * 58 + digit
    zeros = len(text) - len(text.lstrip(ALPHABET[0]))
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\x00" * zeros + body


def base58check_encode(payload: bytes) -> str:
    """Base58check-encode ``payload`` (version byte(s) included) for any XRPL token.

    Exposed so other token types, e.g. node public keys (version 0x1C), share
    one encoder with account addresses.
    """
    return _b58encode(payload + _checksum(payload))


def encode_account_id(account_id: bytes) -> str:
    """Return the classic address for a 20-byte account ID.

    Raises ValueError if ``account_id`` is not exactly 20 bytes.
    """
    if len(account_id) != _ACCOUNT_ID_LEN:
        raise ValueError(f"account ID must be {_ACCOUNT_ID_LEN} bytes, got {len(account_id)}")
    return base58check_encode(_VERSION + bytes(account_id))


@functools.lru_cache(maxsize=65_536)
def _decode_cached(address: str) -> bytes | str:
    """Decode once per distinct string; an error is returned as its message.

    Returning (not raising) keeps failures cacheable too, so a client that
    repeats a bad address does not cost a fresh decode each time.
    """
    if not _MIN_LEN <= len(address) <= _MAX_LEN:
        return f"classic address must be {_MIN_LEN}-{_MAX_LEN} characters"
    if not address.startswith(ALPHABET[0]):
        return "classic address must start with 'r'"
    try:
        raw = _b58decode(address)
    except ValueError as exc:
        return str(exc)
    if len(raw) != _PAYLOAD_LEN:
        return "classic address has the wrong decoded length"
    if raw[:1] != _VERSION:
        return "classic address has the wrong version byte"
    body, check = raw[:-_CHECKSUM_LEN], raw[-_CHECKSUM_LEN:]
    if _checksum(body) != check:
        return "classic address checksum does not match"
    return body[1:]


def decode_classic_address(address: str) -> bytes:
    """Return the 20-byte account ID of ``address``.

    Raises ValueError for anything that is not a well-formed classic address
    (wrong type, characters, length, version byte or checksum).
    """
    if not isinstance(address, str):
        raise ValueError(f"classic address must be a str, not {type(address).__name__}")
    result = _decode_cached(address)
    if isinstance(result, str):
        raise ValueError(result)
    return result


def is_classic_address(value: object) -> TypeGuard[str]:
    """True only for a str that decodes to a version-0, 20-byte account ID.

    Typed as a TypeGuard so callers scanning untyped JSON get ``str`` back.
    """
    if not isinstance(value, str):
        return False
    # Cheap screen first so hashes, amounts and currency codes never reach
    # (or evict entries from) the cache.
    if not _MIN_LEN <= len(value) <= _MAX_LEN or value[0] != "r":
        return False
    return not isinstance(_decode_cached(value), str)
