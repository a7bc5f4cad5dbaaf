import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cdp import CdpSession, capture_screenshot, evaluate, navigate
from tests.support.chromium import Chromium
from tests.support.dicom import Study, make_study, to_bytes
from tests.support.ohif import OhifViewer
from tests.support.orthanc import Orthanc
from tests.support.polling import wait_until
from tests.support.requirements import require_executable
from tests.support.screenshots import save_screenshot

pytestmark = pytest.mark.services

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_json_version_names_the_browser_websocket(chromium: Chromium) -> None:
    version = httpx.get(f"{chromium.debug_url}/json/version", timeout=5).json()

    assert version["Browser"].startswith("Chrome/")
    assert version["webSocketDebuggerUrl"] == chromium.websocket_url
    assert chromium.websocket_url.startswith(f"ws://127.0.0.1:{chromium.port}/devtools/browser/")
    assert [page["url"] for page in chromium.pages()] == ["about:blank"]


def test_navigates_a_page_and_saves_a_screenshot(chromium: Chromium) -> None:
    path = save_screenshot(
        chromium, "support-chromium-hello", url="data:text/html,<h1 id=greeting>Hello, radiology</h1>"
    )

    assert path.parent.name == "test-artifacts" and path.read_bytes().startswith(PNG_SIGNATURE)
    with CdpSession(chromium.pages()[0]["webSocketDebuggerUrl"]) as page:
        assert evaluate(page, "document.getElementById('greeting').textContent") == "Hello, radiology"


def test_new_page_opens_a_tab(chromium: Chromium) -> None:
    target = chromium.new_page("about:blank#second")
    wait_until(lambda: len(chromium.pages()) == 2, timeout=10, what="a second tab")
    assert target["type"] == "page"


def _living_members(process_group: int) -> list[int]:
    """PIDs in the group that have not exited (zombies awaiting their reaper do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError, PermissionError):
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == process_group and state != "Z":
            members.append(int(entry.name))
    return members


def test_stop_ends_every_browser_process(tmp_path: Path) -> None:
    require_executable("/usr/bin/chromium", "the headless browser", package="chromium")
    browser = Chromium(tmp_path)
    started = time.monotonic()
    with browser:
        print(f"Chromium ready after {time.monotonic() - started:.2f} s")
        group = browser.pid
        assert group is not None and len(_living_members(group)) > 1  # renderers, GPU, utilities
    assert _living_members(group) == []
    with pytest.raises(ProcessLookupError):
        os.kill(group, 0)


@pytest.mark.anyio
async def test_async_context_manager_on_both_backends(tmp_path: Path) -> None:
    require_executable("/usr/bin/chromium", "the headless browser", package="chromium")
    async with Chromium(tmp_path) as browser, httpx.AsyncClient() as client:
        version = (await client.get(f"{browser.debug_url}/json/version")).json()
        assert version["webSocketDebuggerUrl"] == browser.websocket_url
    assert browser.pid is None


def test_ohif_shows_a_study_from_orthanc(
    chromium: Chromium, ohif_server: OhifViewer, orthanc: Orthanc
) -> None:
    """The whole chain: pydicom -> Orthanc -> nginx -> OHIF in headless Chromium."""
    study = Study(accession_number="ACC-VIEW", study_description="CT HEAD")
    for instance in make_study(study, instances_per_series=3):
        orthanc.upload(to_bytes(instance))

    with CdpSession(chromium.pages()[0]["webSocketDebuggerUrl"], timeout=60) as page:
        started = time.monotonic()
        navigate(page, ohif_server.viewer_url(study.study_instance_uid), timeout=60)

        def viewer_state() -> dict[str, object]:
            return json.loads(
                evaluate(
                    page,
                    "JSON.stringify({path: location.pathname,"
                    " canvases: document.querySelectorAll('canvas').length,"
                    " text: document.body.innerText})",
                )
            )

        # The image counter overlay ("I:1 (1/3)") appears once the first image is rendered.
        state = wait_until(
            lambda: (s := viewer_state())["canvases"] and "(1/3)" in str(s["text"]) and s,
            timeout=60,
            what="OHIF to render the study",
        )
        print(f"OHIF rendered the study {time.monotonic() - started:.2f} s after navigation")
        assert state["path"] == "/viewer"
        save_screenshot(chromium, "support-ohif-viewer")

        navigate(page, ohif_server.viewer_url("1.2.3.4.5.6.7.8.9"), timeout=60)
        wait_until(
            lambda: viewer_state()["path"] == "/notfoundstudy",
            timeout=30,
            what="OHIF to reject a missing study",
        )
        assert capture_screenshot(page).startswith(PNG_SIGNATURE)
