"""Every field of every method, filled with arbitrary JSON: a well-formed answer each time,
never ``internal`` for a client's mistake, and a hub that serves everyone afterwards.

Two levels: the node itself (no sockets, many examples), and a real hub on port 0 fed
the same requests over WebSocket and JSON-RPC while a neighbour keeps its stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import Hub
from hub.core.methods import METHODS
from hub.core.node import Identity, Node
from hub.wire import envelope, jsonrpc
from hub.wire.errors import ERRORS
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX
from tests.conftest import Client, make_config, websocket
from tests.httpraw import http_client
from tests.samples import ALICE, GATEWAY, h, ledger_closed, validation, xrp_payment

TOKEN = "fuzz-admin"

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [ALICE, GATEWAY, "XRP", "USD", "validated", "current", "closed", "ledger",
         "transactions", "0" * 64, h("x"), "²", "١٢٣", "9" * 5000, "rrrrrrrrrrrrrrrrrrrrBZbvji",
         "C000000100000000", "", " ", "\x00", "USD\x00", "0158415500000000C1F76FF6ECB0BAC600000000"]
    )
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "currency",
                    "issuer",
                    "value",
                    "taker_pays",
                    "taker_gets",
                    "both",
                    "snapshot",
                    "taker",
                    "limit",
                    "domain",
                    "type",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
issues = st.fixed_dictionaries(
    {}, optional={"currency": json_values, "issuer": json_values | st.just(GATEWAY)}
)
book_entries = st.fixed_dictionaries(
    {"taker_pays": issues | json_values, "taker_gets": issues | json_values},
    optional=dict.fromkeys(
        ("both", "both_sides", "snapshot", "state_now", "taker", "limit", "domain"), json_values
    ),
)


def mutated(message: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = sorted(message)
    return st.builds(lambda key, value: {**message, key: value}, st.sampled_from(keys), json_values)


messages = (
    mutated(ledger_closed(5)) | mutated(xrp_payment(5, 1)) | mutated(validation(5)) | json_values
)
USD = {"currency": "USD", "issuer": GATEWAY}
VALID: dict[str, dict[str, Any]] = {
    "subscribe": {
        "streams": ["ledger", "transactions"],
        "accounts": [ALICE],
        "accounts_proposed": [ALICE],
        "books": [{"taker_pays": {"currency": "XRP"}, "taker_gets": USD, "both": True}],
        "since_ledger": 100,
    },
    "ledger": {"ledger_index": 101, "transactions": True, "expand": True},
    "tx": {"transaction": h("tx", 1)},
    "ledger_entry": {"index": FEE_SETTINGS_INDEX, "ledger_index": "validated"},
    "publish": {"messages": [ledger_closed(7)]},
}
VALID["unsubscribe"] = VALID["subscribe"]
JUNK: dict[str, st.SearchStrategy[Any]] = {
    "streams": st.lists(st.sampled_from(["ledger", "bogus", "peer_status"]) | json_values),
    "accounts": st.lists(st.just(ALICE) | json_values, max_size=3) | json_values,
    "books": st.lists(book_entries | json_values, max_size=3) | json_values,
    "since_ledger": json_values | st.integers(0, 10**30),
    "messages": st.lists(messages, max_size=3) | json_values,
}
EXTRA = ("url", "rt_accounts", "binary", "full", "queue", "owner_funds", "ctid", "ledger_hash")
COMMON: dict[str, Any] = {"api_version": 2}


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request to one of the hub's methods (or a name it does not know, or no name)
    whose fields are each valid, or any JSON value, or a near miss: so every check of
    every field is reached with everything before it passing."""
    name = draw(st.sampled_from([*METHODS.names(), "no_such_method"]) | json_values)
    valid = {**COMMON, **VALID.get(name, {})} if isinstance(name, str) else dict(COMMON)
    body: dict[str, Any] = {}
    for key, value in valid.items():
        kind = draw(st.sampled_from(["valid", "valid", "junk", "absent"]))
        if kind == "valid":
            body[key] = value
        elif kind == "junk":
            body[key] = draw(JUNK.get(key, json_values))
    for key in draw(st.lists(st.sampled_from(EXTRA), max_size=2, unique=True)):
        body[key] = draw(json_values)
    if draw(st.booleans()):
        body["id"] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        body["secret"] = draw(st.text(max_size=8))
    body["command"] = name
    return body


def check_reply(reply: dict[str, Any], body: dict[str, Any]) -> None:
    """A reply in rippled's envelope; errors are table tokens, and never ``internal``."""
    assert reply["type"] == "response", reply
    if "id" in body:
        assert reply["id"] == body["id"]
    if reply["status"] == "success":
        assert isinstance(reply["result"], dict)
        return
    assert reply["status"] == "error", reply
    assert reply["error"] in ERRORS
    assert reply["error"] != "internal", (body, reply)
    assert reply["error_code"] == ERRORS[reply["error"]].code
    assert "secret" not in reply.get("request", {}) or reply["request"]["secret"] == "<masked>"


class Sink:
    """A stream transport that keeps what it is sent (no socket)."""

    streams = True
    queued_messages = queued_bytes = in_flight = cursor = 0

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes, stamp: float | None = None) -> None:
        self.frames.append(frame)

    def follow(self, feed: object) -> None:
        pass

    def flush(self) -> None:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(requests(), min_size=1, max_size=8), st.booleans())
async def test_the_node_answers_every_request_with_a_well_formed_reply(
    batch: list[dict[str, Any]], admin: bool
) -> None:
    node = Node(make_config(load={"warning": 1e12, "drop": 2e12}))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        for i in range(3):
            await node.publish(ledger_closed(100 + i))
        session = node.open_session(Identity("10.0.0.1", admin), Sink())
        for body in batch:
            with trio.fail_after(10):
                outcome = await node.execute(session, body)
            extras = node.extras(outcome.verdict)
            if outcome.error is None:
                reply = envelope.success(body, outcome.result, extras)
                rpc = jsonrpc.success(outcome.result, extras, {}, body=body)
            else:
                reply = envelope.failure(outcome.body, outcome.error, extras)
                rpc = jsonrpc.failure(outcome.body, outcome.error, extras, {})
            check_reply(msgspec.json.decode(reply), body)
            assert "result" in msgspec.json.decode(rpc)
        ping = await node.execute(session, {"command": "ping"})
        assert ping.error is None
        nursery.cancel_scope.cancel()


async def _over_the_wire(batch: list[dict[str, Any]]) -> None:
    config = make_config(admin={"ips": [], "token": TOKEN}, load={"warning": 1e12, "drop": 2e12})
    node = Hub(config)
    admin_headers = [("Authorization", f"Bearer {TOKEN}")]
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        async with (
            websocket(node.url) as plain_ws,
            websocket(node.url, extra_headers=admin_headers) as admin_ws,
            websocket(node.url) as neighbour_ws,
            http_client(node.port, "127.0.0.2") as rpc,
        ):
            neighbour = Client(neighbour_ws)
            await neighbour.request({"command": "subscribe", "streams": ["ledger"]})
            clients = (Client(plain_ws), Client(admin_ws))
            for i, body in enumerate(batch):
                await _both_ways(clients[i % 2], rpc, body, admin=bool(i % 2))
                marker = 1_000_000 + i
                await node.publish(ledger_closed(marker))
                await _sees(neighbour, marker)
            assert (await _answer(clients[0], {"command": "ping", "id": "end"}))["result"] == {}
        node.shutdown()


async def _both_ways(client: Client, rpc: Any, body: dict[str, Any], *, admin: bool) -> None:
    """The request over WebSocket, then over JSON-RPC (which may refuse it before
    dispatch with a 400, as rippled does for a ``method`` that is not a string)."""
    check_reply(await _answer(client, body), body)
    params = {k: v for k, v in body.items() if k not in ("command", "id")}
    envelope = {"method": body["command"], "params": [params], "id": body.get("id")}
    headers = [("content-type", "application/json")]
    if admin:
        headers.append(("authorization", f"Bearer {TOKEN}"))
    response = await rpc.request("POST", "/", envelope, headers, timeout=10)
    if response.status == 400:
        assert not isinstance(body["command"], str) or not body["command"]
        return
    assert response.status == 200, response
    result = response.json()["result"]
    assert result.get("error") != "internal", (body, result)
    assert result.get("error", "none") in {*ERRORS, "none"}


async def _answer(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """The reply to ``body``, past any stream message the client subscribed to."""
    await client.send(body)
    while True:
        message: dict[str, Any] = await client.recv(10)
        if message.get("type") == "response":
            return message


async def _sees(neighbour: Client, marker: int) -> None:
    while True:
        message = await neighbour.recv(10)
        if message.get("type") == "ledgerClosed" and message.get("ledger_index") == marker:
            return


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(requests(), min_size=10, max_size=20))
def test_a_live_hub_answers_every_request_over_both_transports(
    batch: list[dict[str, Any]],
) -> None:
    trio.run(_over_the_wire, batch)


def test_the_fields_cover_every_method() -> None:
    """A method added to the table without fields to fuzz is a gap in this test."""
    plain: Iterable[str] = ("ping", "version", "server_info", "connections", "ledger_closed",
                            "ledger_current")  # fmt: skip
    assert set(METHODS.names()) <= {*VALID, *plain}
