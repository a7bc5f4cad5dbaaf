"""Against a real archive: Orthanc with DICOMweb and DIMSE, loaded with pydicom-made studies."""

from __future__ import annotations

import pytest

from cris_connect_dcm4chee import plugin

pytestmark = [pytest.mark.anyio, pytest.mark.services]


def qido(archive, **extra):
    return {"url": archive.qido_url, "retries": 0, **extra}


def dimse_peer(archive):
    return {"host": "127.0.0.1", "port": archive.orthanc.dicom_port, "called_aet": archive.orthanc.aet,
            "calling_aet": "CRIS_CONNECT", "timeout": 10.0}


async def test_event_finds_the_study_and_shares_it(archive, kit):
    current = archive.history.current
    recorder = kit.StudiesRecorder()
    async with kit.running_bridge(qido(archive), plugins=(recorder,)) as bridge, kit.cris(bridge) as cris:
        assert "dcm4chee" in bridge.studies.providers
        await cris.event(current.accession_number)
        lookup = await kit.settled(bridge, current.accession_number)
    assert lookup.status == "found"
    assert lookup.source == "dcm4chee"
    (study,) = lookup.studies
    assert study.study_instance_uid == current.study_instance_uid
    assert study.accession == current.accession_number
    assert study.patient_id == "9434765919"
    assert study.issuer_of_patient_id == "NHS"
    assert study.study_date == current.study_date.strftime("%Y%m%d")
    assert study.modalities == ("CT",)
    assert study.description == "CT HEAD"
    assert lookup in recorder.lookups  # the other plugin got on_studies_found


async def test_each_accession_of_one_event_and_readonly(archive, kit):
    current, prior = archive.history.current, archive.history.priors[0]
    async with kit.running_bridge(qido(archive)) as bridge, kit.cris(bridge) as cris:
        await cris.event(current.accession_number, archive.other_patient.accession_number)
        await cris.event(prior.accession_number, command="READONLY")
        found = [await kit.settled(bridge, a) for a in
                 (current.accession_number, archive.other_patient.accession_number, prior.accession_number)]
    assert [f.status for f in found] == ["found"] * 3
    assert found[1].studies[0].patient_id == archive.other_patient.patient_id
    assert found[2].study_instance_uids == (prior.study_instance_uid,)


async def test_unknown_accession_is_not_found_with_a_reason(archive, kit):
    async with kit.running_bridge(qido(archive)) as bridge, kit.cris(bridge) as cris:
        await cris.event("NO-SUCH-ACC")
        lookup = await kit.settled(bridge, "NO-SUCH-ACC")
    assert lookup.status == "not_found"
    assert lookup.studies == ()
    assert "NO-SUCH-ACC" in lookup.reason


async def test_wildcards_are_never_sent_to_the_archive(archive, kit):
    async with kit.running_bridge(qido(archive)) as bridge, kit.cris(bridge) as cris:
        await cris.event("A*")
        lookup = await kit.settled(bridge, "A*")
    assert lookup.status == "not_found"
    assert "pattern" in lookup.reason


async def test_lookup_by_c_find(archive, kit):
    current = archive.history.current
    settings = {"query": "dimse", "dimse": dimse_peer(archive)}
    async with kit.running_bridge(settings) as bridge, kit.cris(bridge) as cris:
        await cris.event(current.accession_number, "NO-SUCH-ACC")
        lookup = await kit.settled(bridge, current.accession_number)
        missing = await kit.settled(bridge, "NO-SUCH-ACC")
    assert lookup.status == "found"
    (study,) = lookup.studies
    assert study.study_instance_uid == current.study_instance_uid
    assert study.patient_id == "9434765919"
    assert study.modalities == ("CT",)
    assert missing.status == "not_found"


def c_move_settings(archive, **prefetch):
    return qido(archive, dimse=dimse_peer(archive), prefetch={
        "enabled": True, "method": "c-move", "priors": 2, "destination_aet": archive.scp.aet,
        "patient_id_from": ["nhs", "study"], **prefetch,
    })


async def test_prefetch_moves_only_the_most_recent_priors_by_c_move(archive, kit):
    history = archive.history
    newest_two = {p.study_instance_uid for p in history.priors[:2]}
    older = {p.study_instance_uid for p in history.priors[2:]} | {history.current.study_instance_uid}
    before = len(archive.scp.received)
    async with kit.running_bridge(c_move_settings(archive)) as bridge, kit.cris(bridge) as cris:
        await cris.event(history.current.accession_number, nhs="9434765919")
        report = await plugin.adapter.wait_prefetched(history.current.accession_number, within=30)
        assert report is not None and report.ok, report
        assert set(report.chosen) == newest_two
        assert set(report.moved) == newest_two
        # A second EVENT for the same report does not prefetch again.
        await cris.event(history.current.accession_number, nhs="9434765919")
        await kit.settled(bridge, history.current.accession_number)
        assert plugin.adapter.prefetches[history.current.accession_number] is report
    arrived = archive.scp.received[before:]
    expected = sum(archive.instances[uid] for uid in newest_two)
    assert len(arrived) == expected
    assert {str(ds.StudyInstanceUID) for ds in arrived} == newest_two
    assert not older & archive.scp.received_study_uids - newest_two


async def test_priors_already_at_the_destination_are_skipped(archive, kit):
    # The destination's own QIDO is the archive itself: every prior is "already there".
    history = archive.history
    before = len(archive.scp.received)
    settings = c_move_settings(archive, destination_qido_url=archive.qido_url, priors=3)
    async with kit.running_bridge(settings) as bridge, kit.cris(bridge) as cris:
        await cris.event(history.current.accession_number)
        report = await plugin.adapter.wait_prefetched(history.current.accession_number, within=30)
    assert report is not None
    assert len(report.chosen) == 3
    assert set(report.skipped) == set(report.chosen)
    assert report.moved == ()
    assert len(archive.scp.received) == before


async def test_c_move_to_an_unknown_destination_fails_and_is_reported(archive, kit, caplog):
    history = archive.history
    settings = c_move_settings(archive, destination_aet="NOBODY", priors=2)
    async with kit.running_bridge(settings) as bridge, kit.cris(bridge) as cris:
        await cris.event(history.current.accession_number)
        report = await plugin.adapter.wait_prefetched(history.current.accession_number, within=30)
        lookup = await kit.settled(bridge, history.current.accession_number)
    assert lookup.status == "found"  # the lookup is unaffected by the failing move
    assert report is not None and len(report.failed) == 2 and not report.ok
    failures = [r for r in caplog.records if "is failing" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in failures]  # once per streak, not per study
    assert "C-MOVE" in failures[0].getMessage()


@pytest.fixture(scope="module")
def lone_orthanc(tmp_path_factory):
    """An Orthanc of its own, to stop and start mid-test without disturbing the shared archive."""
    from tests.support import dicom
    from tests.support.orthanc import Orthanc

    orthanc = Orthanc(tmp_path_factory.mktemp("lone-orthanc"))
    orthanc.start()
    study = dicom.Study(accession_number="LONE1")
    for ds in dicom.make_study(study):
        orthanc.upload(dicom.to_bytes(ds))
    yield orthanc, study
    orthanc.kill()


async def test_archive_stopped_mid_session_then_back(archive, lone_orthanc, kit, caplog):
    orthanc, study = lone_orthanc
    settings = {"url": orthanc.dicomweb_root, "retries": 1, "backoff": 0.05, "timeout": 2.0}
    async with kit.running_bridge(settings) as bridge, kit.cris(bridge) as cris:
        await cris.event("LONE1")
        assert (await kit.settled(bridge, "LONE1")).study_instance_uids == (study.study_instance_uid,)
        await orthanc.astop()
        try:
            await cris.event("LONE1")
            await kit.await_until(lambda: bridge.studies.get("LONE1").status == "failed", timeout=15,
                                  what="the lookup to fail while Orthanc is down")
            assert "cannot connect" in bridge.studies.get("LONE1").reason
        finally:
            await orthanc.astart()
        await cris.event("LONE1")
        await kit.await_until(lambda: bridge.studies.get("LONE1").status == "found", timeout=15,
                              what="the lookup to work again once Orthanc is back")
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "is failing" in m]) == 1
