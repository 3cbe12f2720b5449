"""PROXY protocol v1/v2 parsing: hand-built vectors, an encoder, truncation and garbage."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.wire.proxyproto import (
    NEED_MORE,
    V1_MAX,
    V2_SIGNATURE,
    Invalid,
    NeedMore,
    Parsed,
    ProxyParser,
    parse,
)

GET = b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n"


def v2(
    *,
    command: int = 1,
    family: int = 1,
    transport: int = 1,
    source: str = "192.0.2.1",
    destination: str = "198.51.100.2",
    ports: tuple[int, int] = (54321, 443),
    tlvs: bytes = b"",
    version: int = 2,
    length: int | None = None,
) -> bytes:
    """A v2 header, written from the spec independently of the parser."""
    if family == 1:
        block = ipaddress.IPv4Address(source).packed + ipaddress.IPv4Address(destination).packed
        block += struct.pack("!HH", *ports)
    elif family == 2:
        block = ipaddress.IPv6Address(source).packed + ipaddress.IPv6Address(destination).packed
        block += struct.pack("!HH", *ports)
    elif family == 3:
        block = source.encode().ljust(108, b"\0") + destination.encode().ljust(108, b"\0")
    else:
        block = b""
    block += tlvs
    size = len(block) if length is None else length
    return (
        V2_SIGNATURE
        + bytes((version << 4 | command, family << 4 | transport))
        + (struct.pack("!H", size) + block)
    )


def tlv(kind: int, value: bytes) -> bytes:
    return bytes((kind,)) + struct.pack("!H", len(value)) + value


def feed_bytewise(data: bytes) -> list[object]:
    parser = ProxyParser()
    results: list[object] = []
    for i in range(len(data)):
        result = parser.feed(data[i : i + 1])
        results.append(result)
        if not isinstance(result, NeedMore):
            break
    return results


def test_v1_tcp4() -> None:
    result = parse(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + GET)
    assert result == Parsed(1, False, "tcp4", "192.0.2.1", 56324, "198.51.100.2", 443, GET)


def test_v1_tcp6() -> None:
    result = parse(b"PROXY TCP6 2001:DB8::1 2001:db8::2 0 65535\r\n")
    assert result == Parsed(1, False, "tcp6", "2001:db8::1", 0, "2001:db8::2", 65535, b"")


def test_v1_longest_lines_fit() -> None:
    ffff = ":".join(["ffff"] * 8)
    longest = f"PROXY UNKNOWN {ffff} {ffff} 65535 65535\r\n".encode()
    assert len(longest) == V1_MAX
    assert isinstance(parse(longest), Parsed)
    tcp6 = f"PROXY TCP6 {ffff} {ffff} 65535 65535\r\n".encode()
    assert len(tcp6) == 104
    assert isinstance(parse(tcp6), Parsed)
    assert isinstance(parse(b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), Parsed)


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN whatever 1 2\r\n"])
def test_v1_unknown_names_no_client(line: bytes) -> None:
    result = parse(line + b"x")
    assert result == Parsed(1, False, "unspec", None, None, None, None, b"x")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n", "line feed without"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\rX", "carriage return without"),
        (b"PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n", "4 fields"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n", "4 fields"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 1\r\n", "4 fields"),
        (b"PROXY UDP4 192.0.2.1 198.51.100.2 56324 443\r\n", "TCP4|TCP6|UNKNOWN"),
        (b"PROXY tcp4 192.0.2.1 198.51.100.2 56324 443\r\n", "TCP4|TCP6|UNKNOWN"),
        (b"PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n", "bad TCP4 address"),
        (b"PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n", "bad TCP6 address"),
        (b"PROXY TCP6 ::ffff:1.2.3.4 2001:db8::2 1 2\r\n", "bad TCP6 address"),
        (b"PROXY TCP6 fe80::1%eth0 2001:db8::2 1 2\r\n", "bad TCP6 address"),
        (b"PROXY TCP4 192.0.2.01 198.51.100.2 56324 443\r\n", "bad TCP4 address"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n", "bad port"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n", "bad port"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n", "bad port"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 443\r\n", "bad port"),
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 \xd9\xa1\r\n", "non-ASCII"),
        (b"PROXY\r\n", "not a PROXY protocol header"),
        (b"PROXY " + b"A" * 120, "no CRLF in the first 107 bytes"),
    ],
)
def test_v1_invalid(line: bytes, reason: str) -> None:
    result = parse(line)
    assert isinstance(result, Invalid)
    assert reason in result.reason


def test_v1_crlf_just_past_the_limit_is_invalid() -> None:
    line = b"PROXY UNKNOWN " + b"a" * (V1_MAX - 15) + b"\r\n"
    assert len(line) == V1_MAX + 1
    assert isinstance(parse(line), Invalid)
    assert isinstance(parse(line[:-3] + b"\r\n"), Parsed)


def test_v1_needs_more_until_crlf() -> None:
    assert parse(b"PROXY TCP4 192.0.2.1") is NEED_MORE
    assert parse(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r") is NEED_MORE


def test_v2_tcp4_hand_built_vector() -> None:
    header = bytes.fromhex(
        "0d0a0d0a000d0a515549540a"  # signature
        "21"  # version 2, PROXY
        "11"  # INET, STREAM
        "000c"  # 12 address bytes
        "c0000201"  # 192.0.2.1
        "c6336402"  # 198.51.100.2
        "d431"  # 54321
        "01bb"  # 443
    )
    assert header == v2()
    assert parse(header + GET) == Parsed(
        2, False, "tcp4", "192.0.2.1", 54321, "198.51.100.2", 443, GET
    )


def test_v2_tcp6() -> None:
    header = v2(family=2, source="2001:db8::1", destination="::ffff:192.0.2.9", ports=(1, 2))
    assert parse(header) == Parsed(2, False, "tcp6", "2001:db8::1", 1, "::ffff:c000:209", 2, b"")


def test_v2_local_ignores_the_block() -> None:
    assert parse(v2(command=0, family=0, transport=0) + b"hi") == Parsed(
        2, True, "unspec", None, None, None, None, b"hi"
    )
    # LOCAL with a (meaningless) address block: the length is still honoured.
    assert parse(v2(command=0) + b"hi") == Parsed(2, True, "unspec", None, None, None, None, b"hi")


def test_v2_unspec_names_no_client() -> None:
    result = parse(v2(family=0, transport=0, tlvs=b"junk"))
    assert result == Parsed(2, False, "unspec", None, None, None, None, b"")
    assert parse(v2(family=1, transport=0)) == Parsed(
        2, False, "unspec", None, None, None, None, b""
    )


def test_v2_unix_and_datagram_name_no_client() -> None:
    unix = parse(v2(family=3, source="/run/a.sock", destination="/run/hub.sock") + b"x")
    assert unix == Parsed(2, False, "unix", None, None, None, None, b"x")
    udp = parse(v2(transport=2))
    assert isinstance(udp, Parsed)
    assert udp.source is None


def test_v2_tlvs_are_skipped() -> None:
    tlvs = tlv(0x01, b"h2") + tlv(0x04, b"") + tlv(0x20, b"\x01\0\0\0\0" + tlv(0x21, b"TLSv1.3"))
    result = parse(v2(tlvs=tlvs) + GET)
    assert isinstance(result, Parsed)
    assert (result.source, result.source_port, result.remaining) == ("192.0.2.1", 54321, GET)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (v2(version=1), "version 1"),
        (v2(command=2), "unknown command"),
        (v2(family=4), "unknown family"),
        (v2(transport=3), "unknown family"),
        (v2(family=1, length=11), "11-byte address block"),
        (v2(family=2, source="::1", destination="::2", length=35), "at least 36"),
        (v2(family=3, length=215), "at least 216"),
        (v2(tlvs=b"\x01\x00"), "truncated TLV"),
        (v2(tlvs=tlv(0x05, b"id")[:-1]), "overruns"),
    ],
)
def test_v2_invalid(header: bytes, reason: str) -> None:
    # Trailing client bytes so a short length cannot be mistaken for NeedMore.
    result = parse(header + GET)
    assert isinstance(result, Invalid), result
    assert reason in result.reason


def test_v2_waits_for_the_whole_block() -> None:
    header = v2(tlvs=tlv(0xE0, b"x" * 1000))
    assert parse(header[:-1]) is NEED_MORE
    assert isinstance(parse(header), Parsed)


def test_v2_largest_length() -> None:
    header = v2(tlvs=tlv(0x04, b"\0" * (65535 - 12 - 3)))
    assert struct.unpack_from("!H", header, 14) == (65535,)
    assert isinstance(parse(header), Parsed)


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x16\x03\x01", b"Q", b"\r\n\r\n\x01"])
def test_other_protocols_are_refused_at_once(data: bytes) -> None:
    assert parse(data) == Invalid("not a PROXY protocol header")


def test_refused_at_the_first_wrong_byte() -> None:
    parser = ProxyParser()
    assert parser.feed(b"") is NEED_MORE
    assert parser.feed(b"PR") is NEED_MORE
    assert isinstance(parser.feed(b"E"), Invalid)


@pytest.mark.parametrize(
    "header",
    [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
        b"PROXY UNKNOWN\r\n",
        v2(),
        v2(family=2, source="2001:db8::1", destination="2001:db8::2"),
        v2(command=0, family=0, transport=0),
        v2(tlvs=tlv(0x02, b"example.com")),
    ],
)
def test_bytewise_feeding_equals_one_shot(header: bytes) -> None:
    results = feed_bytewise(header + GET)
    assert all(result is NEED_MORE for result in results[:-1])
    assert len(results) == len(header)
    final = results[-1]
    assert isinstance(final, Parsed)
    assert final == parse(header)
    assert final.remaining == b""


def test_feed_after_a_verdict_is_a_programming_error() -> None:
    parser = ProxyParser()
    assert isinstance(parser.feed(v2()), Parsed)
    with pytest.raises(RuntimeError):
        parser.feed(b"more")


_VALID = st.sampled_from(
    [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n",
        b"PROXY UNKNOWN\r\n",
        v2(),
        v2(family=2, source="2001:db8::1", destination="2001:db8::2"),
        v2(family=3, source="/a", destination="/b"),
        v2(command=0, family=0, transport=0),
    ]
)


@given(_VALID, st.binary(max_size=64))
def test_any_tail_is_handed_back_untouched(header: bytes, tail: bytes) -> None:
    result = parse(header + tail)
    assert isinstance(result, Parsed)
    assert result.remaining == tail


@given(_VALID, st.data())
def test_every_proper_prefix_needs_more(header: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(header) - 1))
    assert parse(header[:cut]) is NEED_MORE


@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    assert isinstance(parse(data), NeedMore | Parsed | Invalid)


@given(_VALID, st.data())
def test_any_corrupted_header_never_raises(header: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(header) - 1))
    byte = data.draw(st.integers(0, 255))
    corrupted = header[:at] + bytes((byte,)) + header[at + 1 :]
    result = parse(corrupted + GET)
    assert isinstance(result, NeedMore | Parsed | Invalid)
    # Within the first 12 bytes (signature, v1 prefix) the verdict never waits.
    if at < 12 and corrupted[at] != header[at]:
        assert isinstance(result, Invalid | Parsed)


@given(
    st.ip_addresses(v=4),
    st.ip_addresses(v=4),
    st.integers(0, 65535),
    st.integers(0, 65535),
)
def test_v1_and_v2_agree_on_ipv4(
    src: ipaddress.IPv4Address, dst: ipaddress.IPv4Address, sport: int, dport: int
) -> None:
    one = parse(f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode())
    two = parse(v2(source=str(src), destination=str(dst), ports=(sport, dport)))
    assert isinstance(one, Parsed)
    assert isinstance(two, Parsed)
    assert (one.source, one.source_port, one.destination, one.destination_port) == (
        two.source,
        two.source_port,
        two.destination,
        two.destination_port,
    )
    assert one.source == str(src)
