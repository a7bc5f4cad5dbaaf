"""dcm4chee's own URL shapes and answers, replayed from recordings (dcm4chee cannot run here)."""

from __future__ import annotations

import logging

import pytest

from cris_connect_dcm4chee import plugin

pytestmark = pytest.mark.anyio

ROOT = "1.2.826.0.1.3680043.9.7433.1."
CURRENT, P1, P2, P3, P4 = (ROOT + n for n in ("1001", "930", "811", "705", "601"))


def settings(replay, **extra):
    return {"url": replay.rs_url, "retries": 0, "timeout": 2.0, **extra}


async def lookups(kit, config, *accessions, **fields):
    async with kit.running_bridge(config) as bridge, kit.cris(bridge) as cris:
        await cris.event(*accessions, **fields)
        return [await kit.settled(bridge, accession) for accession in accessions]


async def test_found_with_dcm4chee_url_shape(replay, kit):
    (lookup,) = await lookups(kit, settings(replay), "RX1001")
    assert lookup.status == "found"
    (study,) = lookup.studies
    assert study.study_instance_uid == CURRENT
    assert (study.patient_id, study.issuer_of_patient_id) == ("9434765919", "NHS")
    assert (study.study_date, study.modalities) == ("20240501", ("CT",))
    assert study.description == "CT HEAD WITHOUT CONTRAST"
    (request,) = replay.received
    assert request.path == "/dcm4chee-arc/aets/DCM4CHEE/rs/studies"
    assert request.query["AccessionNumber"] == ["RX1001"]
    assert {"00081030", "00100021"} <= set(request.query["includefield"])
    assert "application/dicom+json" in request.headers["Accept"]


async def test_one_accession_two_studies(replay, kit):
    (lookup,) = await lookups(kit, settings(replay), "RX2002")
    assert lookup.status == "found"
    assert lookup.study_instance_uids == (ROOT + "2002.1", ROOT + "2002.2")


async def test_204_without_body_is_not_found(replay, kit):
    (lookup,) = await lookups(kit, settings(replay), "RX404")
    assert lookup.status == "not_found"
    assert "RX404" in lookup.reason


@pytest.mark.parametrize(
    ("accession", "expected"),
    [
        ("RX413", "HTTP 413 (Request Entity Too Large)"),
        ("RX500", "HTTP 500 (java.lang.NullPointerException)"),
        ("RXHTML", "not JSON"),
        ("RXMAL", "malformed DICOM JSON: expected a DICOM JSON array"),
        ("RXNOUID", "no StudyInstanceUID"),
    ],
)
async def test_bad_answers_fail_with_the_reason(replay, kit, accession, expected):
    (lookup,) = await lookups(kit, settings(replay, retries=2, backoff=0.01), accession)
    assert lookup.status == "failed"
    assert expected in lookup.reason
    assert len(replay.received) == 1  # a 4xx, a 500 or nonsense is not worth asking again


async def test_slow_archive_times_out_without_holding_up_the_next_lookup(replay, kit):
    config = settings(replay, timeout=0.5, retries=1, backoff=0.01)
    async with kit.running_bridge(config) as bridge, kit.cris(bridge) as cris:
        await cris.event("RXSLOW")
        await cris.event("RX1001")
        fast = await kit.settled(bridge, "RX1001")
        assert bridge.studies.get("RXSLOW").status == "pending"  # still waiting, yet RX1001 is done
        slow = await kit.settled(bridge, "RXSLOW")
    assert fast.status == "found"
    assert slow.status == "failed"
    assert "no answer within the timeout (after 2 attempts)" in slow.reason


async def test_unreachable_archive_fails_then_recovers_logging_once(replay, kit, caplog):
    caplog.set_level(logging.INFO, "cris_connect.plugins.dcm4chee")
    replay.down = True
    async with kit.running_bridge(settings(replay, retries=2, backoff=0.01)) as bridge, \
            kit.cris(bridge) as cris:
        for accession in ("RX1001", "RX2002", "RX404"):
            await cris.event(accession)
            lookup = await kit.settled(bridge, accession)
            assert lookup.status == "failed"
            assert "HTTP 503" in lookup.reason and "after 3 attempts" in lookup.reason
        assert len(replay.received) == 9  # each retried twice: bounded
        replay.down = False
        await cris.event("RX1001")
        await kit.await_until(lambda: bridge.studies.get("RX1001").status == "found", timeout=10,
                              what="RX1001 found once the archive is back")
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "is failing" in m]) == 1
    assert len([m for m in messages if "works again after 3 failure(s)" in m]) == 1


async def test_wrong_port_fails_with_cannot_connect(kit):
    from tests.support.ports import free_port

    config = {"url": f"http://127.0.0.1:{free_port()}/dcm4chee-arc/aets/DCM4CHEE/rs", "retries": 0}
    (lookup,) = await lookups(kit, config, "RX1001")
    assert lookup.status == "failed"
    assert "cannot connect" in lookup.reason


async def test_bearer_token_from_environment(replay, kit, monkeypatch):
    monkeypatch.setenv("CRIS_TEST_TOKEN", "test-token-123")
    (lookup,) = await lookups(kit, settings(replay, token_env="CRIS_TEST_TOKEN"), "RXAUTH")
    assert lookup.status == "found"
    monkeypatch.setenv("CRIS_TEST_TOKEN", "expired")
    (lookup,) = await lookups(kit, settings(replay, token_env="CRIS_TEST_TOKEN"), "RXAUTH")
    assert lookup.status == "failed"
    assert "HTTP 401" in lookup.reason and "token_env" in lookup.reason


async def test_basic_authentication(replay, kit, monkeypatch):
    monkeypatch.setenv("CRIS_TEST_PASSWORD", "s3cret")
    config = settings(replay, username="cris", password_env="CRIS_TEST_PASSWORD")
    (lookup,) = await lookups(kit, config, "RXBASIC")
    assert lookup.status == "found"


# Priors


def prefetching(replay, **prefetch):
    return settings(replay, prefetch={
        "enabled": True, "method": "retrieve", "move_scp": "DCM4CHEE", "destination_aet": "CRIS_WS",
        "patient_id_from": ["nhs", "study"], **prefetch,
    })


async def prefetch_report(kit, config, accession="RX1001", **fields):
    async with kit.running_bridge(config) as bridge, kit.cris(bridge) as cris:
        await cris.event(accession, **fields)
        assert (await kit.settled(bridge, accession)).status == "found"
        report = await plugin.adapter.wait_prefetched(accession, within=15)
    assert report is not None
    return report


async def test_retrieve_moves_the_three_most_recent_priors(replay, kit, caplog):
    caplog.set_level(logging.INFO, "cris_connect.plugins.dcm4chee")
    report = await prefetch_report(kit, prefetching(replay), nhs="9434765919")
    assert report.ok and report.moved == (P1, P2, P3)
    (priors_query,) = [r for r in replay.received if "PatientID" in r.query]
    assert priors_query.query["PatientID"] == ["9434765919"]
    assert priors_query.query["IssuerOfPatientID"] == ["NHS"]
    posts = [r for r in replay.received if r.method == "POST"]
    assert [r.path for r in posts] == [
        f"/dcm4chee-arc/aets/DCM4CHEE/dimse/DCM4CHEE/studies/{uid}/export/dicom:CRIS_WS"
        for uid in (P1, P2, P3)
    ]
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert "9434765919" not in log_text and "*******919" in log_text  # the NHS number is masked


async def test_retrieve_on_a_queue_is_accepted(replay, kit):
    report = await prefetch_report(kit, prefetching(replay, queue="Retrieve", priors=1))
    assert report.ok and report.moved == (P1,)
    (post,) = [r for r in replay.received if r.method == "POST"]
    assert post.query == {"dcmQueueName": ["Retrieve"]}


async def test_retrieve_from_another_pacs_via_retrieve_url(replay, kit):
    config = prefetching(replay, move_scp="", priors=1,
                         retrieve_url=replay.base_url + "/dcm4chee-arc/aets/DCM4CHEE/dimse/PACS2")
    report = await prefetch_report(kit, config)
    assert report.failed == (P1,) and not report.ok  # the recording: 502, destination unreachable


async def test_partial_retrieve_counts_as_failed(replay, kit):
    report = await prefetch_report(kit, prefetching(replay, destination_aet="FLAKY_WS", priors=2))
    assert report.failed == (P1, P2)


@pytest.mark.parametrize("exporter", ["CRIS-PREFETCH", "dicom:CRIS_WS"])
async def test_export(replay, kit, exporter):
    report = await prefetch_report(kit, prefetching(replay, method="export", exporter=exporter, priors=2))
    assert report.ok and report.moved == (P1, P2)
    posts = [r.path for r in replay.received if r.method == "POST"]
    assert posts == [f"/dcm4chee-arc/aets/DCM4CHEE/rs/studies/{uid}/export/{exporter}" for uid in (P1, P2)]


async def test_unknown_exporter_fails_with_the_archive_s_reason(replay, kit, caplog):
    report = await prefetch_report(kit, prefetching(replay, method="export", exporter="NO-SUCH-EXPORTER"))
    assert len(report.failed) == 3
    failing = [r.getMessage() for r in caplog.records if "is failing" in r.getMessage()]
    assert len(failing) == 1 and "No such Exporter" in failing[0]


async def test_patient_id_falls_back_to_the_study(replay, kit):
    # No NHS number in the EVENT: the current study's PatientID and issuer are used.
    report = await prefetch_report(kit, prefetching(replay, priors=1))
    assert report.moved == (P1,)


async def test_second_event_does_not_prefetch_again(replay, kit):
    async with kit.running_bridge(prefetching(replay, priors=2)) as bridge, kit.cris(bridge) as cris:
        await cris.event("RX1001")
        first = await plugin.adapter.wait_prefetched("RX1001", within=15)
        await cris.event("RX1001")
        await kit.await_until(lambda: len([r for r in replay.received if "AccessionNumber" in r.query]) == 2,
                              timeout=10, what="the second lookup")
        assert (await kit.settled(bridge, "RX1001")).status == "found"
        assert plugin.adapter.prefetches["RX1001"] is first
    assert len([r for r in replay.received if r.method == "POST"]) == 2
