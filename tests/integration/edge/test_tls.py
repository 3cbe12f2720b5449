"""TLS on the hub's own port: wss:// and https:// with a certificate chain from a test CA.

The CA and the server's chain are made with ``openssl`` (tests/helpers/testca.py); clients
trust only that CA, as an operator's would with ``--cafile``."""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from hub.app.tools import CallError, call
from tests.helpers.hubs import eventually, start_hub
from tests.helpers.processes import HubProcess, hub_cli, hub_process
from tests.helpers.samples import ledger_closed
from tests.helpers.testca import Certificates, make_ca, tls_config


async def https(port: int, context: ssl.SSLContext, request: bytes) -> bytes:
    stream = await trio.open_ssl_over_tcp_stream(
        "127.0.0.1", port, ssl_context=context, https_compatible=True
    )
    try:
        await stream.send_all(request)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
        return data
    finally:
        await trio.aclose_forcefully(stream)


async def test_one_port_serves_wss_and_https(nursery: trio.Nursery, certs: Certificates) -> None:
    node = await start_hub(nursery, tls_config(certs))
    assert node.url.startswith("wss://127.0.0.1:")
    reply = await call(node.url, "ping", {}, cafile=str(certs.ca_cert))
    assert reply["status"] == "success"
    body = json.dumps({"method": "ping"}).encode()
    rpc = await https(
        node.port or 0,
        certs.client_context(),
        b"POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert rpc.startswith(b"HTTP/1.1 200 ")
    assert rpc.endswith(b'{"result":{"role":"admin","status":"success"}}')  # from 127.0.0.1
    health = await https(
        node.port or 0,
        certs.client_context(),
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    assert b'"status": "ok"' in health


async def test_a_client_that_does_not_trust_the_ca_is_refused(
    nursery: trio.Nursery, certs: Certificates
) -> None:
    node = await start_hub(nursery, tls_config(certs))
    with pytest.raises(CallError, match="CERTIFICATE_VERIFY_FAILED"):
        await call(node.url, "ping", {})  # the system's CAs only


async def test_a_failed_tls_handshake_costs_only_its_socket(
    nursery: trio.Nursery, certs: Certificates
) -> None:
    node = await start_hub(nursery, tls_config(certs, server={"handshake_timeout": 1}))
    port = node.port or 0
    for garbage in (b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b""):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await stream.send_all(garbage)
            with trio.fail_after(5):
                try:
                    while await stream.receive_some(4096):
                        pass
                except trio.BrokenResourceError:
                    pass
        finally:
            await stream.aclose()
    assert (await call(node.url, "ping", {}, cafile=str(certs.ca_cert)))["status"] == "success"
    await eventually(lambda: not node.connections)


async def test_sighup_reloads_the_certificate_for_new_connections_only(tmp_path: Path) -> None:
    old, new = make_ca(tmp_path / "old"), make_ca(tmp_path / "new")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(old.cert, cert)
    shutil.copy(old.key, key)
    args = ("serve", "--port", "0", "--source", "none", "--drain-seconds", "0")
    async with hub_process(*args, "--tls-cert", str(cert), "--tls-key", str(key)) as hub:
        url, _, _ = await hub.listening()
        assert url.startswith("wss://")
        await _reload(hub, tmp_path, new, cert, key, url, str(old.ca_cert))


async def _reload(
    hub: HubProcess,
    tmp_path: Path,
    new: Certificates,
    cert: Path,
    key: Path,
    url: str,
    old_ca: str,
) -> None:
    from hub.edge.tls import client_context
    from hub.links.connect import connect

    async with connect(url, ssl_context=client_context(old_ca)) as before:
        shutil.copy(new.cert, cert)
        shutil.copy(new.key, key)
        hub.proc.send_signal(signal.SIGHUP)
        await eventually(lambda: b"TLS certificate reloaded" in hub.stderr)
        assert (await call(url, "ping", {}, cafile=str(new.ca_cert)))["status"] == "success"
        await before.send_message('{"command": "ping", "id": 1}')
        assert json.loads(await before.get_message())["id"] == 1
    with pytest.raises(CallError, match="CERTIFICATE_VERIFY_FAILED"):
        await call(url, "ping", {}, cafile=old_ca)


def test_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.pem")
    done = subprocess.run(
        [sys.executable, "-m", "hub", "serve", "--tls-cert", missing, "--tls-key", missing],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"tls_cert/tls_key" in done.stderr


async def test_hub_tail_follows_a_wss_hub_with_cafile(
    nursery: trio.Nursery, certs: Certificates
) -> None:
    node = await start_hub(nursery, tls_config(certs))
    assert node.url.startswith("wss://")

    async def publish_when_subscribed() -> None:
        await eventually(lambda: node.node.subscriptions.counts()["ledger"] == 1, timeout=15)
        await node.publish(ledger_closed(12, txn_count=0))

    nursery.start_soon(publish_when_subscribed)
    args = ("tail", "ledger", "--url", node.url, "--cafile", str(certs.ca_cert), "--count", "1")
    done = await hub_cli(*args)
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout)
    assert (message["type"], message["ledger_index"]) == ("ledgerClosed", 12)
    assert f"subscribed to {node.url}" in done.stderr.decode()


async def test_over_its_limit_a_socket_is_closed_before_any_tls(
    nursery: trio.Nursery, certs: Certificates
) -> None:
    """No 429 over TLS: answering would cost the handshake that turning it away spares."""
    config = tls_config(
        certs,
        server={"handshake_timeout": 60},
        admin={"ips": []},
        limits={"max_connections_per_ip": 1},
    )
    node = await start_hub(nursery, config)
    port = node.port or 0
    held = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.4")
    extra = await trio.open_tcp_stream("127.0.0.1", port, local_address="127.0.0.4")
    try:
        received = b""
        with trio.fail_after(5):
            try:
                while chunk := await extra.receive_some(4096):
                    received += chunk
            except trio.BrokenResourceError:
                pass
        assert received == b""
        assert node.node.stats.connections_refused == 1
        assert (await call(node.url, "ping", {}, cafile=str(certs.ca_cert)))["status"] == "success"
    finally:
        await held.aclose()
        await extra.aclose()
