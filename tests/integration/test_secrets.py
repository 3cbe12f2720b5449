"""Credentials never come back, end to end: error replies over WebSocket and JSON-RPC,
replies forwarded from an upstream, and the log of a failed handler all carry the
request with every ``secret``/``seed``/``passphrase``/... masked, at any depth and in
any letter case (:func:`hub.wire.envelope.masked`)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
import trio

from hub.core import methods as real
from hub.core.dispatch import Call, Methods
from hub.wire.errors import RPCError
from tests.helpers.httpraw import fetch
from tests.helpers.hubs import make_config, open_client, start_hub

SECRET = "sEdSECRETSECRETSECRETSECRET1"


PHRASE = "correct horse battery staple"


SEED = "sn3nxiW7v8KXzPzAqzyHXbSSKNuN9"


CREDENTIALS = (SECRET, PHRASE, SEED)


def signing_request(command: str = "sign") -> dict[str, Any]:
    return {
        "command": command,
        "id": 1,
        "tx_json": {"TransactionType": "Payment", "Account": "r1", "Secret": SECRET},
        "Passphrase": PHRASE,
        "keys": [{"nested": {"SEED": SEED}}],
    }


def clean(text: str) -> bool:
    """Whether a reply or log shows no credential (and does show the mask)."""
    return not any(value in text for value in CREDENTIALS) and "<masked>" in text


def rpc_body(request: dict[str, Any]) -> bytes:
    params = {key: value for key, value in request.items() if key not in ("command", "id")}
    return msgspec.json.encode({"method": request["command"], "params": [params]})


async def test_error_replies_never_echo_a_credential(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery)
    async with open_client(node) as client:
        await client.send(signing_request())  # no such method here: unknownCmd
        text = await client.ws.get_message()
    assert msgspec.json.decode(text)["error"] == "unknownCmd"
    assert clean(str(text))
    reply = await fetch(node.port or 0, "POST", "/", rpc_body(signing_request()))
    assert reply.json()["result"]["error"] == "unknownCmd"
    assert clean(reply.text)


async def test_forwarded_error_replies_never_echo_a_credential(nursery: trio.Nursery) -> None:
    """The upstream gets the request as sent (it signs with it); the client's copy of
    it in the forwarded error is masked."""
    received: list[dict[str, Any]] = []
    table: Methods[Any] = Methods()
    table.register("subscribe")(real.subscribe)

    @table.register("sign")
    def sign(call: Call[Any]) -> dict[str, Any]:
        received.append(call.params)
        raise RPCError("invalidParams", "Not today.")

    upstream = await start_hub(nursery, methods=table)
    relay = await start_hub(nursery, make_config(source={"source": f"upstream:{upstream.url}"}))
    async with open_client(relay) as client:
        with trio.fail_after(10):
            while True:  # the forwarding pool may still be connecting
                await client.send(signing_request())
                text = str(await client.ws.get_message())
                if msgspec.json.decode(text)["error"] != "failedToForward":
                    break
                await trio.sleep(0.05)
    reply = msgspec.json.decode(text)
    assert (reply["error"], reply["forwarded"]) == ("invalidParams", True)
    assert clean(text)
    over_rpc = await fetch(relay.port or 0, "POST", "/", rpc_body(signing_request()))
    assert over_rpc.json()["forwarded"] is True
    assert over_rpc.json()["result"]["error"] == "invalidParams"
    assert clean(over_rpc.text)
    assert received[0]["tx_json"]["Secret"] == SECRET


async def test_a_failed_handler_logs_the_request_masked(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    table: Methods[Any] = Methods()

    @table.register("sign")
    def sign(call: Call[Any]) -> dict[str, Any]:
        raise RuntimeError("a bug")

    node = await start_hub(nursery, methods=table)
    with caplog.at_level(logging.ERROR, logger="hub.core.dispatch"):
        async with open_client(node) as client:
            reply = await client.request(signing_request())
    assert reply["error"] == "internal"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "sign failed for" in logged
    assert clean(logged)
