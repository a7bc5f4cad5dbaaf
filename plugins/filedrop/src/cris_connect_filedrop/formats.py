"""The file formats, both ways: CRIS commands rendered as outbox files, inbox files parsed into
commands for CRIS. No I/O here.

Outbox formats:
- `json`: the wire message (`codec.encode`, absent fields omitted) plus `session` and `received`;
- `keyvalue`: one `KEY=value` per line (`COMMAND`, `ACCESSION`, `EXAM_CODE`, `NHS`, `CHI`,
  `USERNAME`, `SESSION`, `RECEIVED`), absent fields omitted, accessions comma-separated;
- `template`: the user's `string.Template` with the placeholders in `config.PLACEHOLDERS`.
A password is never rendered, whatever the format.

Inbox files are JSON (the wire message, as CRIS would receive it) or `KEY=value` lines with the
same keys plus `PASSWORD`; which one is told by the first character.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from cris_connect import codec
from cris_connect.messages import FROM_PACS, CrisCommand, PacsCommand, UnknownCommand
from cris_connect_filedrop.config import FiledropConfig

#: keyvalue key -> attribute, in the order lines are written.
KEYVALUE_KEYS = {
    "COMMAND": "command",
    "ACCESSION": "accession",
    "EXAM_CODE": "exam_code",
    "NHS": "nhs",
    "CHI": "chi",
    "USERNAME": "username",
}
#: keyvalue keys an inbox file may use, to their wire names.
INBOX_KEYS = {
    "COMMAND": "command",
    "ACCESSION": "accession",
    "EXAM_CODE": "examCode",
    "EXAMCODE": "examCode",
    "NHS": "nhs",
    "CHI": "chi",
    "USERNAME": "username",
    "PASSWORD": "password",
}


@attrs.frozen
class Received:
    """One CRIS command as the outbox records it: what, from which session, when, in what order."""

    message: CrisCommand
    session: int
    received: datetime
    sequence: int

    @property
    def received_text(self) -> str:
        """UTC, ISO 8601 to the microsecond: `2025-01-31T09:15:02.123456Z`."""
        return self.received.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Renderer = Callable[[Received], str]


def make_renderer(config: FiledropConfig) -> Renderer:
    """The outbox format the config asks for."""
    if config.format == "keyvalue":
        return render_keyvalue
    if config.format == "template":
        template = config.outbox_template
        assert template is not None  # the config checked it
        return lambda item: render_template(template, item)
    return render_json


def _is_password(key: str) -> bool:
    return key.lower() == "password"


def render_json(item: Received) -> str:
    fields = {key: value for key, value in json.loads(codec.encode(item.message)).items()
              if not _is_password(key)}
    fields["session"] = item.session
    fields["received"] = item.received_text
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"


def _one_line(value: str) -> str:
    # A line break inside a value would start a new KEY=value line in a legacy reader.
    return " ".join(value.splitlines())


def render_keyvalue(item: Received) -> str:
    message = item.message
    lines = []
    for key, attribute in KEYVALUE_KEYS.items():
        value = getattr(message, attribute)
        if isinstance(value, tuple):
            value = ",".join(value)
        value = _one_line(value or "")
        if value:
            lines.append(f"{key}={value}")
    lines.append(f"SESSION={item.session}")
    lines.append(f"RECEIVED={item.received_text}")
    return "\n".join(lines) + "\n"


def placeholder_values(item: Received) -> dict[str, str]:
    message = item.message
    return {
        "command": message.command,
        "accession": ",".join(message.accession),
        "first_accession": message.accession[0] if message.accession else "",
        "exam_code": message.exam_code or "",
        "nhs": message.nhs or "",
        "chi": message.chi or "",
        "username": message.username or "",
        "session": str(item.session),
        "received": item.received_text,
        "sequence": str(item.sequence),
    }


def render_template(template: string.Template, item: Received) -> str:
    return template.substitute(placeholder_values(item))


# Inbox


class CommandFileError(ValueError):
    """An inbox file that is not a command for CRIS; the text says why in one sentence."""


def parse_command_file(text: str) -> PacsCommand:
    """The command an inbox file asks for, checked as `bridge.send` would check it."""
    stripped = text.strip()
    if not stripped:
        raise CommandFileError("the file is empty; write a command such as {\"command\": \"CLEAR\"}")
    if stripped[0] in "{[":
        message = _decode(text)  # unstripped: line and column numbers match the file
    else:
        message = _decode(json.dumps(parse_keyvalue(stripped)))
    if isinstance(message, UnknownCommand):
        raise CommandFileError(
            f"unknown command {message.command!r}; a command file holds one of "
            f"{', '.join(FROM_PACS)}"
        )
    try:
        codec.validate(message)
    except codec.InvalidMessage as exc:
        raise CommandFileError(str(exc)) from None
    return message


def _decode(text: str) -> PacsCommand | UnknownCommand:
    try:
        return codec.decode_for_cris(text)
    except codec.DecodeError as exc:
        raise CommandFileError(str(exc).replace("the frame", "the file")) from None


def parse_keyvalue(text: str) -> Mapping[str, Any]:
    """`KEY=value` lines into the wire object; blank lines and `#` comments are skipped.

    Unknown keys are refused rather than ignored: a misspelt ACCESSION would otherwise become
    a DISPLAY without accession, with a less helpful reason.
    """
    fields: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, equals, value = line.partition("=")
        if not equals:
            raise CommandFileError(f"line {number} is not KEY=value")
        key, value = key.strip().upper(), value.strip()
        wire = INBOX_KEYS.get(key)
        if wire is None:
            raise CommandFileError(
                f"line {number}: unknown key {key!r}; the keys are {', '.join(KEYVALUE_KEYS)}, PASSWORD"
            )
        if wire == "accession":
            # Several ACCESSION lines add up, as do comma-separated values.
            fields.setdefault("accession", []).extend(a.strip() for a in value.split(",") if a.strip())
        else:
            fields[wire] = value
    return fields
