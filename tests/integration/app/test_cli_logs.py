"""Logs that mean something: routine events at INFO, WARNING only for what an operator
should act on, third-party chatter held back, and one JSON object per line on request."""

from __future__ import annotations

import io
import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.app import logsetup
from tests.helpers.hubs import Client, eventually, websocket
from tests.helpers.processes import hub_process, write_config
from tests.helpers.redis_server import RedisServer

KEYS = {"time", "level", "logger", "message"}


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Give the root logger back as it was (pytest's handlers, its level)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in logsetup.LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in libraries.items():
        logging.getLogger(name).setLevel(old)


def test_a_json_line_carries_the_traceback_as_a_string(root_logging: None) -> None:
    out = io.StringIO()
    logsetup.configure("info", "json", worker=3, stream=out)
    log = logging.getLogger("hub.test")
    try:
        raise ValueError("boom\nwith a second line")
    except ValueError:
        log.exception("failed: %s", "it")
    log.debug("not at info")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # one record, one line, newlines escaped
    record = json.loads(lines[0])
    assert set(record) == {*KEYS, "exc_info", "worker"}
    assert record["level"] == "ERROR"
    assert record["logger"] == "hub.test"
    assert record["message"] == "failed: it"
    assert record["worker"] == 3
    assert record["time"].endswith("+00:00")
    assert record["exc_info"].startswith("Traceback (most recent call last):\n")
    assert record["exc_info"].endswith("ValueError: boom\nwith a second line")


def test_libraries_are_held_to_warning_unless_debug(root_logging: None) -> None:
    out = io.StringIO()
    logsetup.configure("info", stream=out)
    logging.getLogger("coredis").info("Retry attempt 1 due to error: No matching script")
    logging.getLogger("coredis").warning("a real problem")
    logging.getLogger("hub.test").info("routine")
    assert "Retry attempt" not in out.getvalue()
    assert "WARNING coredis: a real problem" in out.getvalue()
    assert "INFO hub.test: routine" in out.getvalue()
    logsetup.configure("debug", stream=out)
    logging.getLogger("coredis").info("Retry attempt 1 due to error: No matching script")
    assert "INFO coredis: Retry attempt 1" in out.getvalue()


def json_lines(stderr: bytes) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in stderr.decode().splitlines()]
    for record in records:
        assert set(record) >= KEYS, record
    return records


async def test_log_format_json_from_the_flag() -> None:
    args = ("serve", "--port", "0", "--source", "none", "--log-format", "json")
    async with hub_process(*args) as hub:
        url, _, _ = await hub.listening()
        hub.proc.send_signal(signal.SIGTERM)
        assert await hub.exit_code(within=5) == 0
    records = json_lines(hub.stderr)
    assert {"level": "INFO", "logger": "hub.edge.server", "message": f"listening on {url}"} in [
        {key: record[key] for key in ("level", "logger", "message")} for record in records
    ]
    assert any(record["message"] == "SIGTERM: draining, then shutting down" for record in records)


async def test_log_format_json_from_the_config_in_every_worker(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[server]\nlog_format = "json"\nport = 0\n')
    args = ("serve", "--config", config, "--source", "none", "--workers", "2")
    async with hub_process(*args) as hub:
        url, _, _ = await hub.listening()
        await eventually(lambda: hub.stderr.count(b"listening on") >= 2, timeout=10)
        hub.proc.send_signal(signal.SIGTERM)
        assert await hub.exit_code(within=20) == 0
    records = json_lines(hub.stderr)
    listening = [r["worker"] for r in records if r["message"] == f"listening on {url}"]
    assert sorted(listening) == [0, 1]
    assert any("worker" not in r and "stopping the workers" in r["message"] for r in records)


async def test_a_normal_run_warns_of_nothing() -> None:
    args = ("serve", "--port", "0", "--ledger-interval", "0.2", "--drain-seconds", "0")
    async with hub_process(*args) as hub:
        url, _, _ = await hub.listening()
        async with websocket(url) as ws:
            client = Client(ws)
            reply = await client.request({"command": "subscribe", "streams": ["ledger"], "id": 1})
            assert reply["status"] == "success"
            while (await client.recv(timeout=10)).get("type") != "ledgerClosed":
                pass
            hub.proc.send_signal(signal.SIGTERM)
            assert await hub.exit_code(within=5) == 0
    lines = hub.stderr.decode().splitlines()
    assert lines
    assert all(" INFO " in line for line in lines), lines
    assert not any("open-file limit" in line for line in lines)  # at DEBUG


async def coredis_lines(redis: RedisServer, level: str) -> list[str]:
    """What a cluster node logs from coredis at ``level``, from a Redis that has none of
    the hub's scripts yet (a new process): each first call of a script is retried."""
    redis.start()
    await redis.ready()
    try:
        args = ("serve", "--port", "0", "--broker", redis.url, "--log-level", level)
        async with hub_process(*args) as hub:
            await hub.listening()
            # The lease's script has answered (its first call is one coredis retries).
            await eventually(lambda: b"leadership: node " in hub.stderr, timeout=10)
            hub.proc.send_signal(signal.SIGTERM)
            assert await hub.exit_code(within=5) == 0
    finally:
        redis.kill()
    return [line for line in hub.stderr.decode().splitlines() if " coredis: " in line]


async def test_coredis_retries_show_only_at_debug(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    assert await coredis_lines(redis, "info") == []
    debug = await coredis_lines(redis, "debug")
    assert any("Retry attempt 1 due to error: No matching script" in line for line in debug)
