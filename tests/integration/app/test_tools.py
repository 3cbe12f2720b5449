"""``hub call`` and ``hub tail``: seed 001's command line shape, exit codes, reconnection."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial

import msgspec
import trio
import trio.testing

from hub import Hub
from hub.app.tools import tail
from hub.app.workers import reuse_port_listener
from hub.backoff import Backoff
from tests.helpers.httpraw import rpc
from tests.helpers.hubs import eventually, make_config, start_hub
from tests.helpers.processes import STARTUP, hub_cli
from tests.helpers.samples import ALICE, BOB, ledger_closed, xrp_payment


async def test_call_prints_the_commandline_success_shape(hub: Hub) -> None:
    done = await hub_cli("call", "ping", "--url", hub.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == (
        '{\n   "result": {\n      "role": "admin",\n      "unlimited": true,\n'
        '      "status": "success"\n   }\n}\n'
    )


async def test_call_error_shape_and_exit_code(hub: Hub) -> None:
    done = await hub_cli("call", "ledger_closed", "--url", hub.url)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "result": {
            "error": "lgrNotFound",
            "error_code": 21,
            "error_message": "No ledger has closed yet.",
            "request": {"command": "ledger_closed", "api_version": 2},
            "status": "error",
        }
    }


async def test_call_uses_the_latest_api_version_by_default(hub: Hub) -> None:
    latest = await hub_cli("call", "version", "--url", hub.url)
    assert json.loads(latest.stdout)["result"]["version"] == {"first": 1, "last": 2}
    v1 = await hub_cli("call", "version", "--url", hub.url, "--api-version", "1")
    assert json.loads(v1.stdout)["result"]["version"]["good"] == "1.0.0"


async def test_call_output_is_the_json_rpc_reply(hub: Hub) -> None:
    """Seed 001: the command line and JSON-RPC share one format."""
    await hub.publish(ledger_closed(42))
    await trio.testing.wait_all_tasks_blocked()
    for method, params in [
        ("ledger_closed", {}),
        ("no_such_method", {"x": 1}),
        ("version", {}),
    ]:
        done = await hub_cli("call", method, json.dumps(params), "--url", hub.url)
        over_http = (await rpc(hub.port, method, {**params, "api_version": 2})).json()
        printed = json.loads(done.stdout)
        if "request" in printed["result"]:
            assert printed["result"].pop("request") == over_http["result"].pop("request")
        assert printed == over_http


async def test_call_with_params_and_admin_token(nursery: trio.Nursery) -> None:
    node = await start_hub(nursery, make_config(admin={"ips": [], "token": "tok"}))
    params = json.dumps({"messages": [ledger_closed(7)]})
    refused = await hub_cli("call", "publish", params, "--url", node.url)
    assert json.loads(refused.stdout)["result"]["error"] == "forbidden"
    done = await hub_cli("call", "publish", params, "--url", node.url, "--token", "tok")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"result": {"published": 1, "status": "success"}}


async def test_call_usage_errors_exit_2_and_no_connection_1(hub: Hub) -> None:
    bad = await hub_cli("call", "ping", "{not json", "--url", hub.url)
    assert bad.returncode == 2
    assert b"params must be a JSON object" in bad.stderr
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    nobody = await hub_cli("call", "ping", "--url", f"ws://127.0.0.1:{port}")
    assert nobody.returncode == 1
    assert b"cannot connect" in nobody.stderr
    assert nobody.stdout == b""


async def test_tail_prints_json_lines(hub: Hub, nursery: trio.Nursery) -> None:
    lines: list[str] = []
    notes: list[str] = []
    done = trio.Event()

    async def run() -> None:
        code = await tail(
            hub.url, ["ledger", "transactions"], count=3, emit=lines.append, note=notes.append
        )
        assert code == 0
        done.set()

    nursery.start_soon(run)
    await eventually(lambda: hub.node.subscriptions.counts()["transactions"] == 1)
    await hub.publish(ledger_closed(3, txn_count=1))
    await hub.publish(xrp_payment(3, 0, ALICE, BOB))
    await hub.publish(ledger_closed(4))
    with trio.fail_after(5):
        await done.wait()
    messages = [msgspec.json.decode(line) for line in lines]
    assert [m["type"] for m in messages] == ["ledgerClosed", "transaction", "ledgerClosed"]
    assert messages[1]["tx_json"]["Account"] == ALICE  # API v2 by default
    assert all("\n" not in line for line in lines)


async def test_tail_reconnects_and_says_what_it_missed(nursery: trio.Nursery) -> None:
    lines: list[str] = []
    notes: list[str] = []
    first = Hub(make_config())
    async with trio.open_nursery() as first_nursery:
        await first_nursery.start(first.run)
        port = first.port
        assert port is not None

        async def run() -> None:
            await tail(
                first.url,
                ["ledger"],
                count=2,
                pretty=True,
                emit=lines.append,
                note=notes.append,
                backoff=Backoff(0.05, 0.2),
            )

        nursery.start_soon(run)
        await eventually(lambda: first.node.subscriptions.counts()["ledger"] == 1)
        await first.publish(ledger_closed(1, txn_count=4))
        await eventually(lambda: len(lines) == 1)
        first.shutdown()
    await eventually(lambda: any("connection closed (1001" in note for note in notes))

    second = Hub(make_config(server={"port": port}))
    await second.publish(ledger_closed(4))  # waiting in the channel when it starts
    await nursery.start(second.run)
    await eventually(lambda: second.node.subscriptions.counts()["ledger"] == 1)
    await second.publish(ledger_closed(5))
    await eventually(lambda: len(lines) == 2)
    assert lines[0].startswith("ledger 1  ")
    assert "4 txns" in lines[0]
    assert lines[1].startswith("ledger 5  ")
    assert any(note.startswith("cannot resume after ledger 0: ") for note in notes), notes
    assert any(note == "missed ledgers 2-3 while reconnecting" for note in notes), notes
    assert sum(note.startswith("subscribed to ") for note in notes) == 2
    second.shutdown()


async def test_tail_resumes_from_the_hub_history_without_duplicates(
    hub: Hub, nursery: trio.Nursery
) -> None:
    lines: list[str] = []
    notes: list[str] = []

    async def run() -> None:
        await tail(
            hub.url,
            ["ledger", "transactions"],
            count=4,
            emit=lines.append,
            note=notes.append,
            backoff=Backoff(0.05, 0.2),
        )

    nursery.start_soon(run)
    await eventually(lambda: hub.node.subscriptions.counts()["ledger"] == 1)
    await hub.publish(ledger_closed(1, txn_count=1))
    await hub.publish(xrp_payment(1, 0, ALICE, BOB))
    await eventually(lambda: len(lines) == 2)
    for conn in list(hub.connections):
        conn.close(1001, "going away for a moment")
    await eventually(lambda: not hub.connections)
    # Published while tail is away: it must get these from the history.
    await hub.publish(ledger_closed(2, txn_count=1))
    await hub.publish(xrp_payment(2, 0, BOB, ALICE))
    await eventually(lambda: len(lines) == 4)
    messages = [msgspec.json.decode(line) for line in lines]
    assert [(m["type"], m["ledger_index"]) for m in messages] == [
        ("ledgerClosed", 1),
        ("transaction", 1),
        ("ledgerClosed", 2),
        ("transaction", 2),
    ]
    assert any(note.endswith("(4 messages replayed)") for note in notes), notes
    assert not any("missed" in note for note in notes)


async def test_tail_stops_with_1_when_the_subscribe_is_refused(hub: Hub) -> None:
    notes: list[str] = []
    with trio.fail_after(5):
        code = await tail(hub.url, ["no_such"], emit=print, note=notes.append)
    assert code == 1
    assert "malformedStream" in notes[-1]


async def test_tail_command_line_pretty(hub: Hub, nursery: trio.Nursery) -> None:
    async def publish_when_subscribed() -> None:
        await eventually(lambda: hub.node.subscriptions.counts()["accounts"] == 1, timeout=STARTUP)
        await hub.publish(xrp_payment(9, 0, ALICE, BOB))

    nursery.start_soon(publish_when_subscribed)
    done = await hub_cli("tail", "--url", hub.url, "--accounts", BOB, "--pretty", "--count", "1")
    assert done.returncode == 0, done.stderr
    line = done.stdout.decode()
    assert line.startswith("tx 9  Payment ")
    assert f"{ALICE} -> {BOB}" in line
    assert "tesSUCCESS" in line


async def test_tail_resumes_from_the_since_ledger_of_a_draining_hubs_close(
    nursery: trio.Nursery,
) -> None:
    """Hub A drains; B, with the same history, shares its port (SO_REUSEPORT, as in a
    rolling restart). ``hub tail`` printed all of ledger 5, so on its own it would ask
    for ``since_ledger 4`` and skip the replay; A's close reason says 5 is complete,
    and B's reply shows tail asked for ``since_ledger 5``."""
    history = [ledger_closed(5, txn_count=1), xrp_payment(5, 0, ALICE, BOB)]
    first = Hub(make_config(server={"drain_seconds": 0, "drain_spread": 0}))
    await nursery.start(partial(first.run, listeners=[reuse_port_listener("127.0.0.1", 0)]))
    port = first.port
    assert port is not None
    result: list[subprocess.CompletedProcess[bytes]] = []

    async def run_tail() -> None:
        with trio.fail_after(STARTUP + 20):
            result.append(
                await trio.run_process(
                    [sys.executable, "-m", "hub", "tail", "--url", f"ws://127.0.0.1:{port}",
                     "--count", "3"],
                    capture_stdout=True, capture_stderr=True, check=False,
                    stdin=subprocess.DEVNULL,
                )
            )  # fmt: skip

    nursery.start_soon(run_tail)
    await eventually(lambda: first.node.subscriptions.counts()["ledger"] == 1, timeout=STARTUP)
    for message in history:
        await first.publish(message)
    await eventually(lambda: first.node.stats.deliveries == 2)
    second = Hub(make_config())
    for message in history:
        await second.publish(message)
    await nursery.start(partial(second.run, listeners=[reuse_port_listener("127.0.0.1", port)]))
    await eventually(lambda: second.node.history.latest == 5)
    first.shutdown()
    await eventually(lambda: second.node.subscriptions.counts()["ledger"] == 1, timeout=20)
    await second.publish(ledger_closed(6))
    await eventually(lambda: bool(result), timeout=10)
    done = result[0]
    notes = done.stderr.decode()
    assert done.returncode == 0, notes
    messages = [msgspec.json.decode(line) for line in done.stdout.splitlines()]
    assert [(m["type"], m["ledger_index"]) for m in messages] == [
        ("ledgerClosed", 5),
        ("transaction", 5),
        ("ledgerClosed", 6),
    ]
    assert "connection closed (1001 " in notes
    assert "since_ledger 5)" in notes
    assert f"resumed ws://127.0.0.1:{port} from ledger 6 (0 messages replayed)" in notes, notes
    second.shutdown()
