"""xrpl.js, the XRPL Foundation's JavaScript client, talks to the hub unmodified, over
ws:// and wss://.

``tests/interop/js`` pins xrpl 5.3.0 with a lock file; ``npm ci`` installs it on first
use. Without Node.js or npm the test is skipped locally, but fails when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from hub import Hub
from hub.sources.simulator import LedgerSimulator
from hub.xrpl.accounts import affected_books, book_key, reversed_book
from tests.helpers.fake_rippled import BUILD_VERSION as FAKE_BUILD_VERSION
from tests.helpers.fake_rippled import start_relay
from tests.helpers.handover import HISTORY, drain_into_a_successor, first_hub
from tests.helpers.hubs import ADMIN_PING, eventually, make_config, start_hub
from tests.helpers.peers import JS_DIR, run_client
from tests.helpers.samples import ALICE, GATEWAY, ledger_closed, offer_create
from tests.helpers.snippets import docs_code
from tests.helpers.testca import Certificates, tls_config

TOKEN = "tls-token"


async def test_xrpl_js_over_wss_with_its_default_compression(
    nursery: trio.Nursery,
    certs: Certificates,
    node_binary: str,
) -> None:
    config = tls_config(
        certs,
        admin={"token": TOKEN},
        source={"source": "simulator", "ledger_interval": 0.1, "tx_per_ledger": 5, "seed": 1},
    )
    node = await start_hub(nursery, config)
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(certs.ca_cert)}
    with trio.fail_after(60):
        done = await trio.run_process(
            [node_binary, str(JS_DIR / "edge.mjs"), node.url, TOKEN, "10"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert len(summary["transactions"]) >= 10
    assert all(len(tx["hash"]) == 64 for tx in summary["transactions"])
    (me,) = summary["connections"]["result"]["connections"]
    assert me["compression"] is True  # ws offered permessage-deflate, the hub took it


def test_lock_file_pins_xrpl_5_3_0() -> None:
    package = json.loads((JS_DIR / "package.json").read_text())
    assert package["dependencies"]["xrpl"] == "5.3.0"
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/xrpl"]["version"] == "5.3.0"


async def test_xrpl_js_server_info_ping_and_errors(hub: Hub, node_binary: str) -> None:
    summary = await run_client(node_binary, hub.url)
    assert summary["connected"] is True

    info = summary["server_info"]
    assert info["type"] == "response"
    assert info["api_version"] == 2  # xrpl.js sends 2 by default; the hub echoes it
    assert isinstance(info["result"]["info"]["build_version"], str)
    assert info["result"]["info"]["hub"]["connections"] == 1

    ping = summary["ping"]
    assert ping["type"] == "response"
    assert ping["result"] == ADMIN_PING  # the client is on 127.0.0.1, an admin address
    # xrpl.js numbers its requests; the numbers must come back as numbers to match.
    assert isinstance(info["id"], int)
    assert isinstance(ping["id"], int)
    assert ping["id"] != info["id"]

    assert summary["version"]["id"] == "v-1"
    assert summary["version"]["result"] == {"version": {"first": 1, "last": 2}}

    error = summary["error"]
    assert error["name"] == "RippledError"
    assert error["message"] == "Unknown method."
    assert error["data"]["error"] == "unknownCmd"
    assert error["data"]["error_code"] == 32
    assert error["data"]["request"]["command"] == "no_such_method"

    assert summary["after_error"]["result"] == ADMIN_PING
    assert summary["disconnected"] is True


async def test_xrpl_js_emits_stream_events(nursery: trio.Nursery, node_binary: str) -> None:
    """xrpl.js emits an event per message ``type``: the hub's streams reach its handlers."""
    node = Hub(make_config(source={"source": "simulator", "ledger_interval": 0.1, "seed": 3}))
    await nursery.start(node.run)
    summary = await run_client(node_binary, node.url, "streams.mjs", "4")
    node.shutdown()
    assert summary["subscribe"]["type"] == "response"
    indexes = [ledger["index"] for ledger in summary["ledgers"]]
    assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
    assert len(indexes) >= 4
    assert summary["validations"] > 0
    txs = summary["transactions"]
    assert txs, "no transaction event reached xrpl.js"
    assert all(tx["validated"] is True for tx in txs)
    assert all(len(tx["hash"]) == 64 and tx["type"] for tx in txs)
    # Every ledger after the first whose transactions arrived whole matches its txn_count.
    by_ledger: dict[int, int] = {}
    for tx in txs:
        by_ledger[tx["ledger_index"]] = by_ledger.get(tx["ledger_index"], 0) + 1
    for ledger in summary["ledgers"][1:-1]:
        assert by_ledger.get(ledger["index"], 0) == ledger["txn_count"]


XRP_SPEC = {"currency": "XRP"}


USD_SPEC = {"currency": "USD", "issuer": GATEWAY}


def _ask_and_bid() -> tuple[dict[str, Any], dict[str, Any]]:
    """Book_test.cpp's offers: an ask (TakerGets 100 USD, TakerPays 700 XRP) and a bid
    (TakerGets 75 XRP, TakerPays 100 USD)."""
    usd = {**USD_SPEC, "value": "100"}
    return offer_create(5, 1, ALICE, usd, "700000000"), offer_create(5, 2, ALICE, "75000000", usd)


@pytest.mark.parametrize("both", [False, True])
async def test_xrpl_js_book_stream_direction(
    hub: Hub, node_binary: str, tmp_path: Path, both: bool
) -> None:
    """``client.request({command: "subscribe", books: [...]})`` with taker_gets XRP and
    taker_pays USD: xrpl.js receives the ask and not the bid (Book_test.cpp
    testOneSideEmptyBook), both with ``both`` (testBothSidesEmptyBook)."""
    ask, bid = _ask_and_bid()
    book = {"taker_gets": XRP_SPEC, "taker_pays": USD_SPEC, "both": both}
    plan = {"books": [book], "publish": [ask, bid, ledger_closed(6)], "ledgers": 1}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    summary = await run_client(node_binary, hub.url, "books.mjs", str(tmp_path / "plan.json"))
    assert summary["subscribe"]["result"] == {}
    got = [tx["hash"] for tx in summary["transactions"]]
    assert got == ([ask["hash"], bid["hash"]] if both else [ask["hash"]])
    assert summary["transactions"][0]["TakerGets"] == ask["tx_json"]["TakerGets"]


async def test_xrpl_js_book_snapshot_and_stream_on_the_simulator(
    nursery: trio.Nursery, node_binary: str, tmp_path: Path
) -> None:
    seed = 41
    config = make_config(
        source={"source": "simulator", "ledger_interval": 0.3, "seed": seed, "tx_per_ledger": 30}
    )
    node = await start_hub(nursery, config)
    await eventually(lambda: node.node.ledger.index is not None, timeout=20)
    usd = {"currency": "USD", "issuer": LedgerSimulator(seed=seed).issuers[0]}
    book = {"taker_gets": XRP_SPEC, "taker_pays": usd, "snapshot": True, "both": True}
    (tmp_path / "plan.json").write_text(json.dumps({"books": [book], "ledgers": 4}))
    summary = await run_client(node_binary, node.url, "books.mjs", str(tmp_path / "plan.json"))
    node.shutdown()
    result = summary["subscribe"]["result"]
    assert set(result) == {"bids", "asks"}
    assert result["bids"]
    assert result["asks"]
    assert all(isinstance(offer["TakerGets"], str) for offer in result["bids"])  # XRP
    assert all(offer["TakerPays"]["issuer"] == usd["issuer"] for offer in result["bids"])
    assert all(offer["TakerGets"]["issuer"] == usd["issuer"] for offer in result["asks"])
    txs = summary["transactions"]
    assert txs, "no book transaction reached xrpl.js in four ledgers"
    key = book_key(XRP_SPEC, usd)
    for tx in txs:
        assert {key, reversed_book(key)} & affected_books(tx["meta"])
        assert tx["ctid"] is not None


async def test_xrpl_js_autofill_adds_network_id_through_a_relay(
    nursery: trio.Nursery, node_binary: str
) -> None:
    """Relaying a rippled on network 21338, the hub answers server_info with the
    upstream's build_version and network_id, so xrpl.js's autofill adds NetworkID."""
    _, relay = await start_relay(nursery, network_id=21338, ledger=90)
    summary = await run_client(node_binary, relay.url, "autofill.mjs")
    assert summary["networkID"] == 21338
    assert summary["buildVersion"] == FAKE_BUILD_VERSION
    tx = summary["tx"]
    assert tx["NetworkID"] == 21338
    assert tx["Sequence"] == 7  # the upstream's account_info, forwarded
    assert tx["LastLedgerSequence"] == 90 + 20
    assert tx["Fee"] == "12"  # base_fee_xrp 0.00001 x load_factor 1 x xrpl.js's cushion 1.2


@pytest.mark.parametrize(("network", "expected"), [(21338, 21338), (1024, None)])
async def test_xrpl_js_reads_the_hubs_own_version_as_rippled(
    nursery: trio.Nursery, node_binary: str, network: int, expected: int | None
) -> None:
    """Without an upstream the hub's own ``2.3.0-hub.…`` counts as rippled >= 1.11.0, so
    NetworkID follows the network alone: added above 1024, left out at or below."""
    node = await start_hub(nursery, make_config(server={"network_id": network}))
    summary = await run_client(node_binary, node.url, "autofill.mjs", "prefilled")
    assert summary["networkID"] == network
    assert summary["tx"].get("NetworkID") == expected


async def test_the_readme_xrpl_js_loop_resumes_across_a_drain(
    nursery: trio.Nursery, node_binary: str, tmp_path: Path
) -> None:
    """The loop of docs/resume.md, verbatim (``handle`` prints each transaction's
    ledger): A drains while it holds ledgers 5 and 6 whole; the loop resumes on B from the
    number A's close reason named, and leaves no client of its own reconnecting behind."""
    script = tmp_path / "loop.mjs"
    script.write_text(
        docs_code("resume.md", "js", "async function run(url)")
        + "function handle(tx) {\n  console.log(JSON.stringify(tx.ledger_index));\n}\n"
        + "run(process.argv[2]);\n"
    )
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    first = await first_hub(nursery)
    proc = await trio.lowlevel.open_process(
        [node_binary, str(script), first.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        lines = _Lines(proc.stdout)
        await eventually(lambda: first.node.subscriptions.counts()["transactions"] == 1, 30)
        for message in HISTORY:
            await first.publish(message)
        with trio.fail_after(10):
            handled = [await lines.next(), await lines.next()]
        hint, second = await drain_into_a_successor(nursery, first)
        assert hint == 6
        with trio.fail_after(20):
            handled.append(await lines.next())
        assert handled == ["5", "6", "7"]
        assert len(second.connections) == 1  # the loop's new client, no old one revived
    finally:
        proc.kill()
        await proc.wait()


class _Lines:
    """Lines of a process's stdout, one ``next()`` at a time."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                raise EOFError(f"the script ended; it had printed {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()
