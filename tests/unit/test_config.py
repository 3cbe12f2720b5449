"""Settings: what ``hub.config`` refuses, and why."""

from __future__ import annotations

import pytest

from hub import config as hub_config
from tests.helpers.hubs import make_config


def test_broker_url_must_be_redis() -> None:
    with pytest.raises(hub_config.ConfigError, match="redis://"):
        make_config(cluster={"broker": "http://x"})


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_port_out_of_range_is_refused(port: int) -> None:
    try:
        hub_config.load(None, {"server": {"port": port}})
    except hub_config.ConfigError:
        return
    raise AssertionError(f"port {port} accepted")


@pytest.mark.parametrize("value", [0, -1])
def test_max_in_flight_below_1_is_refused(value: int) -> None:
    try:
        hub_config.load(None, {"server": {"max_in_flight": value}})
    except hub_config.ConfigError:
        return
    raise AssertionError(f"max_in_flight = {value} accepted")


def test_tls_needs_both_files() -> None:
    from hub import config

    with pytest.raises(config.ConfigError, match="tls_cert and tls_key go together"):
        config.load(None, {"server": {"tls_cert": "x.pem"}})
