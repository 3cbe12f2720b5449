"""Forwarding to the upstream without connecting: the headers that name the client, and
the pool an ``upstream:`` source gets."""

from __future__ import annotations

import pytest

from hub.config import ConfigError
from hub.links.forward import forwarding_headers, from_config
from tests.helpers.hubs import make_config


def test_the_client_is_named_in_both_headers_ipv6_quoted() -> None:
    assert forwarding_headers("203.0.113.7") == [
        (b"forwarded", b"for=203.0.113.7"),
        (b"x-forwarded-for", b"203.0.113.7"),
    ]
    assert forwarding_headers("2001:db8::1") == [
        (b"forwarded", b'for="[2001:db8::1]"'),
        (b"x-forwarded-for", b"2001:db8::1"),
    ]


def test_only_an_upstream_source_gets_a_pool() -> None:
    assert from_config(make_config().source) is None
    assert from_config(make_config(source={"source": "simulator"}).source) is None
    source = make_config(
        source={"source": "upstream:ws://127.0.0.1:1, ws://127.0.0.1:2", "forward_pool": 3}
    ).source
    pool = from_config(source)
    assert pool is not None
    assert list(pool.urls) == ["ws://127.0.0.1:1", "ws://127.0.0.1:2"]
    assert pool.size == 3
    assert from_config(make_config().source, urls=["ws://127.0.0.1:3"]) is not None


def test_an_upstream_source_without_a_url_is_refused() -> None:
    source = make_config(source={"source": "upstream: , "}).source
    with pytest.raises(ConfigError, match="at least one"):
        from_config(source)
