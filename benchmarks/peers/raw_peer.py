"""The floor for fan-out in Python on trio: a broadcaster with none of the hub's features.

What is left when everything but the copy is taken away: a ``publish`` request is
decoded once with its messages kept as the raw JSON the publisher sent
(``msgspec.Raw``), each message is framed once (header + payload), the batch's frames
are joined once, and that one buffer goes to every subscriber with one non-blocking
``sendmsg`` straight from the fan-out loop. Only a socket that would block gets the
rest queued and a writer task woken; nothing is bounded, rendered per API version,
filtered, recorded or charged. ``subscribe`` (any streams) adds the connection to the
subscriber set; every other command is answered ``{}``. Replies have the hub's
envelope so the same load generator drives it.

Incoming frames and the handshake go through wsproto; they are not on the measured
path. Prints ``listening on ws://127.0.0.1:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import struct
from typing import Any

import msgspec
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)


class _Request(msgspec.Struct):
    id: msgspec.Raw = msgspec.Raw(b"null")
    command: str = ""
    messages: list[msgspec.Raw] = []


_decode = msgspec.json.Decoder(_Request).decode


def text_frame(payload: bytes) -> bytes:
    """One final unmasked text frame, as a server sends it (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def reply(request_id: bytes, result: bytes = b"{}") -> bytes:
    return text_frame(
        b'{"id":%s,"status":"success","type":"response","result":%s}' % (request_id, result)
    )


class Client:
    """One socket: a backlog only while the kernel's send buffer is full."""

    __slots__ = ("backlog", "sock", "wake")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.backlog: list[memoryview] = []
        self.wake = trio.Event()

    def write(self, data: bytes) -> None:
        """Send now if nothing is queued; queue what the kernel does not take."""
        if self.backlog:
            self.backlog.append(memoryview(data))
            return
        try:
            sent = self.sock.sendmsg([data])
        except BlockingIOError:
            sent = 0
        except OSError:
            return
        if sent < len(data):
            self.backlog.append(memoryview(data)[sent:])
            self.wake.set()

    async def writer(self) -> None:
        while True:
            await self.wake.wait()
            self.wake = trio.Event()
            while self.backlog:
                await trio.lowlevel.wait_writable(self.sock)
                try:
                    sent = self.sock.sendmsg(self.backlog)
                except BlockingIOError:
                    continue
                while sent and self.backlog:
                    head = self.backlog[0]
                    if sent >= len(head):
                        sent -= len(head)
                        self.backlog.pop(0)
                    else:
                        self.backlog[0] = head[sent:]
                        sent = 0


class Broadcaster:
    def __init__(self) -> None:
        self.subscribers: set[Client] = set()

    def publish(self, messages: list[msgspec.Raw]) -> None:
        data = b"".join([text_frame(bytes(m)) for m in messages])
        for client in self.subscribers:
            client.write(data)

    def handle(self, client: Client, text: str) -> None:
        request = _decode(text)
        if request.command == "subscribe":
            self.subscribers.add(client)
            client.write(reply(bytes(request.id)))
        elif request.command == "publish":
            self.publish(request.messages)
            client.write(reply(bytes(request.id), b'{"published":%d}' % len(request.messages)))
        else:
            client.write(reply(bytes(request.id)))

    async def serve(self, sock: socket.socket) -> None:
        client = Client(sock)
        ws = WSConnection(ConnectionType.SERVER)
        parts: list[str] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.writer)
                while True:
                    await trio.lowlevel.wait_readable(sock)
                    try:
                        data = sock.recv(262144)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    ws.receive_data(data or None)
                    if not self._events(client, ws, parts) or not data:
                        nursery.cancel_scope.cancel()
                        break
        finally:
            self.subscribers.discard(client)
            sock.close()

    def _events(self, client: Client, ws: WSConnection, parts: list[str]) -> bool:
        """Handle what wsproto parsed; False once the connection is closing."""
        for event in ws.events():
            if isinstance(event, Request):
                client.write(ws.send(AcceptConnection()))
            elif isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    self.handle(client, "".join(parts))
                    parts.clear()
            elif isinstance(event, Message):
                continue
            elif isinstance(event, Ping):
                client.write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                with contextlib.suppress(Exception):
                    client.write(ws.send(event.response()))
                return False
        return True


async def main(port: int) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(65535)
    listener.setblocking(False)
    print(f"listening on ws://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    hub = Broadcaster()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(stop)
            while True:
                await trio.lowlevel.wait_readable(listener)
                with contextlib.suppress(BlockingIOError):
                    sock, _ = listener.accept()
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    nursery.start_soon(hub.serve, sock)


def run(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    trio.run(main, parser.parse_args(argv).port)


if __name__ == "__main__":
    run()
