"""Programs a test starts (nginx, redis-server, node, chromium, openssl): found or missing.

Locally a test whose program is missing is skipped; under CI (``CI=true``) it fails
instead, since ``.ci/run`` installs every one of them.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI, because something it needs is not here."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must be able to run this test)")
    pytest.skip(reason)


def need_program(name: str, package: str) -> str:
    """The path of ``name`` (``/usr/sbin`` too, often off a user's PATH); skip (or
    under CI fail) when it is not installed."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        missing(f"{name} is not installed (apt-get install {package})")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a program we start."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
