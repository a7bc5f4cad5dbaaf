"""Outbox rendering and inbox parsing, without files or a bridge."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cris_connect import Clear, Display, Event, Login, Logout
from cris_connect.messages import LoggedIn
from cris_connect_filedrop.formats import (
    CommandFileError,
    Received,
    parse_command_file,
    render_json,
    render_keyvalue,
    render_template,
)

WHEN = datetime(2025, 1, 31, 9, 15, 2, 123456, tzinfo=UTC)
EVENT = Event(accession=["RX1", "RX2"], exam_code="CCHES", nhs="9434765919", chi="0101011234")


def received(message: object, session: int = 3) -> Received:
    return Received(message, session, WHEN, 7)  # type: ignore[arg-type]


def test_json_is_the_wire_message_plus_session_and_time() -> None:
    assert json.loads(render_json(received(EVENT))) == {
        "command": "EVENT", "accession": ["RX1", "RX2"], "examCode": "CCHES", "nhs": "9434765919",
        "chi": "0101011234", "session": 3, "received": "2025-01-31T09:15:02.123456Z",
    }


def test_json_omits_absent_fields_and_keeps_unknown_ones() -> None:
    message = Event(accession=["RX1"], extra={"ward": "A&E"})
    assert json.loads(render_json(received(message))) == {
        "command": "EVENT", "accession": ["RX1"], "ward": "A&E", "session": 3,
        "received": "2025-01-31T09:15:02.123456Z",
    }


def test_keyvalue() -> None:
    assert render_keyvalue(received(EVENT)) == (
        "COMMAND=EVENT\nACCESSION=RX1,RX2\nEXAM_CODE=CCHES\nNHS=9434765919\nCHI=0101011234\n"
        "SESSION=3\nRECEIVED=2025-01-31T09:15:02.123456Z\n"
    )


def test_template() -> None:
    template = string.Template("[$command]\nacc=$first_accession all=$accession exam=$exam_code "
                               "nhs=$nhs chi=$chi user=$username s=$session at=$received n=$sequence $$\n")
    assert render_template(template, received(EVENT)) == (
        "[EVENT]\nacc=RX1 all=RX1,RX2 exam=CCHES nhs=9434765919 chi=0101011234 user= s=3 "
        "at=2025-01-31T09:15:02.123456Z n=7 $\n"
    )


@pytest.mark.parametrize("render", [render_json, render_keyvalue])
def test_a_password_is_never_rendered(render: object) -> None:
    message = LoggedIn(username="drsmith", password="hunter2", extra={"Password": "hunter3"})
    text = render(received(message))  # type: ignore[operator]
    assert "drsmith" in text
    assert "hunter" not in text
    assert "password" not in text.lower()


@given(st.text())
def test_keyvalue_values_cannot_add_lines(value: str) -> None:
    """A line break in what CRIS sent must not forge a KEY=value line for a legacy reader."""
    text = render_keyvalue(received(Event(accession=["RX1"], exam_code=value)))
    assert [line.split("=", 1)[0] for line in text.splitlines()] == (
        ["COMMAND", "ACCESSION", "EXAM_CODE", "SESSION", "RECEIVED"]
        if " ".join(value.splitlines()) else ["COMMAND", "ACCESSION", "SESSION", "RECEIVED"]
    )


# Inbox


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"command": "DISPLAY", "accession": ["RX1", "RX2"]}', Display(accession=["RX1", "RX2"])),
        ('{"command": "display", "accession": "RX1"}', Display(accession=["RX1"])),
        ('\n{"command":"CLEAR"}\n', Clear()),
        ('{"command":"LOGOUT"}', Logout()),
        ('{"command":"LOGIN","username":"drsmith","password":"pw"}',
         Login(username="drsmith", password="pw")),
        ("COMMAND=DISPLAY\nACCESSION=RX1, RX2\n", Display(accession=["RX1", "RX2"])),
        ("# from the viewer\ncommand = display\naccession=RX1\nACCESSION=RX2\r\nEXAMCODE=CT\n\n",
         Display(accession=["RX1", "RX2"], exam_code="CT")),
        ("COMMAND=DISPLAY\nACCESSION=RX1\nEXAM_CODE=CT\nNHS=9434765919\n",
         Display(accession=["RX1"], exam_code="CT", nhs="9434765919")),
        ("COMMAND=CLEAR", Clear()),
        ("COMMAND=LOGIN\nUSERNAME=drsmith\nPASSWORD=a=b", Login(username="drsmith", password="a=b")),
    ],
)
def test_command_files(text: str, expected: object) -> None:
    assert parse_command_file(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", 'the file is empty; write a command such as {"command": "CLEAR"}'),
        ('{"command": "DISPLAY", ', "the file is not valid JSON (Expecting property name enclosed in "
                                    "double quotes: line 1 column 24 (char 23))"),
        ("[1, 2]", "the file is an array, but a CRIS Connect message is a JSON object"),
        ('{"accession": ["RX1"]}', "the message has no 'command' field"),
        ('{"command": "EVENT"}', "unknown command 'EVENT'; a command file holds one of DISPLAY, CLEAR, "
                                 "LOGOUT, LOGIN"),
        ('{"command": "DISPLAY"}', "DISPLAY needs at least one accession number in 'accession'"),
        ("COMMAND=DISPLAY\nACCESSION=\n", "DISPLAY needs at least one accession number in 'accession'"),
        ('{"command": "DISPLAY", "accession": [12]}',
         "DISPLAY: field 'accession': expected accession numbers as strings, got 12"),
        ('{"command": "LOGIN", "username": "drsmith"}', "LOGIN needs a non-empty 'password'"),
        ("COMMAND=DISPLAY\nRX1\n", "line 2 is not KEY=value"),
        ("COMMAND=DISPLAY\nACESSION=RX1\n", "line 2: unknown key 'ACESSION'; the keys are COMMAND, "
                                            "ACCESSION, EXAM_CODE, NHS, CHI, USERNAME, PASSWORD"),
    ],
)
def test_refused_command_files(text: str, reason: str) -> None:
    with pytest.raises(CommandFileError) as caught:
        parse_command_file(text)
    assert str(caught.value) == reason


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=",\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"))
                .map(str.strip).filter(bool), min_size=1, max_size=5))
def test_keyvalue_accessions_round_trip(accessions: list[str]) -> None:
    text = "COMMAND=DISPLAY\n" + "".join(f"ACCESSION={a}\n" for a in accessions)
    assert parse_command_file(text) == Display(accession=accessions)
