"""The CRIS Connect commands, one frozen class per command and direction.

CRIS Reporting -> PACS (what the radiologist did): `Event`, `ReadOnly`, `Commit`, `Release`,
`LoggedIn`, `LoggedOut`, and `UnknownCommand` for anything else CRIS may send one day.
PACS -> CRIS Reporting (what CRIS should do): `Display`, `Clear`, `Logout`, `Login`.

The wire format (`examCode`, omitted absent fields, ...) lives in `codec`; these classes are
plain values with snake_case names. Accessions are kept as tuples so messages stay hashable and
immutable; any iterable of strings is accepted when building one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from cris_connect.masking import masked_repr


def _accessions(value: str | Iterable[str]) -> tuple[str, ...]:
    # A lone string would otherwise become a tuple of characters.
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


def _hidden(value: object) -> str:
    return "None" if value is None else "'***'"


def _extra_repr(value: Mapping[str, Any]) -> str:
    # Unknown fields may carry anything, a password included: never show their values.
    return "{" + ", ".join(f"{key!r}: ..." for key in value) + "}"


@attrs.frozen
class Message:
    """A CRIS Connect message; `command` is its wire name."""

    command: ClassVar[str] = ""


@attrs.frozen
class CrisCommand(Message):
    """A command CRIS Reporting sent: what the radiologist did.

    CRIS fills in the fields it has; anything it sends that the specification does not name is
    kept in `extra` so a plugin can still read it.
    """

    accession: tuple[str, ...] = attrs.field(default=(), converter=_accessions)
    exam_code: str | None = None
    nhs: str | None = attrs.field(default=None, repr=masked_repr)
    chi: str | None = attrs.field(default=None, repr=masked_repr)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=_hidden)
    extra: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=_extra_repr, eq=False, hash=False
    )


@attrs.frozen
class Event(CrisCommand):
    """A report was opened, or a single exam's report selected (EVENT)."""

    command: ClassVar[str] = "EVENT"


@attrs.frozen
class ReadOnly(CrisCommand):
    """A historic report was opened for reading (READONLY)."""

    command: ClassVar[str] = "READONLY"


@attrs.frozen
class Commit(CrisCommand):
    """The report was saved, verified or finished (COMMIT); RELEASE follows."""

    command: ClassVar[str] = "COMMIT"


@attrs.frozen
class Release(CrisCommand):
    """The report was left: saved, skipped, cancelled or exited (RELEASE)."""

    command: ClassVar[str] = "RELEASE"


@attrs.frozen
class LoggedIn(CrisCommand):
    """The radiologist logged in to CRIS Reporting (LOGIN from CRIS)."""

    command: ClassVar[str] = "LOGIN"


@attrs.frozen
class LoggedOut(CrisCommand):
    """The radiologist logged out of CRIS Reporting (LOGOUT from CRIS)."""

    command: ClassVar[str] = "LOGOUT"


@attrs.frozen
class UnknownCommand(Message):
    """A JSON object whose command this version does not know; `raw` is the whole object."""

    command: str  # type: ignore[misc]  # an instance field here, a class constant elsewhere
    raw: Mapping[str, Any] = attrs.field(converter=_frozen_mapping, repr=_extra_repr, eq=False)


@attrs.frozen
class PacsCommand(Message):
    """A command for CRIS Reporting, sent with `bridge.send`."""


@attrs.frozen
class Display(PacsCommand):
    """Ask CRIS to display the report for these accession numbers (DISPLAY)."""

    command: ClassVar[str] = "DISPLAY"
    accession: tuple[str, ...] = attrs.field(default=(), converter=_accessions)
    exam_code: str | None = None
    nhs: str | None = attrs.field(default=None, repr=masked_repr)
    chi: str | None = attrs.field(default=None, repr=masked_repr)


@attrs.frozen
class Clear(PacsCommand):
    """Ask CRIS to clear the report and return to the worklist (CLEAR)."""

    command: ClassVar[str] = "CLEAR"


@attrs.frozen
class Logout(PacsCommand):
    """Ask CRIS to log the radiologist out (LOGOUT to CRIS)."""

    command: ClassVar[str] = "LOGOUT"


@attrs.frozen
class Login(PacsCommand):
    """Ask CRIS to log in with these credentials (LOGIN to CRIS)."""

    command: ClassVar[str] = "LOGIN"
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=_hidden)


FROM_CRIS: Mapping[str, type[CrisCommand]] = MappingProxyType(
    {cls.command: cls for cls in (Event, ReadOnly, Commit, Release, LoggedIn, LoggedOut)}
)
FROM_PACS: Mapping[str, type[PacsCommand]] = MappingProxyType(
    {cls.command: cls for cls in (Display, Clear, Logout, Login)}
)
