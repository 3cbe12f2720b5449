"""Forward what the hub does not answer itself to the upstream, as Clio forwards to rippled.

A small pool of persistent upstream connections carries the requests; each reply goes
back with the client's own ``id`` and ``"forwarded": true`` (XRPL docs, "Response
Formatting": https://xrpl.org/docs/references/http-websocket-apis/api-conventions/response-formatting).
Admin-only rippled methods are never forwarded for non-admin clients. Each pooled connection is
a task in the forwarder's nursery that reconnects with backoff on its own.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection

from hub.backoff import Backoff
from hub.core.dispatch import Call, Method
from hub.links.connect import connect
from hub.wire.decode import JSONError, decode_object
from hub.wire.envelope import Forwarded
from hub.wire.errors import ERRORS, RPCError
from hub.xrpl.books import BookPage, BookQuery, issue_json
from hub.xrpl.identity import UpstreamIdentity, from_server_info

log = logging.getLogger(__name__)

# rippled's admin methods (Handler.cpp, Role::ADMIN): never forwarded for non-admins.
ADMIN_METHODS: Final = frozenset(
    {
        "can_delete", "connect", "consensus_info", "crawl_shards", "download_shard",
        "feature", "fetch_info", "get_counts", "ledger_accept", "ledger_cleaner",
        "ledger_request", "log_level", "logrotate", "node_to_shard", "peer_reservations_add",
        "peer_reservations_del", "peer_reservations_list", "peers", "print", "simulate_admin",
        "stop", "unl_list", "validation_create", "validator_info", "validator_list_sites",
        "validators", "wallet_propose", "ledger_diff", "blacklist",
    }
)  # fmt: skip

_encode = msgspec.json.Encoder().encode


class _Slot:
    """One pooled upstream connection and the requests waiting on it."""

    def __init__(self) -> None:
        self.ws: WebSocketConnection | None = None
        self.waiting: dict[str, trio.MemorySendChannel[dict[str, Any]]] = {}
        self.identity: UpstreamIdentity | None = None

    async def call(self, body: dict[str, Any], request_id: str, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        ws = self.ws
        if ws is None:
            raise RPCError("failedToForward")
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self.waiting[request_id] = send
        try:
            await ws.send_message(_encode({**body, "id": request_id}).decode())
            with trio.fail_after(timeout):
                return await receive.receive()
        except (ConnectionClosed, trio.EndOfChannel, trio.TooSlowError) as exc:
            raise RPCError("failedToForward", f"Failed to forward request: {exc!r}") from None
        finally:
            self.waiting.pop(request_id, None)

    async def run(self, urls: Sequence[str], timeout: float) -> None:  # noqa: ASYNC109
        backoff = Backoff()
        for url in itertools.cycle(urls):
            try:
                async with connect(url) as ws:
                    self.identity = await _identify(ws, timeout) or self.identity
                    self.ws = ws
                    backoff.reset()
                    while True:
                        reply = decode_object(await ws.get_message())
                        # Popped, not read: an upstream that answers one id twice must
                        # not find the waiter's one-slot channel full.
                        waiter = self.waiting.pop(str(reply.get("id")), None)
                        if waiter is not None:
                            waiter.send_nowait(reply)
            except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError) as exc:
                log.info("forwarding link to %s: %s", url, exc or type(exc).__name__)
            except JSONError as exc:  # an upstream that lies costs its link, never the hub
                log.warning("forwarding link to %s: not a JSON object: %s", url, exc)
            finally:
                self.ws = None
                for waiter in self.waiting.values():
                    waiter.close()
            await trio.sleep(backoff.next())


async def _identify(ws: WebSocketConnection, timeout: float) -> UpstreamIdentity | None:  # noqa: ASYNC109
    """Ask a fresh link's ``server_info`` before anyone else uses it, so a hub whose
    relay runs elsewhere (a ``--workers`` worker) still reports its upstream's build
    version and network ID."""
    await ws.send_message(_encode({"command": "server_info", "id": "hub-identity"}).decode())
    with trio.fail_after(timeout):
        while True:
            reply = decode_object(await ws.get_message())
            if reply.get("id") == "hub-identity":
                return from_server_info(reply.get("result"))


class Forwarder:
    """The pool; :attr:`method` is the handler the hub falls back to for unknown methods."""

    def __init__(
        self,
        urls: Sequence[str],
        size: int = 2,
        timeout: float = 10.0,
        *,
        client_ip: bool = False,
    ) -> None:
        self.urls = urls
        self.size = size
        self.timeout = timeout
        self.client_ip = client_ip
        self._slots = [_Slot() for _ in range(self.size)]
        self._ids = itertools.count(1)
        self._turn = itertools.cycle(range(self.size))
        self.method: Method[Any] = Method("(forwarded)", 0, self._handle)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for slot in self._slots:
                nursery.start_soon(slot.run, self.urls, self.timeout)
            task_status.started()

    @property
    def connected(self) -> int:
        return sum(slot.ws is not None for slot in self._slots)

    @property
    def identity(self) -> UpstreamIdentity | None:
        """What the upstream said of itself on the first link that asked."""
        return next((slot.identity for slot in self._slots if slot.identity), None)

    async def forward(
        self, body: dict[str, Any], api_version: int, client: str | None = None
    ) -> dict[str, Any]:
        """The upstream's reply to ``body``, asked at the client's resolved version.

        With ``client_ip`` set, on a connection of its own whose handshake names
        ``client`` (``Forwarded`` and ``X-Forwarded-For``, as Clio forwards to rippled),
        so the upstream charges that client; else over the pool.
        """
        request = {k: v for k, v in body.items() if k != "id"}
        request["api_version"] = api_version
        request_id = f"hub-fwd-{next(self._ids)}"
        if self.client_ip and client is not None:
            return await self._forward_alone(request, request_id, client)
        for _ in range(self.size):
            slot = self._slots[next(self._turn)]
            if slot.ws is not None:
                return await slot.call(request, request_id, self.timeout)
        raise RPCError("failedToForward", "No upstream connection is available.")

    async def _forward_alone(
        self, request: dict[str, Any], request_id: str, client: str
    ) -> dict[str, Any]:
        headers = forwarding_headers(client)
        for url in self.urls:
            try:
                with trio.fail_after(self.timeout):
                    async with connect(url, extra_headers=headers) as ws:
                        await ws.send_message(_encode({**request, "id": request_id}).decode())
                        while True:
                            reply = decode_object(await ws.get_message())
                            if reply.get("id") == request_id:
                                return dict(reply)
            except (OSError, HandshakeError, ConnectionClosed, trio.TooSlowError, JSONError) as exc:
                log.info("forwarding to %s for %s: %s", url, client, exc or type(exc).__name__)
        raise RPCError("failedToForward", "No upstream answered.")

    async def _handle(self, call: Call[Any]) -> Forwarded:
        name = call.request.method
        if name in ADMIN_METHODS and not call.session.admin:
            raise RPCError("forbidden")
        reply = await self.forward(call.params, call.api_version, call.session.remote)
        return Forwarded(reply)


def forwarding_headers(client: str) -> list[tuple[bytes, bytes]]:
    """``Forwarded`` (RFC 7239, IPv6 quoted in brackets) and ``X-Forwarded-For``."""
    node = f'"[{client}]"' if ":" in client else client
    return [(b"forwarded", f"for={node}".encode()), (b"x-forwarded-for", client.encode())]


Forward = Callable[[dict[str, Any], int], Awaitable[dict[str, Any]]]


class UpstreamBooks:
    """Book pages from the upstream a relay follows: its ``book_offers`` at the ledger
    the hub published last (``validated`` before the first), answered as it answers.

    ``forward`` is :meth:`hub.links.forward.Forwarder.forward`: a request and an API version
    in, the upstream's whole reply out.
    """

    def __init__(self, forward: Forward) -> None:
        self._forward = forward

    async def book_page(self, query: BookQuery) -> BookPage:
        request: dict[str, Any] = {
            "command": "book_offers",
            "taker_gets": issue_json(query.taker_gets),
            "taker_pays": issue_json(query.taker_pays),
            "limit": query.limit,
            "ledger_index": query.ledger_index if query.ledger_index is not None else "validated",
        }
        if query.taker is not None:
            request["taker"] = query.taker
        if query.domain:
            request["domain"] = query.domain
        reply = await self._forward(request, 2)
        result = reply.get("result")
        if reply.get("status") != "success" or not isinstance(result, dict):
            raise _upstream_error(reply)
        offers = result.get("offers")
        if not isinstance(offers, list):
            raise RPCError("failedToForward", "The upstream's book_offers had no offers.")
        index = result.get("ledger_index")
        return BookPage(offers, index if type(index) is int else None)


def _upstream_error(reply: Mapping[str, Any]) -> RPCError:
    token = reply.get("error")
    message = reply.get("error_message")
    text = f"The upstream answered book_offers with {token}: {message}"
    if isinstance(token, str) and token in ERRORS:
        return RPCError(token, text)
    return RPCError("failedToForward", text)
