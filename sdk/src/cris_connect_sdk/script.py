"""Simulator scripts: what the radiologist does and what CRIS then expects, step by step.

A script is JSON lines (one object per line) or TOML (`[[step]]` tables). Each step is one of:

    {"do": "open", "accession": "RX123", "exam_code": "CCHES", "nhs": "9434765919"}
    {"expect": "DISPLAY", "accession": ["RX123"], "timeout": 2}
    {"expect_nothing": 0.5}
    {"send": {"command": "PREFETCH", "accession": ["RX124"]}}    (any frame, raw)

`do` is one of: login, logout, open, select, historic, save, skip (see `ACTIONS`). The interactive
console reads the same steps as words: `open RX123 CCHES 9434765919`, `expect DISPLAY RX123`.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from cris_connect.messages import FROM_PACS, PacsCommand
from cris_connect_sdk.simulator import CrisReporting

#: `do` names -> (simulator method, the fields it takes)
ACTIONS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "login": ("login", ("username", "password")),
    "logout": ("logout", ()),
    "open": ("open_report", ("accession", "exam_code", "nhs", "chi")),
    "select": ("select_exam", ("accession", "exam_code", "nhs", "chi")),
    "historic": ("open_historic", ("accession", "exam_code", "nhs", "chi")),
    "save": ("save_report", ("accession",)),
    "skip": ("skip_report", ("accession",)),
}
EXPECT_FIELDS = ("accession", "exam_code", "nhs", "chi", "username", "timeout")


class ScriptError(ValueError):
    """A script that cannot be run; the text names the line (or step) and the fix."""


@attrs.frozen
class Step:
    """One thing to do or check, and where it came from (`line 3`) for reports."""

    kind: str  # do | expect | expect_nothing | send
    value: Any
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    where: str = ""

    def describe(self) -> str:
        if self.kind == "send":
            return "send a raw frame"
        details = " ".join(f"{k}={_show(v)}" for k, v in self.fields.items() if k != "password")
        if self.kind == "do":
            return f"{self.value} {details}".strip()
        value = f"{self.value:g} s" if self.kind == "expect_nothing" else self.value
        return f"{self.kind} {value} {details}".strip()


def _show(value: Any) -> str:
    return ",".join(value) if isinstance(value, list | tuple) else str(value)


def step_from_mapping(data: Mapping[str, Any], where: str) -> Step:
    """A step from one JSON object or TOML table; `ScriptError` says what is wrong with it."""
    kinds = [kind for kind in ("do", "expect", "expect_nothing", "send") if kind in data]
    if len(kinds) != 1:
        raise ScriptError(f"{where}: a step has exactly one of do, expect, expect_nothing, send "
                          f"(got {', '.join(sorted(data)) or 'nothing'})")
    kind = kinds[0]
    value = data[kind]
    fields = {key: item for key, item in data.items() if key != kind}
    if kind == "do":
        if value not in ACTIONS:
            raise ScriptError(f"{where}: do = {value!r} is not an action; use one of {', '.join(ACTIONS)}")
        allowed: tuple[str, ...] = ACTIONS[value][1]
        if "accession" in allowed and "accession" not in fields:
            raise ScriptError(f"{where}: do = {value!r} needs an accession")
    elif kind == "expect":
        if not isinstance(value, str) or (value.upper() not in FROM_PACS and value.upper() != "ANY"):
            raise ScriptError(f"{where}: expect = {value!r}; use one of {', '.join(FROM_PACS)} or ANY")
        value = value.upper()
        allowed = EXPECT_FIELDS
    elif kind == "expect_nothing":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ScriptError(f"{where}: expect_nothing takes a number of seconds, got {value!r}")
        allowed = ()
    else:
        if not isinstance(value, str | dict):
            raise ScriptError(f"{where}: send takes a JSON object or a string, got {value!r}")
        allowed = ()
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ScriptError(f"{where}: unknown key {', '.join(unknown)} for {kind}; known keys: "
                          f"{', '.join(allowed) or 'none'}")
    return Step(kind, value, fields, where)


def load_script(path: Path) -> list[Step]:
    """Read a `.toml` script (`[[step]]` tables) or a JSON-lines script (anything else)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"script {path} cannot be read ({exc.strerror or exc})") from None
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScriptError(f"{path}: not valid TOML ({exc})") from None
        extra = sorted(set(data) - {"step"})
        if extra or not isinstance(data.get("step"), list):
            raise ScriptError(f"{path}: a TOML script is a list of [[step]] tables"
                              + (f" (unexpected: {', '.join(extra)})" if extra else ""))
        return [step_from_mapping(table, f"{path.name} step {i}") for i, table in enumerate(data["step"], 1)]
    steps = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path.name} line {number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise ScriptError(f"{where}: not a JSON object ({exc})") from None
        if not isinstance(data, dict):
            raise ScriptError(f"{where}: each line is one JSON object, e.g. {{\"do\": \"login\"}}")
        steps.append(step_from_mapping(data, where))
    return steps


def step_from_words(line: str) -> Step:
    """The console's shorthand: `open RX123 CCHES 9434765919`, `expect DISPLAY RX123`, `nothing 1`."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ScriptError(f"cannot read that ({exc})") from None
    if not words:
        raise ScriptError("type an action; `help` lists them")
    head, rest = words[0].lower(), words[1:]
    if head in ACTIONS:
        names = ACTIONS[head][1]
        if len(rest) > len(names):
            raise ScriptError(f"{head} takes at most: {' '.join(names).upper()}")
        fields: dict[str, Any] = dict(zip(names, rest, strict=False))
        if "accession" in fields:
            fields["accession"] = fields["accession"].split(",")
        return step_from_mapping({"do": head, **fields}, "console")
    if head == "expect":
        if not rest:
            raise ScriptError("expect what? e.g. `expect DISPLAY RX123`")
        fields = {"accession": rest[1].split(",")} if len(rest) > 1 else {}
        return step_from_mapping({"expect": rest[0], **fields}, "console")
    if head == "nothing":
        return step_from_mapping({"expect_nothing": float(rest[0]) if rest else 0.5}, "console")
    if head == "send":
        text = line.strip()[len(words[0]):].strip()
        return step_from_mapping({"send": text}, "console")
    raise ScriptError(f"unknown action {words[0]!r}; `help` lists them")


async def run_step(cris: CrisReporting, step: Step) -> None:
    """Do one step; an expectation that is not met raises `ExpectationFailed`."""
    if step.kind == "do":
        method, _ = ACTIONS[step.value]
        fields = dict(step.fields)
        accession = fields.pop("accession", None)
        if accession is not None:
            await getattr(cris, method)(accession, **fields)
        else:
            await getattr(cris, method)(**fields)
    elif step.kind == "expect":
        fields = dict(step.fields)
        timeout = float(fields.pop("timeout", 2.0))
        kind: type[Any] = PacsCommand if step.value == "ANY" else FROM_PACS[step.value]
        await cris.expect(kind, timeout=timeout, **fields)
    elif step.kind == "expect_nothing":
        await cris.expect_nothing(for_=float(step.value))
    else:
        await cris.send_text(step.value if isinstance(step.value, str) else json.dumps(step.value))
