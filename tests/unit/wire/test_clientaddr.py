"""The client's address behind trusted proxies (no sockets)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.wire.clientaddr import ClientAddress, Networks, canonical, client_address

PROXY = "10.0.0.5"


TRUSTED = Networks.parse(["10.0.0.0/24", "2001:db8:ff::/48", "127.0.0.1"])


def resolve(*headers: tuple[str, str], peer: str = PROXY) -> ClientAddress:
    return client_address(
        peer, [(name.lower().encode(), value.encode()) for name, value in headers], TRUSTED
    )


def test_networks_match_addresses_and_cidrs() -> None:
    nets = Networks.parse(["192.0.2.7", "10.1.0.0/16", "2001:db8::/32", "::1"])
    assert "192.0.2.7" in nets
    assert "192.0.2.8" not in nets
    assert "10.1.255.255" in nets
    assert "10.2.0.0" not in nets
    assert "2001:db8:1::5" in nets
    assert "2001:db9::5" not in nets
    assert "::1" in nets


def test_networks_unwrap_ipv4_mapped_both_ways() -> None:
    """A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; either spelling matches."""
    assert "::ffff:10.1.2.3" in Networks.parse(["10.1.0.0/16"])
    mapped_entry = Networks.parse(["::ffff:10.1.0.0/112"])
    assert "10.1.2.3" in mapped_entry
    assert "10.2.0.0" not in mapped_entry


def test_networks_reject_garbage_naming_the_entry() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.300'")):
        Networks.parse(["10.0.0.1", "10.0.0.300"])
    with pytest.raises(ValueError, match="'nginx'"):
        Networks.parse(["nginx"])


def test_networks_tolerate_non_addresses_and_empty() -> None:
    assert "unknown" not in TRUSTED
    assert "/tmp/hub.sock" not in TRUSTED
    assert not Networks.parse([])
    assert "127.0.0.1" not in Networks.parse([])


def test_networks_host_bits_and_scope() -> None:
    assert "10.9.9.9" in Networks.parse(["10.9.0.1/16"])
    assert "fe80::1%eth0" in Networks.parse(["fe80::/10"])


def test_canonical_forms() -> None:
    assert canonical("::ffff:192.0.2.1") == "192.0.2.1"
    assert canonical("2001:DB8:0:0::1") == "2001:db8::1"
    assert canonical("fe80::1%eth0") == "fe80::1"
    assert canonical("unknown") == "unknown"


def test_no_headers_is_the_peer() -> None:
    who = resolve(peer="192.0.2.9")
    assert who == ClientAddress("192.0.2.9", "peer")
    assert not who.unconfigured_proxy


def test_untrusted_peer_headers_ignored_but_reported() -> None:
    who = resolve(
        ("X-Forwarded-For", "203.0.113.1"),
        ("Forwarded", "for=203.0.113.2"),
        ("X-Real-IP", "203.0.113.3"),
        peer="192.0.2.9",
    )
    assert who.address == "192.0.2.9"
    assert who.source == "peer"
    assert who.ignored == ("x-forwarded-for", "forwarded", "x-real-ip")
    assert who.unconfigured_proxy


def test_untrusted_peer_is_never_admin_by_address_with_forwarding_headers() -> None:
    """nginx on 127.0.0.1 without trusted_proxies: its clients must not become admins."""
    admin = Networks.parse(["127.0.0.1", "::1"])
    plain = client_address("127.0.0.1", [], Networks.parse([]))
    assert plain.admin_by_address(admin)
    proxied = client_address(
        "127.0.0.1", [(b"x-forwarded-for", b"203.0.113.50")], Networks.parse([])
    )
    assert proxied.address == "127.0.0.1"
    assert not proxied.admin_by_address(admin)


def test_blank_forwarding_headers_do_not_count() -> None:
    assert not resolve(("X-Forwarded-For", "  "), peer="192.0.2.9").unconfigured_proxy


def test_header_names_are_case_insensitive() -> None:
    who = client_address(PROXY, [(b"X-Forwarded-For", b"203.0.113.4")], TRUSTED)
    assert who.address == "203.0.113.4"


def test_mapped_peer_is_unwrapped_and_trusted() -> None:
    who = resolve(("X-Forwarded-For", "203.0.113.4"), peer="::ffff:10.0.0.5")
    assert who.address == "203.0.113.4"
    assert resolve(peer="::ffff:192.0.2.1").address == "192.0.2.1"


def test_xff_single() -> None:
    assert resolve(("X-Forwarded-For", "203.0.113.7")) == ClientAddress(
        "203.0.113.7", "x-forwarded-for"
    )


def test_xff_rightmost_untrusted_wins_over_forged_left_entries() -> None:
    """The client wrote "127.0.0.1, 6.6.6.6"; nginx appended what it saw."""
    who = resolve(("X-Forwarded-For", "127.0.0.1, 6.6.6.6, 203.0.113.7, 10.0.0.9"))
    assert who.address == "203.0.113.7"


def test_xff_forged_garbage_left_of_the_client_is_never_parsed() -> None:
    assert resolve(("X-Forwarded-For", "<script>, unknown, 203.0.113.7")).address == ("203.0.113.7")


def test_xff_multiple_lines_are_one_list_in_order() -> None:
    who = resolve(("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.8"))
    assert who.address == "203.0.113.8"
    who = resolve(("X-Forwarded-For", "203.0.113.8"), ("X-Forwarded-For", "10.0.0.77"))
    assert who.address == "203.0.113.8"


def test_xff_all_trusted_gives_the_leftmost() -> None:
    assert resolve(("X-Forwarded-For", "10.0.0.8, 127.0.0.1")).address == "10.0.0.8"


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("203.0.113.7:5555", "203.0.113.7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("2001:DB8::7", "2001:db8::7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("  203.0.113.7  ", "203.0.113.7"),
    ],
)
def test_xff_entry_forms(entry: str, address: str) -> None:
    assert resolve(("X-Forwarded-For", entry)).address == address


@pytest.mark.parametrize(
    "value",
    [
        "not-an-ip",
        "203.0.113.7:port",
        "203.0.113.7:123456",
        "[2001:db8::7",
        "[2001:db8::7]x",
        "[203.0.113.300]",
        "999.0.113.7",
        "unknown",
        "_hidden",
        "203.0.113.7,",
        "203.0.113.7, ,10.0.0.3",
        "\u0661.2.3.4",
    ],
)
def test_xff_garbage_falls_back_to_the_peer_with_a_reason(value: str) -> None:
    who = resolve(("X-Forwarded-For", value))
    assert who.address == PROXY
    assert who.source == "x-forwarded-for"
    assert who.problem.startswith("x-forwarded-for: ")
    assert not who.admin_by_address(Networks.parse([PROXY]))


def test_xff_non_ascii_bytes_do_not_raise() -> None:
    who = client_address(PROXY, [(b"x-forwarded-for", b"\xff\xfe1.2.3.4")], TRUSTED)
    assert who.address == PROXY
    assert who.problem


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('for="192.0.2.60"', "192.0.2.60"),
        ('For="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ('for="[2001:db8:cafe::17]"', "2001:db8:cafe::17"),
        ('for="192.0.2.43:47011"', "192.0.2.43"),
        ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
        ("for=192.0.2.43,for=198.51.100.17;by=10.0.0.5", "198.51.100.17"),
        ('for="_gazonk", for=198.51.100.17', "198.51.100.17"),
        ("proto=https; for=192.0.2.61 ;host=example.com", "192.0.2.61"),
        ('for="\\1\\9\\2.0.2.62"', "192.0.2.62"),
        ('for="192.0.2.63";host="a,b;c"', "192.0.2.63"),
        ("for=192.0.2.64,,", "192.0.2.64"),
        ("for=192.0.2.65, for=10.0.0.9, for=127.0.0.1", "192.0.2.65"),
        ("for=[2001:db8::66]:80", "2001:db8::66"),
    ],
)
def test_forwarded_forms(value: str, address: str) -> None:
    who = resolve(("Forwarded", value))
    assert (who.address, who.source, who.problem) == (address, "forwarded", "")


def test_forwarded_wins_over_xff_and_real_ip() -> None:
    who = resolve(
        ("X-Real-IP", "198.51.100.3"),
        ("X-Forwarded-For", "198.51.100.2"),
        ("Forwarded", "for=198.51.100.1"),
    )
    assert (who.address, who.source) == ("198.51.100.1", "forwarded")


def test_forwarded_multiple_lines_joined() -> None:
    who = resolve(("Forwarded", "for=198.51.100.1"), ("Forwarded", "for=198.51.100.2"))
    assert who.address == "198.51.100.2"


def test_forwarded_without_any_for_falls_through_to_xff() -> None:
    who = resolve(("Forwarded", "proto=https;host=hub"), ("X-Forwarded-For", "198.51.100.9"))
    assert (who.address, who.source) == ("198.51.100.9", "x-forwarded-for")


def test_forwarded_without_any_for_and_nothing_else_is_a_problem() -> None:
    who = resolve(("Forwarded", "proto=https"))
    assert who.address == PROXY
    assert "for=" in who.problem


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("for=unknown", "withheld"),
        ('for="_hidden"', "withheld"),
        ("for=UNKNOWN, for=10.0.0.3", "withheld"),
        ("for=198.51.100.1, proto=https", "without an address"),
        ('for=""', "without an address"),
        ("for=198.51.100.1;for=198.51.100.2", "repeated"),
        ('for="198.51.100.1', "unterminated"),
        ('for="198.51.100.1\\', "unterminated"),
        ("for", "no '='"),
        ("for=;proto=http", "expected a value"),
        ("=198.51.100.1", "parameter name"),
        ('for=198.51.100.1"x"', "parameter name"),
        ("for=host.example", "not an address"),
        ('for="[2001:db8::1]:x"', "not an address"),
    ],
)
def test_forwarded_garbage_falls_back_to_the_peer(value: str, reason: str) -> None:
    who = resolve(("Forwarded", value))
    assert who.address == PROXY
    assert who.source == "forwarded"
    assert reason in who.problem
    assert not who.admin_by_address(Networks.parse([PROXY]))


def test_real_ip_when_nothing_else() -> None:
    assert resolve(("X-Real-IP", "198.51.100.77")) == ClientAddress("198.51.100.77", "x-real-ip")
    assert resolve(("X-Real-IP", "[2001:db8::77]")).address == "2001:db8::77"
    assert resolve(("X-Real-IP", "nope")).problem.startswith("x-real-ip: ")


def test_ipv6_trusted_proxy_chain() -> None:
    who = resolve(("X-Forwarded-For", "2001:db8:1::1, 2001:db8:ff::2"), peer="2001:db8:ff::1")
    assert who.address == "2001:db8:1::1"


def test_admin_by_address_for_a_forwarded_admin() -> None:
    admin = Networks.parse(["198.51.100.0/24"])
    assert resolve(("X-Forwarded-For", "198.51.100.4")).admin_by_address(admin)
    assert not resolve(("X-Forwarded-For", "203.0.113.4")).admin_by_address(admin)


_HEADER_NAMES = st.sampled_from([b"forwarded", b"x-forwarded-for", b"x-real-ip", b"other"])


@given(
    st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=60)), max_size=4),
    st.sampled_from([PROXY, "192.0.2.1", "::ffff:10.0.0.5", "garbage", ""]),
)
def test_any_header_bytes_resolve_without_raising(
    headers: list[tuple[bytes, bytes]], peer: str
) -> None:
    who = client_address(peer, headers, TRUSTED)
    assert isinstance(who.address, str)
    if who.problem or who.source == "peer":
        assert who.address == canonical(peer)
    if peer not in TRUSTED:
        assert who.source == "peer"


@given(st.lists(st.ip_addresses(), min_size=1, max_size=5))
def test_any_xff_chain_of_addresses_yields_its_rightmost_untrusted(chain: list[object]) -> None:
    value = ", ".join(f"[{ip}]" if ":" in str(ip) else str(ip) for ip in chain)
    who = resolve(("X-Forwarded-For", value))
    untrusted = [canonical(str(ip)) for ip in chain if str(ip) not in TRUSTED]
    expected = untrusted[-1] if untrusted else canonical(str(chain[0]))
    assert who.address == expected
