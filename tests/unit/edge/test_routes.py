"""The HTTP routes without sockets: JSON-RPC in seed 001's shape, health, what is refused."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hub import Hub
from hub.core.dispatch import Call, Methods
from hub.edge.routes import HTTPRequest, HTTPResponse, handle
from hub.wire.envelope import Forwarded
from tests.helpers.hubs import make_config

TOKEN = "s3cret-token"


def post(body: Any, remote: str = "127.0.0.1", headers: Any = ()) -> HTTPRequest:
    """A JSON-RPC request as a JSON client sends it (``Content-Type: application/json``,
    which admin by address needs) unless ``body`` is raw bytes."""
    if isinstance(body, bytes):
        return HTTPRequest("POST", "/", list(headers), body, remote)
    json = [(b"content-type", b"application/json"), *headers]
    return HTTPRequest("POST", "/", json, msgspec.json.encode(body), remote)


def get(target: str, remote: str = "127.0.0.1") -> HTTPRequest:
    return HTTPRequest("GET", target, [], b"", remote)


def body_of(response: HTTPResponse) -> Any:
    return msgspec.json.decode(response.body)


async def test_success_is_result_with_status_inside() -> None:
    hub = Hub(make_config())
    response = await handle(hub.node, post({"method": "ping", "params": [{}]}))
    assert response.status == 200
    assert (b"content-type", b"application/json") in response.headers
    assert response.body == b'{"result":{"role":"admin","status":"success"}}'


async def test_params_may_be_absent() -> None:
    hub = Hub(make_config())
    response = await handle(hub.node, post({"method": "ping"}))
    assert body_of(response) == {"result": {"role": "admin", "status": "success"}}


async def test_error_shape_follows_rippled() -> None:
    hub = Hub(make_config())
    response = await handle(hub.node, post({"method": "no_such", "params": [{"x": 1}]}))
    assert response.status == 200
    reply = body_of(response)
    assert reply == {
        "result": {
            "error": "unknownCmd",
            "error_code": 32,
            "error_message": "Unknown method.",
            "request": {"x": 1, "command": "no_such"},
            "status": "error",
        }
    }
    assert list(reply["result"]) == ["error", "error_code", "error_message", "request", "status"]


async def test_api_version_is_read_from_params_and_resolved_like_websocket() -> None:
    hub = Hub(make_config())
    v1 = body_of(
        await handle(hub.node, post({"method": "version", "params": [{"api_version": 1}]}))
    )
    v2 = body_of(
        await handle(hub.node, post({"method": "version", "params": [{"api_version": 2}]}))
    )
    default = body_of(await handle(hub.node, post({"method": "version"})))
    assert v1["result"]["version"] == {"first": "1.0.0", "good": "1.0.0", "last": "1.0.0"}
    assert v2["result"]["version"] == {"first": 1, "last": 2}
    assert default == v1  # [api] default_version is 1, as rippled
    bad = body_of(await handle(hub.node, post({"method": "ping", "params": [{"api_version": 9}]})))
    assert bad["result"]["error"] == "invalid_API_version"
    assert bad["result"]["error_code"] == 6000
    assert bad["result"]["status"] == "error"


async def test_id_jsonrpc_and_ripplerpc_are_echoed_at_the_top() -> None:
    hub = Hub(make_config())
    reply = body_of(
        await handle(
            hub.node, post({"method": "ping", "id": 7, "jsonrpc": "2.0", "ripplerpc": "2.0"})
        )
    )
    assert reply == {
        "id": 7,
        "jsonrpc": "2.0",
        "ripplerpc": "2.0",
        "result": {"role": "admin", "status": "success"},
    }


async def test_credentials_are_masked_in_the_request() -> None:
    hub = Hub(make_config())
    reply = body_of(
        await handle(hub.node, post({"method": "nope", "params": [{"secret": "s", "seed": "x"}]}))
    )
    assert reply["result"]["request"] == {
        "secret": "<masked>",
        "seed": "<masked>",
        "command": "nope",
    }


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"not json", "Unable to parse request: "),
        (b"[1, 2]", "Unable to parse request: "),
        (b"{}", "Null method"),
        (b'{"method": null}', "Null method"),
        (b'{"method": 5}', "method is not string"),
        (b'{"method": ""}', "method is empty"),
        (b'{"method": "ping", "params": {}}', "params unparseable"),
        (b'{"method": "ping", "params": [{}, {}]}', "params unparseable"),
        (b'{"method": "ping", "params": [5]}', "params unparseable"),
    ],
)
async def test_bodies_rippled_refuses_are_400_text(body: bytes, text: str) -> None:
    hub = Hub(make_config())
    response = await handle(hub.node, post(body))
    assert response.status == 400
    assert (b"content-type", b"text/plain; charset=utf-8") in response.headers
    assert response.body.decode().startswith(text)


@pytest.mark.parametrize("method", ["subscribe", "unsubscribe"])
async def test_subscribe_over_json_rpc_needs_a_url(method: str) -> None:
    hub = Hub(make_config(admin={"ips": [], "token": TOKEN}))
    auth = [(b"authorization", f"Bearer {TOKEN}".encode())]
    params = {"streams": ["ledger"]}
    no_url = body_of(await handle(hub.node, post({"method": method, "params": [params]})))
    assert no_url["result"]["error"] == "invalidParams"
    with_url = {**params, "url": "http://127.0.0.1:9/"}
    public = body_of(await handle(hub.node, post({"method": method, "params": [with_url]})))
    assert public["result"]["error"] == "noPermission"
    admin = body_of(
        await handle(hub.node, post({"method": method, "params": [with_url]}, headers=auth))
    )
    assert admin["result"]["error"] == "notSupported"
    assert not hub.node.subscriptions.counts()["ledger"]


async def test_admin_by_bearer_token_as_on_websocket() -> None:
    hub = Hub(make_config(admin={"ips": [], "token": TOKEN}))
    request = {"method": "publish", "params": [{"messages": []}]}
    refused = body_of(await handle(hub.node, post(request)))
    assert refused["result"]["error"] == "forbidden"
    wrong = [(b"authorization", b"Bearer nope")]
    assert (
        body_of(await handle(hub.node, post(request, headers=wrong)))["result"]["error"]
        == "forbidden"
    )
    auth = [(b"Authorization", f"Bearer {TOKEN}".encode())]
    allowed = body_of(await handle(hub.node, post(request, headers=auth)))
    assert allowed == {"result": {"published": 0, "status": "success"}}


async def test_one_method_table_for_both_transports() -> None:
    """A method registered once is answered over JSON-RPC with the same versioning."""
    methods = Methods()

    @methods.register("echo")
    async def echo_v1(call: Call) -> dict[str, Any]:
        return {"v": 1, "got": call.params.get("x")}

    @methods.register("echo", since=2)
    async def echo_v2(call: Call) -> dict[str, Any]:
        return {"v": 2, "got": call.params.get("x")}

    hub = Hub(make_config(), methods=methods)
    for version in (1, 2):
        params = {"x": "y", "api_version": version}
        reply = body_of(await handle(hub.node, post({"method": "echo", "params": [params]})))
        assert reply == {"result": {"v": version, "got": "y", "status": "success"}}


async def test_forwarded_reply_is_rendered_in_json_rpc_shape() -> None:
    """What the hub forwards upstream (scale-out) comes back in the JSON-RPC shape too."""
    methods = Methods()

    @methods.register("account_info")
    async def upstream(call: Call) -> Forwarded:
        if call.params.get("fail"):
            reply = {"status": "error", "type": "response", "error": "actNotFound",
                     "error_code": 19, "error_message": "Account not found."}  # fmt: skip
        else:
            reply = {"status": "success", "type": "response", "result": {"account_data": {}}}
        return Forwarded(reply)

    hub = Hub(make_config(), methods=methods)
    ok = body_of(await handle(hub.node, post({"method": "account_info", "params": [{}]})))
    assert ok == {"result": {"account_data": {}, "status": "success"}, "forwarded": True}
    failed = body_of(
        await handle(hub.node, post({"method": "account_info", "params": [{"fail": 1}]}))
    )
    assert failed["forwarded"] is True
    assert failed["result"] == {
        "error": "actNotFound",
        "error_code": 19,
        "error_message": "Account not found.",
        "request": {"fail": 1, "command": "account_info"},
        "status": "error",
    }


async def test_routes_and_methods() -> None:
    hub = Hub(make_config())
    assert (await handle(hub.node, get("/nowhere"))).status == 404
    not_allowed = await handle(hub.node, HTTPRequest("PUT", "/health", [], b"", "127.0.0.1"))
    assert not_allowed.status == 405
    assert (b"allow", b"GET, HEAD") in not_allowed.headers
    page = await handle(hub.node, get("/"))
    assert page.status == 200
    assert (b"content-type", b"text/html; charset=utf-8") in page.headers
    assert b"<title>" in page.body
    assert b"http://" not in page.body.replace(b"http://www.w3.org/2000/svg", b"")
    assert b"https://" not in page.body  # self-contained: nothing from a CDN


async def test_health_of_a_hub_that_is_not_serving_is_503() -> None:
    hub = Hub(make_config())
    response = await handle(hub.node, get("/health"))
    assert response.status == 503
    assert body_of(response)["status"] == "stopped"
