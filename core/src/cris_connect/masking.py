"""Patient identifiers in logs: NHS and CHI numbers are shown masked unless the operator opts in.

A masked number keeps its last three digits, enough for an integrator to tell two patients apart
in a log without the log identifying either.
"""

from __future__ import annotations

_KEEP = 3


def mask_identifier(value: str) -> str:
    """`9434765919` -> `*******919`; short values are hidden entirely."""
    if len(value) <= _KEEP * 2:
        return "*" * len(value)
    return "*" * (len(value) - _KEEP) + value[-_KEEP:]


def masked_repr(value: str | None) -> str:
    """The `repr` of an NHS or CHI number field, masked."""
    return "None" if value is None else repr(mask_identifier(value))


def describe(message: object, *, show_identifiers: bool = False) -> str:
    """One log-safe line for a message: `EVENT accession=RX1 examCode=CT nhs=*******919`.

    Passwords never appear; NHS and CHI numbers are masked unless `show_identifiers`.
    """
    from cris_connect.codec import WIRE_NAMES  # late: codec imports messages, which imports us

    parts = [str(getattr(message, "command", type(message).__name__))]
    for name in ("accession", "exam_code", "nhs", "chi", "username", "password"):
        value = getattr(message, name, None)
        if not value:
            continue
        if name == "password":
            shown = "***"
        elif name in ("nhs", "chi") and not show_identifiers:
            shown = mask_identifier(value)
        elif isinstance(value, tuple):
            shown = ",".join(value)
        else:
            shown = value
        parts.append(f"{WIRE_NAMES.get(name, name)}={shown}")
    extra = getattr(message, "extra", None) or getattr(message, "raw", None)
    if extra:
        parts.append("fields=" + ",".join(sorted(str(key) for key in extra)))
    return " ".join(parts)


def loggable(text: str, limit: int = 120) -> str:
    """Text a client chose, for a log line: control characters escaped, cut to `limit`."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
