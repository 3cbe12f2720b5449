"""End to end over real sockets on a free port: requests, envelopes, versions, limits."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed
from wsproto.events import CloseConnection, TextMessage

from hub import Hub
from hub.core import methods as hub_methods
from hub.core.dispatch import Call, Methods
from tests.helpers.hubs import (
    ADMIN_PING,
    ADMIN_PING_TEXT,
    Client,
    expect_close,
    make_config,
    start_hub,
    websocket,
)
from tests.helpers.wsraw import open_raw


@asynccontextmanager
async def connect(node: Hub, **kwargs: Any) -> AsyncIterator[Client]:
    async with websocket(node.url, **kwargs) as ws:
        yield Client(ws)


async def recv_many(client: Client, count: int, timeout: float = 5) -> dict[Any, Any]:  # noqa: ASYNC109
    """``count`` replies keyed by id (ids must be hashable and unique)."""
    replies: dict[Any, Any] = {}
    with trio.fail_after(timeout):
        for _ in range(count):
            reply = await client.recv()
            replies[reply["id"]] = reply
    assert len(replies) == count
    return replies


class Gates:
    """Per-name events a slow test method reports its start on and waits to be released by."""

    def __init__(self) -> None:
        self.started: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        self.release: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        self.pings = 0

    async def wait_started(self, *names: str, timeout: float = 5) -> None:  # noqa: ASYNC109
        with trio.fail_after(timeout):
            for name in names:
                await self.started[name].wait()


def gated_methods(gates: Gates) -> Methods:
    """The real ping/version/server_info plus ``wait`` (slow), ``boom`` (raises), ``sudo``."""
    table = Methods()
    table.register("version")(hub_methods.version_v1)
    table.register("version", since=2)(hub_methods.version_v2)
    table.register("server_info")(hub_methods.server_info)

    @table.register("ping")
    async def ping(call: Call) -> Any:
        gates.pings += 1
        return hub_methods.ping(call)

    @table.register("wait")
    async def wait(call: Call) -> Any:
        gate = call.params["gate"]
        gates.started[gate].set()
        await gates.release[gate].wait()
        return {"gate": gate}

    @table.register("boom")
    async def boom(call: Call) -> Any:
        raise RuntimeError("kaboom")

    @table.register("sudo", admin=True)
    async def sudo(call: Call) -> Any:
        return {"admin": call.session.admin}

    return table


async def start_gated(nursery: trio.Nursery, **sections: dict[str, Any]) -> tuple[Hub, Gates]:
    gates = Gates()
    node = await start_hub(nursery, make_config(**sections), methods=gated_methods(gates))
    return node, gates


async def test_ping_envelope(client: Client) -> None:
    assert await client.request({"command": "ping", "id": 1}) == {
        "id": 1,
        "status": "success",
        "type": "response",
        "result": ADMIN_PING,
    }


async def test_reply_bytes_follow_seed_001_order(hub: Hub) -> None:
    async with open_raw(hub.url) as raw:
        await raw.send_text('{"id":2,"command":"ping"}')
        event = await raw.next_event()
        assert isinstance(event, TextMessage)
        assert event.data == (
            '{"id":2,"status":"success","type":"response","result":' + ADMIN_PING_TEXT + "}"
        )


async def test_method_field_instead_of_command(client: Client) -> None:
    reply = await client.request({"method": "ping", "id": 1})
    assert reply["status"] == "success"
    assert reply["result"] == ADMIN_PING


async def test_command_and_method_equal(client: Client) -> None:
    reply = await client.request({"command": "ping", "method": "ping", "id": 1})
    assert reply["status"] == "success"


async def test_command_and_method_differ_is_missing_command(client: Client) -> None:
    request = {"command": "ping", "method": "server_info", "id": 1}
    reply = await client.request(request)
    assert reply["status"] == "error"
    assert reply["type"] == "response"
    assert reply["error"] == "missingCommand"
    assert reply["error_code"] == 6001
    assert reply["error_message"]
    assert reply["request"] == request
    assert reply["id"] == 1


@pytest.mark.parametrize(
    "request_body", [{"id": 1}, {"id": 1, "command": 5}, {"id": 1, "command": ""}]
)
async def test_missing_command(client: Client, request_body: dict[str, Any]) -> None:
    reply = await client.request(request_body)
    assert reply["error"] == "missingCommand"
    assert reply["error_code"] == 6001


async def test_no_id_means_no_id_in_reply(client: Client) -> None:
    reply = await client.request({"command": "ping"})
    assert "id" not in reply
    assert reply["status"] == "success"
    error = await client.request({"command": "nope"})
    assert "id" not in error
    assert error["status"] == "error"


@pytest.mark.parametrize(
    "id_json",
    [
        "5",
        '"5"',
        "null",
        '{"a":[1,"b",null],"c":{}}',
        "[1,2,3]",
        "true",
        "1.5",
        "-3",
        "18446744073709551616",
        "123456789012345678901234567890",
        '"äé"',
    ],
)
async def test_id_is_echoed_with_its_type(hub: Hub, id_json: str) -> None:
    async with open_raw(hub.url) as raw:
        await raw.send_text('{"command":"ping","id":' + id_json + "}")
        ok = await raw.next_event()
        await raw.send_text('{"command":"no_such_method","id":' + id_json + "}")
        err = await raw.next_event()
    expected = msgspec.json.decode(id_json)
    for event in (ok, err):
        assert isinstance(event, TextMessage)
        assert event.data.startswith('{"id":' + id_json + ',"status":')
        echoed = msgspec.json.decode(event.data)["id"]
        assert echoed == expected
        assert type(echoed) is type(expected)


async def test_api_version_is_echoed(client: Client) -> None:
    reply = await client.request({"command": "ping", "id": 1, "api_version": 2})
    assert reply == {
        "id": 1,
        "status": "success",
        "type": "response",
        "api_version": 2,
        "result": ADMIN_PING,
    }
    error = await client.request({"command": "nope", "id": 2, "api_version": 1})
    assert error["api_version"] == 1


async def test_no_api_version_means_none_in_reply(client: Client) -> None:
    assert "api_version" not in await client.request({"command": "ping", "id": 1})


async def test_unknown_command(client: Client) -> None:
    reply = await client.request({"command": "no_such_method", "id": "x"})
    assert reply == {
        "id": "x",
        "status": "error",
        "type": "response",
        "error": "unknownCmd",
        "error_code": 32,
        "error_message": "Unknown method.",
        "request": {"command": "no_such_method", "id": "x"},
    }


async def test_error_reply_masks_credentials(client: Client) -> None:
    request = {
        "command": "no_such_sign",
        "id": 4,
        "api_version": 2,
        "secret": "snoopy",
        "seed": "sEdSEED",
        "seed_hex": "DEADBEEF",
        "passphrase": "open sesame",
        "admin_password": "hunter2",
        "tx_json": {"Account": "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"},
    }
    reply = await client.request(request)
    assert set(reply) == {
        "id",
        "status",
        "type",
        "api_version",
        "error",
        "error_code",
        "error_message",
        "request",
    }
    assert reply["request"] == {
        **request,
        "secret": "<masked>",
        "seed": "<masked>",
        "seed_hex": "<masked>",
        "passphrase": "<masked>",
        "admin_password": "<masked>",
    }
    raw = msgspec.json.encode(reply)
    for value in (b"snoopy", b"sEdSEED", b"DEADBEEF", b"open sesame", b"hunter2"):
        assert value not in raw


@pytest.mark.parametrize("text", ["not json", "{", '{"command":"ping"', "", "\x00"])
async def test_non_json_is_bad_syntax_and_the_connection_stays(client: Client, text: str) -> None:
    await client.send(text)
    reply = await client.recv()
    assert reply["status"] == "error"
    assert reply["type"] == "response"
    assert reply["error"] == "badSyntax"
    assert reply["error_code"] == 1
    assert reply["error_message"]
    assert "id" not in reply
    assert (await client.request({"command": "ping", "id": 1}))["status"] == "success"


@pytest.mark.parametrize("text", ["[]", '[{"command":"ping","id":1}]', '"ping"', "5", "null"])
async def test_json_not_an_object_is_bad_syntax(client: Client, text: str) -> None:
    await client.send(text)
    reply = await client.recv()
    assert reply["error"] == "badSyntax"
    assert reply["error_code"] == 1
    assert reply["status"] == "error"
    assert reply["type"] == "response"
    assert (await client.request({"command": "ping", "id": 1}))["status"] == "success"


async def test_binary_frame_is_bad_syntax(client: Client) -> None:
    await client.send(b'{"command":"ping","id":1}')
    reply = await client.recv()
    assert reply["error"] == "badSyntax"
    assert reply["error_code"] == 1
    assert reply["status"] == "error"
    assert reply["type"] == "response"
    assert (await client.request({"command": "ping", "id": 2}))["id"] == 2


async def test_fragmented_request_is_reassembled(hub: Hub) -> None:
    async with open_raw(hub.url) as raw:
        for part in ('{"command":', '"ping",', '"id":7}'):
            await raw.send(TextMessage(data=part, message_finished=part.endswith("}")))
        assert await raw.next_message() == {
            "id": 7,
            "status": "success",
            "type": "response",
            "result": ADMIN_PING,
        }


def _padded_ping(size: int) -> str:
    text = '{"command":"ping","id":1,"pad":""}'
    return text[:-2] + "x" * (size - len(text)) + '"}'


async def test_message_at_the_size_limit_is_accepted(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"max_message_size": 1000}))
    async with connect(node) as client:
        text = _padded_ping(1000)
        assert len(text.encode()) == 1000
        reply = await client.request(text)
        assert reply["status"] == "success"


async def test_message_over_the_size_limit_closes_1009(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"max_message_size": 1000}))
    async with connect(node) as client:
        await client.send(_padded_ping(1001))
        assert await expect_close(client) == 1009
    async with connect(node) as other:
        assert (await other.request({"command": "ping", "id": 1}))["status"] == "success"


async def test_fragments_adding_up_over_the_limit_close_1009(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"max_message_size": 1000}))
    async with open_raw(node.url) as raw:
        await raw.send(TextMessage(data="x" * 600, message_finished=False))
        await raw.send(TextMessage(data="x" * 600, message_finished=False))
        close = await raw.next_close()
        assert close.code == 1009


async def test_default_max_message_size_is_1_000_000(hub: Hub) -> None:
    assert hub.config.server.max_message_size == 1_000_000
    async with connect(hub) as client:
        assert (await client.request(_padded_ping(1_000_000)))["status"] == "success"
        # The hub closes at the frame's header, so the close may beat the end of the send.
        code = None
        try:
            await client.send(_padded_ping(1_000_001))
        except ConnectionClosed as exc:
            code = exc.reason.code
        assert (code or await expect_close(client)) == 1009


async def test_handler_exception_is_internal_and_logged(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    node, _ = await start_gated(nursery)
    caplog.set_level(logging.ERROR)
    async with connect(node) as client, connect(node) as bystander:
        reply = await client.request({"command": "boom", "id": 1, "secret": "topsecret"})
        assert reply == {
            "id": 1,
            "status": "error",
            "type": "response",
            "error": "internal",
            "error_code": 73,
            "error_message": reply["error_message"],
            "request": {"command": "boom", "id": 1, "secret": "<masked>"},
        }
        assert isinstance(reply["error_message"], str)
        assert "kaboom" not in reply["error_message"]
        # The connection and the hub keep working.
        assert (await client.request({"command": "ping", "id": 2}))["status"] == "success"
        assert (await bystander.request({"command": "ping", "id": 3}))["status"] == "success"
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert failures, "the handler's exception was not logged with its traceback"
    exc_type, exc, _tb = failures[0].exc_info  # type: ignore[misc]
    assert exc_type is RuntimeError
    assert "kaboom" in str(exc)
    assert "Traceback" in caplog.text
    assert "topsecret" not in caplog.text


V1 = {"version": {"first": "1.0.0", "good": "1.0.0", "last": "1.0.0"}}


V2 = {"version": {"first": 1, "last": 2}}


V2_BETA = {"version": {"first": 1, "last": 3}}


@pytest.mark.parametrize(("api_version", "expected"), [(1, V1), (2, V2)])
async def test_version_method(client: Client, api_version: int, expected: Any) -> None:
    reply = await client.request({"command": "version", "id": 1, "api_version": api_version})
    assert reply["result"] == expected


async def test_default_version_is_1(client: Client) -> None:
    assert (await client.request({"command": "version", "id": 1}))["result"] == V1


async def test_operator_default_version_2(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(api={"default_version": 2}))
    async with connect(node) as client:
        reply = await client.request({"command": "version", "id": 1})
        assert reply["result"] == V2
        assert "api_version" not in reply
        explicit = await client.request({"command": "version", "id": 2, "api_version": 1})
        assert explicit["result"] == V1


@pytest.mark.parametrize(
    "raw_version", ['"2"', "2.0", "true", "false", "0", "4", "3", "-1", "null", "[2]"]
)
async def test_invalid_api_version(hub: Hub, raw_version: str) -> None:
    async with open_raw(hub.url) as raw:
        await raw.send_text('{"command":"ping","id":9,"api_version":' + raw_version + "}")
        reply = await raw.next_message()
    assert reply["status"] == "error"
    assert reply["type"] == "response"
    assert reply["error"] == "invalid_API_version"
    assert reply["error_code"] == 6000
    assert reply["error_message"]
    assert reply["id"] == 9
    echoed = reply["api_version"]
    assert msgspec.json.encode(echoed) == msgspec.json.encode(msgspec.json.decode(raw_version))
    assert reply["request"]["command"] == "ping"


async def test_invalid_version_wins_over_missing_command(client: Client) -> None:
    reply = await client.request({"id": 1, "api_version": 7})
    assert reply["error"] == "invalid_API_version"


async def test_beta_api_allows_version_3(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(api={"beta_api": True}))
    async with connect(node) as client:
        v3 = await client.request({"command": "version", "id": 1, "api_version": 3})
        assert v3["status"] == "success"
        assert v3["api_version"] == 3
        assert v3["result"] == V2_BETA
        v2 = await client.request({"command": "version", "id": 2, "api_version": 2})
        assert v2["result"] == V2_BETA
        v4 = await client.request({"command": "ping", "id": 3, "api_version": 4})
        assert v4["error"] == "invalid_API_version"


async def test_v1_and_v2_interleaved_on_one_connection(client: Client) -> None:
    plan = {1: 1, 2: 2, 3: 1, 4: None, 5: 2, 6: 2, 7: 1}
    for request_id, version in plan.items():
        request: dict[str, Any] = {"command": "version", "id": request_id}
        if version is not None:
            request["api_version"] = version
        await client.send(request)
    replies = await recv_many(client, len(plan))
    for request_id, version in plan.items():
        assert replies[request_id]["result"] == (V2 if version == 2 else V1)


async def test_server_info(client: Client) -> None:
    reply = await client.request({"command": "server_info", "id": 1})
    assert reply["status"] == "success"
    info = reply["result"]["info"]
    assert isinstance(info["build_version"], str)
    assert info["build_version"]
    assert isinstance(info["server_state"], str)
    assert isinstance(info["uptime"], int)
    assert info["uptime"] >= 0
    assert isinstance(info["complete_ledgers"], str)
    assert info["load_factor"] == 1
    # Always there, as client libraries read it: 0 unless configured (rippled's default).
    assert info["network_id"] == 0
    # A rippled-style version (so xrpl.js/xrpl-py autofill treat it as >= 1.11.0),
    # with the hub's own release under "hub".
    assert info["build_version"] == f"2.3.0-hub.{info['hub']['build_version']}"
    assert info["pubkey_node"].startswith("n")
    assert info["hostid"]  # an admin gets the machine's name
    assert info["hub"]["connections"] == 1
    # server_info waits on nothing: it is answered in line and holds no in-flight slot.
    assert info["hub"]["in_flight_requests"] == 0


async def test_server_info_network_id(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(server={"network_id": 21338}))
    async with connect(node) as client:
        info = (await client.request({"command": "server_info", "id": 1}))["result"]["info"]
        assert info["network_id"] == 21338


async def test_server_info_counts_connections_and_in_flight(nursery: trio.Nursery) -> None:
    node, gates = await start_gated(nursery)
    async with connect(node) as a, connect(node) as b, connect(node) as c:
        await a.send({"command": "wait", "gate": "a", "id": 1})
        await b.send({"command": "wait", "gate": "b", "id": 2})
        await gates.wait_started("a", "b")
        info = (await c.request({"command": "server_info", "id": 3}))["result"]["info"]
        assert info["hub"]["connections"] == 3
        assert info["hub"]["in_flight_requests"] == 2  # server_info is answered in line
        gates.release["a"].set()
        gates.release["b"].set()
        assert (await a.recv())["result"] == {"gate": "a"}
        assert (await b.recv())["result"] == {"gate": "b"}
    async with connect(node) as d:
        with trio.fail_after(5):
            while True:  # the three closed connections are forgotten
                info = (await d.request({"command": "server_info", "id": 4}))["result"]["info"]
                if info["hub"]["connections"] == 1:
                    break
                await trio.testing.wait_all_tasks_blocked(0.01)
        assert info["hub"]["in_flight_requests"] == 0


async def test_slow_request_does_not_block_others(nursery: trio.Nursery) -> None:
    node, gates = await start_gated(nursery)
    async with connect(node) as client:
        await client.send({"command": "wait", "gate": "slow", "id": "slow"})
        await gates.wait_started("slow")
        await client.send({"command": "ping", "id": 1})
        await client.send({"command": "version", "id": 2, "api_version": 2})
        quick = await recv_many(client, 2)
        assert quick[1]["result"] == ADMIN_PING
        assert quick[2]["result"] == V2
        gates.release["slow"].set()
        reply = await client.recv()
        assert reply == {
            "id": "slow",
            "status": "success",
            "type": "response",
            "result": {"gate": "slow"},
        }


async def test_replies_come_as_each_request_finishes(nursery: trio.Nursery) -> None:
    node, gates = await start_gated(nursery)
    async with connect(node) as client:
        for name in ("a", "b", "c"):
            await client.send({"command": "wait", "gate": name, "id": name})
        await gates.wait_started("a", "b", "c")
        for name in ("c", "a", "b"):
            gates.release[name].set()
            reply = await client.recv()
            assert reply["id"] == name
            assert reply["result"] == {"gate": name}


async def test_default_in_flight_bound_is_16(nursery: trio.Nursery) -> None:
    node, gates = await start_gated(nursery)
    assert node.config.server.max_in_flight == 16
    names = [f"g{i}" for i in range(20)]
    async with connect(node) as client, connect(node) as watcher:
        for name in names:
            await client.send({"command": "wait", "gate": name, "id": name})
        await gates.wait_started(*names[:16])
        await trio.testing.wait_all_tasks_blocked(0.05)
        assert [n for n in names if gates.started[n].is_set()] == names[:16]
        info = (await watcher.request({"command": "server_info", "id": 0}))["result"]["info"]
        assert info["hub"]["in_flight_requests"] == 16  # server_info itself is answered in line
        # One finishes: exactly one more is read and started.
        gates.release["g0"].set()
        assert (await client.recv())["id"] == "g0"
        await gates.wait_started("g16")
        await trio.testing.wait_all_tasks_blocked(0.05)
        assert not gates.started["g17"].is_set()
        for name in names[1:]:
            gates.release[name].set()
        replies = await recv_many(client, 19)
        assert set(replies) == set(names[1:])


async def test_bound_applies_per_connection(nursery: trio.Nursery) -> None:
    node, gates = await start_gated(nursery, server={"max_in_flight": 1})
    async with connect(node) as busy, connect(node) as other:
        await busy.send({"command": "wait", "gate": "a", "id": 1})
        await gates.wait_started("a")
        assert (await other.request({"command": "ping", "id": 2}))["status"] == "success"
        gates.release["a"].set()
        assert (await busy.recv())["id"] == 1


async def test_past_the_bound_the_connection_stops_reading_and_drops_nothing(
    nursery: trio.Nursery,
) -> None:
    """With every slot taken the hub reads no more, so the client's writes block; once a
    slot frees, every queued request is answered."""
    node, gates = await start_gated(nursery, server={"max_in_flight": 1})
    frames = 16  # 16 x 900 kB: several times what the loopback socket buffers hold
    async with open_raw(node.url) as raw:
        await raw.send_json({"command": "wait", "gate": "hold", "id": "hold"})
        await gates.wait_started("hold")
        blobs = [
            raw.ws.send(TextMessage(data=_padded_ping(900_000).replace('"id":1', f'"id":{i}')))
            for i in range(frames)
        ]
        sent = 0

        async def writer() -> None:
            nonlocal sent
            for blob in blobs:
                await raw.stream.send_all(blob)
                sent += 1

        async with trio.open_nursery() as inner:
            inner.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked(0.2)
            assert gates.pings == 0
            assert sent < frames, "the hub kept reading with no request slot free"
            gates.release["hold"].set()
            ids = []
            with trio.fail_after(20):
                for _ in range(frames + 1):
                    ids.append((await raw.next_message())["id"])
        assert ids[0] == "hold"
        assert ids[1:] == list(range(frames))
        assert gates.pings == frames


async def test_many_requests_in_flight_all_answered(client: Client) -> None:
    count = 200
    for i in range(count):
        await client.send({"command": "ping", "id": i})
    replies = await recv_many(client, count, timeout=10)
    assert set(replies) == set(range(count))
    assert all(r["status"] == "success" for r in replies.values())


async def test_loopback_is_admin_by_default(nursery: trio.Nursery) -> None:
    node, _ = await start_gated(nursery)
    assert set(node.config.admin.ips) == {"127.0.0.1", "::1"}
    async with connect(node) as client:
        reply = await client.request({"command": "sudo", "id": 1})
        assert reply["result"] == {"admin": True}


async def test_non_admin_ip_is_forbidden(nursery: trio.Nursery) -> None:
    node, _ = await start_gated(nursery, admin={"ips": []})
    async with connect(node) as client:
        reply = await client.request({"command": "sudo", "id": 1})
        assert reply["error"] == "forbidden"
        assert reply["error_code"] == 3
        assert (await client.request({"command": "ping", "id": 2}))["status"] == "success"


async def test_bearer_token_makes_admin(nursery: trio.Nursery) -> None:
    node, _ = await start_gated(nursery, admin={"ips": [], "token": "s3cret"})
    headers = [("Authorization", "Bearer s3cret")]
    async with connect(node, extra_headers=headers) as client:
        assert (await client.request({"command": "sudo", "id": 1}))["result"] == {"admin": True}
    async with connect(node, extra_headers=[("Authorization", "Bearer wrong")]) as client:
        assert (await client.request({"command": "sudo", "id": 1}))["error"] == "forbidden"
    async with connect(node) as client:
        assert (await client.request({"command": "sudo", "id": 1}))["error"] == "forbidden"


async def test_shutdown_closes_every_client_with_1001(nursery: trio.Nursery) -> None:
    node = Hub(make_config())
    done = trio.Event()

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await node.run(task_status=task_status)
        done.set()

    await nursery.start(run)
    async with connect(node) as a, connect(node) as b, open_raw(node.url) as silent:
        assert (await a.request({"command": "ping", "id": 1}))["status"] == "success"
        assert (await b.request({"command": "ping", "id": 1}))["status"] == "success"
        with trio.fail_after(2):
            node.shutdown()
            assert await expect_close(a) == 1001
            assert await expect_close(b) == 1001
            close = await silent.next_close()
            assert isinstance(close, CloseConnection)
            assert close.code == 1001
            # The raw client never answers the close: the hub still finishes in time.
            await done.wait()
    assert not node.connections
