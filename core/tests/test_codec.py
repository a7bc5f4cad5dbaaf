"""The codec: every message round-trips, absent fields are omitted, and decoding fails only with
DecodeError, whose sentence names the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cris_connect import codec
from cris_connect.codec import DecodeError, InvalidMessage, decode, decode_for_cris, encode
from cris_connect.messages import (
    Clear,
    Commit,
    Display,
    Event,
    LoggedIn,
    LoggedOut,
    Login,
    Logout,
    ReadOnly,
    Release,
    UnknownCommand,
)

# (message, exact wire JSON) - one row per command and direction.
FROM_CRIS = [
    (Event(accession=["RX1"], exam_code="CCHES", nhs="9434765919", chi="0101011234"),
     '{"command":"EVENT","accession":["RX1"],"examCode":"CCHES","nhs":"9434765919","chi":"0101011234"}'),
    (Event(accession=["RX1", "RX2"]), '{"command":"EVENT","accession":["RX1","RX2"]}'),
    (ReadOnly(accession=["RX0"], exam_code="XCHES"),
     '{"command":"READONLY","accession":["RX0"],"examCode":"XCHES"}'),
    (Commit(accession=["RX1"]), '{"command":"COMMIT","accession":["RX1"]}'),
    (Release(accession=["RX1"]), '{"command":"RELEASE","accession":["RX1"]}'),
    (LoggedIn(), '{"command":"LOGIN"}'),
    (LoggedOut(), '{"command":"LOGOUT"}'),
]
TO_CRIS = [
    (Display(accession=["RX1"]), '{"command":"DISPLAY","accession":["RX1"]}'),
    (Display(accession=["RX1", "RX2"], exam_code="CCHES"),
     '{"command":"DISPLAY","accession":["RX1","RX2"],"examCode":"CCHES"}'),
    (Clear(), '{"command":"CLEAR"}'),
    (Logout(), '{"command":"LOGOUT"}'),
    (Login(username="jsmith", password="s3cret"),
     '{"command":"LOGIN","username":"jsmith","password":"s3cret"}'),
]


@pytest.mark.parametrize(("message", "wire"), FROM_CRIS, ids=lambda v: getattr(v, "command", ""))
def test_cris_commands_round_trip(message: object, wire: str) -> None:
    assert encode(message) == wire  # type: ignore[arg-type]
    assert decode(wire) == message


@pytest.mark.parametrize(("message", "wire"), TO_CRIS, ids=lambda v: getattr(v, "command", ""))
def test_pacs_commands_round_trip(message: object, wire: str) -> None:
    assert encode(message) == wire  # type: ignore[arg-type]
    assert decode_for_cris(wire) == message


def test_the_same_command_name_means_different_things_by_direction() -> None:
    assert type(decode('{"command":"LOGIN"}')) is LoggedIn
    assert type(decode_for_cris('{"command":"LOGIN","username":"a","password":"b"}')) is Login
    assert type(decode('{"command":"LOGOUT"}')) is LoggedOut
    assert type(decode_for_cris('{"command":"LOGOUT"}')) is Logout


def test_lenient_where_the_meaning_is_clear() -> None:
    message = decode('{"command":"event","accession":"RX9","examCode":null,"ward":"B4"}')
    assert isinstance(message, Event)
    assert message.accession == ("RX9",)  # a lone string is a one-item list
    assert message.exam_code is None
    assert dict(message.extra) == {"ward": "B4"}  # unknown fields kept for plugins
    assert json.loads(encode(message))["ward"] == "B4"


def test_unknown_command_keeps_the_raw_object() -> None:
    message = decode('{"command":"PRIORITY","accession":["RX1"],"level":2}')
    assert isinstance(message, UnknownCommand)
    assert message.command == "PRIORITY"
    assert dict(message.raw) == {"command": "PRIORITY", "accession": ["RX1"], "level": 2}


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("{", "not valid JSON"),
        ("[1,2]", "the frame is an array, but a CRIS Connect message is a JSON object"),
        ('"EVENT"', "the frame is a string"),
        ("{}", "no 'command' field"),
        ('{"command":7}', "field 'command': expected a string, got 7"),
        ('{"command":"EVENT","accession":[1]}', "EVENT: field 'accession': expected accession numbers as strings, got 1"),
        ('{"command":"EVENT","accession":{"a":1}}', "field 'accession': expected a list of accession numbers"),
        ('{"command":"EVENT","examCode":12}', "EVENT: field 'examCode': expected a string, got 12"),
        ('{"command":"READONLY","nhs":9434765919}', "READONLY: field 'nhs': expected a string"),
        (b"\xff\xfe", "not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_decode_errors_name_the_field_and_the_problem(frame: str | bytes, expected: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(frame)
    assert expected in str(caught.value)


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(DecodeError) as caught:
        decode('{"command":"EVENT","examCode":1,"chi":2}')
    assert "'examCode'" in str(caught.value) and "'chi'" in str(caught.value)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Display(), "DISPLAY needs at least one accession number"),
        (Display(accession=[""]), "non-empty strings"),
        (Display(accession=[12]), "non-empty strings"),  # type: ignore[list-item]
        (Login(username="jsmith"), "LOGIN needs a non-empty 'password'"),
        (Login(password="x"), "LOGIN needs a non-empty 'username'"),
    ],
)
def test_outgoing_messages_are_validated(message: object, expected: str) -> None:
    with pytest.raises(InvalidMessage, match=expected):
        encode(message)  # type: ignore[arg-type]


def test_passwords_and_identifiers_never_appear_in_repr() -> None:
    text = repr(Login(username="jsmith", password="s3cret")) + repr(
        decode('{"command":"LOGIN","password":"s3cret","x":"s3cret"}')
    ) + repr(Event(nhs="9434765919", chi="0101011234"))
    assert "s3cret" not in text
    assert "9434765919" not in text and "0101011234" not in text
    assert "*******919" in text


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"command":"LOGIN","password":["hunter2"]}', "LOGIN: field 'password': expected a string, got an array"),
        ('{"command":"EVENT","nhs":9434765919}', "EVENT: field 'nhs': expected a string, got a number"),
        ('{"command":"EVENT","chi":{"v":"0101011234"}}', "EVENT: field 'chi': expected a string, got an object"),
    ],
)
def test_errors_never_echo_passwords_or_patient_identifiers(frame: str, expected: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(frame)
    assert str(caught.value) == expected


def test_each_converter_is_independent() -> None:
    # lsprotocol's rule: a factory, not a shared global that one caller could reconfigure.
    assert codec.make_converter() is not codec.make_converter()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
commands = st.sampled_from(["EVENT", "READONLY", "COMMIT", "RELEASE", "LOGIN", "LOGOUT", "DISPLAY", "X"])
message_like = st.fixed_dictionaries(
    {"command": commands},
    optional={k: json_values for k in ("accession", "examCode", "nhs", "chi", "username", "password")},
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, message_like))
def test_decoding_any_json_value_raises_only_decode_error(value: object) -> None:
    for decoder in (decode, decode_for_cris):
        try:
            decoder(json.dumps(value))
        except DecodeError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_decoding_any_string_raises_only_decode_error(data: str | bytes) -> None:
    try:
        decode(data)
    except DecodeError:
        pass
