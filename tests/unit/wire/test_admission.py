"""Admin is out of reach of web pages: the ``Origin``, ``Host`` and ``Content-Type``
rules of :mod:`hub.wire.admission` as a table (end to end:
``tests/integration/edge/test_origin.py``).

A page from any site, opened in a browser on the hub's machine, reaches 127.0.0.1 (an
``[admin] ips`` address by default); the rules read the marks browsers put on what a
page sends."""

from __future__ import annotations

from typing import Any

import pytest

from hub.config import ConfigError
from hub.wire.admission import AdminPolicy, Identity, identify, parse_host, parse_origin
from hub.wire.clientaddr import UNKNOWN
from tests.helpers.hubs import make_config

TOKEN = "admission-test-token"


DEFAULT = AdminPolicy.from_config(make_config())


WITH_TOKEN = AdminPolicy.from_config(make_config(admin={"token": TOKEN}))


ALLOWING = AdminPolicy.from_config(
    make_config(
        server={"allowed_origins": ["https://ops.example", "http://127.0.0.1:8080"]},
    )
)


NAMED = AdminPolicy.from_config(make_config(server={"hostnames": ["hub.internal"]}))


TLS = AdminPolicy(DEFAULT.admin, DEFAULT.trusted, secure=True)


H = tuple[str, str]


def case(
    admin: bool,
    *headers: H,
    peer: str = "127.0.0.1",
    jsonrpc: bool = False,
    policy: AdminPolicy = DEFAULT,
) -> Any:
    return pytest.param(peer, list(headers), jsonrpc, policy, admin)


def host(value: str) -> H:
    return ("host", value)


def origin(value: str) -> H:
    return ("origin", value)


def content_type(value: str) -> H:
    return ("content-type", value)


LOOPBACK = host("127.0.0.1:6006")


JSON = content_type("application/json")


CASES = [
    # No browser marks: exactly as before.
    case(True),
    case(True, host("[::1]:6006"), peer="::1"),
    case(True, LOOPBACK),
    case(True, host("localhost:6006")),
    case(True, host("LocalHost.")),
    case(True, host("192.0.2.7")),
    case(False, LOOPBACK, peer="127.0.0.2"),  # not in [admin] ips
    # Host: a name other than [server] hostnames may be rebound to 127.0.0.1.
    case(False, host("evil.example:6006")),
    case(False, host("127.0.0.1.nip.io:6006")),
    case(False, host("localhost.evil.example")),
    case(False, LOOPBACK, LOOPBACK),
    case(False, host("::1")),  # IPv6 needs brackets
    case(False, host("[127.0.0.1]")),
    case(False, host("127.0.0.1:99999")),
    case(False, host("")),
    case(False, host("a" * 301)),
    case(True, host("hub.internal:6006"), policy=NAMED),
    case(False, host("localhost:6006"), policy=NAMED),  # the list replaces the default
    # Origin: the hub's own (its dashboard) and [server] allowed_origins only.
    case(True, LOOPBACK, origin("http://127.0.0.1:6006")),
    case(True, host("[::1]:6006"), origin("http://[::1]:6006"), peer="::1"),
    case(True, host("localhost:6006"), origin("http://localhost:6006")),
    case(True, host("127.0.0.1"), origin("http://127.0.0.1")),
    case(True, host("127.0.0.1"), origin("http://127.0.0.1:80")),
    case(False, LOOPBACK, origin("http://127.0.0.1:8000")),
    case(False, LOOPBACK, origin("https://127.0.0.1:6006")),
    case(False, LOOPBACK, origin("http://localhost:6006")),
    case(False, LOOPBACK, origin("https://attacker.example")),
    case(False, LOOPBACK, origin("null")),
    case(False, LOOPBACK, origin("http://127.0.0.1:6006/")),
    case(False, LOOPBACK, origin("\xff\x00")),
    case(False, LOOPBACK, origin("http://" + "a" * 300), policy=ALLOWING),
    case(False, LOOPBACK, origin("http://127.0.0.1:6006"), origin("http://127.0.0.1:6006")),
    case(False, origin("http://127.0.0.1:6006")),  # no Host to be the hub's own
    # DNS rebinding: the attacker's page is same-origin with the Host it rebound.
    case(False, host("evil.example:6006"), origin("http://evil.example:6006")),
    case(True, LOOPBACK, origin("https://ops.example"), policy=ALLOWING),
    case(True, LOOPBACK, origin("HTTP://127.0.0.1:8080"), policy=ALLOWING),
    case(False, LOOPBACK, origin("https://ops.example:444"), policy=ALLOWING),
    # TLS: the hub's own origin is https, its default port 443.
    case(True, LOOPBACK, origin("https://127.0.0.1:6006"), policy=TLS),
    case(True, host("localhost"), origin("https://localhost"), policy=TLS),
    case(False, host("localhost"), origin("http://localhost"), policy=TLS),
    # JSON-RPC: only application/json, which a page cannot send without a preflight.
    case(True, LOOPBACK, JSON, jsonrpc=True),
    case(True, content_type("Application/JSON; charset=utf-8"), jsonrpc=True),
    case(False, jsonrpc=True),
    case(False, content_type("text/plain;charset=UTF-8"), jsonrpc=True),
    case(False, content_type("application/x-www-form-urlencoded"), jsonrpc=True),
    case(False, content_type("multipart/form-data; boundary=x"), jsonrpc=True),
    case(False, content_type("text/plain, application/json"), jsonrpc=True),
    case(False, JSON, JSON, jsonrpc=True),
    case(False, LOOPBACK, JSON, origin("http://evil.example"), jsonrpc=True),
    case(True, LOOPBACK, JSON, origin("http://127.0.0.1:6006"), jsonrpc=True),
    # The bearer token is admin wherever it comes from: a page can neither learn nor send it.
    case(
        True,
        ("authorization", f"Bearer {TOKEN}"),
        origin("http://evil.example"),
        host("evil.example"),
        peer="127.0.0.2",
        jsonrpc=True,
        policy=WITH_TOKEN,
    ),
    case(True, ("authorization", "Bearer wrong"), LOOPBACK, policy=WITH_TOKEN),
    # A PROXY header that named no client.
    case(False, LOOPBACK, peer=UNKNOWN),
]


@pytest.mark.parametrize(("peer", "headers", "jsonrpc", "policy", "admin"), CASES)
def test_admin_table(
    peer: str, headers: list[tuple[str, str]], jsonrpc: bool, policy: AdminPolicy, admin: bool
) -> None:
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers]
    who = identify(peer, raw, policy, jsonrpc=jsonrpc)
    assert who.admin is admin
    assert who.address == peer
    listed = peer in policy.admin
    # A listed address refused admin always says why; nobody else is told anything.
    assert bool(who.withheld) == (listed and not admin and not who.wrong_token)


def test_a_withheld_reason_names_the_mark() -> None:
    def why(*headers: tuple[bytes, bytes], jsonrpc: bool = False) -> str:
        return identify("127.0.0.1", headers, DEFAULT, jsonrpc=jsonrpc).withheld

    assert "Origin 'null'" in why((b"host", b"127.0.0.1"), (b"origin", b"null"))
    assert "Host 'evil.example'" in why((b"host", b"evil.example"))
    assert "Content-Type" in why((b"content-type", b"text/plain"), jsonrpc=True)
    assert why((b"host", b"127.0.0.1")) == ""


def test_the_wrong_token_is_reported_beside_the_address() -> None:
    who = identify("127.0.0.2", [(b"authorization", b"Bearer nope")], WITH_TOKEN)
    assert who == Identity("127.0.0.2", False, True, "", who.client)


def test_parsers_never_raise_on_garbage() -> None:
    for text in ("", " ", "::", "[", "[]", "a:b:c", "http://", "x://[zz]", "\x00", "é" * 50):
        parse_origin(text)
        parse_host(text)
    assert parse_origin("http://[::1]:6006") == parse_origin("HTTP://[::1]:6006")
    assert str(parse_origin("https://Ops.Example:443")) == "https://ops.example"


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ({"allowed_origins": ["null"]}, "null"),
        ({"allowed_origins": ["*"]}, "*"),
        ({"allowed_origins": ["http://ops.example/dashboard"]}, "dashboard"),
        ({"allowed_origins": ["ops.example"]}, "ops.example"),
        ({"hostnames": ["*.example"]}, "*.example"),
        ({"hostnames": ["hub.example:6006"]}, "hub.example:6006"),
        ({"hostnames": [""]}, "''"),
    ],
)
def test_bad_settings_are_refused(section: dict[str, Any], values: str) -> None:
    with pytest.raises(ConfigError, match=r"allowed_origins|hostnames") as caught:
        make_config(server=section)
    assert values in str(caught.value)
