"""The bearer token check: scheme, constant-time comparison, any matching line."""

from __future__ import annotations

import hmac

import pytest

from hub.wire import bearer as bearer_module
from hub.wire.bearer import Bearer, check_bearer


def auth(*values: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", value) for value in values]


@pytest.mark.parametrize(
    "value", [b"Bearer s3cret", b"bearer s3cret", b"BEARER  s3cret ", b"Bearer\ts3cret"]
)
def test_bearer_ok_scheme_case_insensitive(value: bytes) -> None:
    assert check_bearer(auth(value), "s3cret") is Bearer.OK


@pytest.mark.parametrize("value", [b"Bearer s3cre", b"Bearer S3CRET", b"Bearer", b"Bearer "])
def test_bearer_wrong(value: bytes) -> None:
    assert check_bearer(auth(value), "s3cret") is Bearer.WRONG


def test_bearer_absent() -> None:
    assert check_bearer([], "s3cret") is Bearer.ABSENT
    assert check_bearer(auth(b"Basic czNjcmV0"), "s3cret") is Bearer.ABSENT
    assert check_bearer(auth(b""), "s3cret") is Bearer.ABSENT
    assert check_bearer([(b"x-token", b"Bearer s3cret")], "s3cret") is Bearer.ABSENT


def test_bearer_without_configured_token_is_never_ok() -> None:
    assert check_bearer(auth(b"Bearer "), "") is Bearer.ABSENT
    assert check_bearer(auth(b"Bearer anything"), None) is Bearer.ABSENT


def test_bearer_any_matching_line_wins() -> None:
    assert check_bearer(auth(b"Bearer nope", b"Bearer s3cret"), "s3cret") is Bearer.OK
    assert check_bearer(auth(b"Basic x", b"Bearer nope"), "s3cret") is Bearer.WRONG
    headers = [(b"Authorization", b"Bearer s3cret")]
    assert check_bearer(headers, "s3cret") is Bearer.OK


def test_bearer_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(bearer_module.hmac, "compare_digest", spy)
    assert check_bearer(auth(b"Bearer s3cret"), "s3cret") is Bearer.OK
    assert calls == [(b"s3cret", b"s3cret")]


def test_bearer_non_ascii_token() -> None:
    assert check_bearer(auth("Bearer clé".encode()), "clé") is Bearer.OK
