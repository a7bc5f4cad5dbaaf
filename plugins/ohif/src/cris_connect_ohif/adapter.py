"""The OHIF adapter: CRIS opens a report, OHIF shows its studies - and back.

- EVENT / READONLY: accessions -> StudyInstanceUIDs (from the archive adapter through
  `bridge.studies`, else QIDO), then one viewer URL with all of them, shown in the browser's OHIF
  tab through the DevTools protocol (or with the OS's browser in `browser` mode).
- RELEASE, LOGOUT, and CLEAR or LOGOUT sent to CRIS by any plugin: the tab returns to the study
  list (or a blank page), so the previous patient's images do not stay on screen.
- A background task holds a browser-level DevTools connection with target discovery on; every
  URL change of an OHIF tab arrives as `Target.targetInfoChanged`, in-app (pushState) changes
  included. When the radiologist opens studies themselves, their accessions go to CRIS as DISPLAY.
  A navigation this adapter made is recorded before it starts, and its URL change is not echoed.
"""

from __future__ import annotations

import logging
import time
import webbrowser
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from cris_connect import Display, NoSession
from cris_connect_ohif.cdp import CdpConnection, CdpError, CdpEvent, CdpUnavailable, DevTools, Tab
from cris_connect_ohif.config import OhifConfig
from cris_connect_ohif.problems import Problems
from cris_connect_ohif.qido import ArchiveError, Qido, is_pattern
from cris_connect_ohif.urls import (
    is_not_found,
    same_origin,
    study_instance_uids,
    study_list_url,
    viewer_url,
)

if TYPE_CHECKING:
    from cris_connect import Bridge
    from cris_connect.studies import StudyLookup

log = logging.getLogger("cris_connect_ohif")

BLANK = "about:blank"
#: uid -> accession entries kept for the viewer -> CRIS direction (a day's worklist, and then some).
MAX_REMEMBERED = 10_000


@attrs.define
class Navigation:
    """One thing the adapter showed (or tried to), with its timings, for logs, tests and benchmarks."""

    reason: str
    accessions: tuple[str, ...]
    study_instance_uids: tuple[str, ...] = ()
    url: str | None = None
    #: `time.perf_counter()` when the command reached the adapter.
    received: float = attrs.field(factory=time.perf_counter)
    #: ... when the StudyInstanceUIDs were known, when the tab's navigation was committed
    #: (Page.navigate answered), and when the page's load event fired.
    resolved: float | None = None
    navigated: float | None = None
    loaded: float | None = None
    target_id: str | None = None
    #: "shown", "already shown", "opened" (browser mode), "not loaded", "failed", "nothing to show".
    outcome: str = "pending"
    detail: str = ""
    done: anyio.Event = attrs.field(factory=anyio.Event, repr=False)


class OhifAdapter:
    """One running OHIF adapter, owned by the plugin between `bridge_started` and `bridge_stopping`."""

    def __init__(self, bridge: Bridge, config: OhifConfig, *, name: str = "ohif",
                 opener: Callable[[str], bool] = webbrowser.open) -> None:
        self.bridge = bridge
        self.config = config
        self.name = name
        self.opener = opener
        self.devtools = DevTools(config.cdp_url, timeout=config.http_timeout)
        self.qido = Qido(config.qido_root, timeout=config.http_timeout, token=config.token)
        self.problems = Problems(log)
        #: The tab this adapter drives (target id), once it has found or opened one.
        self.tab_id: str | None = None
        #: target id -> (StudyInstanceUIDs this adapter is navigating it to, until when to expect them).
        self._expected: dict[str, tuple[tuple[str, ...], float]] = {}
        #: target id -> StudyInstanceUIDs the watcher saw it show because of this adapter.
        self._ours: dict[str, tuple[str, ...]] = {}
        #: target id -> StudyInstanceUIDs its URL showed when last seen by the watcher.
        self._seen: dict[str, tuple[str, ...]] = {}
        self._accession_of: OrderedDict[str, str] = OrderedDict()
        #: The most recent navigations, newest last.
        self.navigations: deque[Navigation] = deque(maxlen=100)
        #: DISPLAY commands sent because the radiologist opened studies in OHIF.
        self.displays: deque[Display] = deque(maxlen=100)
        self.watching = False
        self._watching_changed = anyio.Event()
        self._changes_send, self._changes_receive = anyio.create_memory_object_stream[
            tuple[str, tuple[str, ...]]
        ](100)

    # Life cycle

    def start(self) -> None:
        if self.config.show == "cdp":
            self.bridge.start_soon(self.watch_browser, name=f"{self.name}: watch the browser's tabs")
            if self.config.follow_viewer:
                self.bridge.start_soon(self.follow_viewer, name=f"{self.name}: tell CRIS what OHIF shows")
        source = ("the archive adapter (bridge.studies), else QIDO at " if self.bridge.studies.providers
                  else "QIDO at ") + self.config.qido_root
        where = (f"the OHIF tab of the browser at {self.config.cdp_url}" if self.config.show == "cdp"
                 else "the operating system's browser")
        log.info("%s: showing OHIF at %s in %s; studies from %s", self.name, self.config.url, where,
                 source)

    async def wait_watching(self, timeout: float) -> None:
        """Wait until the browser-level connection is up (tests and benchmarks)."""
        with anyio.fail_after(timeout):
            while not self.watching:
                await self._watching_changed.wait()

    def _set_watching(self, value: bool) -> None:
        self.watching = value
        self._watching_changed.set()
        self._watching_changed = anyio.Event()

    # CRIS -> viewer

    async def show(self, accessions: Iterable[str], reason: str) -> Navigation:
        """Show these accessions' studies (EVENT, READONLY), within `command_timeout`."""
        navigation = Navigation(reason, tuple(accessions))
        self.navigations.append(navigation)
        try:
            with anyio.move_on_after(self.config.command_timeout) as scope:
                await self._show(navigation)
            if scope.cancelled_caught:
                self._fail(navigation, f"gave up after {self.config.command_timeout:g} s "
                                       "(plugins.ohif.command_timeout)")
                log.warning("%s for %s: %s", reason, _list(navigation.accessions), navigation.detail)
        finally:
            navigation.done.set()
        return navigation

    async def _show(self, navigation: Navigation) -> None:
        uids: list[str] = []
        missing: list[str] = []
        found: dict[str, tuple[str, ...] | None] = {}

        async def look_up(accession: str) -> None:
            found[accession] = await self.studies_for(accession)

        async with anyio.create_task_group() as tg:
            for accession in navigation.accessions:
                tg.start_soon(look_up, accession)
        for accession in navigation.accessions:
            studies = found.get(accession)
            if studies:
                uids.extend(studies)
            else:
                missing.append(accession)
        navigation.study_instance_uids = tuple(dict.fromkeys(uids))
        navigation.resolved = time.perf_counter()
        if navigation.study_instance_uids:
            if missing:
                log.warning("%s: showing the studies of %s; none found for %s", navigation.reason,
                            _list(a for a in navigation.accessions if a not in missing), _list(missing))
            url = viewer_url(self.config.url, navigation.study_instance_uids, mode=self.config.mode,
                             data_source=self.config.data_source)
        else:
            # Never leave the previous patient's images up: show the study list, filtered to the
            # accessions, which tells the radiologist OHIF has nothing for this exam.
            navigation.outcome = "nothing to show"
            url = study_list_url(self.config.url, accessions=navigation.accessions)
        navigation.url = url
        if self.config.show == "browser":
            await self._open_in_browser(navigation, url)
        else:
            await self._navigate(navigation, url, navigation.study_instance_uids, open_tab=True)

    async def clear(self, reason: str) -> Navigation | None:
        """Return the OHIF tab to the study list or a blank page (RELEASE, LOGOUT, CLEAR)."""
        if self.config.on_release == "keep" or self.config.show == "browser":
            return None  # the OS's browser cannot be steered back; documented in docs/ohif.md
        url = study_list_url(self.config.url) if self.config.on_release == "study_list" else BLANK
        navigation = Navigation(reason, (), url=url)
        self.navigations.append(navigation)
        try:
            with anyio.move_on_after(self.config.command_timeout) as scope:
                await self._navigate(navigation, url, (), open_tab=False)
            if scope.cancelled_caught:
                self._fail(navigation, f"gave up after {self.config.command_timeout:g} s "
                                       "(plugins.ohif.command_timeout)")
                log.warning("%s: returning OHIF to %s %s", reason, url, navigation.detail)
        finally:
            navigation.done.set()
        return navigation

    async def studies_for(self, accession: str) -> tuple[str, ...] | None:
        """The accession's StudyInstanceUIDs; () when the archive has none, None when it failed."""
        if is_pattern(accession):
            log.warning("accession %r contains a wildcard; not looked up, as it could match other "
                        "patients' studies", accession)
            return ()
        if self.bridge.studies.providers:
            lookup = await self.bridge.studies.wait_for(accession, self.config.study_timeout)
            if lookup is not None and lookup.status == "found":
                self.remember(lookup)
                return tuple(str(uid) for uid in lookup.study_instance_uids)
            if lookup is not None and lookup.status == "not_found":
                log.warning("no study with accession %s in the archive (%s); OHIF shows the study list",
                            accession, lookup.reason or lookup.source)
                return ()
            if lookup is not None and lookup.status == "failed":
                log.warning("the archive adapter could not look accession %s up (%s); OHIF shows the "
                            "study list", accession, lookup.reason)
                return None
            log.info("no answer from the archive adapter for accession %s within %g s "
                     "(plugins.ohif.study_timeout); asking %s", accession, self.config.study_timeout,
                     self.qido.root)
        try:
            studies = await self.qido.by_accession(accession)
        except ArchiveError as exc:
            self.problems.report("archive", f"{exc}; OHIF shows the study list meanwhile")
            return None
        self.problems.resolved("archive", f"the DICOMweb root {self.qido.root} answers again")
        for study in studies:
            self._remember(study.study_instance_uid, study.accession or accession)
        if not studies:
            log.warning("no study with accession %s at %s; OHIF shows the study list", accession,
                        self.qido.root)
        return tuple(study.study_instance_uid for study in studies)

    def remember(self, lookup: StudyLookup) -> None:
        """Keep uid -> accession from a lookup (ours or the archive adapter's)."""
        if lookup.status == "found":
            for study in lookup.studies:
                self._remember(study.study_instance_uid, study.accession or lookup.accession)

    def _remember(self, uid: str, accession: str) -> None:
        self._accession_of.pop(uid, None)
        self._accession_of[uid] = accession
        while len(self._accession_of) > MAX_REMEMBERED:
            self._accession_of.popitem(last=False)

    # Showing: browser mode

    async def _open_in_browser(self, navigation: Navigation, url: str) -> None:
        try:
            opened = await anyio.to_thread.run_sync(self.opener, url)
        except Exception as exc:  # webbrowser.Error, OSError from a BROWSER command
            opened, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "no browser is registered"
        if opened:
            navigation.navigated = time.perf_counter()
            navigation.outcome = "opened" if navigation.outcome == "pending" else navigation.outcome
            self.problems.resolved("opener", "the operating system's browser opens OHIF again")
        else:
            self._fail(navigation, why)
            self.problems.report("opener", f"could not open {self.config.url} with the operating "
                                           f"system's browser ({why}); set a default browser or the "
                                           "BROWSER environment variable, or use show = \"cdp\"")

    # Showing: DevTools mode

    async def _navigate(self, navigation: Navigation, url: str, uids: tuple[str, ...], *,
                        open_tab: bool) -> None:
        for attempt in (1, 2):  # a tab closed between listing and connecting: find another once
            try:
                tab = await self.find_tab(open_tab=open_tab and self.config.open_tab)
            except CdpUnavailable as exc:
                self._fail(navigation, str(exc))
                self.problems.report("browser", f"{exc}; start Chromium, Chrome or Edge with "
                                                f"--remote-debugging-port, or correct "
                                                "plugins.ohif.cdp_url (OHIF not updated)")
                return
            self.problems.resolved("browser", f"the browser's DevTools at {self.config.cdp_url} "
                                              "answer again")
            if tab is None:
                navigation.outcome = "no tab"
                if open_tab:
                    self.problems.report("tab", f"no browser tab shows OHIF at {self.config.url}; open "
                                                "it, or set plugins.ohif.open_tab = true")
                return
            self.problems.resolved("tab", "a browser tab shows OHIF again")
            navigation.target_id = tab.id
            if self._already_shows(tab, url, uids):
                navigation.outcome = "already shown" if navigation.outcome == "pending" \
                    else navigation.outcome
                return
            try:
                await self._navigate_tab(navigation, tab, url, uids)
                return
            except CdpUnavailable as exc:
                self._expected.pop(tab.id, None)
                if tab.id == self.tab_id:
                    self.tab_id = None
                if attempt == 2:
                    self._fail(navigation, str(exc))
                    self.problems.report("browser", f"{exc} (OHIF not updated)")
            except (CdpError, TimeoutError) as exc:
                self._expected.pop(tab.id, None)
                self._fail(navigation, str(exc))
                log.warning("%s: navigating the OHIF tab to %s failed: %s", navigation.reason, url, exc)
                return

    def _already_shows(self, tab: Tab, url: str, uids: tuple[str, ...]) -> bool:
        """The tab shows exactly this already (CRIS answering our own DISPLAY with EVENT): no reload."""
        if tab.url == url:
            return True
        return bool(uids) and same_origin(tab.url, self.config.url) and not is_not_found(tab.url) \
            and study_instance_uids(tab.url) == uids

    async def _navigate_tab(self, navigation: Navigation, tab: Tab, url: str,
                            uids: tuple[str, ...]) -> None:
        # Recorded before navigating, so the watcher never mistakes this for the radiologist.
        self._expected[tab.id] = (uids, anyio.current_time() + self.config.command_timeout
                                  + self.config.load_timeout)
        async with await CdpConnection.open(tab.websocket_url, timeout=self.config.http_timeout) as page:
            await page.call("Page.enable", timeout=self.config.http_timeout)
            result = await page.call("Page.navigate", {"url": url}, timeout=self.config.load_timeout)
            navigation.navigated = time.perf_counter()
            if result.get("errorText"):
                self._expected.pop(tab.id, None)
                self._fail(navigation, str(result["errorText"]))
                self.problems.report("viewer", f"the OHIF tab could not load {url} "
                                               f"({result['errorText']}); check OHIF is served at "
                                               "plugins.ohif.url")
                return
            self.problems.resolved("viewer", f"OHIF at {self.config.url} loads again")
            try:
                await page.wait_event("Page.loadEventFired", timeout=self.config.load_timeout)
            except TimeoutError:
                navigation.outcome = "not loaded"
                navigation.detail = f"no load event within {self.config.load_timeout:g} s"
                log.info("%s: OHIF did not finish loading %s within %g s (plugins.ohif.load_timeout)",
                         navigation.reason, url, self.config.load_timeout)
                return
        navigation.loaded = time.perf_counter()
        if navigation.outcome == "pending":
            navigation.outcome = "shown"
        log.info("%s %s: OHIF shows %s (%.2f s)", navigation.reason, _list(navigation.accessions) or "",
                 url, navigation.loaded - navigation.received)

    async def find_tab(self, *, open_tab: bool) -> Tab | None:
        """The tab to drive: ours if still open, else one on OHIF's origin, else a new one."""
        tabs = await self.devtools.tabs()
        ours = next((t for t in tabs if t.id == self.tab_id), None)
        if ours is not None and (same_origin(ours.url, self.config.url) or ours.url == BLANK):
            return ours
        tab = next((t for t in tabs if same_origin(t.url, self.config.url)), None)
        if tab is None and open_tab:
            tab = await self.devtools.new_tab(BLANK)
            log.info("opened a browser tab for OHIF")
        if tab is not None:
            self.tab_id = tab.id
        return tab

    def _fail(self, navigation: Navigation, detail: str) -> None:
        navigation.outcome = "failed"
        navigation.detail = detail

    # Viewer -> CRIS

    async def watch_browser(self) -> None:
        """Keep a browser-level DevTools connection and follow every tab's URL; reconnect forever."""
        while True:
            try:
                websocket_url = await self.devtools.browser_websocket_url()
                async with await CdpConnection.open(websocket_url, timeout=self.config.http_timeout) \
                        as browser:
                    await browser.call("Target.setDiscoverTargets", {"discover": True},
                                       timeout=self.config.http_timeout)
                    self.problems.resolved("browser", f"the browser's DevTools at {self.config.cdp_url} "
                                                      "answer again")
                    self._set_watching(True)
                    log.debug("%s: following the browser's tabs at %s", self.name, self.config.cdp_url)
                    try:
                        while True:
                            self.target_event(await browser.next_event())
                    finally:
                        self._set_watching(False)
                        self._seen.clear()
            except (CdpUnavailable, CdpError, TimeoutError) as exc:
                self.problems.report("browser", f"{exc}; start Chromium, Chrome or Edge with "
                                                "--remote-debugging-port, or correct plugins.ohif.cdp_url "
                                                f"(retrying every {self.config.reconnect_interval:g} s)")
            await anyio.sleep(self.config.reconnect_interval)  # the browser is down: retry later

    def target_event(self, event: CdpEvent) -> None:
        """One `Target.*` event from the browser-level connection."""
        if event.method == "Target.targetDestroyed":
            target_id = event.params.get("targetId")
            self._seen.pop(target_id, None)  # type: ignore[arg-type]
            self._expected.pop(target_id, None)  # type: ignore[arg-type]
            self._ours.pop(target_id, None)  # type: ignore[arg-type]
            if target_id is not None and target_id == self.tab_id:
                self.tab_id = None
                log.info("the OHIF tab was closed; the next report opens a new one")
            return
        if event.method not in ("Target.targetCreated", "Target.targetInfoChanged"):
            return
        info: dict[str, Any] = event.params.get("targetInfo", {})
        target_id, url = info.get("targetId"), info.get("url", "")
        if info.get("type") != "page" or not isinstance(target_id, str) or not isinstance(url, str):
            return
        if not same_origin(url, self.config.url):
            self._seen.pop(target_id, None)
            return
        if is_not_found(url):
            shown = self._seen.get(target_id)
            self._seen[target_id] = ()
            if shown and self._ours.get(target_id) == shown:
                # OHIF refused studies this adapter sent it to (not ones the radiologist typed).
                self.problems.report(  # once per set of studies: OHIF gives no "found it" signal
                    f"not found {_list(shown)}",
                    f"OHIF shows 'study not found' for StudyInstanceUID {_list(shown)}, which the "
                    "archive returned; check OHIF's data source (app-config.js) reads the same archive "
                    "as plugins.ohif.dicomweb_root",
                )
            return
        uids = study_instance_uids(url)
        if self._seen.get(target_id) == uids:
            return  # a title or in-page change that did not change the studies shown
        self._seen[target_id] = uids
        if not uids:
            return  # the study list
        expected = self._expected.get(target_id)
        if expected is not None and anyio.current_time() > expected[1]:
            del self._expected[target_id]  # a navigation that never arrived; forget it
            expected = None
        if expected is not None and expected[0] == uids:
            del self._expected[target_id]
            self._ours[target_id] = uids
            return  # our own navigation: never echoed back to CRIS
        self._ours.pop(target_id, None)
        if event.method == "Target.targetCreated":
            return  # already open when we connected; not something the radiologist just did
        if not self.config.follow_viewer:
            return
        try:
            self._changes_send.send_nowait((target_id, uids))
        except anyio.WouldBlock:
            log.warning("OHIF changed studies faster than CRIS can be told; %s not sent", _list(uids))

    async def follow_viewer(self) -> None:
        """Tell CRIS (DISPLAY) about each set of studies the radiologist opened in OHIF."""
        async with self._changes_receive:
            async for _target_id, uids in self._changes_receive:
                with anyio.move_on_after(self.config.command_timeout) as scope:
                    await self.display(uids)
                if scope.cancelled_caught:
                    log.warning("gave up telling CRIS about StudyInstanceUID %s after %g s "
                                "(plugins.ohif.command_timeout)", _list(uids), self.config.command_timeout)

    async def display(self, uids: tuple[str, ...]) -> Display | None:
        accessions: list[str] = []
        for uid in uids:
            accession = self._accession_of.get(uid)
            if accession is None:
                try:
                    study = await self.qido.by_study_instance_uid(uid)
                except ArchiveError as exc:
                    self.problems.report("archive", f"{exc}; CRIS not told which study OHIF shows")
                    return None
                self.problems.resolved("archive", f"the DICOMweb root {self.qido.root} answers again")
                if study is None or study.accession is None:
                    log.info("OHIF opened StudyInstanceUID %s, which has no accession number at %s; "
                             "CRIS not told", uid, self.qido.root)
                    continue
                accession = study.accession
                self._remember(uid, accession)
            accessions.append(accession)
        accessions = list(dict.fromkeys(accessions))
        if not accessions:
            return None
        sessions = self.bridge.sessions
        if sessions and all(set(s.context.accession) == set(accessions) for s in sessions):
            log.debug("OHIF shows %s, which CRIS already has open", _list(accessions))
            return None
        message = Display(accession=accessions)
        try:
            await self.bridge.send(message)
        except NoSession:
            log.info("OHIF opened %s; no CRIS Reporting session is connected to tell", _list(accessions))
            return None
        self.displays.append(message)
        log.info("OHIF opened %s; asked CRIS to display it", _list(accessions))
        return message


def _list(items: Iterable[str]) -> str:
    return ", ".join(items)
