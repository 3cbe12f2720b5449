"""The command line's failures, each in one line that names the problem and the fix.

Exit statuses, for every subcommand: 0 done; 1 a failure at run time (a port in use, a
peer that does not answer or whose certificate does not verify, an error reply); 2 a
usage error, which fails the same way until the command line, the configuration or
the installation changes (a bad flag, setting, URL or file, a missing package extra).
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Final
from urllib.parse import urlsplit

from trio_websocket import ConnectionClosed, ConnectionRejected, ConnectionTimeout, HandshakeError

RUNTIME: Final = 1
USAGE: Final = 2
EXIT_STATUS: Final = """\
exit status:
  0  done
  1  a failure at run time: a port in use, a peer that does not answer or whose
     certificate does not verify, an error reply to 'hub call'
  2  a usage error: a bad flag, setting, URL or file, a missing package extra
"""


class Failure(Exception):
    """A failure the command line reports as its one line and exit ``status``."""

    def __init__(self, message: str, status: int = RUNTIME) -> None:
        super().__init__(message)
        self.status = status


def check_ws_url(url: str, what: str = "--url") -> None:
    """Raise a usage Failure unless ``url`` is a ``ws://`` or ``wss://`` URL with a host."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError as exc:
        raise Failure(
            f"{what} {url}: {exc}; give ws://HOST:PORT or wss://HOST:PORT", USAGE
        ) from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        hint = ""
        if parts.scheme in ("http", "https"):
            hint = f" (the hub's WebSocket URL is {'wss' if parts.scheme == 'https' else 'ws'}://"
            hint += f"{parts.netloc}{parts.path})"
        raise Failure(
            f"{what} {url} is not a WebSocket URL: give ws://HOST:PORT or wss://HOST:PORT{hint}",
            USAGE,
        )


def _leaf(exc: BaseException) -> BaseException:
    """The error underneath: trio reports a refused connection as an ``OSError`` caused
    by a group of one error per address tried."""
    while True:
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        elif type(exc) is OSError and exc.errno is None and exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            return exc


def connect_error(url: str, exc: BaseException) -> Failure:
    """The Failure for a connection to ``url`` that could not be opened."""
    return Failure(f"cannot connect to {url}: {_why_not(url, _leaf(exc))}")


def _why_not(url: str, exc: BaseException) -> str:
    host = urlsplit(url).hostname or url
    if isinstance(exc, ssl.SSLCertVerificationError):
        parts = (getattr(exc, "reason", None), getattr(exc, "verify_message", None))
        why = ": ".join(str(part) for part in parts if part) or str(exc)
        return (
            f"its TLS certificate does not verify ({why}); pass --cafile with the CA that "
            "signed it (for a self-signed certificate, the certificate itself)"
        )
    if isinstance(exc, ssl.SSLError):
        if getattr(exc, "reason", None) == "WRONG_VERSION_NUMBER":
            return "it does not speak TLS; use ws:// instead of wss://"
        return (
            f"TLS failed ({getattr(exc, 'reason', None) or exc}); check the URL's scheme and port"
        )
    if isinstance(exc, ConnectionRefusedError):
        return (
            "connection refused; is a hub running there? Start one with `hub serve`, "
            "or check the address"
        )
    if isinstance(exc, socket.gaierror):
        return f"unknown host {host!r} ({exc.strerror}); check the address"
    if isinstance(exc, ConnectionRejected):
        return (
            f"the server answered the WebSocket upgrade with HTTP {exc.status_code}; is this "
            "the WebSocket address of a hub, rippled or Clio?"
        )
    if isinstance(exc, ConnectionTimeout | TimeoutError):
        return "no answer in time; check the address and that nothing in between drops it"
    if isinstance(exc, HandshakeError):
        return (
            "the WebSocket handshake failed; is this the WebSocket address of a hub, "
            "rippled or Clio?"
        )
    if isinstance(exc, ConnectionClosed):
        return f"it closed the connection ({exc.reason})"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}; check the address"
    return str(exc) or type(exc).__name__


def listen_error(host: str, port: int, exc: OSError) -> Failure:
    """The Failure for a listening socket that could not be opened on ``host:port``."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        why = (
            "the port is in use (another hub?); stop that process or choose another port "
            "with --port ([server] port; 0 picks a free one)"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{host} is not an address of this machine; check --host ([server] host)"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges); choose another with --port"
    elif isinstance(exc, socket.gaierror):
        why = f"unknown host {host!r} ({exc.strerror}); check --host ([server] host)"
    else:
        why = f"{exc.strerror or exc}"
    return Failure(f"cannot listen on {where}: {why}")
