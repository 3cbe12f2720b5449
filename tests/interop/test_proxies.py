"""Real nginx and haproxy, with the deployment files the documentation ships.

First the harness itself: each proxy runs its ``docs/deploy`` file in front of a tiny
trio server started here, clients connect from their own loopback addresses (127.0.0.2,
...), and the test CA verifies; so the deployment files and the hub's header and PROXY
parsers are checked against what real nginx and haproxy send. Then a real hub behind
them: who is admin, who is limited, and TLS ended at nginx.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

import pytest
import trio
from trio_websocket import wrap_client_stream

from hub.wire.clientaddr import Networks, client_address
from hub.wire.proxyproto import NeedMore, Parsed, ProxyParser, Result
from tests.helpers.hubs import make_config, start_hub
from tests.helpers.proxies import haproxy, nginx
from tests.helpers.remotes import AUTH, TOKEN, ask, closed_at_once, raw, refused_status, remotes
from tests.helpers.samples import ledger_closed
from tests.helpers.testca import make_ca


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
        refused = await refused_status(proxy.port, "127.0.0.2")
        assert refused == 429
    assert node.node.stats.connections_refused == 1


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
            assert await closed_at_once(node.port, b"GET /health HTTP/1.1\r\n\r\n")
            admin = await raw(proxy.port, "127.0.0.5", extra_headers=AUTH)
            try:
                reply = await ask(admin, {"command": "connections"})
            finally:
                await admin.aclose()
            seen = {entry["remote"] for entry in reply["result"]["connections"]}
            assert seen == {"127.0.0.4", "127.0.0.5"}
        finally:
            await client.aclose()


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


LOCAL = Networks.parse(["127.0.0.1"])


_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


Headers = list[tuple[bytes, bytes]]


class Upstream:
    """A minimal HTTP server: records each request's peer and headers, answers 200 or,
    for an upgrade, 101 and then echoes bytes; or, with ``proxy_protocol``, reads a
    PROXY header first and echoes what follows."""

    def __init__(self, *, proxy_protocol: bool = False) -> None:
        self.proxy_protocol = proxy_protocol
        self.requests: list[tuple[str, Headers]] = []
        self.proxy_headers: list[Result] = []
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(partial(trio.serve_tcp, self._serve, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            if self.proxy_protocol:
                await self._serve_proxied(stream)
            else:
                await self._serve_http(stream)
        except trio.BrokenResourceError:
            pass

    async def _serve_proxied(self, stream: trio.SocketStream) -> None:
        parser = ProxyParser()
        result: Result = NeedMore()
        while isinstance(result, NeedMore):
            data = await stream.receive_some(65536)
            if not data:
                return
            result = parser.feed(data)
        self.proxy_headers.append(result)
        if isinstance(result, Parsed):
            await echo(stream, result.remaining)

    async def _serve_http(self, stream: trio.SocketStream) -> None:
        head, rest = await read_head(stream)
        headers = parse_headers(head)
        self.requests.append((stream.socket.getpeername()[0], headers))
        if any(name == b"upgrade" for name, _ in headers):
            [key] = header(headers, b"sec-websocket-key")
            accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
            await stream.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await echo(stream, rest)
        else:
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )


async def echo(stream: trio.abc.Stream, first: bytes) -> None:
    if first:
        await stream.send_all(first)
    while data := await stream.receive_some(65536):
        await stream.send_all(data)


async def read_head(stream: trio.abc.Stream) -> tuple[bytes, bytes]:
    """An HTTP head (up to the blank line) and whatever arrived after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise trio.BrokenResourceError("EOF before the end of the head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def parse_headers(head: bytes) -> Headers:
    fields = (line.partition(b":") for line in head.split(b"\r\n")[1:])
    return [(name.strip().lower(), value.strip()) for name, _, value in fields]


async def connect_from(source: str, port: int) -> trio.SocketStream:
    """A TCP connection to 127.0.0.1:port from the loopback address ``source``."""
    sock = trio.socket.socket()
    try:
        await sock.bind((source, 0))
        await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def get(source: str, port: int, *extra: bytes) -> bytes:
    """A GET / through the proxy from ``source``; the whole response."""
    request = b"GET / HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n" + b"".join(extra) + b"\r\n"
    with trio.fail_after(10):
        async with await connect_from(source, port) as stream:
            await stream.send_all(request)
            response = b""
            while data := await stream.receive_some(65536):
                response += data
    return response


async def upgrade_and_echo(source: str, port: int) -> bytes:
    """A WebSocket-style upgrade through the proxy, then bytes echoed through the tunnel."""
    request = (
        b"GET /ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with trio.fail_after(10):
        async with await connect_from(source, port) as stream:
            await stream.send_all(request)
            head, rest = await read_head(stream)
            assert head.startswith(b"HTTP/1.1 101"), head
            await stream.send_all(b"through the tunnel")
            while len(rest) < len(b"through the tunnel"):
                rest += await stream.receive_some(65536)
    return rest


def header(headers: Headers, name: bytes) -> list[bytes]:
    return [value for key, value in headers if key == name]


async def test_nginx_forwards_the_client_address(nursery: trio.Nursery, tmp_path: Path) -> None:
    upstream = Upstream()
    await upstream.start(nursery)
    async with nginx(tmp_path, upstream.port) as proxy:
        forged = (b"X-Forwarded-For: 127.0.0.1\r\n", b"Forwarded: for=127.0.0.1\r\n")
        response = await get("127.0.0.2", proxy.port, *forged)
    assert response.startswith(b"HTTP/1.1 200")
    [(peer, headers)] = upstream.requests
    assert peer == "127.0.0.1"
    assert header(headers, b"x-forwarded-for") == [b"127.0.0.1, 127.0.0.2"]
    assert header(headers, b"x-real-ip") == [b"127.0.0.2"]
    assert header(headers, b"forwarded") == []  # the client's own is dropped
    who = client_address(peer, headers, LOCAL)
    assert (who.address, who.source) == ("127.0.0.2", "x-forwarded-for")
    untrusted = client_address(peer, headers, Networks.parse([]))
    assert untrusted.address == "127.0.0.1"
    assert not untrusted.admin_by_address(LOCAL)


async def test_nginx_tunnels_an_upgrade(nursery: trio.Nursery, tmp_path: Path) -> None:
    upstream = Upstream()
    await upstream.start(nursery)
    async with nginx(tmp_path, upstream.port) as proxy:
        assert await upgrade_and_echo("127.0.0.3", proxy.port) == b"through the tunnel"
    [(_, headers)] = upstream.requests
    assert header(headers, b"upgrade") == [b"websocket"]
    assert header(headers, b"connection") == [b"upgrade"]
    assert client_address("127.0.0.1", headers, LOCAL).address == "127.0.0.3"


async def test_haproxy_send_proxy_v2_names_the_client(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    upstream = Upstream(proxy_protocol=True)
    await upstream.start(nursery)
    async with haproxy(tmp_path, upstream.port, mode="tcp") as proxy:
        with trio.fail_after(10):
            async with await connect_from("127.0.0.4", proxy.port) as stream:
                client_port = stream.socket.getsockname()[1]
                await stream.send_all(b"GET / HTTP/1.1\r\n\r\n")
                echoed = b""
                while len(echoed) < 18:
                    echoed += await stream.receive_some(65536)
    assert echoed == b"GET / HTTP/1.1\r\n\r\n"
    # The fixture's readiness probe made a connection too: find this client's.
    assert all(isinstance(result, Parsed) for result in upstream.proxy_headers)
    [parsed] = [h for h in upstream.proxy_headers if getattr(h, "source", "") == "127.0.0.4"]
    assert isinstance(parsed, Parsed)
    assert (parsed.version, parsed.local, parsed.family) == (2, False, "tcp4")
    assert (parsed.source, parsed.source_port) == ("127.0.0.4", client_port)
    assert (parsed.destination, parsed.destination_port) == ("127.0.0.1", proxy.port)


async def test_haproxy_http_mode_adds_x_forwarded_for(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    upstream = Upstream()
    await upstream.start(nursery)
    async with haproxy(tmp_path, upstream.port, mode="http") as proxy:
        forged = (b"X-Forwarded-For: 127.0.0.1\r\n", b"Forwarded: for=127.0.0.1\r\n")
        response = await get("127.0.0.5", proxy.port, *forged)
        assert await upgrade_and_echo("127.0.0.6", proxy.port) == b"through the tunnel"
    assert response.startswith(b"HTTP/1.1 200")
    (peer, plain), (_, upgraded) = upstream.requests
    # haproxy appends its own header line after the client's.
    assert header(plain, b"x-forwarded-for") == [b"127.0.0.1", b"127.0.0.5"]
    assert header(plain, b"forwarded") == []
    assert client_address(peer, plain, LOCAL).address == "127.0.0.5"
    assert client_address(peer, upgraded, LOCAL).address == "127.0.0.6"


async def test_test_ca_certificate_verifies_for_ip_and_name(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    certs = make_ca(tmp_path / "ca")

    async def serve(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await echo(stream, b"")
        except trio.BrokenResourceError:
            pass  # the client that refused the certificate

    listeners = await nursery.start(
        partial(trio.serve_ssl_over_tcp, serve, 0, certs.server_context(), host="127.0.0.1")
    )
    port = listeners[0].transport_listener.socket.getsockname()[1]
    with trio.fail_after(10):
        for name in ("127.0.0.1", "localhost"):
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            tls = trio.SSLStream(tcp, certs.client_context(), server_hostname=name)
            async with tls:
                await tls.send_all(b"hello")
                assert await tls.receive_some(64) == b"hello"
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        untrusting = trio.SSLStream(tcp, ssl.create_default_context(), server_hostname="localhost")
        with pytest.raises(trio.BrokenResourceError) as failure:
            await untrusting.do_handshake()
        assert isinstance(failure.value.__cause__, ssl.SSLCertVerificationError)
        await trio.aclose_forcefully(untrusting)
