"""Settings as typed Structs, read from a TOML file and overridden by command-line flags.

Every flag has a config key (``--port`` is ``[server] port``); unknown keys and wrong
types are rejected with the path of the offending key, so a typo never passes silently.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec
from msgspec import Struct


class _Section(Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 6006
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_message_size: int = 1_000_000
    max_in_flight: int = 16
    ping_interval: float = 30.0
    ping_timeout: float = 30.0
    handshake_timeout: float = 10.0
    close_timeout: float = 1.0
    network_id: int | None = None


class ApiConfig(_Section):
    default_version: int = 1
    beta_api: bool = False


class AdminConfig(_Section):
    ips: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    token: str | None = None


class SourceConfig(_Section):
    source: str = "simulator"
    ledger_interval: float = 3.5
    tx_per_ledger: int = 20
    validators: int = 5
    seed: int | None = None
    publish_queue: int = 10_000


class LoadConfig(_Section):
    key: Literal["ip", "connection"] = "ip"
    warning: float = 5000
    drop: float = 25000
    decay_window: float = 32.0
    costs: dict[str, int] = msgspec.field(default_factory=dict)


class LimitsConfig(_Section):
    max_connections: int = 100_000
    max_connections_per_ip: int = 20
    send_queue_bytes: int = 4 * 1024 * 1024
    send_queue_messages: int = 10_000
    max_subscriptions_per_connection: int = 10_000


class Config(_Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    admin: AdminConfig = msgspec.field(default_factory=AdminConfig)
    source: SourceConfig = msgspec.field(default_factory=SourceConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    load: LoadConfig = msgspec.field(default_factory=LoadConfig)


class ConfigError(ValueError):
    pass


def load(
    path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None
) -> Config:
    """A validated Config from an optional TOML file, then ``{section: {key: value}}``."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        return msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid config: {exc}") from None
