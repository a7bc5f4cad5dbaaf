"""`[plugins.filedrop]`: the folders, which commands go out, and in what format.

The bridge structures the section into `FiledropConfig` before it starts listening, so the checks
that must stop start-up live here: a folder that cannot be created or written, a template that
cannot be read or names an unknown placeholder. (A hook that raises is only logged by the
bridge, so `bridge_started` is too late to refuse.) Checking creates missing folders, so
`cris-connect check-config` does too. Every problem is reported with its key path:
`plugins.filedrop.outbox: the folder /pacs/in ...`.
"""

from __future__ import annotations

import codecs
import os
import string
import tempfile
from pathlib import Path

import attrs
from cattrs.errors import AttributeValidationNote

from cris_connect.messages import FROM_CRIS

#: What CRIS sends; by default every one of them goes to the outbox.
CRIS_COMMANDS: tuple[str, ...] = tuple(FROM_CRIS)
FORMATS = ("json", "keyvalue", "template")
DEFAULT_EXTENSIONS = {"json": ".json", "keyvalue": ".txt"}
#: What a template may use. There is deliberately no `$password`.
PLACEHOLDERS = (
    "command", "accession", "first_accession", "exam_code", "nhs", "chi", "username",
    "session", "received", "sequence",
)
#: Names the inbox skips until they are renamed: how writers mark files still being written.
INCOMPLETE_SUFFIXES = (".tmp", ".part")
DONE_FOLDER = "done"
FAILED_FOLDER = "failed"


@attrs.frozen
class FiledropConfig:
    """The `[plugins.filedrop]` section. Set `outbox`, `inbox` or both."""

    #: Where each CRIS command is written as one file.
    outbox: Path | None = None
    #: Where command files for CRIS are picked up; `done/` and `failed/` are made inside it.
    inbox: Path | None = None
    #: Which CRIS commands become outbox files (EVENT, READONLY, COMMIT, RELEASE, LOGIN, LOGOUT).
    commands: tuple[str, ...] = CRIS_COMMANDS
    #: Outbox file format: "json", "keyvalue" or "template".
    format: str = "json"
    #: With format = "template": the template file, with `$accession`-style placeholders.
    template: Path | None = None
    #: Outbox file name extension; by default .json, .txt, or the template's own.
    extension: str | None = None
    #: Text encoding of outbox files and inbox files (legacy viewers may want "cp1252").
    encoding: str = "utf-8"
    #: Poll the inbox instead of waiting for change events (network shares may not deliver them).
    poll: bool = False
    #: Seconds between inbox scans when polling.
    poll_interval: float = 1.0
    #: Seconds an inbox file's size and time must stay unchanged before it is read.
    settle_time: float = 0.5
    #: Seconds an inbox command waits for a CRIS session before it is refused (covers start-up).
    session_wait: float = 10.0
    #: First and longest wait between retries of an outbox write that failed.
    retry_initial: float = 0.5
    retry_max: float = 30.0
    #: The template as read and checked; not a setting.
    _template: string.Template | None = attrs.field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise _settings_error(problems)

    @property
    def outbox_extension(self) -> str:
        if self.extension is not None:
            return self.extension
        if self.format == "template" and self.template is not None and self.template.suffix:
            return self.template.suffix
        return DEFAULT_EXTENSIONS.get(self.format, ".txt")

    @property
    def outbox_template(self) -> string.Template | None:
        """The template, read once when the config was checked."""
        return self._template

    def _problems(self) -> list[tuple[str, str]]:
        """(key, sentence) for every problem; key "" is the section itself."""
        problems: list[tuple[str, str]] = []
        if self.outbox is None and self.inbox is None:
            problems.append(("", "set outbox (CRIS commands out as files), inbox (command files in), "
                                 "or both"))
        if self.outbox is not None and self.inbox is not None and _same(self.outbox, self.inbox):
            problems.append(("inbox", "must not be the outbox folder; the adapter would read its own files"))
        if self.format not in FORMATS:
            problems.append(("format", f"{self.format!r} is not a format; use one of {', '.join(FORMATS)}"))
        unknown = [name for name in self.commands if name.upper() not in CRIS_COMMANDS]
        if unknown:
            problems.append(("commands", f"{', '.join(map(repr, unknown))} is not a CRIS command; "
                                         f"use any of {', '.join(CRIS_COMMANDS)}"))
        elif not self.commands and self.outbox is not None:
            problems.append(("commands", "is empty, so nothing would be written; list commands or "
                                         "remove outbox"))
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            problems.append(("encoding", f"{self.encoding!r} is not a text encoding; use e.g. \"utf-8\""))
        if self.extension is not None and not _is_extension(self.extension):
            problems.append(("extension", f"{self.extension!r} must look like \".txt\" (and not .tmp "
                                          "or .part)"))
        for key in ("poll_interval", "settle_time", "retry_initial", "retry_max"):
            if getattr(self, key) <= 0:
                problems.append((key, "must be greater than 0"))
        if self.session_wait < 0:
            problems.append(("session_wait", "must be 0 or more seconds"))
        problems.extend(self._template_problems())
        if self.outbox is not None:
            problem = check_folder(self.outbox)
            if problem:
                problems.append(("outbox", problem))
        if self.inbox is not None:
            for folder in (self.inbox, self.inbox / DONE_FOLDER, self.inbox / FAILED_FOLDER):
                problem = check_folder(folder)
                if problem:
                    problems.append(("inbox", problem))
                    break
        return problems

    def _template_problems(self) -> list[tuple[str, str]]:
        if self.format != "template":
            if self.template is not None:
                return [("template", 'is only used with format = "template"; set that or remove template')]
            return []
        if self.template is None:
            return [("template", 'format = "template" needs a template file; set template = "path"')]
        try:
            text = self.template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return [("template", f"the template {self.template} cannot be read ({_reason(exc)})")]
        template = string.Template(text)
        if not template.is_valid():
            return [("template", f"{self.template} has a '$' that is not a placeholder; write $$ for a "
                                 "literal $")]
        names = set(template.get_identifiers())
        if "password" in names:
            return [("template", f"{self.template} uses $password; passwords are never written to files")]
        unknown = sorted(names - set(PLACEHOLDERS))
        if unknown:
            return [("template", f"{self.template} uses unknown placeholder(s) "
                                 f"{', '.join('$' + n for n in unknown)}; the placeholders are "
                                 f"{', '.join('$' + n for n in PLACEHOLDERS)}")]
        object.__setattr__(self, "_template", template)  # frozen: keep what was checked
        return []


def _settings_error(problems: list[tuple[str, str]]) -> ValueError:
    """One error for the bridge to report as `plugins.filedrop.<key>: <sentence>`.

    cattrs wraps what `__init__` raises and reads the key path from an AttributeValidationNote, so
    the first problem carries one; any further problems follow in the same line with their keys.
    """
    (key, sentence), others = problems[0], problems[1:]
    text = " - and ".join([sentence, *(f"{k}: {s}" if k else s for k, s in others)])
    error = ValueError(text)
    if key:
        error.add_note(AttributeValidationNote(f"filedrop setting {key}", key, None))
    return error


def check_folder(folder: Path) -> str | None:
    """Create `folder` if missing and prove it writable; a sentence naming it when it is not.

    Writing a probe file is the only honest test: permission bits say nothing about a read-only
    share, a full disk, or a process running as root.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{folder} is a file, not a folder; remove it or choose another folder"
    except OSError as exc:
        return f"the folder {folder} cannot be created ({_reason(exc)}); create it or choose another"
    try:
        fd, probe = tempfile.mkstemp(prefix=".cris-connect-probe-", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return (f"the folder {folder} is not writable ({_reason(exc)}); let this user write to it "
                "or choose another folder")
    return None


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


def _is_extension(value: str) -> bool:
    return (value.startswith(".") and len(value) > 1 and "/" not in value and "\\" not in value
            and value.lower() not in INCOMPLETE_SUFFIXES)
