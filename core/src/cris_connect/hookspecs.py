"""The hooks an adapter implements. Every hook is documented in docs/hooks.md.

Implement any of them with `@cris_connect.hookimpl` on a module or object, as a plain function or
`async def`; the bridge awaits what a hook returns. An implementation may accept fewer arguments
than the specification names, so new arguments can be added here later without breaking anyone.

Guarantees, for every hook below that is about a session or a command:
- each plugin has its own ordered mailbox and task: a plugin sees commands in the order they
  arrived, and a slow or hanging plugin never delays another plugin;
- a hook that raises, or runs longer than `[plugins] hook_timeout` seconds, is logged with the
  plugin's name, the command and the session, and the bridge goes on.
Sync hooks run on the event loop: keep them quick, or do blocking work in
`anyio.to_thread.run_sync`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge
    from cris_connect.context import Context
    from cris_connect.doctor import Check
    from cris_connect.messages import (
        Commit,
        CrisCommand,
        Event,
        LoggedIn,
        LoggedOut,
        PacsCommand,
        ReadOnly,
        Release,
        UnknownCommand,
    )
    from cris_connect.session import Session
    from cris_connect.studies import StudyLookup

PROJECT = "cris_connect"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# Set-up


@hookspec
def register_config_class() -> type | None:  # type: ignore[empty-body]
    """Return the attrs class that this plugin's `[plugins.<name>]` section is structured into.

    The bridge structures the section with cattrs before start-up; a bad value stops start-up
    with the key path (`plugins.filedrop.outbox: expected a path`). Called once per plugin.
    """


@hookspec
def bridge_started(bridge: Bridge, config: Any) -> None:
    """The bridge is listening. Keep `bridge` to send commands to CRIS later.

    :param config: this plugin's structured config (an instance of the class from
        `register_config_class`), or None when it declares none.
    Runs in the plugin's own task before any session hook; start background work here
    (`bridge.start_soon`).
    """


@hookspec
def bridge_stopping(bridge: Bridge) -> None:
    """The bridge is shutting down: no new sessions; finish or hand over pending work.

    Called after every queued command has been delivered or the drain deadline passed.
    """


# Sessions


@hookspec
def session_opened(session: Session) -> None:
    """A CRIS Reporting client connected (its context is empty)."""


@hookspec
def session_closed(session: Session, reason: str) -> None:
    """A CRIS Reporting client went away; `reason` says how (close code, timeout, EOF)."""


# CRIS -> PACS commands


@hookspec
def on_command(message: CrisCommand | UnknownCommand, context: Context, session: Session) -> None:
    """Every command CRIS sent, known or not, before the command's own hook.

    :param context: the session's context right after this command.
    """


@hookspec
def on_event(message: Event, context: Context, session: Session) -> None:
    """EVENT: a report was opened or a single exam selected - show its images."""


@hookspec
def on_readonly(message: ReadOnly, context: Context, session: Session) -> None:
    """READONLY: a historic report was opened for reading."""


@hookspec
def on_commit(message: Commit, context: Context, session: Session) -> None:
    """COMMIT: the report was saved (verified or finished). RELEASE follows."""


@hookspec
def on_release(message: Release, context: Context, session: Session) -> None:
    """RELEASE: the radiologist left the report (saved, skipped, cancelled) - clear the display."""


@hookspec
def on_login(message: LoggedIn, context: Context, session: Session) -> None:
    """LOGIN from CRIS: the radiologist logged in."""


@hookspec
def on_logout(message: LoggedOut, context: Context, session: Session) -> None:
    """LOGOUT from CRIS: the radiologist logged out."""


@hookspec
def on_unknown_command(message: UnknownCommand, context: Context, session: Session) -> None:
    """A command this version does not know; `message.raw` is the whole JSON object."""


@hookspec
def on_refused(session: Session, reason: str) -> None:
    """A frame from CRIS that was not a message (bad JSON, wrong field type, binary, too big).

    `reason` is the sentence that was logged; the session stays open where the protocol allows.
    """


@hookspec
def on_studies_found(lookup: StudyLookup) -> None:
    """An archive adapter published what it found for one accession (`bridge.studies`).

    `lookup.status` is "found", "not_found" or "failed". To wait for a lookup while handling a
    command, use `await bridge.studies.wait_for(accession, timeout)` instead.
    """


# PACS -> CRIS commands


@hookspec
def on_sent(message: PacsCommand, sessions: tuple[Session, ...]) -> None:
    """A command was sent to CRIS (by any plugin) and reached these sessions."""


# Checks


@hookspec
def doctor_checks(config: Any) -> Iterable[Check] | Awaitable[Iterable[Check]]:  # type: ignore[empty-body]
    """`cris-connect doctor`: check that what this adapter drives is there and answers.

    :param config: this plugin's structured config, as `bridge_started` gets it; no bridge is
        running (the bridge may even be stopped), so do not expect one.
    Return a list of `cris_connect.doctor.Check(name, ok, detail, fix)`: archive URL answers,
    browser debugging port answers, folder writable. May be `async def` (network checks should
    be); each plugin's checks get `doctor.PLUGIN_TIMEOUT` seconds. Raising, or running out of
    time, is reported as a failed check naming the plugin.
    """
