"""The production edge end to end: real nginx and haproxy in front of a real hub.

Clients connect from other loopback source addresses (127.0.0.2, 127.0.0.3, ...) so
the hub's view of "the client's address" can be checked through each proxy.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio
from trio_websocket import wrap_client_stream

from hub import Hub
from hub.wire.proxyproto import V2_SIGNATURE
from tests.conftest import make_config, start_hub
from tests.proxies import haproxy, nginx
from tests.samples import ledger_closed
from tests.wsraw import RawClient

TOKEN = "edge-test-token"
AUTH = [(b"authorization", f"Bearer {TOKEN}".encode())]


async def raw(port: int, source: str, **kwargs: Any) -> RawClient:
    return await RawClient.connect("127.0.0.1", port, local_address=source, **kwargs)


async def ask(client: RawClient, request: dict[str, Any]) -> Any:
    await client.send_json(request)
    return await client.next_message()


async def remotes(node: Hub) -> dict[str, bool]:
    """``connections`` as an admin sees it: each client's address and admin role."""
    admin = await RawClient.connect("127.0.0.1", node.port or 0, extra_headers=AUTH)
    try:
        reply = await ask(admin, {"command": "connections"})
    finally:
        await admin.aclose()
    return {
        entry["remote"]: entry["admin"]
        for entry in reply["result"]["connections"]
        if entry["id"] != max(e["id"] for e in reply["result"]["connections"])
    }


async def test_through_nginx_with_defaults_nobody_is_admin(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """The default [admin] ips hold 127.0.0.1, where nginx connects from: still no admin."""
    node = await start_hub(nursery, make_config(admin={"token": TOKEN}))
    assert node.port is not None
    async with nginx(tmp_path, node.port) as proxy:
        stranger = await raw(proxy.port, "127.0.0.2")
        try:
            forged = await ask(
                stranger, {"command": "publish", "messages": [{"type": "ledgerClosed"}]}
            )
            assert forged["error"] == "forbidden"
            assert (await ask(stranger, {"command": "connections"}))["error"] == "forbidden"
            assert await remotes(node) == {"127.0.0.1": False}
        finally:
            await stranger.aclose()


async def test_trusted_nginx_names_each_client_and_limits_each_alone(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    config = make_config(
        server={"trusted_proxies": ["127.0.0.1"]},
        admin={"ips": [], "token": TOKEN},
        limits={"max_connections_per_ip": 1},
    )
    node = await start_hub(nursery, config)
    assert node.port is not None
    async with nginx(tmp_path, node.port) as proxy, AsyncExitStack() as stack:
        for source in ("127.0.0.2", "127.0.0.3"):
            client = await raw(proxy.port, source)
            stack.push_async_callback(client.aclose)
            assert (await ask(client, {"command": "ping"}))["status"] == "success"
        assert await remotes(node) == {"127.0.0.2": False, "127.0.0.3": False}
        refused = await _refused_status(proxy.port, "127.0.0.2")
        assert refused == 429
    assert node.node.stats.connections_refused == 1


async def _refused_status(port: int, source: str, preamble: bytes = b"") -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    try:
        await stream.send_all(
            preamble
            + b"GET / HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with trio.fail_after(5):
            head = await stream.receive_some(4096)
    finally:
        await stream.aclose()
    return int(head.split(b" ", 2)[1])


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


async def test_haproxy_send_proxy_v2_gives_the_clients_address(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    config = make_config(
        server={"trusted_proxies": ["127.0.0.1"], "proxy_protocol": True},
        admin={"ips": [], "token": TOKEN},
    )
    node = await start_hub(nursery, config)
    assert node.port is not None
    async with haproxy(tmp_path, node.port, mode="tcp") as proxy:
        client = await raw(proxy.port, "127.0.0.4")
        try:
            assert (await ask(client, {"command": "ping"}))["status"] == "success"
            # Straight from a trusted address, the admin client sends no header: refused.
            assert await _closed_at_once(node.port, b"GET /health HTTP/1.1\r\n\r\n")
            admin = await raw(proxy.port, "127.0.0.5", extra_headers=AUTH)
            try:
                reply = await ask(admin, {"command": "connections"})
            finally:
                await admin.aclose()
            seen = {entry["remote"] for entry in reply["result"]["connections"]}
            assert seen == {"127.0.0.4", "127.0.0.5"}
        finally:
            await client.aclose()


async def test_a_proxy_header_from_an_untrusted_peer_closes_that_connection_only(
    nursery: trio.Nursery,
) -> None:
    config = make_config(server={"trusted_proxies": ["127.0.0.9"], "proxy_protocol": True})
    node = await start_hub(nursery, config)
    assert node.port is not None
    bystander = await raw(node.port, "127.0.0.2")
    try:
        spoof = b"PROXY TCP4 10.1.2.3 127.0.0.1 4000 80\r\nGET /health HTTP/1.1\r\n\r\n"
        assert await _closed_at_once(node.port, spoof)
        assert await _closed_at_once(node.port, V2_SIGNATURE + b"\x21\x11\x00\x0c" + b"\0" * 12)
        # A peer that sends no PROXY header is served as itself.
        assert (await ask(bystander, {"command": "ping"}))["status"] == "success"
    finally:
        await bystander.aclose()


async def _closed_at_once(port: int, data: bytes, source: str = "127.0.0.1") -> bool:
    """Whether the hub drops a connection that sends ``data``, answering nothing."""
    stream = await trio.open_tcp_stream("127.0.0.1", port, local_address=source)
    try:
        await stream.send_all(data)
        with trio.fail_after(5):
            return await stream.receive_some(4096) == b""
    except trio.BrokenResourceError:
        return True
    finally:
        await stream.aclose()


async def test_a_malformed_proxy_header_from_a_trusted_peer_closes_it(
    nursery: trio.Nursery,
) -> None:
    config = make_config(server={"trusted_proxies": ["127.0.0.1"], "proxy_protocol": True})
    node = await start_hub(nursery, config)
    assert node.port is not None
    assert await _closed_at_once(node.port, b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n")
    assert await _closed_at_once(node.port, b"GET / HTTP/1.1\r\n\r\n")  # no header at all
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
        assert await _refused_status(port, "127.0.0.1", preamble=UNKNOWN_V1) == 429
        assert node.node.load.balance("unknown") > 0
    finally:
        await local.aclose()
        await admin.aclose()
    alone = await RawClient.connect("127.0.0.1", port, preamble=UNKNOWN_V1)
    try:
        assert (await ask(alone, {"command": "ping"}))["result"] == {}
    finally:
        await alone.aclose()


async def test_nginx_ends_tls_and_names_the_client(nursery: trio.Nursery, tmp_path: Path) -> None:
    """The TLS server block of docs/deploy/nginx.conf: a wss:// client that verifies
    nginx's certificate reaches the hub, gets its stream, and is known by its own address."""
    config = make_config(
        server={"trusted_proxies": ["127.0.0.1"]}, admin={"ips": [], "token": TOKEN}
    )
    node = await start_hub(nursery, config)
    assert node.port is not None
    async with nginx(tmp_path, node.port) as proxy:
        assert proxy.tls_port is not None
        with trio.fail_after(10):
            tcp = await trio.open_tcp_stream("127.0.0.1", proxy.tls_port, local_address="127.0.0.4")
            context = proxy.certificates.client_context()
            tls = trio.SSLStream(tcp, context, server_hostname="localhost")
            ws = await wrap_client_stream(nursery, tls, "localhost", "/")
            try:
                await ws.send_message('{"command": "subscribe", "streams": ["ledger"], "id": 1}')
                reply = json.loads(await ws.get_message())
                assert (reply["id"], reply["status"]) == (1, "success")
                assert await remotes(node) == {"127.0.0.4": False}
                await node.publish(ledger_closed(7))
                message = json.loads(await ws.get_message())
                assert (message["type"], message["ledger_index"]) == ("ledgerClosed", 7)
            finally:
                await ws.aclose()
