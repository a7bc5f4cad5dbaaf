"""Text frames <-> messages. No I/O.

One cattrs converter, made by `make_converter()`, knows the wire names (`examCode`), omits absent
fields when encoding (as the vendor's example programs do) and checks field types when decoding.
Decoding is lenient where the meaning is clear (a lone accession string is a one-item list, an
unknown field is kept, the command's case is ignored) and otherwise raises `DecodeError` - and
nothing else - with one sentence naming the field and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from cris_connect.messages import (
    FROM_CRIS,
    FROM_PACS,
    CrisCommand,
    Display,
    Login,
    Message,
    PacsCommand,
    UnknownCommand,
)

WIRE_NAMES = {"exam_code": "examCode"}


class DecodeError(ValueError):
    """A frame that is not a CRIS Connect message; the text says what is wrong and where."""


class InvalidMessage(ValueError):
    """A message that must not be sent to CRIS; the text says which field to fix."""


def _describe(value: object) -> str:
    # An array or object may carry anything - a password under any name - so only its kind is shown.
    if isinstance(value, (list, dict)):
        return _json_kind(value)
    text = json.dumps(value) if _is_json(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_json(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _structure_text(value: object, _: type) -> str:
    # cattrs would turn 12 into "12"; a number where CRIS promises text is a fault to report.
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    return value


def _structure_accessions(value: object, _: type) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of accession numbers, got {_describe(value)}")
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"expected accession numbers as strings, got {_describe(item)}")
    return tuple(value)


def make_converter() -> cattrs.Converter:
    """The converter for every message class: wire names, omitted absent fields, strict types."""
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(str, _structure_text)
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_accessions)
    converter.register_unstructure_hook(tuple, list)
    for cls in (*FROM_CRIS.values(), *FROM_PACS.values()):
        renames = {
            field.name: override(rename=WIRE_NAMES.get(field.name), omit=field.name == "extra")
            for field in attrs.fields(cls)
        }
        converter.register_structure_hook(
            cls, make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]
        )
        converter.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(
                cls, converter, _cattrs_omit_if_default=True, **renames  # type: ignore[arg-type]
            ),
        )
    return converter


_converter = make_converter()


# The wire names each class knows; anything else CRIS sends is kept in `extra`.
_WIRE_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(WIRE_NAMES.get(f.name, f.name) for f in attrs.fields(cls) if f.name != "extra")
    for cls in (*FROM_CRIS.values(), *FROM_PACS.values())
}


#: Fields whose value must never be echoed in an error (it is logged and passed to plugins).
SENSITIVE = frozenset({"password", "nhs", "chi"})


def _explain(command: str, exc: Exception, obj: Mapping[str, Any]) -> str:
    problems = []
    for line in cattrs.transform_error(exc, path="", format_exception=_format_problem):
        problem, _, where = line.rpartition(" @ ")
        attribute = where.lstrip(".").split("[")[0].split(".")[0] or "?"
        field = WIRE_NAMES.get(attribute, attribute)
        if field in SENSITIVE:  # say what kind of value it was, never the value
            problem = f"{problem.split(', got ')[0]}, got {_json_kind(obj.get(field))}"
        problems.append(f"field {field!r}: {problem}")
    return f"{command}: " + "; ".join(problems)


def _format_problem(exc: BaseException, _: type | None) -> str:
    if isinstance(exc, ValueError):
        return str(exc)
    return f"unexpected value ({type(exc).__name__})"


def _json_kind(value: object) -> str:
    return {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _decode(data: str | bytes, registry: Mapping[str, type[Message]]) -> Message:
    try:
        obj = json.loads(data)
    except RecursionError:
        raise DecodeError("the frame is JSON nested too deeply to be a CRIS Connect message") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise DecodeError(f"the frame is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise DecodeError(f"the frame is {_json_kind(obj)}, but a CRIS Connect message is a JSON object")
    command = obj.get("command")
    if command is None:
        raise DecodeError("the message has no 'command' field")
    if not isinstance(command, str):
        raise DecodeError(f"field 'command': expected a string, got {_describe(command)}")
    cls = registry.get(command.strip().upper())
    if cls is None:
        return UnknownCommand(command=command, raw=obj)
    try:
        message = _converter.structure(obj, cls)
    except Exception as exc:  # cattrs gathers every field's problem into one group
        raise DecodeError(_explain(cls.command, exc, obj)) from None
    if isinstance(message, CrisCommand):
        known = _WIRE_FIELDS[cls]
        extra = {key: value for key, value in obj.items() if key not in known and key != "command"}
        if extra:
            message = attrs.evolve(message, extra=extra)
    return message


def decode(data: str | bytes) -> CrisCommand | UnknownCommand:
    """Decode a frame CRIS Reporting sent (EVENT, READONLY, ...)."""
    return _decode(data, FROM_CRIS)  # type: ignore[return-value]


def decode_for_cris(data: str | bytes) -> PacsCommand | UnknownCommand:
    """Decode a frame a PACS side sent to CRIS (DISPLAY, CLEAR, ...): the simulator's view."""
    return _decode(data, FROM_PACS)  # type: ignore[return-value]


def validate(message: PacsCommand) -> None:
    """Refuse what CRIS could not act on; raises `InvalidMessage` naming the field."""
    if isinstance(message, Display):
        if not message.accession:
            raise InvalidMessage("DISPLAY needs at least one accession number in 'accession'")
        for item in message.accession:
            if not isinstance(item, str) or not item.strip():
                raise InvalidMessage(
                    f"DISPLAY 'accession' must hold non-empty strings, got {_describe(item)}"
                )
    elif isinstance(message, Login):
        for name in ("username", "password"):
            value = getattr(message, name)
            if not isinstance(value, str) or not value:
                raise InvalidMessage(f"LOGIN needs a non-empty '{name}'")


def encode(message: Message) -> str:
    """The JSON text frame for a message, absent fields omitted: `{"command":"CLEAR"}`."""
    if isinstance(message, UnknownCommand):
        return json.dumps(dict(message.raw), separators=(",", ":"))
    if isinstance(message, PacsCommand):
        validate(message)
    fields: dict[str, Any] = {"command": message.command}
    fields.update(_converter.unstructure(message))
    if isinstance(message, CrisCommand):
        for key, value in message.extra.items():
            fields.setdefault(key, value)
    return json.dumps(fields, separators=(",", ":"))
