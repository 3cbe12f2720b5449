"""The methods the hub answers itself. Each returns the ``result`` object of its reply.

Registered the way seed 003 describes: ``since`` is the API version at which that
definition starts; a request at version N runs the newest definition at or below N.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .dispatch import Call, Methods

METHODS = Methods()

try:
    BUILD_VERSION = version("hub")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    BUILD_VERSION = "0.0.0"


@METHODS.register("ping")
async def ping(call: Call) -> dict[str, Any]:
    return {}


@METHODS.register("version")
async def version_v1(call: Call) -> dict[str, Any]:
    return {"version": {"first": "1.0.0", "good": "1.0.0", "last": "1.0.0"}}


@METHODS.register("version", since=2)
async def version_v2(call: Call) -> dict[str, Any]:
    versions = call.hub.versions
    return {"version": {"first": versions.first, "last": versions.last}}


@METHODS.register("server_info")
async def server_info(call: Call) -> dict[str, Any]:
    hub = call.hub
    info: dict[str, Any] = {
        "build_version": BUILD_VERSION,
        "server_state": "full",
        "uptime": int(time.monotonic() - hub.started),
        "complete_ledgers": "empty",
        "load_factor": 1,
        "peers": 0,
    }
    if hub.config.server.network_id is not None:
        info["network_id"] = hub.config.server.network_id
    info["hub"] = {
        "connections": len(hub.connections),
        "in_flight_requests": sum(conn.inflight for conn in hub.connections),
        "requests": hub.stats.requests,
        "bytes_sent": hub.stats.bytes_sent,
    }
    return {"info": info}
