"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The hub runs as a process (``python -m hub serve`` on its simulator, or with no source
and ledgers published by the test); the page must start from the hub's history, show
ledgers advancing, transactions arriving and filterable, the hub's health with units,
keep working across a restart of the hub, and fit every screen from a phone to a wide
monitor. Playwright never downloads a browser here: it drives ``/usr/bin/chromium``,
which ``.ci/run`` installs. Without it the test is skipped locally and fails in CI.

``python -m benchmarks.screenshot`` writes the picture in the docs
(``tests/benchmarks/test_screenshot.py`` runs it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.programs import IN_CI
from tests.helpers.samples import iou_payment, ledger_closed, offer_crossing, xrp_payment

CHROMIUM = "/usr/bin/chromium"
REBOUND = "rebound.test"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # DNS rebinding without DNS: this name resolves to 127.0.0.1 (see the origin test).
    f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1",
]
SIMULATOR = ["--ledger-interval", "0.5", "--tx-per-ledger", "12", "--seed", "11"]
WAIT = 20_000  # ms: generous for a busy CI machine; every wait ends as soon as it holds
HISTORY = 50  # ledgers the page asks of the hub's history when it opens
SOON = 5_000  # ms: the history is on the page this soon after it opens


def _missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class HubProcess:
    """``python -m hub serve`` on the simulator; stopped with SIGTERM."""

    def __init__(self, port: int, log: Path, source: list[str] = SIMULATOR) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--port",
                str(port),
                "--drain-seconds",
                "0",
                *source,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)\n", line)
        assert match, f"no listening line: {line!r}; see {log}"
        self.port = int(match[1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        finally:
            self.proc.kill()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self._log.close()


def test_dashboard_live_filters_and_reconnects(browser: Any, tmp_path: Path) -> None:
    hub = HubProcess(0, tmp_path / "hub.log")
    port = hub.port
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("window.hubDashboard.status === 'live'", timeout=WAIT)

        # Ledgers advance: the top row's index grows by two, each row complete.
        page.wait_for_selector("#ledgers tr[data-index]", timeout=WAIT)
        first = int(page.get_attribute("#ledgers tr[data-index]", "data-index"))
        top = "Number(document.querySelector('#ledgers tr[data-index]').dataset.index)"
        page.wait_for_function(f"{top} >= {first + 2}", timeout=WAIT)
        row = page.locator("#ledgers tr[data-index]").first.locator("td").all_inner_texts()
        assert re.fullmatch(r"[\d,]+", row[0])  # index
        assert re.fullmatch(r"[0-9A-F]{10}…[0-9A-F]{6}", row[1])  # hash
        assert re.match(r"\d+", row[2])  # transaction count
        assert re.fullmatch(r"\d\d:\d\d:\d\d", row[3])  # close time, UTC

        # Transactions appear.
        page.wait_for_selector("#txs tr[data-type]", timeout=WAIT)

        # The hub's health, from server_info polled every 2 s (the rate needs two polls).
        page.wait_for_function(
            "document.querySelector('#c-health .v').textContent === 'fresh'", timeout=WAIT
        )
        assert int(page.text_content("#c-conns .n")) >= 1
        page.wait_for_function(
            "/^[\\d.,]+ deliveries\\/s$/.test(document.querySelector('#c-rate .v').textContent)",
            timeout=WAIT,
        )
        assert re.fullmatch(r"[\d.,]+ events/s", page.text_content("#c-events .v"))
        assert page.text_content("#c-dropped .n") == "0"

        # Filter by type, then by account.
        page.select_option("#f-type", "Payment")
        types = page.eval_on_selector_all("#txs tr[data-type]", "rs => rs.map(r => r.dataset.type)")
        assert types
        assert set(types) == {"Payment"}
        account = page.get_attribute("#txs tr[data-type]", "data-account")
        page.select_option("#f-type", "")
        page.fill("#f-account", account)
        parties = page.eval_on_selector_all(
            "#txs tr[data-type]", "rs => rs.map(r => [r.dataset.account, r.dataset.destination])"
        )
        assert parties
        assert all(account in pair for pair in parties)
        page.fill("#f-account", "")
        page.locator("#f-account").blur()

        page.wait_for_function("window.hubDashboard.counts.ledgers >= 8", timeout=WAIT)
        page.screenshot(path=str(tmp_path / "dashboard.png"))

        # The hub restarts on the same port: the page notices, reconnects, goes on.
        hub.stop()
        page.wait_for_function("window.hubDashboard.status !== 'live'", timeout=WAIT)
        assert page.get_attribute("#status", "data-state") != "live"
        hub = HubProcess(port, tmp_path / "hub.log")
        page.wait_for_function(
            "window.hubDashboard.status === 'live' && window.hubDashboard.counts.connects >= 2",
            timeout=WAIT,
        )
        seen = page.evaluate("window.hubDashboard.counts.ledgers")
        page.wait_for_function(f"window.hubDashboard.counts.ledgers >= {seen + 2}", timeout=WAIT)
        page.screenshot(path=str(tmp_path / "dashboard-after-restart.png"))
        assert errors == []
    finally:
        hub.stop()


# ---- every screen: element boxes at phone, tablet, laptop and desktop widths ------------

WIDTHS = [(390, 844), (768, 1024), (1024, 768), (1440, 900), (1920, 1080)]
FAST_SIMULATOR = ["--ledger-interval", "0.1", "--tx-per-ledger", "12", "--seed", "11"]
# Each block of the page: its box (page coordinates), whether it is displayed, how many
# of five points inside it (centre, corners inset by 10 %) something else is drawn on
# (checked with the block scrolled to the middle of the window), and by how much its
# content is wider than it; each table's scroll box: its sideways overflow and how many
# whole rows it shows; the chart's box and how many bars are drawn at least 2 px wide.
LAYOUT = """() => {
    const blocks = [...document.querySelectorAll("header, .card, .panel, footer")].map((el) => {
        el.scrollIntoView({block: "center", inline: "nearest"});
        const r = el.getBoundingClientRect(), style = getComputedStyle(el);
        const covered = [[.5, .5], [.1, .1], [.9, .1], [.1, .9], [.9, .9]].filter(([fx, fy]) => {
            const x = r.left + r.width * fx, y = r.top + r.height * fy;
            if (y < 0 || y >= innerHeight) return false;  // taller than the window
            const hit = document.elementFromPoint(x, y);
            return !(hit && el.contains(hit));
        }).length;
        return {name: el.id || el.tagName.toLowerCase(), kind: el.className.split(" ")[0],
                x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
                shown: style.display !== "none" && style.visibility === "visible"
                       && Number(style.opacity) > 0,
                covered, clipped: el.scrollWidth - el.clientWidth};
    });
    scrollTo(0, 0);
    const tables = [...document.querySelectorAll(".panel .scroll")].map((box) => {
        const b = box.getBoundingClientRect();
        const rows = [...box.querySelectorAll("tbody tr")].filter((tr) => {
            const r = tr.getBoundingClientRect();
            return r.height > 0 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1;
        }).length;
        return {name: box.closest(".panel").id, sideways: box.scrollWidth - box.clientWidth, rows};
    });
    const chart = document.getElementById("chart").getBoundingClientRect();
    const bars = [...document.querySelectorAll("#chart rect")]
        .filter((r) => r.getBoundingClientRect().width >= 2).length;
    return {width: innerWidth, scrollWidth: document.documentElement.scrollWidth, blocks,
            tables, chart: {w: chart.width, h: chart.height, bars}};
}"""
# Smallest reasonable boxes (w, h) by block, in CSS px.
MIN_SIZE = {
    "header": (300, 40),
    "card": (140, 60),
    "panel": (340, 150),
    "p-ledgers": (340, 280),
    "p-chart": (340, 150),
    "p-txs": (340, 400),
    "footer": (300, 10),
}


def layout_problems(layout: dict[str, Any]) -> list[str]:
    """What is wrong with the page's layout as measured by ``LAYOUT``: nothing, ideally."""
    problems = []
    width = layout["width"]
    if layout["scrollWidth"] > width:
        problems.append(f"the page scrolls sideways: {layout['scrollWidth']} > {width}")
    blocks = layout["blocks"]
    for b in blocks:
        name = b["name"]
        min_w, min_h = MIN_SIZE.get(name, MIN_SIZE.get(b["kind"], (1, 1)))
        if not b["shown"]:
            problems.append(f"{name} is not displayed")
        if b["w"] < min_w or b["h"] < min_h:
            problems.append(f"{name} is {b['w']:.0f}x{b['h']:.0f}, under {min_w}x{min_h}")
        if b["x"] < 0 or b["x"] + b["w"] > width + 0.5:
            problems.append(f"{name} leaves the window: x {b['x']:.0f}, width {b['w']:.0f}")
        if b["covered"]:
            problems.append(f"{name}: something else is drawn on {b['covered']} of 5 points")
        if b["clipped"] > 1:
            problems.append(f"{name}: its content is {b['clipped']} px wider than it")
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if dx > 0.5 and dy > 0.5:
                problems.append(f"{a['name']} and {b['name']} overlap by {dx:.0f}x{dy:.0f}")
    for t in layout["tables"]:
        if t["sideways"] > 1:
            problems.append(f"{t['name']}: its table scrolls sideways by {t['sideways']} px")
        if t["rows"] < 5:
            problems.append(f"{t['name']}: {t['rows']} whole rows in view, under 5")
    chart = layout["chart"]
    if chart["w"] < 300 or chart["h"] < 80 or chart["bars"] < 40:
        problems.append(f"the chart is {chart['w']:.0f}x{chart['h']:.0f} with {chart['bars']} bars")
    return problems


def _latest_ledger(port: int) -> int | None:
    """The hub's newest ledger (JSON-RPC ``ledger_closed``), None before the first."""
    body = json.dumps({"method": "ledger_closed", "params": [{}]}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result = json.load(response)["result"]
    index = result.get("ledger_index")
    return index if isinstance(index, int) else None


def _wait_for_ledgers(port: int, count: int) -> int:
    """Poll the hub until ``count`` ledgers have closed since the first seen (its state
    has no event a test outside the process can wait on); return the latest."""
    deadline = time.monotonic() + WAIT / 1000 + count
    first = latest = None
    while first is None or latest is None or latest - first + 1 < count:
        assert time.monotonic() < deadline, f"the hub closed no {count} ledgers in time"
        time.sleep(0.05)
        latest = _latest_ledger(port)
        first = latest if first is None else first
    return latest


# The ledgers and transactions the page holds: ledgers newest first, each one's
# transaction count as announced and as received, and any transaction hash seen twice.
HELD = """() => {
    const d = window.hubDashboard, got = {}, hashes = new Set(), twice = [];
    for (const t of d.txs) {
        got[t.ledger] = (got[t.ledger] || 0) + 1;
        if (hashes.has(t.hash)) twice.push(t.hash);
        hashes.add(t.hash);
    }
    return {ledgers: d.ledgers.map((l) => [l.index, l.txns, got[l.index] || 0]), twice};
}"""


def test_dashboard_fits_every_width(browser: Any, tmp_path: Path) -> None:
    """Opened while ledgers close ten a second, the page fills from the hub's history
    with no gap or duplicate at the seam, shows its rates with units, and lays out at
    390, 768, 1024, 1440 and 1920 px: every block displayed, big enough, inside the
    window, on top where it is drawn, not overlapping another, nothing scrolling sideways."""
    hub = HubProcess(0, tmp_path / "hub.log", source=FAST_SIMULATOR)
    try:
        opened_at = _wait_for_ledgers(hub.port, HISTORY + 10)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{hub.port}/")
        # Soon a full table, with ledgers that closed before the page opened: the history.
        rows = "[...document.querySelectorAll('#ledgers tr[data-index]')]"
        full = f"{rows}.length >= {HISTORY}"
        old = f"Math.min(...{rows}.map((r) => Number(r.dataset.index))) <= {opened_at}"
        page.wait_for_function(f"{full} && {old}", timeout=SOON)

        # Contiguous ledgers, newest first; each one's transactions all there, once (the
        # newest may still be arriving).
        held = page.evaluate(HELD)
        indexes = [index for index, _, _ in held["ledgers"]]
        assert indexes == list(range(indexes[0], indexes[0] - len(indexes), -1))
        assert len(indexes) == HISTORY
        assert [(i, n) for i, n, got in held["ledgers"][1:] if n != got] == []
        assert held["twice"] == []

        # Rates carry their units; so does the transactions figure.
        rate = "/^[\\d.,]+ deliveries\\/s$/.test(document.querySelector('#c-rate .v').textContent)"
        page.wait_for_function(rate, timeout=WAIT)
        assert re.fullmatch(r"[\d.,]+ events/s", page.text_content("#c-events .v"))
        assert re.fullmatch(r"[\d.,]+ tx/ledger", page.text_content("#c-tps .v"))

        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(f"innerWidth === {width}", timeout=WAIT)
            problems = layout_problems(page.evaluate(LAYOUT))
            shot = tmp_path / f"dashboard-{width}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert problems == [], f"at {width}x{height} (see {shot})"
        assert errors == []
    finally:
        hub.stop()


# ---- history first, from ledgers the test published -------------------------------------

BASE = 5001  # so that the newest ledger has transactions, however many
HOSTILE_TYPE = "<img src=x onerror=window.pwned=1>"
HOSTILE_ACCOUNT = '"><b id=injected>r</b>'


def _ledger_messages(index: int) -> list[dict[str, Any]]:
    """A ``ledgerClosed`` and its ``index % 3`` transactions, of varied kinds."""

    kinds = [xrp_payment, iou_payment, offer_crossing]
    txs = [kinds[(index + seq) % 3](index, seq) for seq in range(index % 3)]
    return [ledger_closed(index, len(txs)), *txs]


def _publish(port: int, messages: list[dict[str, Any]]) -> None:
    body = {"method": "publish", "params": [{"messages": messages}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["result"]["published"] == len(messages)


def _expected(ledgers: range) -> tuple[list[int], set[tuple[int, str]]]:
    """The ledger rows (newest first) and transaction rows (ledger, hash) of ``ledgers``."""
    txs = {
        (m["ledger_index"], m["hash"])
        for i in ledgers
        for m in _ledger_messages(i)
        if m["type"] == "transaction"
    }
    return list(reversed(ledgers)), txs


SHOWN = """() => ({
    ledgers: [...document.querySelectorAll("#ledgers tr[data-index]")]
        .map((r) => Number(r.dataset.index)),
    bars: [...document.querySelectorAll("#chart rect")].map((r) => Number(r.dataset.index)),
    txs: [...document.querySelectorAll("#txs tr[data-type]")]
        .map((r) => [Number(r.dataset.ledger), r.dataset.hash]),
})"""


def _shown(page: Any) -> tuple[list[int], list[int], list[tuple[int, str]]]:
    shown = page.evaluate(SHOWN)
    return shown["ledgers"], shown["bars"], [tuple(t) for t in shown["txs"]]


@pytest.mark.parametrize("published", [HISTORY + 30, 12], ids=["deep-history", "short-history"])
def test_dashboard_starts_with_the_hubs_history(
    browser: Any, tmp_path: Path, published: int
) -> None:
    """Ledgers published before the page opens are on it within seconds, with no new
    ledger closing: the last 50 (or all the history holds, when it holds fewer), in the
    table, the chart and the feed, each once; what the hub sends is shown as text. Then
    it goes on live, and after its connection drops it resumes with no gap or duplicate."""
    hub = HubProcess(0, tmp_path / "hub.log", source=["--source", "none"])
    try:
        last = BASE + published - 1
        messages = [m for i in range(BASE, last + 1) for m in _ledger_messages(i)]
        hostile = messages[-1]
        assert hostile["type"] == "transaction"
        hostile["tx_json"].update(TransactionType=HOSTILE_TYPE, Account=HOSTILE_ACCOUNT)
        _publish(hub.port, messages)

        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sockets: list[Any] = []  # the page's WebSockets, through Playwright, to cut one

        def route(ws: Any) -> None:
            ws.connect_to_server()
            sockets.append(ws)

        page.route_web_socket(f"ws://127.0.0.1:{hub.port}/", route)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(f"http://127.0.0.1:{hub.port}/")
        window = range(max(BASE, last - HISTORY + 1), last + 1)
        rows, txs = _expected(window)
        page.wait_for_function(
            f"document.querySelectorAll('#ledgers tr[data-index]').length >= {len(rows)}",
            timeout=SOON,
        )
        ledgers, bars, shown_txs = _shown(page)
        assert ledgers == rows
        assert bars == rows[::-1]
        assert sorted(shown_txs) == sorted(txs)  # each once
        assert page.text_content("#c-tps .n") == f"{len(txs) / len(rows):.1f}"

        # Escaped: the hostile type and account are text, in the row and its attributes.
        assert page.evaluate("window.pwned") is None
        assert page.locator("#injected").count() == 0
        row = page.locator("#txs tr[data-type]").first
        assert row.get_attribute("data-type") == HOSTILE_TYPE
        assert row.get_attribute("data-account") == HOSTILE_ACCOUNT
        assert row.locator(".badge").text_content() == HOSTILE_TYPE

        # Live after the history, then across a dropped connection: no gap, no duplicate.
        top = "Number(document.querySelector('#ledgers tr[data-index]').dataset.index)"
        _publish(hub.port, _ledger_messages(last + 1) + _ledger_messages(last + 2))
        page.wait_for_function(f"{top} === {last + 2}", timeout=WAIT)
        sockets[0].close()
        page.wait_for_function("window.hubDashboard.status !== 'live'", timeout=WAIT)
        _publish(hub.port, _ledger_messages(last + 3) + _ledger_messages(last + 4))
        page.wait_for_function(f"{top} === {last + 4}", timeout=WAIT)
        assert page.evaluate("window.hubDashboard.counts.connects") == 2
        rows, _ = _expected(range(max(BASE, last + 4 - HISTORY + 1), last + 5))
        _, txs = _expected(range(window.start, last + 5))  # the feed keeps older ones
        ledgers, bars, shown_txs = _shown(page)
        assert ledgers == rows
        assert bars == rows[::-1]
        assert sorted(shown_txs) == sorted(txs)
        # Self-contained: the page asked nothing of anyone but the hub (besides data: URLs).
        own = f"http://127.0.0.1:{hub.port}/"
        assert own in requests
        assert [url for url in requests if not url.startswith((own, "data:"))] == []
        assert len(sockets) == 2
        assert errors == []
    finally:
        hub.stop()


# ---- admin out of reach of other pages ---------------------------------------------------

# In the page: open a WebSocket, ping, try to publish a ledger; return both replies.
WS_PING_AND_PUBLISH = """async ([url, forged]) => {
    const ws = new WebSocket(url);
    await new Promise((opened, failed) => { ws.onopen = opened; ws.onerror = failed; });
    const ask = (request) => new Promise((answered) => {
        ws.addEventListener("message", (e) => answered(JSON.parse(e.data)), {once: true});
        ws.send(JSON.stringify(request));
    });
    const ping = await ask({command: "ping"});
    const publish = await ask({command: "publish", messages: [forged]});
    ws.close();
    return {ping, publish};
}"""
# A cross-origin POST that needs no preflight: no-cors, text/plain (the reply is opaque).
NO_CORS_PUBLISH = """async ([url, body]) => {
    const response = await fetch(url, {method: "POST", mode: "no-cors",
                                       headers: {"Content-Type": "text/plain"}, body});
    return response.type;
}"""
# A same-origin POST (what a rebinding page may send): any type, the reply readable.
SAME_ORIGIN_PUBLISH = """async ([url, body]) => {
    const response = await fetch(url, {method: "POST", body,
                                       headers: {"Content-Type": "application/json"}});
    return await response.json();
}"""
SUBSCRIBE = """(url) => new Promise((subscribed) => {
    window.seen = [];
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(JSON.stringify({command: "subscribe", streams: ["ledger"]}));
    ws.onmessage = (e) => {
        const message = JSON.parse(e.data);
        if (message.type === "ledgerClosed") window.seen.push(message.ledger_index);
        else subscribed(message.status);
    };
})"""


class PageServer:
    """Another origin on this machine: a tiny HTTP server with a blank page."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Blank(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"<!doctype html><title>elsewhere</title>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _publish_body(index: int) -> str:
    return json.dumps({"method": "publish", "params": [{"messages": [ledger_closed(index)]}]})


def _admin_publish(port: int, index: int) -> Any:
    """Publish a ledger as a program on this machine does: admin by address."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=_publish_body(index).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_pages_from_elsewhere_get_no_admin(browser: Any, tmp_path: Path) -> None:
    """A page from another local port, and a page whose name was rebound to 127.0.0.1,
    talk to the hub but never as admin: ping says no role, publishing is refused and
    nothing they send reaches a subscriber; the hub's own dashboard origin is admin."""
    hub = HubProcess(0, tmp_path / "hub.log", source=["--source", "none"])
    elsewhere = PageServer()
    ws_url, http_url = f"ws://127.0.0.1:{hub.port}/", f"http://127.0.0.1:{hub.port}/"
    forged = ledger_closed(666)
    try:
        own = browser.new_page()
        own.goto(http_url)
        assert own.evaluate(SUBSCRIBE, ws_url) == "success"
        mine = own.evaluate(WS_PING_AND_PUBLISH, [ws_url, ledger_closed(1)])
        assert mine["ping"]["result"] == {"role": "admin", "unlimited": True}
        assert mine["publish"]["result"] == {"published": 1}

        other = browser.new_page()
        other.goto(f"http://127.0.0.1:{elsewhere.port}/")
        theirs = other.evaluate(WS_PING_AND_PUBLISH, [ws_url, forged])
        assert theirs["ping"]["result"] == {}
        assert theirs["publish"]["error"] == "forbidden"
        assert other.evaluate(NO_CORS_PUBLISH, [http_url, _publish_body(667)]) == "opaque"

        rebound = browser.new_page()
        rebound.goto(f"http://{REBOUND}:{hub.port}/")
        url = f"ws://{REBOUND}:{hub.port}/"
        rebinding = rebound.evaluate(WS_PING_AND_PUBLISH, [url, forged])
        assert rebinding["ping"]["result"] == {}
        assert rebinding["publish"]["error"] == "forbidden"
        same_origin = rebound.evaluate(
            SAME_ORIGIN_PUBLISH, [f"http://{REBOUND}:{hub.port}/", _publish_body(668)]
        )
        assert same_origin["result"]["error"] == "forbidden"

        # Each request above was answered before the next was sent, so anything they
        # had published would be delivered before this one.
        assert _admin_publish(hub.port, 2)["result"] == {"published": 1, "status": "success"}
        own.wait_for_function("window.seen.length >= 2", timeout=WAIT)
        assert own.evaluate("window.seen") == [1, 2]
    finally:
        elsewhere.stop()
        hub.stop()
