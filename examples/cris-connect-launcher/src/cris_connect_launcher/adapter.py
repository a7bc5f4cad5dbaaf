"""The launcher adapter: CRIS opens a report -> run the viewer's command line with its accession.

Commands run with `anyio.run_process`, so a slow viewer delays only this adapter's own queue,
never CRIS or another adapter; each is stopped after `timeout` seconds. Failures are logged
with the reason and the adapter carries on with the next command from CRIS.
"""

from __future__ import annotations

import logging

import anyio

from cris_connect import Bridge, Event, ReadOnly, Release, hookimpl
from cris_connect_launcher.settings import LauncherSettings

log = logging.getLogger(__name__)


class Launcher:
    name = "launcher"

    def __init__(self) -> None:
        self.settings = LauncherSettings()

    @hookimpl
    def register_config_class(self) -> type:
        return LauncherSettings

    @hookimpl
    def bridge_started(self, bridge: Bridge, config: LauncherSettings | None) -> None:
        self.settings = config or LauncherSettings()

    @hookimpl
    async def on_event(self, message: Event) -> None:
        await self.run("open", self.settings.open, message.accession, message.exam_code)

    @hookimpl
    async def on_readonly(self, message: ReadOnly) -> None:
        await self.run("open", self.settings.open, message.accession, message.exam_code)

    @hookimpl
    async def on_release(self, message: Release) -> None:
        if self.settings.close:
            await self.run("close", self.settings.close, message.accession, message.exam_code)

    async def run(self, key: str, command: tuple[str, ...], accession: tuple[str, ...],
                  exam_code: str | None) -> None:
        if not accession and any("{accession}" in part for part in command):
            log.warning("CRIS sent no accession number; %s command not run", key)
            return
        args = [part.format(accession=",".join(accession), exam_code=exam_code or "") for part in command]
        with anyio.move_on_after(self.settings.timeout) as deadline:
            try:
                result = await anyio.run_process(args, check=False)
            except OSError as exc:
                log.warning("the %s command %s could not start (%s); check [plugins.launcher] %s",
                            key, args[0], exc.strerror or exc, key)
                return
        if deadline.cancelled_caught:
            log.warning("the %s command %s did not finish within %g s (plugins.launcher.timeout); "
                        "stopped it", key, args[0], self.settings.timeout)
        elif result.returncode != 0:
            reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            log.warning("the %s command %s exited with %d: %s", key, args[0], result.returncode, reason[0])
        else:
            log.info("%s: ran %s for %s", key, args[0], ",".join(accession))


#: The entry point's target.
launcher = Launcher()
