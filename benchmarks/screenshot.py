"""``python -m benchmarks.screenshot``: the dashboard's picture in the docs, from a live hub.

Starts ``python -m hub serve`` on its simulator, waits until the hub holds ``--ledgers``
ledgers of history, opens the dashboard in Debian's headless Chromium (Playwright drives
``/usr/bin/chromium``; never ``playwright install``) at 1440x900, waits until the page
has filled from that history, seen live ledgers and shown the hub's rates, and writes
``docs/dashboard.png``. The picture therefore shows this checkout's page and version.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
WAIT = 60.0  # s: for the hub to start and close its ledgers on a busy machine


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.screenshot", description=__doc__)
    p.add_argument("--out", type=Path, default=DOCS_SHOT, help="PNG to write (%(default)s)")
    p.add_argument("--port", type=int, default=0, help="the hub's port (0: a free one)")
    p.add_argument("--ledgers", type=int, default=60, help="history to wait for (60)")
    p.add_argument("--interval", type=float, default=0.5, help="ledger interval, s (0.5)")
    p.add_argument("--tx-per-ledger", type=int, default=12, help="simulated load (12)")
    p.add_argument("--seed", type=int, default=11, help="the simulator's seed (11)")
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=900)
    return p


@contextmanager
def running_hub(args: argparse.Namespace) -> Iterator[int]:
    """A hub process on the simulator; yields its port, stops it with SIGTERM."""
    command = [
        sys.executable,
        "-m",
        "hub",
        "serve",
        "--port",
        str(args.port),
        "--drain-seconds",
        "0",
        "--log-level",
        "warning",
        "--ledger-interval",
        str(args.interval),
        "--tx-per-ledger",
        str(args.tx_per_ledger),
        "--seed",
        str(args.seed),
    ]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        match = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)\n", line)
        if not match:
            raise SystemExit(f"the hub did not start: {line!r}")
        yield int(match[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        finally:
            proc.kill()
            if proc.stdout is not None:
                proc.stdout.close()


def latest_ledger(port: int) -> int | None:
    """The hub's newest ledger (JSON-RPC ``ledger_closed``), None before the first."""
    body = json.dumps({"method": "ledger_closed", "params": [{}]}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result = json.load(response)["result"]
    index = result.get("ledger_index")
    return index if isinstance(index, int) else None


def wait_for_history(port: int, ledgers: int) -> None:
    """Poll until ``ledgers`` ledgers have closed since the first one seen: the hub's
    state has no event to wait on from outside, and polling a second process is cheap."""
    deadline = time.monotonic() + WAIT + ledgers
    first = None
    while True:
        latest = latest_ledger(port)
        first = first if first is not None else latest
        if first is not None and latest is not None and latest - first + 1 >= ledgers:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the hub closed no {ledgers} ledgers in time (latest {latest})")
        time.sleep(0.5)


# The page is ready for its picture: live, its history shown, a rate on every rate card.
READY = """() => {
    const d = window.hubDashboard;
    const rate = (id) => /^[\\d.,]+$/.test(document.querySelector(id + " .n").textContent);
    return d && d.status === "live" && d.ledgers.length >= 40 && rate("#c-rate")
        && rate("#c-events") && document.querySelectorAll("#txs tr[data-type]").length >= 20;
}"""


def shoot(port: int, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function(READY, timeout=WAIT * 1000)
            # Two live ledgers more, so the newest rows show the page as it runs.
            seen = page.evaluate("window.hubDashboard.counts.ledgers")
            page.wait_for_function(
                f"window.hubDashboard.counts.ledgers >= {seen + 2}", timeout=WAIT * 1000
            )
            page.locator("#f-account").blur()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            if errors:
                raise SystemExit(f"the page failed: {errors}")
        finally:
            browser.close()


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with running_hub(args) as port:
        wait_for_history(port, args.ledgers)
        shoot(port, args)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
