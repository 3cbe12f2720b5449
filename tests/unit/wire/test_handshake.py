"""The opening handshake as plain functions."""

from __future__ import annotations

import h11

from hub.wire import handshake

GOOD = [
    (b"host", b"example"),
    (b"upgrade", b"WebSocket"),
    (b"connection", b"keep-alive, Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits, x-other"),
]


def request(headers: list[tuple[bytes, bytes]], method: bytes = b"GET") -> h11.Request:
    return h11.Request(method=method, target="/", headers=headers)


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in GOOD if k != name]


def test_the_rfc_example_key() -> None:
    # RFC 6455 §1.3: this key is answered with this accept value.
    assert handshake.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_good_upgrade_and_its_offers() -> None:
    upgrade = handshake.check(request(GOOD))
    assert isinstance(upgrade, handshake.Upgrade)
    assert upgrade.offers == ("permessage-deflate; client_max_window_bits", "x-other")
    response = handshake.accept(upgrade, "permessage-deflate; server_no_context_takeover")
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
    assert b"sec-websocket-extensions: permessage-deflate; server_no_context_takeover" in response
    assert response.endswith(b"\r\n\r\n")
    assert b"extensions" not in handshake.accept(upgrade)


def test_bad_upgrades_say_why() -> None:
    cases = {
        "upgrade": without(b"upgrade"),
        "connection": without(b"connection"),
        "key": without(b"sec-websocket-key"),
        "short key": [*without(b"sec-websocket-key"), (b"sec-websocket-key", b"c2hvcnQ=")],
        "version": without(b"sec-websocket-version"),
    }
    statuses = {name: handshake.check(request(headers)) for name, headers in cases.items()}
    for name, refusal in statuses.items():
        assert isinstance(refusal, handshake.Refusal), name
    assert statuses["version"].status == 426  # type: ignore[union-attr]
    assert statuses["version"].headers == ((b"sec-websocket-version", b"13"),)  # type: ignore[union-attr]
    assert {name: r.status for name, r in statuses.items() if name != "version"} == dict.fromkeys(  # type: ignore[union-attr]
        ("upgrade", "connection", "key", "short key"), 400
    )
    post = handshake.check(request(GOOD, method=b"POST"))
    assert isinstance(post, handshake.Refusal)
    assert post.status == 400


def test_a_refusal_is_plain_http_that_closes() -> None:
    data = handshake.refuse(handshake.Refusal(426, "Only version 13.", ((b"x-a", b"1"),)))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 426 Upgrade Required"
    assert b"connection: close" in head
    assert b"x-a: 1" in head
    assert body == b"Only version 13.\n"
    assert b"content-length: %d" % len(body) in head
