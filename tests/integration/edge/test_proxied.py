"""A hub behind proxies it trusts or not, end to end with clients that speak as proxies
would: forwarding headers, PROXY headers, admin tokens."""

from __future__ import annotations

from typing import Any

import trio

from hub.wire.proxyproto import V2_SIGNATURE
from tests.helpers.hubs import make_config, start_hub
from tests.helpers.remotes import TOKEN, ask, closed_at_once, raw, refused_status, remotes
from tests.helpers.wsraw import RawClient


async def test_forged_forwarding_headers_from_an_untrusted_peer_change_nothing(
    nursery: trio.Nursery,
) -> None:
    node = await start_hub(nursery, make_config(admin={"ips": ["127.0.0.1"], "token": TOKEN}))
    assert node.port is not None
    forged = [
        (b"x-forwarded-for", b"127.0.0.1"),
        (b"forwarded", b'for="127.0.0.1"'),
        (b"x-real-ip", b"127.0.0.1"),
    ]
    far = await raw(node.port, "127.0.0.2", extra_headers=forged)
    near = await raw(node.port, "127.0.0.1", extra_headers=forged)
    try:
        assert (await ask(far, {"command": "connections"}))["error"] == "forbidden"
        # Even from an admin address: headers mean a proxy, and a proxy means strangers.
        assert (await ask(near, {"command": "connections"}))["error"] == "forbidden"
        assert await remotes(node) == {"127.0.0.2": False, "127.0.0.1": False}
    finally:
        await far.aclose()
        await near.aclose()


async def test_a_proxy_header_from_an_untrusted_peer_closes_that_connection_only(
    nursery: trio.Nursery,
) -> None:
    config = make_config(server={"trusted_proxies": ["127.0.0.9"], "proxy_protocol": True})
    node = await start_hub(nursery, config)
    assert node.port is not None
    bystander = await raw(node.port, "127.0.0.2")
    try:
        spoof = b"PROXY TCP4 10.1.2.3 127.0.0.1 4000 80\r\nGET /health HTTP/1.1\r\n\r\n"
        assert await closed_at_once(node.port, spoof)
        assert await closed_at_once(node.port, V2_SIGNATURE + b"\x21\x11\x00\x0c" + b"\0" * 12)
        # A peer that sends no PROXY header is served as itself.
        assert (await ask(bystander, {"command": "ping"}))["status"] == "success"
    finally:
        await bystander.aclose()


async def test_a_malformed_proxy_header_from_a_trusted_peer_closes_it(
    nursery: trio.Nursery,
) -> None:
    config = make_config(server={"trusted_proxies": ["127.0.0.1"], "proxy_protocol": True})
    node = await start_hub(nursery, config)
    assert node.port is not None
    assert await closed_at_once(node.port, b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n")
    assert await closed_at_once(node.port, b"GET / HTTP/1.1\r\n\r\n")  # no header at all
    client = await raw(node.port, "127.0.0.3")  # untrusted: no header expected
    try:
        assert (await ask(client, {"command": "ping"}))["status"] == "success"
    finally:
        await client.aclose()


async def test_forwarded_requests_can_name_the_client_to_the_upstream(
    nursery: trio.Nursery,
) -> None:
    """``[source] forward_client_ip``: the upstream (trusting the hub) sees the client."""
    from hub.core import methods as real
    from hub.core.dispatch import Call, Methods

    table: Methods[Any] = Methods()
    table.register("subscribe")(real.subscribe)

    @table.register("whoami")
    def whoami(call: Call[Any]) -> dict[str, Any]:
        return {"remote": call.session.remote}

    upstream = await start_hub(
        nursery, make_config(server={"trusted_proxies": ["127.0.0.1"]}), methods=table
    )
    seen = {}
    for flag in (True, False):
        source = {"source": f"upstream:{upstream.url}", "forward_client_ip": flag}
        relay = await start_hub(nursery, make_config(source=source))
        client = await raw(relay.port or 0, "127.0.0.7")
        try:
            with trio.fail_after(10):
                while (reply := await ask(client, {"command": "whoami"}))["status"] != "success":
                    assert reply["error"] == "failedToForward"  # the pool is still connecting
                    await trio.sleep(0.05)
            seen[flag] = reply["result"]["remote"]
        finally:
            await client.aclose()
    assert seen == {True: "127.0.0.7", False: "127.0.0.1"}


async def test_a_wrong_admin_token_is_refused_and_charged(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(admin={"ips": [], "token": TOKEN}))
    wrong = [(b"Authorization", b"bearer not-the-token")]
    right = [(b"Authorization", f"BEARER {TOKEN}".encode())]  # the scheme in any case
    guesser = await raw(node.port or 0, "127.0.0.8", extra_headers=wrong)
    admin = await raw(node.port or 0, "127.0.0.9", extra_headers=right)
    try:
        assert (await ask(guesser, {"command": "connections"}))["error"] == "forbidden"
        assert (await ask(admin, {"command": "connections"}))["status"] == "success"
        # Guessing costs the guesser a malformed request's price, on top of its requests.
        assert node.node.load.balance("127.0.0.8") > node.node.load.balance("127.0.0.9") + 2
    finally:
        await guesser.aclose()
        await admin.aclose()


LOCAL_V2 = V2_SIGNATURE + b"\x20\x00\x00\x00"  # version 2, LOCAL, UNSPEC, no address block


UNKNOWN_V1 = b"PROXY UNKNOWN\r\n"


def tcp4(source: str) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 6006\r\n".encode()


async def test_a_proxy_header_naming_no_client_is_never_admin(nursery: trio.Nursery) -> None:
    """v2 LOCAL and v1 UNKNOWN from a trusted proxy on 127.0.0.1 (an [admin] ips address):
    the client's address is unknown, not the proxy's; such clients share one key."""
    config = make_config(
        server={"trusted_proxies": ["127.0.0.1"], "proxy_protocol": True},
        limits={"max_connections_per_ip": 1},
    )
    node = await start_hub(nursery, config)
    port = node.port or 0
    local = await RawClient.connect("127.0.0.1", port, preamble=LOCAL_V2)
    admin = await RawClient.connect("127.0.0.1", port, preamble=tcp4("127.0.0.1"))
    try:
        assert (await ask(local, {"command": "ping"}))["result"] == {}
        forged = {"command": "publish", "messages": [{"type": "ledgerClosed"}]}
        assert (await ask(local, forged))["error"] == "forbidden"
        # A client the header does name at 127.0.0.1 is admin, and sees who is who.
        reply = await ask(admin, {"command": "connections"})
        seen = {entry["remote"]: entry["admin"] for entry in reply["result"]["connections"]}
        assert seen == {"unknown": False, "127.0.0.1": True}
        # v1 UNKNOWN is another client of unknown address: the same per-IP allowance.
        assert await refused_status(port, "127.0.0.1", preamble=UNKNOWN_V1) == 429
        assert node.node.load.balance("unknown") > 0
    finally:
        await local.aclose()
        await admin.aclose()
    alone = await RawClient.connect("127.0.0.1", port, preamble=UNKNOWN_V1)
    try:
        assert (await ask(alone, {"command": "ping"}))["result"] == {}
    finally:
        await alone.aclose()
