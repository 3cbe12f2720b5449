"""Settings as typed Structs, read from a TOML file and overridden by command-line flags.

Every flag has a config key (``--port`` is ``[server] port``); unknown keys and wrong
types are rejected with the path of the offending key, so a typo never passes silently.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from hub.wire import admission
from hub.wire.clientaddr import Networks
from hub.wire.versions import BETA_VERSION, MAX_VERSION, MIN_VERSION

Port = Annotated[int, Meta(ge=0, le=65535)]
Positive = Annotated[int, Meta(ge=1)]
Seconds = Annotated[float, Meta(gt=0)]
NonNegative = Annotated[float, Meta(ge=0)]

UPSTREAM_STREAMS: Final = ("ledger", "transactions", "validations", "book_changes")
"""What a relay subscribes to upstream unless ``[source] upstream_streams`` says otherwise."""


class _Section(Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: Port = 6006
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # text: one human line per record; json: one JSON object per line, for log shippers.
    log_format: Literal["text", "json"] = "text"
    max_message_size: Positive = 1_000_000
    max_in_flight: Positive = 16
    ping_interval: Seconds = 30.0
    ping_timeout: Seconds = 30.0
    handshake_timeout: Seconds = 10.0
    close_timeout: Seconds = 1.0
    # None: 0 (rippled's default), or on a relay the upstream's own once it has said.
    network_id: Annotated[int, Meta(ge=0, le=0xFFFF_FFFF)] | None = None
    # TLS: PEM files (the certificate may carry its chain); both or neither. SIGHUP
    # reloads them for new connections.
    tls_cert: str | None = None
    tls_key: str | None = None
    # On SIGTERM: keep serving existing clients this long, then close them with 1001
    # spread over drain_spread seconds (docs/deploy/rolling-restarts.md). SIGINT closes
    # them at once.
    drain_seconds: NonNegative = 10.0
    drain_spread: NonNegative = 2.0
    # Peers (addresses or CIDRs) whose Forwarded / X-Forwarded-For / X-Real-IP headers,
    # or PROXY protocol header with proxy_protocol = true, name the real client.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    proxy_protocol: bool = False
    # Web pages whose requests may be admin by address, besides the hub's own dashboard
    # (scheme://host[:port]); and the names, besides IP literals, a request's Host may
    # give for it to be admin by address (hub.wire.admission: DNS rebinding).
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    hostnames: list[str] = msgspec.field(default_factory=lambda: ["localhost"])
    # permessage-deflate (RFC 7692) when the client offers it.
    compression: bool = True

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("[server] tls_cert and tls_key go together")
        _networks("[server] trusted_proxies", self.trusted_proxies)
        _each("[server] allowed_origins", self.allowed_origins, admission.allowed_origin)
        _each("[server] hostnames", self.hostnames, admission.hostname)


class ApiConfig(_Section):
    default_version: int = 1
    beta_api: bool = False

    def __post_init__(self) -> None:
        last = BETA_VERSION if self.beta_api else MAX_VERSION
        if not MIN_VERSION <= self.default_version <= last:
            raise ValueError(
                f"[api] default_version must be between {MIN_VERSION} and {last}"
                + ("" if self.beta_api else " (3 needs beta_api = true)")
            )


class AdminConfig(_Section):
    # Addresses or CIDRs; a client is admin by address only when no proxy header it
    # sent was ignored (see [server] trusted_proxies).
    ips: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "::1"])
    token: str | None = None

    def __post_init__(self) -> None:
        _networks("[admin] ips", self.ips)


class SourceConfig(_Section):
    source: str = "simulator"
    ledger_interval: Seconds = 3.5
    tx_per_ledger: Annotated[int, Meta(ge=0)] = 20
    validators: Annotated[int, Meta(ge=0)] = 5
    seed: int | None = None
    publish_queue: Positive = 10_000
    speed: Annotated[float, Meta(ge=0)] = 1.0
    loop: bool = False
    upstream_streams: list[str] = msgspec.field(default_factory=lambda: list(UPSTREAM_STREAMS))
    forward_pool: Positive = 2
    forward_timeout: Seconds = 10.0
    # The simulator's extra streams: each transaction proposed before its ledger
    # closes, consensusPhase each round, serverStatus when its simulated load changes.
    proposed: bool = True
    consensus: bool = True
    server_status: bool = True
    # Forward each request on a connection of its own that names the client in
    # Forwarded / X-Forwarded-For, so the upstream charges the client, not the hub.
    forward_client_ip: bool = False


class LoadConfig(_Section):
    key: Literal["ip", "connection"] = "ip"
    warning: float = 5000
    drop: float = 25000
    decay_window: Seconds = 32.0
    costs: dict[str, int] = msgspec.field(default_factory=dict)


class LimitsConfig(_Section):
    max_connections: Positive = 100_000
    max_connections_per_ip: Positive = 20
    send_queue_bytes: Positive = 4 * 1024 * 1024
    send_queue_messages: Positive = 10_000
    max_subscriptions_per_connection: Positive = 10_000


class HealthConfig(_Section):
    # Seconds without a new ledger (counted from startup until the first one) before
    # GET /health answers 503 and replies carry warning 2002 (Clio's 60 s).
    max_ledger_age: Seconds = 60.0


class ClusterConfig(_Section):
    # redis://[:password@]host:port/db makes this hub a node of a cluster (hub.cluster.broker).
    broker: str | None = None
    key_prefix: str = "hub"
    stream_maxlen: Positive = 100_000
    timeout: Seconds = 2.0
    # Nodes with a source take turns running it under a lease this long (hub.cluster.leader).
    lease_seconds: Seconds = 3.0
    # Processes accepting on one port (hub.app.workers); 1 serves in this process.
    workers: Positive = 1

    def __post_init__(self) -> None:
        if self.broker is not None and not self.broker.startswith(("redis://", "rediss://")):
            raise ValueError("[cluster] broker must be a redis:// or rediss:// URL")


class HistoryConfig(_Section):
    ledgers: Annotated[int, Meta(ge=0)] = 256
    max_bytes: Positive = 256 * 2**20


class Config(_Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    admin: AdminConfig = msgspec.field(default_factory=AdminConfig)
    source: SourceConfig = msgspec.field(default_factory=SourceConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    load: LoadConfig = msgspec.field(default_factory=LoadConfig)
    history: HistoryConfig = msgspec.field(default_factory=HistoryConfig)
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)
    cluster: ClusterConfig = msgspec.field(default_factory=ClusterConfig)


class ConfigError(ValueError):
    pass


def _networks(key: str, entries: list[str]) -> Networks:
    try:
        return Networks.parse(entries)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _each(key: str, entries: list[str], parse: Callable[[str], object]) -> None:
    for entry in entries:
        try:
            parse(entry)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None


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
