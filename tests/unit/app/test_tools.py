"""``hub call`` and ``hub tail`` output without a hub: the command line reply and the
pretty line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.app.tools import format_reply, pretty_line
from hub.wire.jsonrpc import from_websocket
from tests.helpers.samples import ledger_closed


def test_format_reply_of_warnings_and_error_details() -> None:
    reply = {
        "id": 1,
        "status": "error",
        "type": "response",
        "api_version": 2,
        "error": "lgrIdxsInvalid",
        "error_code": 57,
        "error_message": "Ledger indexes invalid.",
        "oldest": 5,
        "request": {"command": "x"},
        "warnings": [{"id": 2002, "message": "This server may be out of date"}],
    }
    assert from_websocket(reply) == {
        "result": {
            "error": "lgrIdxsInvalid",
            "error_code": 57,
            "error_message": "Ledger indexes invalid.",
            "oldest": 5,
            "request": {"command": "x"},
            "status": "error",
        },
        "warnings": [{"id": 2002, "message": "This server may be out of date"}],
    }
    ok = {"status": "success", "type": "response", "result": {"a": 1}, "warning": "load"}
    assert json.loads(format_reply(ok)) == {
        "result": {"a": 1, "status": "success"},
        "warning": "load",
    }


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (ledger_closed(7, txn_count=3), "ledger 7  "),
        ({"type": "serverStatus", "load_factor": 256}, 'serverStatus {"load_factor":256}'),
    ],
)
def test_pretty_lines(message: dict[str, Any], expected: str) -> None:
    assert pretty_line(message).startswith(expected)
