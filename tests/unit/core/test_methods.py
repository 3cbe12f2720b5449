"""The methods (:mod:`hub.core.methods`): every field of every method, filled with
arbitrary JSON, gets a well-formed answer from the node itself (no sockets, many
examples), never ``internal`` for a client's mistake; and ``version`` at each API
version."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.core import methods as hub_methods
from hub.core.dispatch import Call
from hub.core.methods import METHODS
from hub.core.node import Identity, Node
from hub.core.session import NO_STREAM, Session
from hub.wire import envelope, jsonrpc
from hub.wire.envelope import Request
from hub.wire.versions import (
    VersionPolicy,
)
from tests.helpers.fuzz import VALID, check_reply, requests
from tests.helpers.hubs import make_config
from tests.helpers.samples import ledger_closed


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


def test_the_fields_cover_every_method() -> None:
    """A method added to the table without fields to fuzz is a gap in this test."""
    plain: Iterable[str] = ("ping", "version", "server_info", "connections", "ledger_closed",
                            "ledger_current")  # fmt: skip
    assert set(METHODS.names()) <= {*VALID, *plain}


class _FakeHub:
    def __init__(self, beta: bool = False) -> None:
        self.versions = VersionPolicy(beta=beta)


def _call_version(version: int, beta: bool = False) -> Any:
    method = hub_methods.METHODS.lookup("version", version)
    session = Session(remote="127.0.0.1", admin=False, sink=NO_STREAM)
    request = Request({"command": "version", "api_version": version}, "version", version)
    return method.handler(Call(_FakeHub(beta), session, request))


def test_version_method_at_v1() -> None:
    assert _call_version(1) == {"version": {"first": "1.0.0", "good": "1.0.0", "last": "1.0.0"}}


def test_version_method_at_v2() -> None:
    assert _call_version(2) == {"version": {"first": 1, "last": 2}}


def test_version_method_at_v3_with_beta() -> None:
    assert _call_version(3, beta=True) == {"version": {"first": 1, "last": 3}}


def test_version_method_at_v2_with_beta_reports_last_3() -> None:
    assert _call_version(2, beta=True) == {"version": {"first": 1, "last": 3}}


def test_real_table_picks_definitions_by_version() -> None:
    table = hub_methods.METHODS
    assert table.lookup("version", 1).handler is hub_methods.version_v1
    assert table.lookup("version", 2).handler is hub_methods.version_v2
    assert table.lookup("version", 3).handler is hub_methods.version_v2
    for version in (1, 2, 3):
        assert table.lookup("ping", version).handler is hub_methods.ping
        assert table.lookup("server_info", version).handler is hub_methods.server_info
    assert {"ping", "version", "server_info"} <= set(table.names())
