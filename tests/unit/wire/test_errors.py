"""rippled's error tokens, codes and messages."""

from __future__ import annotations

import pytest

from hub.wire.errors import ERRORS, RPCError


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("badSyntax", 1),
        ("forbidden", 3),
        ("noPermission", 6),
        ("tooBusy", 9),
        ("slowDown", 10),
        ("lgrNotFound", 21),
        ("invalidParams", 31),
        ("unknownCmd", 32),
        ("actMalformed", 35),
        ("malformedStream", 71),
        ("internal", 73),
        ("notSupported", 75),
        ("invalid_API_version", 6000),
        ("missingCommand", 6001),
    ],
)
def test_error_codes(token: str, code: int) -> None:
    assert ERRORS[token].code == code
    error = RPCError(token)
    assert (error.token, error.code) == (token, code)
    assert error.message == ERRORS[token].message
    assert error.message


def test_error_messages_from_rippled() -> None:
    assert ERRORS["badSyntax"].message == "Syntax error."
    assert ERRORS["forbidden"].message == "Bad credentials."
    assert ERRORS["unknownCmd"].message == "Unknown method."
    assert ERRORS["invalidParams"].message == "Invalid parameters."
    assert ERRORS["slowDown"].message == "You are placing too much load on the server."


def test_error_codes_are_unique() -> None:
    codes = [info.code for info in ERRORS.values()]
    assert len(codes) == len(set(codes))


def test_unknown_token_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        RPCError("noSuchToken")


def test_rpc_error_str() -> None:
    assert str(RPCError("unknownCmd")) == "unknownCmd: Unknown method."
