"""Requests to every method of the hub with every field valid, any JSON value, or a near
miss; and what a well-formed reply to one is."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from hub.core.methods import METHODS
from hub.wire.errors import ERRORS
from hub.xrpl.ledgerdata import FEE_SETTINGS_INDEX
from tests.helpers.samples import ALICE, GATEWAY, USD, h, ledger_closed, validation, xrp_payment

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [ALICE, GATEWAY, "XRP", "USD", "validated", "current", "closed", "ledger",
         "transactions", "0" * 64, h("x"), "²", "١٢٣", "9" * 5000, "rrrrrrrrrrrrrrrrrrrrBZbvji",
         "C000000100000000", "", " ", "\x00", "USD\x00", "0158415500000000C1F76FF6ECB0BAC600000000"]
    )
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "currency",
                    "issuer",
                    "value",
                    "taker_pays",
                    "taker_gets",
                    "both",
                    "snapshot",
                    "taker",
                    "limit",
                    "domain",
                    "type",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
issues = st.fixed_dictionaries(
    {}, optional={"currency": json_values, "issuer": json_values | st.just(GATEWAY)}
)
book_entries = st.fixed_dictionaries(
    {"taker_pays": issues | json_values, "taker_gets": issues | json_values},
    optional=dict.fromkeys(
        ("both", "both_sides", "snapshot", "state_now", "taker", "limit", "domain"), json_values
    ),
)


def mutated(message: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    keys = sorted(message)
    return st.builds(lambda key, value: {**message, key: value}, st.sampled_from(keys), json_values)


messages = (
    mutated(ledger_closed(5)) | mutated(xrp_payment(5, 1)) | mutated(validation(5)) | json_values
)
VALID: dict[str, dict[str, Any]] = {
    "subscribe": {
        "streams": ["ledger", "transactions"],
        "accounts": [ALICE],
        "accounts_proposed": [ALICE],
        "books": [{"taker_pays": {"currency": "XRP"}, "taker_gets": USD, "both": True}],
        "since_ledger": 100,
    },
    "ledger": {"ledger_index": 101, "transactions": True, "expand": True},
    "tx": {"transaction": h("tx", 1)},
    "ledger_entry": {"index": FEE_SETTINGS_INDEX, "ledger_index": "validated"},
    "publish": {"messages": [ledger_closed(7)]},
}
VALID["unsubscribe"] = VALID["subscribe"]
JUNK: dict[str, st.SearchStrategy[Any]] = {
    "streams": st.lists(st.sampled_from(["ledger", "bogus", "peer_status"]) | json_values),
    "accounts": st.lists(st.just(ALICE) | json_values, max_size=3) | json_values,
    "books": st.lists(book_entries | json_values, max_size=3) | json_values,
    "since_ledger": json_values | st.integers(0, 10**30),
    "messages": st.lists(messages, max_size=3) | json_values,
}
EXTRA = ("url", "rt_accounts", "binary", "full", "queue", "owner_funds", "ctid", "ledger_hash")
COMMON: dict[str, Any] = {"api_version": 2}


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request to one of the hub's methods (or a name it does not know, or no name)
    whose fields are each valid, or any JSON value, or a near miss: so every check of
    every field is reached with everything before it passing."""
    name = draw(st.sampled_from([*METHODS.names(), "no_such_method"]) | json_values)
    valid = {**COMMON, **VALID.get(name, {})} if isinstance(name, str) else dict(COMMON)
    body: dict[str, Any] = {}
    for key, value in valid.items():
        kind = draw(st.sampled_from(["valid", "valid", "junk", "absent"]))
        if kind == "valid":
            body[key] = value
        elif kind == "junk":
            body[key] = draw(JUNK.get(key, json_values))
    for key in draw(st.lists(st.sampled_from(EXTRA), max_size=2, unique=True)):
        body[key] = draw(json_values)
    if draw(st.booleans()):
        body["id"] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        body["secret"] = draw(st.text(max_size=8))
    body["command"] = name
    return body


def check_reply(reply: dict[str, Any], body: dict[str, Any]) -> None:
    """A reply in rippled's envelope; errors are table tokens, and never ``internal``."""
    assert reply["type"] == "response", reply
    if "id" in body:
        assert reply["id"] == body["id"]
    if reply["status"] == "success":
        assert isinstance(reply["result"], dict)
        return
    assert reply["status"] == "error", reply
    assert reply["error"] in ERRORS
    assert reply["error"] != "internal", (body, reply)
    assert reply["error_code"] == ERRORS[reply["error"]].code
    assert "secret" not in reply.get("request", {}) or reply["request"]["secret"] == "<masked>"
