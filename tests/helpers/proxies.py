"""Real nginx and haproxy in front of a port, started by the test on a free port.

Each proxy runs the deployment file the README shows (``docs/deploy/``) with only its
listen port and upstream address replaced, wrapped in what a test needs around it
(nginx: foreground, pid, logs and temp paths in the test's directory). Locally the
tests are skipped when a program is missing; under CI (``CI=true``) they fail instead,
since ``.ci/run`` installs ``nginx-light``, ``haproxy`` and ``openssl``.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tests.helpers.paths import DOCS
from tests.helpers.programs import free_port, need_program
from tests.helpers.testca import make_ca

DEPLOY = DOCS / "deploy"
UPSTREAM = "127.0.0.1:6006"
"""The hub's address as the deployment files write it."""


def deploy_file(name: str, replacements: dict[str, str]) -> str:
    """``docs/deploy/<name>`` with each placeholder (which must occur once) replaced."""
    text = (DEPLOY / name).read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{name}: expected {old!r} exactly once"
        text = text.replace(old, new)
    return text


class Proxy:
    """One proxy process listening on ``127.0.0.1:port``."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.args = args
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls_port: int | None = None
        self.certificates: Any = None
        """nginx's TLS server block: its port and the test CA that signed its certificate."""

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)

    async def ready(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Wait until the port accepts a connection; fail with the log if the process exits."""
        assert self.proc is not None
        with trio.fail_after(timeout):
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.args[0]} exited with {self.proc.returncode}:\n"
                        + self.log.read_text(errors="replace")
                    )
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    await trio.sleep(0.02)  # a process we do not own: poll its port
                    continue
                await stream.aclose()
                return

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@asynccontextmanager
async def _running(proxy: Proxy) -> AsyncIterator[Proxy]:
    proxy.start()
    try:
        await proxy.ready()
        yield proxy
    finally:
        proxy.stop()


def _nginx_wrapper(directory: Path, site: Path) -> str:
    """The test's nginx.conf: foreground, one process as the current user, all paths
    under ``directory``; the deployment file is included as it would be in conf.d."""
    temp = {name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    return "\n".join(
        [
            "daemon off;",
            "master_process off;",
            f"pid {directory / 'nginx.pid'};",
            f"error_log {directory / 'error.log'} info;",
            "events { worker_connections 1024; }",
            "http {",
            f"    access_log {directory / 'access.log'};",
            *(f"    {name}_temp_path {path};" for name, path in temp.items()),
            f"    include {site};",
            "}",
            "",
        ]
    )


NGINX_CERT = "/etc/letsencrypt/live/hub.example.com/fullchain.pem"
NGINX_KEY = "/etc/letsencrypt/live/hub.example.com/privkey.pem"
"""The certificate paths ``docs/deploy/nginx.conf`` names, replaced by a test CA's."""


@asynccontextmanager
async def nginx(directory: Path, upstream_port: int) -> AsyncIterator[Proxy]:
    """nginx with ``docs/deploy/nginx.conf`` proxying to ``127.0.0.1:upstream_port``:
    plain HTTP on ``proxy.port``, TLS on ``proxy.tls_port`` with a certificate of a test
    CA (``proxy.certificates``) for 127.0.0.1 and localhost."""
    binary = need_program("nginx", "nginx-light")
    certificates = make_ca(directory / "ca")
    port, tls_port = free_port(), free_port()
    site = directory / "hub.conf"
    site.write_text(
        deploy_file(
            "nginx.conf",
            {
                "listen 80;": f"listen 127.0.0.1:{port};",
                "listen 443 ssl;": f"listen 127.0.0.1:{tls_port} ssl;",
                UPSTREAM: f"127.0.0.1:{upstream_port}",
                NGINX_CERT: str(certificates.cert),
                NGINX_KEY: str(certificates.key),
            },
        )
    )
    conf = directory / "nginx.conf"
    conf.write_text(_nginx_wrapper(directory, site))
    args = [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)]
    proxy = Proxy(args, port, directory / "nginx.out")
    proxy.tls_port = tls_port
    proxy.certificates = certificates
    async with _running(proxy):
        yield proxy


@asynccontextmanager
async def haproxy(directory: Path, upstream_port: int, *, mode: str) -> AsyncIterator[Proxy]:
    """haproxy with ``docs/deploy/haproxy-<mode>.cfg`` (``tcp`` or ``http``) in front of
    ``127.0.0.1:upstream_port``, in the foreground."""
    binary = need_program("haproxy", "haproxy")
    port = free_port()
    conf = directory / f"haproxy-{mode}.cfg"
    conf.write_text(
        deploy_file(
            f"haproxy-{mode}.cfg",
            {"bind :80": f"bind 127.0.0.1:{port}", UPSTREAM: f"127.0.0.1:{upstream_port}"},
        )
    )
    args = [binary, "-db", "-f", str(conf)]
    async with _running(Proxy(args, port, directory / "haproxy.out")) as proxy:
        yield proxy
