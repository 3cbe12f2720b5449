"""A user's mistakes at the command line: each ends in one line on stderr that names the
problem and the fix, with exit status 2 (usage) or 1 (run time), never a traceback.
Every test runs the real ``hub`` in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import trio

from tests.helpers.hubs import eventually, make_config, start_hub
from tests.helpers.processes import STARTUP, hub_process
from tests.helpers.programs import free_port
from tests.helpers.redis_server import RedisServer
from tests.helpers.testca import Certificates, make_ca

BLOCK_COREDIS = """\
import sys


class _NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "coredis" or name.startswith("coredis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled)
"""
"""A ``sitecustomize`` that makes coredis missing, as in an install without the extra."""


async def hub_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m hub ARGS`` to its end, its output captured."""
    with trio.fail_after(STARTUP):
        return await trio.run_process(
            [sys.executable, "-m", "hub", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
            env=env,
        )


def one_line(done: subprocess.CompletedProcess[bytes], prefix: str) -> str:
    """The one line on stderr, which begins with ``prefix``; nothing on stdout."""
    err = done.stderr.decode()
    assert err.count("\n") == 1, err
    assert err.endswith("\n"), err
    assert err.startswith(prefix), err
    assert done.stdout == b""
    return err


def closed_port() -> int:
    return free_port()  # nobody listens there once the probe socket is closed


def without_coredis(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_COREDIS)
    return {**os.environ, "PYTHONPATH": str(site)}


# ---- hub serve --------------------------------------------------------------------------


async def test_a_second_hub_on_a_port_in_use(nursery: trio.Nursery) -> None:
    first = await start_hub(nursery)
    done = await hub_cli("serve", "--port", str(first.port), "--source", "none")
    assert done.returncode == 1
    line = one_line(done, f"hub: cannot listen on 127.0.0.1:{first.port}: the port is in use")
    assert "--port" in line


async def test_an_unknown_source() -> None:
    done = await hub_cli("serve", "--port", "0", "--source", "foo")
    assert done.returncode == 2
    line = one_line(done, "hub: unknown source 'foo'")
    assert "simulator, none, upstream:ws://HOST:PORT" in line
    assert "replay:FILE" in line


async def test_a_missing_replay_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.jsonl"
    done = await hub_cli("serve", "--port", "0", "--source", f"replay:{missing}")
    assert done.returncode == 2
    line = one_line(done, f"hub: [source] source replay:{missing}: cannot read")
    assert "no such file" in line
    assert "hub record URL FILE" in line


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_replay_file_that_is_not_a_recording(tmp_path: Path, workers: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a recording\n")
    done = await hub_cli("serve", "--port", "0", "--workers", workers, "--source", f"replay:{path}")
    assert done.returncode == 2
    line = one_line(done, f"hub: [source] source replay:{path}: not a recording ({path}:1: ")
    assert line.endswith("give a file written by `hub record URL FILE`\n")


async def test_an_upstream_that_is_not_a_websocket_url() -> None:
    done = await hub_cli("serve", "--port", "0", "--source", "upstream:http://127.0.0.1:1")
    assert done.returncode == 2
    assert "is not a WebSocket URL; give ws://" in one_line(done, "hub: [source] source")


async def test_tls_files_that_cannot_be_read_with_workers(tmp_path: Path) -> None:
    """The parent of ``--workers`` refuses them as one hub would, before any worker."""
    missing = str(tmp_path / "missing.pem")
    done = await hub_cli(
        "serve", "--port", "0", "--source", "none", "--workers", "2",
        "--tls-cert", missing, "--tls-key", missing,
    )  # fmt: skip
    assert done.returncode == 2
    line = one_line(done, f"hub: [server] tls_cert/tls_key: cannot load {missing!r} and ")
    assert line.endswith(
        "(No such file or directory); give a PEM certificate (chain) and its private key\n"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_cluster_without_the_redis_extra(tmp_path: Path, workers: str) -> None:
    env = without_coredis(tmp_path)
    probe = await trio.run_process(
        [sys.executable, "-c", "import coredis"], env=env, check=False, capture_stderr=True
    )
    assert b"ModuleNotFoundError: No module named 'coredis'" in probe.stderr
    done = await hub_cli(
        "serve", "--port", "0", "--workers", workers, "--broker", f"redis://127.0.0.1:{closed_port()}/0",
        env=env,
    )  # fmt: skip
    assert done.returncode == 2
    line = one_line(done, "hub: [cluster] broker needs the Redis client coredis")
    assert line.endswith(": pip install 'xrpl-stream-hub[redis]'\n")


async def test_a_hub_on_its_own_needs_no_coredis(tmp_path: Path) -> None:
    env = without_coredis(tmp_path)
    async with hub_process("serve", "--port", "0", env=env) as hub:
        await hub.listening()
        hub.proc.send_signal(signal.SIGINT)
        assert await hub.exit_code(within=5) == 0
    assert b"Traceback" not in hub.stderr


async def test_redis_down_at_start_serves_says_so_once_and_connects_later(
    tmp_path: Path,
) -> None:
    """The hub starts without Redis (its clients are served; the cluster's events wait),
    says so in one WARNING line that names the setting to check, and connects when
    Redis comes up."""
    redis = RedisServer(tmp_path)  # its port is free until it starts
    broker = f"redis://127.0.0.1:{redis.port}/0"
    async with hub_process("serve", "--port", "0", "--source", "none", "--broker", broker) as hub:
        await hub.listening()
        warning = f"WARNING hub.cluster.broker: broker {broker}: Redis does not answer (".encode()
        await eventually(lambda: warning in hub.stderr, timeout=STARTUP)
        redis.start()
        try:
            await eventually(lambda: b"connected, reading on from sequence 0" in hub.stderr, 20)
            hub.proc.send_signal(signal.SIGINT)
            assert await hub.exit_code(within=5) == 0
        finally:
            redis.kill()
    warnings = [line for line in hub.stderr.splitlines() if b" WARNING " in line]
    assert len(warnings) == 1, hub.stderr  # once, not once per retry
    assert b"check [cluster] broker (--broker) and that redis-server runs there" in warnings[0]
    assert b"Traceback" not in hub.stderr


async def test_an_unknown_option_prints_the_subcommands_usage() -> None:
    for command in (["serve"], ["call", "ping"], ["tail"], ["record", "ws://h:1", "f"]):
        done = await hub_cli(*command, "--bogus")
        assert done.returncode == 2
        err = done.stderr.decode()
        assert err.startswith(f"usage: hub {command[0]} [-h]"), err
        assert err.endswith(f"hub {command[0]}: error: unrecognized arguments: --bogus\n"), err


# ---- hub call, tail and record ----------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "scheme"),
    [(["call", "ping", "--url"], "http"), (["tail", "--url"], "https"), (["record"], "http")],
    ids=["call", "tail", "record"],
)
async def test_a_url_that_is_not_a_websocket_url(
    tmp_path: Path, command: list[str], scheme: str
) -> None:
    url = f"{scheme}://127.0.0.1:6006"
    args = [*command, url] + ([str(tmp_path / "out.jsonl")] if command == ["record"] else [])
    done = await hub_cli(*args)
    assert done.returncode == 2
    line = one_line(done, f"hub {command[0]}: ")
    assert f"{url} is not a WebSocket URL: give ws://HOST:PORT or wss://HOST:PORT" in line
    assert ("wss://" if scheme == "https" else "ws://") + "127.0.0.1:6006)" in line


def refused_args(command: str, url: str, tmp_path: Path) -> list[str]:
    if command == "record":
        return ["record", url, str(tmp_path / "out.jsonl"), "--count", "1"]
    return [command, *(["ping"] if command == "call" else []), "--url", url]


@pytest.mark.parametrize("command", ["call", "tail", "record"])
async def test_connection_refused(tmp_path: Path, command: str) -> None:
    url = f"ws://127.0.0.1:{closed_port()}"
    done = await hub_cli(*refused_args(command, url, tmp_path))
    assert done.returncode == 1
    assert one_line(done, f"hub {command}: ") == (
        f"hub {command}: cannot connect to {url}: connection refused; is a hub running "
        "there? Start one with `hub serve`, or check the address\n"
    )
    assert not (tmp_path / "out.jsonl").exists()


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_ca(tmp_path / "ca")


@pytest.mark.parametrize("command", ["call", "tail", "record"])
async def test_a_certificate_that_does_not_verify(
    nursery: trio.Nursery, certs: Certificates, tmp_path: Path, command: str
) -> None:
    node = await start_hub(
        nursery, make_config(server={"tls_cert": str(certs.cert), "tls_key": str(certs.key)})
    )
    assert node.url.startswith("wss://")
    done = await hub_cli(*refused_args(command, node.url, tmp_path))
    assert done.returncode == 1
    line = one_line(done, f"hub {command}: cannot connect to {node.url}: ")
    assert "its TLS certificate does not verify (CERTIFICATE_VERIFY_FAILED: " in line
    assert "pass --cafile with the CA that signed it" in line
    if command == "call":  # the fix it names works
        fixed = await hub_cli("call", "ping", "--url", node.url, "--cafile", str(certs.ca_cert))
        assert fixed.returncode == 0, fixed.stderr


async def test_call_params_that_are_not_json() -> None:
    done = await hub_cli("call", "ping", "{nope", "--url", f"ws://127.0.0.1:{closed_port()}")
    assert done.returncode == 2
    assert "params must be a JSON object" in one_line(done, "hub call: ")


# ---- --version and --help ---------------------------------------------------------------


async def test_version() -> None:
    done = await hub_cli("--version")
    assert done.returncode == 0
    assert done.stdout.decode() == f"hub {metadata.version('xrpl-stream-hub')}\n"


async def test_help_is_plain_text_with_exit_statuses() -> None:
    done = await hub_cli("--help")
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "``" not in text
    assert ":mod:" not in text
    for command in ("serve", "record", "call", "tail"):
        assert f"    {command}  " in text
    assert "exit status:\n  0  done\n  1  a failure at run time" in text


@pytest.mark.parametrize(
    ("command", "described", "defaults"),
    [
        (
            "serve",
            "Run the hub: WebSocket, JSON-RPC",
            ["default: 127.0.0.1)", "default: 6006)", "default: info)", "default: simulator)"],
        ),
        ("record", "Subscribe to a hub, rippled or Clio", ["ledger,transactions,validations"]),
        (
            "call",
            "Send one request to a hub",
            ["(default: ws://127.0.0.1:6006)", "(default: 10.0)"],
        ),
        ("tail", "Subscribe and print every stream", ["(default: ws://127.0.0.1:6006)"]),
    ],
)
async def test_each_subcommands_help_describes_it_and_shows_defaults(
    command: str, described: str, defaults: list[str]
) -> None:
    done = await hub_cli(command, "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.decode().split())  # argparse wraps lines
    assert described in text
    for default in defaults:
        assert default in text, default
    assert "``" not in text


async def test_serve_help_documents_the_signals() -> None:
    text = (await hub_cli("serve", "--help")).stdout.decode()
    assert "SIGINT (Ctrl-C)  close every client at once" in text
    assert "SIGTERM          drain, then exit 0" in text
    assert "SIGHUP           reload the TLS certificate" in text
