"""Built-in plugin `log`: every command both ways, one line each, safe to leave on in a hospital.

NHS and CHI numbers are masked unless `[logging] show_identifiers = true`; passwords never appear.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cris_connect.hookspecs import hookimpl
from cris_connect.masking import describe

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge
    from cris_connect.context import Context
    from cris_connect.messages import CrisCommand, PacsCommand, UnknownCommand
    from cris_connect.session import Session

name = "log"
log = logging.getLogger("cris_connect.log")
_show_identifiers = False


@hookimpl
def bridge_started(bridge: Bridge, config: Any) -> None:
    global _show_identifiers
    _show_identifiers = bridge.config.logging.show_identifiers


@hookimpl
def on_command(message: CrisCommand | UnknownCommand, context: Context, session: Session) -> None:
    log.info("%s <- %s", session, describe(message, show_identifiers=_show_identifiers))


@hookimpl
def on_sent(message: PacsCommand, sessions: tuple[Session, ...]) -> None:
    targets = ", ".join(f"session {s.id}" for s in sessions)
    log.info("%s -> %s", targets, describe(message, show_identifiers=_show_identifiers))
