"""The snapshot the console page shows: `GET /api/status` answers it as JSON.

Nothing in it identifies a patient in clear: NHS and CHI numbers are masked (always - the console
is a screen on a ward), passwords never appear, and commands are the same one-line summaries the
log writes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from cris_connect.__about__ import __version__
from cris_connect.masking import mask_identifier

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge
    from cris_connect.console.server import Console
    from cris_connect.context import Context
    from cris_connect.session import Session


def _masked(value: str | None) -> str | None:
    return None if value is None else mask_identifier(value)


def context_view(context: Context) -> dict[str, Any]:
    return {
        "logged_in": context.logged_in,
        "report_open": context.report_open,
        "accession": list(context.accession),
        "exam_code": context.exam_code,
        "nhs": _masked(context.nhs),
        "chi": _masked(context.chi),
        "read_only": context.read_only,
    }


def session_view(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "peer": session.peer,
        "origin": session.origin,
        "secure": session.secure,
        "opened_at": session.opened_at,
        "context": context_view(session.context),
    }


def plugin_views(bridge: Bridge) -> list[dict[str, Any]]:
    views = []
    for name, runner in bridge.runners.items():
        problems = []
        if runner.failures:
            problems.append(f"{runner.failures} hook failure(s)")
        if runner.overflowed:
            problems.append(f"{runner.overflowed} command(s) missed (mailbox full)")
        if runner.finished.is_set():
            problems.append("stopped")
        views.append({
            "name": name,
            "health": "ok" if not problems else "; ".join(problems),
            "hooks": sorted(runner.callers),
            "delivered": runner.delivered,
            "queued": runner.queued,
            "failures": runner.failures,
            "overflowed": runner.overflowed,
        })
    return views


def snapshot(bridge: Bridge, console: Console) -> dict[str, Any]:
    activity = bridge.activity
    counts: dict[str, dict[str, int]] = {}
    for (direction, command), count in sorted(activity.counts.items()):
        counts.setdefault(direction, {})[command] = count
    uptime = time.monotonic() - bridge.started_at if bridge.started_at is not None else 0.0
    return {
        "seq": activity.seq,
        "version": __version__,
        "status": bridge.health()["status"],
        "uptime_s": round(uptime, 1),
        "listening": {
            "url": bridge.url,
            "tls": not bridge.config.server.plain,
            "certificate": console.certificate,
            "allowed_origins": list(bridge.config.server.allowed_origins),
        },
        "console": {
            "simulator": console.config.simulator,
            "send_panel": console.config.send_panel,
            "metrics": console.config.metrics,
            "bridge_url": bridge.url,
        },
        "plugins": plugin_views(bridge),
        "sessions": [session_view(session) for session in bridge.sessions],
        "commands": [
            {"seq": e.seq, "at": e.at, "direction": e.direction, "command": e.command,
             "summary": e.summary, "sessions": list(e.sessions)}
            for e in activity.entries
        ],
        "counts": counts,
    }
