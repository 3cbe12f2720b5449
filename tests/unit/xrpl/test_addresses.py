"""Classic addresses: base58check with the XRPL alphabet, against known vectors and xrpl-py."""

from __future__ import annotations

import hashlib

import pytest
from xrpl.core.addresscodec import encode_classic_address

from hub.xrpl.addresses import (
    ACCOUNT_ONE,
    ACCOUNT_ZERO,
    ALPHABET,
    base58check_encode,
    decode_classic_address,
    encode_account_id,
    is_classic_address,
)

GENESIS = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"


GENESIS_ID = bytes.fromhex("B5F762798A53D543A014CAF8B297CFF8F2F937E8")


@pytest.mark.parametrize(
    ("address", "account_id"),
    [
        (GENESIS, GENESIS_ID),
        (ACCOUNT_ZERO, bytes(20)),
        (ACCOUNT_ONE, bytes(19) + b"\x01"),
    ],
)
def test_known_vectors(address: str, account_id: bytes) -> None:
    assert encode_account_id(account_id) == address
    assert decode_classic_address(address) == account_id
    assert is_classic_address(address)


def test_constants_are_the_documented_strings() -> None:
    assert ACCOUNT_ZERO == "rrrrrrrrrrrrrrrrrrrrrhoLvTp"
    assert ACCOUNT_ONE == "rrrrrrrrrrrrrrrrrrrrBZbvji"


def test_round_trip_matches_xrpl_py() -> None:
    for i in range(300):
        account_id = hashlib.sha256(b"%d" % i).digest()[:20]
        if i % 7 == 0:
            account_id = bytes(i % 19) + account_id[i % 19 :]
        address = encode_account_id(account_id)
        assert address == encode_classic_address(account_id)
        assert decode_classic_address(address) == account_id
        assert is_classic_address(address)


def _swap_last(address: str) -> str:
    last = address[-1]
    replacement = ALPHABET[(ALPHABET.index(last) + 1) % len(ALPHABET)]
    return address[:-1] + replacement


@pytest.mark.parametrize(
    "address",
    [
        _swap_last(GENESIS),
        "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTi",
        GENESIS[:5] + GENESIS[6] + GENESIS[5] + GENESIS[7:],
    ],
)
def test_bad_checksum_is_rejected(address: str) -> None:
    assert address != GENESIS
    assert not is_classic_address(address)
    with pytest.raises(ValueError, match=r"checksum|length|version"):
        decode_classic_address(address)


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "+", " ", "é"])
def test_non_base58_characters_are_rejected(bad: str) -> None:
    address = GENESIS[:10] + bad + GENESIS[11:]
    assert not is_classic_address(address)
    with pytest.raises(ValueError, match="alphabet"):
        decode_classic_address(address)


@pytest.mark.parametrize(
    "value",
    [None, 1, 1.5, b"rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh", [GENESIS], {"a": GENESIS}, object()],
)
def test_non_strings_are_not_addresses(value: object) -> None:
    assert not is_classic_address(value)
    with pytest.raises(ValueError, match="must be a str"):
        decode_classic_address(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "r",
        GENESIS + "r",
        GENESIS[1:],
        GENESIS.lower(),
        "X7AcgcsBL6XDcUb289X4mJ8djcdyKaB5hJDWMArnXr61cqZ",
        "B5F762798A53D543A014CAF8B297CFF8F2F937E8",
        "USD",
        "0" * 64,
    ],
)
def test_other_strings_are_not_addresses(value: str) -> None:
    assert not is_classic_address(value)
    with pytest.raises(ValueError, match=r"classic address|alphabet"):
        decode_classic_address(value)


def test_wrong_version_byte_is_rejected() -> None:
    # Same payload and a valid checksum, but the version of a node public key
    # (0x1C) or of a seed (0x21): valid base58check, not an account address.
    for version in (b"\x01", b"\x1c", b"\x21"):
        token = base58check_encode(version + GENESIS_ID)
        assert not is_classic_address(token)
        with pytest.raises(ValueError, match=r"version|start with|characters"):
            decode_classic_address(token)


def test_wrong_decoded_length_is_rejected() -> None:
    token = base58check_encode(b"\x00" + GENESIS_ID[:19])
    assert token.startswith("r")
    assert 25 <= len(token) <= 35
    assert not is_classic_address(token)
    with pytest.raises(ValueError, match="length"):
        decode_classic_address(token)


@pytest.mark.parametrize("size", [0, 19, 21, 33])
def test_encode_requires_twenty_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="20 bytes"):
        encode_account_id(bytes(size))


def test_repeated_lookups_use_the_bounded_cache() -> None:
    from hub.xrpl.addresses import _decode_cached

    assert _decode_cached.cache_info().maxsize is not None
    address = encode_account_id(hashlib.sha256(b"cache-probe").digest()[:20])
    assert is_classic_address(address)
    hits = _decode_cached.cache_info().hits
    assert is_classic_address(address)
    assert decode_classic_address(address)
    assert _decode_cached.cache_info().hits == hits + 2
