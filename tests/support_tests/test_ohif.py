import httpx
import pytest

from tests.support.dicom import Study, make_study, to_bytes
from tests.support.ohif import OhifViewer
from tests.support.orthanc import Orthanc

pytestmark = pytest.mark.services


def test_viewer_route_answers_index_html(ohif_viewer: str) -> None:
    response = httpx.get(f"{ohif_viewer}/viewer?StudyInstanceUIDs=1.2.3", timeout=10)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'src="/app-config.js"' in response.text
    # OHIF's cross-origin isolation headers, as its own nginx recipe sets them.
    assert response.headers["cross-origin-opener-policy"] == "same-origin"


def test_app_config_is_ours_not_the_shipped_demo(ohif_viewer: str) -> None:
    response = httpx.get(f"{ohif_viewer}/app-config.js", timeout=10)

    assert response.status_code == 200
    assert '"qidoRoot": "/dicom-web"' in response.text
    assert "cloudfront" not in response.text


def test_static_bundle_is_served_with_its_type(ohif_server: OhifViewer) -> None:
    wasm = next(ohif_server.dist.glob("*.wasm")).name
    response = httpx.get(f"{ohif_server.base_url}/{wasm}", timeout=10)
    assert (response.status_code, response.headers["content-type"]) == (200, "application/wasm")


@pytest.mark.anyio
async def test_dicomweb_and_wado_are_proxied_to_orthanc(ohif_server: OhifViewer, orthanc: Orthanc) -> None:
    study = Study(accession_number="ACC-PROXY")
    [instance] = make_study(study)
    orthanc.upload(to_bytes(instance))

    async with httpx.AsyncClient(base_url=ohif_server.base_url, timeout=10) as client:
        qido = await client.get("/dicom-web/studies", params={"AccessionNumber": "ACC-PROXY"})
        # Spelled out by hand: Orthanc 1.10 does not URL-decode contentType ("application%2Fdicom"
        # is refused with 400), so httpx's params= encoding cannot be used here.
        wado = await client.get(
            f"/wado?requestType=WADO&studyUID={study.study_instance_uid}"
            f"&seriesUID={instance.SeriesInstanceUID}&objectUID={instance.SOPInstanceUID}"
            "&contentType=application/dicom"
        )

    [match] = qido.json()
    assert match["0020000D"]["Value"] == [study.study_instance_uid]
    # Orthanc builds URLs from the Host header nginx passes on: the viewer's origin, not Orthanc's.
    assert match["00081190"]["Value"][0].startswith(f"{ohif_server.base_url}/dicom-web/studies/")
    assert wado.status_code == 200 and wado.content[128:132] == b"DICM"


def test_archive_down_answers_bad_gateway(ohif_server: OhifViewer, orthanc: Orthanc) -> None:
    orthanc.stop()
    response = httpx.get(f"{ohif_server.base_url}/dicom-web/studies", timeout=10)
    assert response.status_code == 502
