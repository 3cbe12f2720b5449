"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

The hub runs as a process (``python -m hub serve`` on its simulator); the page must show
ledgers advancing, transactions arriving and filterable, the hub's health, and keep
working across a restart of the hub. Playwright never downloads a browser here: it
drives ``/usr/bin/chromium``, which ``.ci/run`` installs. Without it the test is
skipped locally and fails in CI.

``UPDATE_SCREENSHOT=1`` also writes the screenshot to ``docs/dashboard.png``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import DOCS
from tests.helpers.programs import IN_CI
from tests.helpers.samples import ledger_closed

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


DOCS_SHOT = DOCS / "dashboard.png"


SIMULATOR = ["--ledger-interval", "0.5", "--tx-per-ledger", "12", "--seed", "11"]


WAIT = 20_000  # ms: generous for a busy CI machine; every wait ends as soon as it holds


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
        assert int(page.text_content("#c-conns .v")) >= 1
        page.wait_for_function(
            "/^[\\d.,]+$/.test(document.querySelector('#c-rate .v').textContent)", timeout=WAIT
        )
        assert page.text_content("#c-dropped .v") == "0"

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
        if os.environ.get("UPDATE_SCREENSHOT"):
            page.wait_for_function("window.hubDashboard.counts.ledgers >= 18", timeout=WAIT)
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS_SHOT))

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
