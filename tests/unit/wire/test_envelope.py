"""The envelope without I/O: decode, validate, masking, success and failure replies (seed 001)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.wire import envelope
from hub.wire.envelope import MASK, MASKED_FIELDS, Extras, Warning, goodbye, resume_hint
from hub.wire.errors import RPCError
from hub.wire.versions import VersionPolicy


def test_the_close_reason_names_the_resume_point() -> None:
    assert resume_hint(goodbye(41)) == 41
    assert resume_hint(goodbye(None)) is None
    assert resume_hint(None) is None
    assert len(goodbye(2**32).encode()) <= 123  # a close reason's room (RFC 6455 §5.5)


POLICY = VersionPolicy()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def keys_in_order(payload: bytes) -> list[str]:
    return list(json.loads(payload))


def test_decode_object() -> None:
    assert envelope.decode(b'{"command":"ping","id":1}') == {"command": "ping", "id": 1}
    assert envelope.decode('{"command":"ping"}') == {"command": "ping"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{",
        b'{"command":"ping"',
        b'{"command":"ping"} trailing',
        b"\xff\xfe",
        b"1e400",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_decode_rejects_non_json_as_bad_syntax(data: bytes) -> None:
    with pytest.raises(RPCError) as info:
        envelope.decode(data)
    assert info.value.token == "badSyntax"
    assert info.value.code == 1


@pytest.mark.parametrize(
    "data", [b"[]", b'[{"command":"ping"}]', b'"ping"', b"5", b"null", b"true", b"1.5"]
)
def test_decode_rejects_json_that_is_not_an_object(data: bytes) -> None:
    with pytest.raises(RPCError) as info:
        envelope.decode(data)
    assert info.value.token == "badSyntax"
    assert "JSON object" in info.value.message


def test_validate_command() -> None:
    request = envelope.validate({"command": "ping"}, POLICY)
    assert (request.method, request.api_version) == ("ping", 1)


def test_validate_method_alone() -> None:
    assert envelope.validate({"method": "ping"}, POLICY).method == "ping"


def test_validate_command_and_method_equal() -> None:
    assert envelope.validate({"command": "ping", "method": "ping"}, POLICY).method == "ping"


def test_validate_keeps_the_body() -> None:
    body = {"command": "ping", "id": 7, "x": [1]}
    assert envelope.validate(body, POLICY).body is body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"id": 1},
        {"command": ""},
        {"command": 5},
        {"command": None},
        {"command": ["ping"]},
        {"method": 5},
        {"command": "ping", "method": "server_info"},
        {"command": "ping", "method": 5},
        {"command": 5, "method": "ping"},
    ],
)
def test_validate_missing_command(body: dict[str, Any]) -> None:
    with pytest.raises(RPCError) as info:
        envelope.validate(body, POLICY)
    assert info.value.token == "missingCommand"
    assert info.value.code == 6001


def test_validate_mismatch_message_names_both_fields() -> None:
    with pytest.raises(RPCError) as info:
        envelope.validate({"command": "ping", "method": "version"}, POLICY)
    assert "command" in info.value.message
    assert "method" in info.value.message


def test_validate_version_is_checked_before_the_command() -> None:
    with pytest.raises(RPCError) as info:
        envelope.validate({"api_version": 9}, POLICY)
    assert info.value.token == "invalid_API_version"


@pytest.mark.parametrize("raw", ["2", 2.0, True, 0, 4, None])
def test_validate_bad_api_version(raw: object) -> None:
    with pytest.raises(RPCError) as info:
        envelope.validate({"command": "ping", "api_version": raw}, POLICY)
    assert info.value.code == 6000


def test_validate_default_version_follows_policy() -> None:
    assert envelope.validate({"command": "ping"}, VersionPolicy(default=2)).api_version == 2
    assert (
        envelope.validate({"command": "ping", "api_version": 1}, VersionPolicy(2)).api_version == 1
    )


def test_validate_beta_version() -> None:
    with pytest.raises(RPCError):
        envelope.validate({"command": "ping", "api_version": 3}, POLICY)
    beta = VersionPolicy(beta=True)
    assert envelope.validate({"command": "ping", "api_version": 3}, beta).api_version == 3


def test_masked_fields_are_the_documented_set() -> None:
    assert frozenset({"secret", "seed", "seed_hex", "passphrase", "admin_password"}) == (
        MASKED_FIELDS
    )
    assert MASK == "<masked>"


def test_masked_replaces_every_credential() -> None:
    body = {
        "command": "sign",
        "id": 3,
        "secret": "sEdX",
        "seed": "sEdY",
        "seed_hex": "00FF",
        "passphrase": "pass",
        "admin_password": "pw",
        "tx_json": {"Account": "r1"},
    }
    assert envelope.masked(body) == {
        "command": "sign",
        "id": 3,
        "secret": "<masked>",
        "seed": "<masked>",
        "seed_hex": "<masked>",
        "passphrase": "<masked>",
        "admin_password": "<masked>",
        "tx_json": {"Account": "r1"},
    }


def test_masked_does_not_change_the_original_or_the_order() -> None:
    body = {"a": 1, "secret": "s", "b": 2}
    out = envelope.masked(body)
    assert body == {"a": 1, "secret": "s", "b": 2}
    assert list(out) == ["a", "secret", "b"]


def test_masked_masks_non_string_credentials_too() -> None:
    assert envelope.masked({"secret": None, "seed": 5})["seed"] == MASK
    assert envelope.masked({"secret": None})["secret"] == MASK


def test_masked_leaves_clean_requests_alone() -> None:
    body = {"command": "ping", "id": 1, "tx_json": {"Account": "r1", "Memos": [{"x": "seed"}]}}
    assert envelope.masked(body) is body  # not even copied


def test_masked_masks_at_any_depth_in_any_case() -> None:
    body = {
        "command": "sign",
        "Secret": "sTop",
        "tx_json": {"Account": "r1", "secret": "sTx", "Memos": [{"PassPhrase": "p1"}]},
        "list": [[{"SEED_HEX": "00"}], 5, "secret", {"nested": {"admin_Password": "pw"}}],
        "seed": {"whatever": ["it", "holds"]},
        # Only keys are credentials: a value spelling one, a longer key, stay as they are.
        "memo": '"secret": 1',
        "mnemonic": {"secrets": 2, "my_seed": 3, 'x"secret': 4},
    }
    assert envelope.masked(body) == {
        "command": "sign",
        "Secret": MASK,
        "tx_json": {"Account": "r1", "secret": MASK, "Memos": [{"PassPhrase": MASK}]},
        "list": [[{"SEED_HEX": MASK}], 5, "secret", {"nested": {"admin_Password": MASK}}],
        "seed": MASK,
        "memo": '"secret": 1',
        "mnemonic": {"secrets": 2, "my_seed": 3, 'x"secret': 4},
    }
    assert body["tx_json"]["secret"] == "sTx"  # the request itself is left alone


def test_masked_never_recurses_however_deep() -> None:
    """Deeper than the interpreter's recursion limit, as a Python-built body can be."""
    depth = 50_000
    body: dict[str, Any] = {"command": "x"}
    node = body
    for _ in range(depth):
        node["a"] = [{}]
        node = node["a"][0]
    node["passphrase"] = "deep"
    out = envelope.masked(body)
    for _ in range(depth):
        out = out["a"][0]
    assert out == {"passphrase": MASK}


def _credentials(value: Any) -> list[Any]:
    """The values of credential keys (any case, any depth; none inside another's)."""
    found, todo = [], [value]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                if key.lower() in MASKED_FIELDS:
                    found.append(item)
                else:
                    todo.append(item)
        elif isinstance(node, list):
            todo.extend(node)
    return found


credential_keys = st.sampled_from(sorted(MASKED_FIELDS)).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.title(), name.capitalize()])
)


keys = st.text(max_size=8) | credential_keys


requests = st.dictionaries(
    keys,
    st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=16,
    ),
    max_size=5,
)


@given(requests)
def test_masked_leaves_no_credential_and_changes_nothing_else(body: dict[str, Any]) -> None:
    before = msgspec.json.encode(body)
    out = envelope.masked(body)
    assert set(_credentials(out)) <= {MASK}
    assert len(_credentials(out)) == len(_credentials(body))
    assert msgspec.json.encode(body) == before  # the request itself is left alone
    if not _credentials(body):
        assert out == body


def test_success_bytes_match_seed_001_shape() -> None:
    """Seed 001's WebSocket example: id, status, type, result, in that order."""
    payload = envelope.success({"id": 2, "command": "ping"}, {"ledger_index": 6760970})
    assert payload == (
        b'{"id":2,"status":"success","type":"response","result":{"ledger_index":6760970}}'
    )


def test_success_without_id_has_no_id() -> None:
    payload = envelope.success({"command": "ping"}, {})
    assert payload == b'{"status":"success","type":"response","result":{}}'


def test_success_echoes_api_version() -> None:
    payload = envelope.success({"id": "a", "command": "ping", "api_version": 2}, {})
    assert json.loads(payload) == {
        "id": "a",
        "status": "success",
        "type": "response",
        "api_version": 2,
        "result": {},
    }
    keys = keys_in_order(payload)
    assert keys.index("id") < keys.index("status") < keys.index("type") < keys.index("result")


def test_success_has_no_request_and_no_error_fields() -> None:
    decoded = json.loads(envelope.success({"command": "ping", "secret": "x"}, {}))
    assert set(decoded) == {"status", "type", "result"}


@pytest.mark.parametrize(
    ("id_json", "id_value"),
    [
        (b"5", 5),
        (b'"5"', "5"),
        (b"null", None),
        (b'{"a":[1,"b",null]}', {"a": [1, "b", None]}),
        (b"[1,2]", [1, 2]),
        (b"true", True),
        (b"1.5", 1.5),
        (b"-7", -7),
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (b'""', ""),
    ],
)
def test_id_round_trips_with_its_type(id_json: bytes, id_value: Any) -> None:
    body = envelope.decode(b'{"command":"ping","id":' + id_json + b"}")
    ok = envelope.success(body, {})
    err = envelope.failure(body, RPCError("unknownCmd"))
    for payload in (ok, err):
        assert payload.startswith(b'{"id":' + id_json + b',"status":')
        echoed = json.loads(payload)["id"]
        assert echoed == id_value
        assert type(echoed) is type(id_value)


@given(json_values)
def test_any_json_id_is_echoed_verbatim(id_value: Any) -> None:
    body = envelope.decode(msgspec.json.encode({"command": "ping", "id": id_value}))
    echoed = msgspec.json.decode(envelope.success(body, {}))["id"]
    assert msgspec.json.encode(echoed) == msgspec.json.encode(id_value)


def test_success_extras() -> None:
    extras = Extras(
        warning="load",
        warnings=(Warning(2001, "This is a clio server."), Warning(1, "x", {"k": 1})),
        forwarded=True,
    )
    decoded = json.loads(envelope.success({"id": 1}, {}, extras))
    assert decoded["warning"] == "load"
    assert decoded["warnings"] == [
        {"id": 2001, "message": "This is a clio server."},
        {"id": 1, "message": "x", "details": {"k": 1}},
    ]
    assert decoded["forwarded"] is True


def test_no_extras_by_default() -> None:
    decoded = json.loads(envelope.success({"id": 1}, {}))
    assert not {"warning", "warnings", "forwarded"} & set(decoded)


def test_failure_bytes() -> None:
    body = {"id": 9, "command": "nope", "api_version": 2, "secret": "snoop"}
    payload = envelope.failure(body, RPCError("unknownCmd"))
    assert json.loads(payload) == {
        "id": 9,
        "status": "error",
        "type": "response",
        "api_version": 2,
        "error": "unknownCmd",
        "error_code": 32,
        "error_message": "Unknown method.",
        "request": {"id": 9, "command": "nope", "api_version": 2, "secret": "<masked>"},
    }
    assert b"snoop" not in payload


def test_failure_without_request_is_the_clio_bad_syntax_reply() -> None:
    payload = envelope.failure(None, RPCError("badSyntax"))
    assert payload == (
        b'{"status":"error","type":"response","error":"badSyntax","error_code":1,'
        b'"error_message":"Syntax error."}'
    )


def test_failure_without_id_has_no_id() -> None:
    decoded = json.loads(envelope.failure({"command": "x"}, RPCError("unknownCmd")))
    assert "id" not in decoded
    assert "api_version" not in decoded
    assert decoded["request"] == {"command": "x"}


def test_failure_custom_message() -> None:
    decoded = json.loads(envelope.failure({}, RPCError("invalidParams", "Missing field 'x'.")))
    assert decoded["error_message"] == "Missing field 'x'."
    assert decoded["error_code"] == 31


def test_failure_extra_fields_are_added_at_top_level() -> None:
    error = RPCError("lgrNotFound", first_ledger=3)
    decoded = json.loads(envelope.failure({"id": 1, "command": "x"}, error))
    assert decoded["first_ledger"] == 3
    assert decoded["error"] == "lgrNotFound"
    assert decoded["status"] == "error"
    assert decoded["id"] == 1


def test_failure_keeps_load_warning() -> None:
    """Unlike rippled (XRPLF/rippled#3268) the hub keeps ``warning`` on error replies."""
    payload = envelope.failure({"id": 1}, RPCError("slowDown"), Extras(warning="load"))
    assert json.loads(payload)["warning"] == "load"
