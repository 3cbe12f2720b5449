"""Hostile input against a live hub: it answers or closes as documented, never crashes,
and a well-behaved client on the same hub keeps a complete stream throughout."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgspec
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from hub import Hub
from tests.helpers.hubs import ADMIN_PING, Client, make_config
from tests.helpers.samples import ALICE, ledger_closed
from tests.helpers.wsraw import RawClient

MAX_MESSAGE = 64 * 1024


TOKEN = "hostile-test"


@dataclass(frozen=True)
class Text:
    data: str


@dataclass(frozen=True)
class Binary:
    data: bytes


@dataclass(frozen=True)
class Wire:
    """Raw bytes of one client frame the hub must refuse with ``close``."""

    data: bytes
    close: int


def client_frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
    """A single final frame as a client would send it (mask key 0 keeps bytes readable)."""
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, mask_bit | n)
    else:
        header = struct.pack("!BBH", 0x80 | opcode, mask_bit | 126, n)
    return header + (b"\0\0\0\0" if masked else b"") + payload


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


requests = st.fixed_dictionaries(
    {
        "command": st.sampled_from(
            ["ping", "subscribe", "unsubscribe", "server_info", "publish", "x"]
        )
    },
    optional={
        "id": json_values,
        "api_version": json_values,
        "streams": st.lists(st.sampled_from(["ledger", "transactions", "bogus", "peer_status"]))
        | json_values,
        "accounts": st.lists(st.sampled_from([ALICE, "r", "rBogus"]), max_size=3) | json_values,
        "books": json_values,
        "messages": json_values,
        "secret": st.text(max_size=5),
    },
)


frames = st.one_of(
    st.builds(Text, st.text(max_size=60)),
    st.builds(Text, json_values.map(lambda v: msgspec.json.encode(v).decode())),
    st.builds(Text, requests.map(lambda v: msgspec.json.encode(v).decode())),
    st.builds(Binary, st.binary(max_size=60)),
    st.builds(Text, st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n)),
    st.builds(Text, st.integers(1, 20_000).map(lambda n: '{"a":' * n + "1" + "}" * n)),
    st.just(Text('{"command": "ping", "pad": "' + "x" * (MAX_MESSAGE - 100) + '"}')),
    st.just(Text('{"command": "ping", "pad": "' + "x" * MAX_MESSAGE + '"}')),
    st.just(Wire(client_frame(0x1, b"\xff\xfe{}"), 1007)),
    st.just(Wire(client_frame(0x1, b'{"command":"ping"}', masked=False), 1002)),
    st.just(Wire(client_frame(0x3, b"reserved"), 1002)),
)


async def expect_outcome(raw: RawClient, frame: Text | Binary | Wire) -> int | None:
    """Send one frame; return None when it was answered, or the hub's close code."""
    if isinstance(frame, Wire):
        await raw.stream.send_all(frame.data)
    elif isinstance(frame, Binary):
        await raw.send(BytesMessage(frame.data))
    else:
        await raw.send(TextMessage(frame.data))
    while True:
        event = await raw.next_event(10)
        if isinstance(event, CloseConnection):
            return event.code
        if isinstance(event, Ping):
            continue
        assert isinstance(event, TextMessage), event
        reply = msgspec.json.decode(event.data)
        if reply.get("type") == "response":
            assert reply["status"] in ("success", "error")
            if reply["status"] == "error":
                assert isinstance(reply["error_code"], int)
                assert reply["error_message"]
                if "request" in reply and "secret" in reply["request"]:
                    assert reply["request"]["secret"] == "<masked>"
            return None


def expected_close(frame: Text | Binary | Wire) -> int | None:
    if isinstance(frame, Wire):
        return frame.close
    if isinstance(frame, Text) and len(frame.data.encode()) > MAX_MESSAGE:
        return 1009
    return None


async def scenario(batch: list[Text | Binary | Wire]) -> None:
    config = make_config(
        server={"max_message_size": MAX_MESSAGE},
        admin={"ips": [], "token": TOKEN},
        load={"warning": 1e9, "drop": 2e9},
    )
    node = Hub(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        admin_headers = [("Authorization", f"Bearer {TOKEN}")]
        async with (
            open_websocket_url(node.url, extra_headers=admin_headers) as admin_ws,
            open_websocket_url(node.url) as good_ws,
        ):
            admin, good = Client(admin_ws), Client(good_ws)
            reply = await good.request({"command": "subscribe", "streams": ["ledger"]})
            assert reply["status"] == "success"
            raw = await RawClient.connect("127.0.0.1", node.port)
            try:
                for i, frame in enumerate(batch, start=1):
                    code = await expect_outcome(raw, frame)
                    assert code == expected_close(frame), (frame, code)
                    if code is not None:
                        await raw.aclose()
                        raw = await RawClient.connect("127.0.0.1", node.port)
                    reply = await admin.request(
                        {"command": "publish", "messages": [ledger_closed(i)]}
                    )
                    assert reply["result"] == {"published": 1}
                    got = await good.recv()
                    assert got["type"] == "ledgerClosed"
                    assert got["ledger_index"] == i
                pong = await good.request({"command": "ping", "id": "ok"})
                assert pong["result"] == {}
            finally:
                await raw.aclose()
        node.shutdown()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(frames, min_size=1, max_size=6))
def test_random_frames_never_hurt_the_hub(batch: list[Any]) -> None:
    trio.run(scenario, batch)


def test_every_documented_close_is_reachable() -> None:
    """The property test's examples are random; make sure each close code is hit once."""
    trio.run(
        scenario,
        [
            Text('{"command": "ping", "pad": "' + "x" * MAX_MESSAGE + '"}'),
            Wire(client_frame(0x1, b"\xff\xfe{}"), 1007),
            Wire(client_frame(0x1, b'{"command":"ping"}', masked=False), 1002),
            Text("[" * 10_000 + "]" * 10_000),
            Binary(b"\x00\x01"),
        ],
    )


async def test_client_that_disconnects_mid_request(nursery: trio.Nursery) -> None:
    from hub.core import methods as real
    from hub.core.dispatch import Call, Methods

    started, release = trio.Event(), trio.Event()
    finished: list[str] = []
    table = Methods()
    table.register("ping")(real.ping)

    @table.register("slow")
    async def slow(call: Call) -> dict[str, Any]:
        started.set()
        await release.wait()
        finished.append("slow")
        return {}

    node = Hub(make_config(), methods=table)
    await nursery.start(node.run)
    raw = await RawClient.connect("127.0.0.1", node.port)
    await raw.send(TextMessage('{"command": "slow", "id": 1}'))
    with trio.fail_after(5):
        await started.wait()
    await raw.aclose()
    async with open_websocket_url(node.url) as ws:
        other = Client(ws)
        assert (await other.request({"command": "ping", "id": 2}))["result"] == ADMIN_PING
        release.set()
        assert (await other.request({"command": "ping", "id": 3}))["result"] == ADMIN_PING
    assert node.node.stats.connections_accepted == 2
    assert finished == [], "an in-flight request dies with its connection"
    node.shutdown()
