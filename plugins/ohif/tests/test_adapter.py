"""The adapter in a real bridge, steering a real headless Chromium, with a stand-in OHIF and archive.

Fast (no OHIF build, no Orthanc): the site answers every path with one page, as OHIF's single-page
fallback does, and answers QIDO from a table. test_e2e.py does the same against the real viewer.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from cris_connect import Clear, Display, Event, hookimpl
from cris_connect.studies import Study, StudyLookup
from cris_connect_ohif import OhifPlugin, study_list_url, viewer_url
from plugins.ohif.tests.helpers import (
    FakeOhif,
    cris_client,
    open_in_viewer,
    page,
    reset_tabs,
    running_bridge,
    settled,
    tab_url,
    wait_for,
)
from tests.support.ports import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.services]

UID1, UID2, UID3 = "1.2.826.0.1.3680043.10.1", "1.2.826.0.1.3680043.10.2", "1.2.826.0.1.3680043.10.3"


@pytest.fixture(autouse=True)
def fresh_tabs(browser: Any) -> None:
    reset_tabs(browser.debug_url)


def settings(site: FakeOhif, browser: Any, **more: Any) -> dict[str, Any]:
    return {"url": site.base_url, "cdp_url": browser.debug_url, **more}


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]


async def test_event_shows_the_study_in_a_tab_it_opens(fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await cris.send("EVENT", accession=["RX1"], examCode="CHEST")
        navigation = await settled(adapter, 1)

        assert navigation.outcome == "shown", navigation
        assert navigation.url == viewer_url(fake_ohif.base_url, [UID1])
        assert await tab_url(adapter) == navigation.url
        assert navigation.received < navigation.navigated < navigation.loaded  # type: ignore[operator]
        assert fake_ohif.queries == [{"AccessionNumber": ["RX1"]}]


async def test_several_accessions_make_one_viewer_url(fake_ohif: FakeOhif, browser: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fake_ohif.add("RX1", UID1)
    fake_ohif.add("RX2", UID2, UID3)  # one accession, two studies (e.g. a split exam)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await cris.send("READONLY", accession=["RX1", "RX2", "RX404"])
        navigation = await settled(adapter, 1)

        assert navigation.study_instance_uids == (UID1, UID2, UID3)
        assert await tab_url(adapter) == viewer_url(fake_ohif.base_url, [UID1, UID2, UID3])
        assert warnings(caplog, "none found for RX404")


async def test_unknown_accession_clears_the_previous_patient(fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX1")
        await settled(adapter, 1)
        await cris.send("EVENT", accession="RX404")
        navigation = await settled(adapter, 2)

        assert navigation.outcome == "nothing to show"
        assert await tab_url(adapter) == study_list_url(fake_ohif.base_url, accessions=["RX404"])


@pytest.mark.parametrize("command", ["RELEASE", "LOGOUT", "CLEAR"])
async def test_leaving_the_report_returns_to_the_study_list(fake_ohif: FakeOhif, browser: Any,
                                                            command: str) -> None:
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX1")
        await settled(adapter, 1)
        if command == "CLEAR":
            await bridge.send(Clear())  # as another plugin would: seen through on_sent
            assert isinstance(await cris.expect(), Clear)
        else:
            await cris.send(command, accession="RX1")
        navigation = await settled(adapter, 2)

        assert navigation.outcome == "shown"
        assert await tab_url(adapter) == f"{fake_ohif.base_url}/"


async def test_release_to_a_blank_page_or_nowhere(fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser, on_release="blank")) as (bridge, adapter), \
            cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX1")
        await settled(adapter, 1)
        await cris.send("RELEASE", accession="RX1")
        await settled(adapter, 2)
        assert await tab_url(adapter) == "about:blank"
        # The blank tab is still ours: the next report reuses it rather than opening another.
        await cris.send("EVENT", accession="RX1")
        assert (await settled(adapter, 3)).target_id == adapter.navigations[0].target_id

    async with running_bridge(settings(fake_ohif, browser, on_release="keep")) as (bridge, adapter), \
            cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX1")
        await settled(adapter, 1)
        await cris.send("RELEASE", accession="RX1")
        await cris.send("EVENT", accession="RX1")  # a barrier: the RELEASE was handled before it
        assert (await settled(adapter, 2)).outcome == "already shown"
        assert len(adapter.navigations) == 2


async def test_opening_a_study_in_the_viewer_tells_cris_and_nothing_else(
        fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    fake_ohif.add("RX2", UID2)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await adapter.wait_watching(10)
        await cris.send("EVENT", accession="RX1")
        await settled(adapter, 1)

        async with page(adapter) as tab:
            await open_in_viewer(tab, UID2)  # the radiologist, inside the viewer
            assert await cris.expect() == Display(accession=["RX2"])

            # CRIS opens that report: the viewer already shows it, so it is not reloaded ...
            await cris.send("EVENT", accession="RX2")
            assert (await settled(adapter, 2)).outcome == "already shown"
            # ... and the next thing CRIS hears is the radiologist's next study: nothing came between.
            await open_in_viewer(tab, UID1)
            assert await cris.expect() == Display(accession=["RX1"])
        assert cris.received == [Display(accession=["RX2"]), Display(accession=["RX1"])]
        assert list(adapter.displays) == cris.received


async def test_own_navigation_is_never_echoed(fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    fake_ohif.add("RX2", UID2)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await adapter.wait_watching(10)
        for n, accession in enumerate(["RX1", "RX2", "RX1"], start=1):
            await cris.send("EVENT", accession=accession)
            assert (await settled(adapter, n)).outcome == "shown"
        await cris.send("RELEASE")
        await settled(adapter, 4)
        # The tab went RX1 -> RX2 -> RX1 -> study list, all by the adapter. A radiologist's change
        # now is the first thing CRIS hears.
        async with page(adapter) as tab:
            await open_in_viewer(tab, UID2)
            assert await cris.expect() == Display(accession=["RX2"])
        assert len(cris.received) == 1


async def test_a_study_the_viewer_cannot_find_is_reported_once(fake_ohif: FakeOhif, browser: Any,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    fake_ohif.add("RX9", "9.9.9.1")  # the fake OHIF answers /notfoundstudy for these, as OHIF does
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await adapter.wait_watching(10)
        await cris.send("EVENT", accession="RX9")
        await settled(adapter, 1)
        await wait_for(lambda: warnings(caplog, "OHIF shows 'study not found'"), timeout=10,
                       what="the not-found warning")
        await cris.send("EVENT", accession="RX9")
        await settled(adapter, 2)
        await cris.send("EVENT", accession="RX1")
        assert (await settled(adapter, 3)).outcome == "shown"
        assert len(warnings(caplog, "OHIF shows 'study not found'")) == 1
        assert "9.9.9.1" in warnings(caplog, "study not found")[0]


class Recorder:
    """Another plugin: its hooks must run on time whatever the OHIF adapter is waiting for."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    def on_event(self, message: Event) -> None:
        self.events.append(message)


async def test_no_browser_is_logged_once_and_blocks_nobody(fake_ohif: FakeOhif,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    fake_ohif.add("RX1", UID1)
    recorder = Recorder()
    nobody = f"http://127.0.0.1:{free_port()}"
    async with running_bridge({"url": fake_ohif.base_url, "cdp_url": nobody}, extra=(recorder,)) as (
            bridge, adapter), cris_client(bridge) as cris:
        for n in (1, 2, 3):
            await cris.send("EVENT", accession="RX1")
            navigation = await settled(adapter, n)
            assert navigation.outcome == "failed"
            assert "connection refused" in navigation.detail
        await wait_for(lambda: len(recorder.events) == 3, timeout=5, what="the other plugin's events")
        found = warnings(caplog, nobody)
        assert len(found) == 1, found
        assert "--remote-debugging-port" in found[0] and "plugins.ohif.cdp_url" in found[0]
        assert cris.received == []


async def test_archive_down_is_logged_once_and_the_viewer_cleared(fake_ohif: FakeOhif, browser: Any,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cris_connect_ohif")
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        fake_ohif.dicomweb_status = 503
        for n in (1, 2):
            await cris.send("EVENT", accession="RX1")
            navigation = await settled(adapter, n)
            assert navigation.outcome == "nothing to show"
        assert await tab_url(adapter) == study_list_url(fake_ohif.base_url, accessions=["RX1"])
        found = warnings(caplog, "HTTP 503")
        assert len(found) == 1 and "plugins.ohif.dicomweb_root" in found[0]

        fake_ohif.dicomweb_status = None
        await cris.send("EVENT", accession="RX1")
        assert (await settled(adapter, 3)).outcome == "shown"
        assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_closed_tab_is_replaced(fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    fake_ohif.add("RX2", UID2)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await adapter.wait_watching(10)
        await cris.send("EVENT", accession="RX1")
        first = await settled(adapter, 1)
        reset_tabs(browser.debug_url)  # the radiologist closes it
        await wait_for(lambda: adapter.tab_id is None, timeout=10, what="the adapter to notice")

        await cris.send("EVENT", accession="RX2")
        second = await settled(adapter, 2)
        assert second.outcome == "shown" and second.target_id != first.target_id
        assert await tab_url(adapter) == viewer_url(fake_ohif.base_url, [UID2])


async def test_an_ohif_tab_already_open_is_used(fake_ohif: FakeOhif, browser: Any) -> None:
    fake_ohif.add("RX1", UID1)
    import httpx

    opened = httpx.put(f"{browser.debug_url}/json/new?{fake_ohif.base_url}/", timeout=5).json()
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX1")
        assert (await settled(adapter, 1)).target_id == opened["id"]


async def test_the_archive_adapter_answers_instead_of_qido(fake_ohif: FakeOhif, browser: Any) -> None:
    class Archive:
        """A stand-in archive adapter publishing through the core's shared study directory."""

        name = "archive"

        @hookimpl
        def bridge_started(self, bridge: Any) -> None:
            self.bridge = bridge
            bridge.studies.register_provider(self.name)

        @hookimpl
        async def on_event(self, message: Event) -> None:
            await anyio.sleep(0.2)  # slower than the viewer asks: the viewer must wait for it
            for accession in message.accession:
                study = Study(f"{UID1}.{accession[-1]}", accession=accession)
                self.bridge.studies.publish(StudyLookup(accession, "found", (study,), source=self.name))

    async with running_bridge(settings(fake_ohif, browser), extra=(Archive(),)) as (bridge, adapter), \
            cris_client(bridge) as cris:
        await adapter.wait_watching(10)
        await cris.send("EVENT", accession=["RX5", "RX6"])
        navigation = await settled(adapter, 1)
        assert navigation.study_instance_uids == (f"{UID1}.5", f"{UID1}.6")
        await cris.send("EVENT", accession=["RX7"])
        await settled(adapter, 2)
        async with page(adapter) as tab:
            await open_in_viewer(tab, f"{UID1}.5", f"{UID1}.6")
            assert await cris.expect() == Display(accession=["RX5", "RX6"])
        assert fake_ohif.queries == []  # accession and UID both known from the archive adapter


async def test_browser_mode_opens_the_systems_browser(fake_ohif: FakeOhif,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    fake_ohif.add("RX1", UID1)
    opened: list[str] = []
    plugin = OhifPlugin(opener=lambda url: opened.append(url) or True)
    async with running_bridge({"url": fake_ohif.base_url, "show": "browser"}, plugin=plugin) as (
            bridge, adapter), cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX1")
        assert (await settled(adapter, 1)).outcome == "opened"
        await cris.send("RELEASE")
        await cris.send("EVENT", accession="RX1")
        await settled(adapter, 2)
        assert opened == [viewer_url(fake_ohif.base_url, [UID1])] * 2

    failing = OhifPlugin(opener=lambda url: False)
    async with running_bridge({"url": fake_ohif.base_url, "show": "browser"}, plugin=failing) as (
            bridge, adapter), cris_client(bridge) as cris:
        for n in (1, 2):
            await cris.send("EVENT", accession="RX1")
            assert (await settled(adapter, n)).outcome == "failed"
        assert len(warnings(caplog, "BROWSER environment variable")) == 1


async def test_the_browser_restarting_is_followed(fake_ohif: FakeOhif, tmp_path: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from tests.support.chromium import Chromium

    class ChromiumOnAFixedPort(Chromium):
        """Restarts on the same port, as a workstation's browser does (port 0 would move)."""

        def _active_port(self, port_file: Any) -> int | None:
            # Chromium writes DevToolsActivePort only for port 0; /json/version answering is the sign.
            super()._active_port(port_file)  # raises if the browser exited early
            return port

    fake_ohif.add("RX1", UID1)
    port = free_port()
    chromium = ChromiumOnAFixedPort(tmp_path, extra_args=(f"--remote-debugging-port={port}",))
    await chromium.astart()
    try:
        assert chromium.port == port
        async with running_bridge({"url": fake_ohif.base_url, "cdp_url": chromium.debug_url,
                                   "reconnect_interval": 0.2}) as (bridge, adapter), \
                cris_client(bridge) as cris:
            await adapter.wait_watching(10)
            await chromium.astop()
            await wait_for(lambda: not adapter.watching, timeout=10, what="the watcher to notice")
            await cris.send("EVENT", accession="RX1")
            assert (await settled(adapter, 1)).outcome == "failed"

            await chromium.astart()
            await adapter.wait_watching(15)
            await cris.send("EVENT", accession="RX1")
            assert (await settled(adapter, 2)).outcome == "shown"
            fake_ohif.add("RX2", UID2)
            async with page(adapter) as tab:
                await open_in_viewer(tab, UID2)
            assert await cris.expect() == Display(accession=["RX2"])
        assert len(warnings(caplog, "--remote-debugging-port")) == 1
    finally:
        await chromium.astop()


async def test_a_wildcard_accession_is_never_sent_to_the_archive(fake_ohif: FakeOhif, browser: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    fake_ohif.add("RX1", UID1)
    async with running_bridge(settings(fake_ohif, browser)) as (bridge, adapter), cris_client(bridge) as cris:
        await cris.send("EVENT", accession="RX*")
        navigation = await settled(adapter, 1)
        assert navigation.outcome == "nothing to show" and fake_ohif.queries == []
        assert warnings(caplog, "contains a wildcard")
