"""The command line's failures without running it: each a one-line message naming the
fix, with the exit status that says whether trying again can help."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from hub.app.failures import RUNTIME, USAGE, Failure, check_ws_url, connect_error, listen_error


@pytest.mark.parametrize("url", ["ws://127.0.0.1:6006", "wss://hub.example/path", "ws://[::1]:1"])
def test_websocket_urls_pass(url: str) -> None:
    check_ws_url(url)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://127.0.0.1:6006", "the hub's WebSocket URL is ws://127.0.0.1:6006"),
        ("https://hub.example", "wss://hub.example"),
        ("ws://127.0.0.1:port", "give ws://HOST:PORT"),
        ("127.0.0.1:6006", "not a WebSocket URL"),
    ],
)
def test_other_urls_are_a_usage_error_with_the_fix(url: str, hint: str) -> None:
    with pytest.raises(Failure) as caught:
        check_ws_url(url)
    assert caught.value.status == USAGE
    assert hint in str(caught.value)
    assert "\n" not in str(caught.value)


def _group(exc: BaseException) -> BaseException:
    """As trio reports a connection that failed on every address it tried."""
    outer = OSError("all attempts to connect failed")
    outer.__cause__ = BaseExceptionGroup("attempts", [exc])  # type: ignore[type-var]
    return outer


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "is a hub running there?"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "unknown host"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "--cafile"),
        (TimeoutError(), "no answer in time"),
    ],
)
def test_a_connection_that_failed_says_why_in_one_line(exc: BaseException, says: str) -> None:
    failure = connect_error("ws://127.0.0.1:9", _group(exc))
    assert failure.status == RUNTIME
    assert says in str(failure)
    assert str(failure).startswith("cannot connect to ws://127.0.0.1:9: ")
    assert "\n" not in str(failure)


def test_a_port_in_use_names_the_way_out() -> None:
    failure = listen_error("127.0.0.1", 6006, OSError(errno.EADDRINUSE, "Address in use"))
    assert "127.0.0.1:6006" in str(failure)
    assert "--port" in str(failure)
    assert "\n" not in str(failure)
