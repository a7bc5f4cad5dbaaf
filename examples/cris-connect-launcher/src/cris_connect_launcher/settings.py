"""`[plugins.launcher]`: which commands to run. The bridge refuses a bad section before start-up."""

from __future__ import annotations

import attrs

PLACEHOLDERS = ("accession", "exam_code")


def _command(instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    # The bridge reports a validator's error with its key path: `plugins.launcher.open: <text>`.
    for part in value:
        try:
            part.format(**dict.fromkeys(PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{part!r} uses an unknown placeholder ({exc}); "
                f"the placeholders are {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
            ) from None


def _program(instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("must name the viewer's program, e.g. "
                         '["myviewer", "{accession}"]')


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be a number of seconds greater than 0, got {value}")


@attrs.frozen
class LauncherSettings:
    #: Run when a report is opened (EVENT) or a historic one read (READONLY).
    open: tuple[str, ...] = attrs.field(default=("myviewer", "--accession", "{accession}"),
                                        validator=[_program, _command])
    #: Run when the radiologist leaves the report (RELEASE); empty does nothing.
    close: tuple[str, ...] = attrs.field(default=(), validator=_command)
    #: Seconds a command may run before it is stopped.
    timeout: float = attrs.field(default=10.0, validator=_positive)
