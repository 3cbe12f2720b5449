"""The JSON-RPC envelope as plain functions."""

from __future__ import annotations

from hub.wire import jsonrpc


def test_parse_sets_command_from_method() -> None:
    body, echo = jsonrpc.parse(b'{"method": "x", "id": 1, "params": [{"command": "y", "a": 2}]}')
    assert body == {"command": "x", "a": 2}
    assert echo == {"id": 1}
