"""End to end: CRIS (the SDK's CRIS Reporting simulator) -> bridge -> OHIF in headless Chromium -> Orthanc.

Real components: Orthanc with its DICOMweb plugin holding pydicom-made studies; the OHIF viewer
from npm served by nginx at its root, with `/dicom-web/` proxied to Orthanc; headless Chromium
with DevTools. The bridge runs the `ohif` adapter alone (its own QIDO, through OHIF's proxy) and
with the `dcm4chee` archive adapter finding the studies for it. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cris_connect import Display
from cris_connect.plugins import installed
from cris_connect_ohif import study_instance_uids
from cris_connect_sdk.simulator import CrisReporting
from plugins.ohif.tests.helpers import (
    open_in_viewer,
    page,
    rendered,
    reset_tabs,
    running_bridge,
    settled,
    tab_url,
    viewer_state,
    wait_for,
)
from tests.support.fixtures import require_orthanc
from tests.support.requirements import require_executable

pytestmark = [pytest.mark.anyio, pytest.mark.services]

IMAGES = 3  # per series; OHIF's overlay then reads "(1/3)" once the first image is drawn
#: The first load of OHIF in a fresh profile fetches and compiles ~10 MB of JavaScript.
RENDER_TIMEOUT = 90.0


class Studies:
    def __init__(self) -> None:
        from tests.support.dicom import Study

        self.a = Study(accession_number="E2E-A", patient_name="E2E^ALPHA", study_description="CT HEAD")
        self.b = Study(accession_number="E2E-B", patient_name="E2E^BRAVO", study_description="CT CHEST",
                       patient_id=self.a.patient_id)


@pytest.fixture(scope="module")
def studies() -> Studies:
    return Studies()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, studies: Studies) -> Iterator[Any]:
    """One Orthanc for the module, holding studies A and B (three CT images each)."""
    require_orthanc()
    from tests.support.dicom import make_study, to_bytes
    from tests.support.orthanc import Orthanc

    orthanc = Orthanc(tmp_path_factory.mktemp("orthanc"))
    orthanc.start()
    try:
        for study in (studies.a, studies.b):
            for instance in make_study(study, instances_per_series=IMAGES):
                orthanc.upload(to_bytes(instance))
        yield orthanc
    finally:
        orthanc.kill()  # the storage is thrown away: no need for the 2-4 s graceful stop


@pytest.fixture(scope="module")
def viewer(archive: Any, ohif_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """OHIF behind nginx, reading Orthanc through its own origin's /dicom-web."""
    from tests.support.nginx import NGINX_EXECUTABLE
    from tests.support.ohif import OhifViewer

    require_executable(NGINX_EXECUTABLE, "serving the OHIF viewer", package="nginx")
    with OhifViewer(tmp_path_factory.mktemp("ohif"), dist=ohif_dist, orthanc_url=archive.base_url) as server:
        yield server


@pytest.fixture(scope="module")
def workstation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The radiologist's browser: one headless Chromium for the module, so OHIF is warm after the
    first test (as on a reading workstation, where it stays open all day)."""
    require_executable("/usr/bin/chromium", "the headless browser", package="chromium")
    from tests.support.chromium import Chromium

    with Chromium(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium


ADAPTERS = ["ohif", "ohif+dcm4chee"]


@pytest.mark.parametrize("adapters", ADAPTERS)
async def test_cris_and_ohif_follow_each_other(adapters: str, archive: Any, viewer: Any, workstation: Any,
                                               studies: Studies, anyio_backend: str) -> None:
    others: dict[str, dict[str, Any]] = {}
    if adapters == "ohif+dcm4chee":
        if "dcm4chee" not in installed():
            pytest.skip("cris-connect-dcm4chee is not installed")  # (fails under CI)
        others["dcm4chee"] = {"url": archive.dicomweb_root}
    reset_tabs(workstation.debug_url)
    a, b = studies.a, studies.b
    # No dicomweb_root: the adapter asks QIDO at {url}/dicom-web, as OHIF itself does.
    settings = {"url": viewer.base_url, "cdp_url": workstation.debug_url, "load_timeout": 8.0,
                "command_timeout": 9.0}

    async with running_bridge(settings, others=others, hook_timeout=12.0) as (bridge, adapter), \
            CrisReporting(bridge.url) as cris:
        assert bool(bridge.studies.providers) == bool(others)
        await adapter.wait_watching(10)

        # CRIS opens report A: the OHIF tab shows study A, rendered.
        await cris.open_report(a.accession_number, exam_code="CTHEAD")
        navigation = await settled(adapter, 1, timeout=30)
        assert navigation.outcome == "shown", navigation
        assert study_instance_uids(await tab_url(adapter) or "") == (a.study_instance_uid,)
        async with page(adapter) as tab:
            state = await wait_for(lambda: rendered(tab, a.study_instance_uid, IMAGES),
                                   timeout=RENDER_TIMEOUT, what="OHIF to render study A")
            assert "notfound" not in state["path"]
            await screenshot(tab, f"ohif-e2e-{adapters}-{anyio_backend}-study-a")

            # CRIS saves the report (COMMIT, RELEASE): the tab returns to the study list.
            await cris.save_report(a.accession_number)  # COMMIT, RELEASE
            assert (await settled(adapter, 2, timeout=30)).outcome == "shown"
            assert await tab_url(adapter) == f"{viewer.base_url}/"

            async def study_list() -> dict[str, Any] | None:
                state = await viewer_state(tab)
                # OHIF 3.13's study list shows patients, not accession numbers: "E2E, ALPHA".
                listed = "E2E, ALPHA" in state["text"] and "E2E, BRAVO" in state["text"]
                return state if state["path"] == "/" and listed else None

            await wait_for(study_list, timeout=RENDER_TIMEOUT, what="OHIF's study list")
            await screenshot(tab, f"ohif-e2e-{adapters}-{anyio_backend}-study-list")

            # The radiologist opens study B in OHIF: CRIS is asked to display report B.
            await open_in_viewer(tab, b.study_instance_uid)
            await cris.expect(Display, accession=[b.accession_number], timeout=15)
            await wait_for(lambda: rendered(tab, b.study_instance_uid, IMAGES), timeout=RENDER_TIMEOUT,
                           what="OHIF to render study B")
            await screenshot(tab, f"ohif-e2e-{adapters}-{anyio_backend}-study-b")

            # CRIS opens report B as asked: OHIF already shows it, nothing is reloaded or echoed ...
            await cris.open_report(b.accession_number)
            assert (await settled(adapter, 3, timeout=30)).outcome == "already shown"
            # ... and the next thing CRIS hears is the radiologist's next study: nothing came between.
            await open_in_viewer(tab, a.study_instance_uid)
            await cris.expect(Display, accession=[a.accession_number], timeout=15)
        assert cris.received == [Display(accession=[b.accession_number]),
                                 Display(accession=[a.accession_number])]
        assert len(adapter.navigations) == 3


async def screenshot(tab: Any, name: str) -> Path:
    from tests.support.screenshots import artifact_path

    shot = await tab.call("Page.captureScreenshot", {"format": "png"}, timeout=30)
    path = artifact_path(name)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
