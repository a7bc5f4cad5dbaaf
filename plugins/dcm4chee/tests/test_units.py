"""Pure parts: DICOM JSON parsing, choosing priors, the config's checks, the entry point."""

from __future__ import annotations

import importlib.metadata

import pytest

from cris_connect import Bridge, Config, ConfigError, ServerConfig
from cris_connect.config import PluginsConfig, structure
from cris_connect.studies import Study
from cris_connect_dcm4chee import Dcm4cheeConfig, choose_priors, plugin
from cris_connect_dcm4chee.dicomjson import FoundStudy, MalformedResponse, studies_from_json


def element(vr, *values):
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def test_parses_the_attributes_it_needs_and_tolerates_missing_ones():
    (found,) = studies_from_json([{
        "0020000D": element("UI", "1.2.3"),
        "00080050": element("SH", "RX1"),
        "00080061": element("CS", "CT", "SR"),
        "00081030": element("LO"),  # present, empty: None
    }])
    assert found.study == Study(study_instance_uid="1.2.3", accession="RX1", modalities=("CT", "SR"))
    assert found.study_time is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "expected a DICOM JSON array of studies, got an object"),
        ([1], "study 0: expected a DICOM JSON object, got a int"),
        ([{"00080050": element("SH", "RX1")}], "study 0: no StudyInstanceUID"),
        ([{"0020000D": "1.2.3"}], "attribute 0020000D is a string, not an object"),
        ([{"0020000D": {"vr": "UI", "Value": "1.2.3"}}], "has a Value that is not an array"),
        ([{"0020000D": element("UI", 5)}], "holds a int, not a string"),
    ],
)
def test_malformed_dicom_json_says_what_is_wrong(payload, message):
    with pytest.raises(MalformedResponse, match=message):
        studies_from_json(payload)


def found(uid, date, time=None):
    return FoundStudy(Study(study_instance_uid=uid, study_date=date), study_time=time)


def test_choose_priors_newest_first_never_current_or_later():
    current = [found("cur", "20240501")]
    archive = [
        found("cur", "20240501"), found("later", "20240601"), found("old", "20190101"),
        found("recent", "20231001"), found("same-day-later", "20240501", "120000"),
        found("undated", None), found("mid", "20220101"), found("recent", "20231001"),
    ]
    chosen = [f.study.study_instance_uid for f in choose_priors(current, archive, 3)]
    assert chosen == ["same-day-later", "recent", "mid"]
    assert [f.study.study_instance_uid for f in choose_priors(current, archive, 0)] == []
    everything = [f.study.study_instance_uid for f in choose_priors(current, archive, 10)]
    assert everything[-1] == "undated" and "later" not in everything


BASE = {"url": "http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/rs"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "plugins.dcm4chee: url is needed"),
        ({"url": "pacs:8080"}, "plugins.dcm4chee.url: url must start with http:// or https://"),
        ({**BASE, "timeout": 0}, "timeout must be greater than 0"),
        ({**BASE, "retries": "3"}, "plugins.dcm4chee.retries: expected an integer"),
        ({**BASE, "query": "sql"}, "query must be one of 'qido', 'dimse'"),
        ({**BASE, "query": "dimse"}, "dimse.host is needed"),
        ({**BASE, "token_env": "CRIS_NO_SUCH_VARIABLE"}, "CRIS_NO_SUCH_VARIABLE, which is not set"),
        ({**BASE, "username": "cris"}, "password_env is needed with username"),
        ({**BASE, "ca_file": "/no/such/ca.pem"}, "ca_file: /no/such/ca.pem does not exist"),
        ({**BASE, "colour": "blue"}, "unknown key colour"),
        ({**BASE, "prefetch": {"enabled": True}}, "plugins.dcm4chee.prefetch: destination_aet is needed"),
        ({**BASE, "prefetch": {"enabled": True, "destination_aet": "WS"}}, "move_scp is needed"),
        ({**BASE, "prefetch": {"enabled": True, "method": "export"}}, "exporter is needed"),
        ({**BASE, "prefetch": {"method": "ftp"}}, "method must be one of 'retrieve', 'export', 'c-move'"),
        ({**BASE, "prefetch": {"priors": -1}}, "priors must be 0 or more"),
        ({**BASE, "prefetch": {"patient_id_from": ["mrn"]}}, "'mrn' is not a source"),
        ({**BASE, "prefetch": {"destination_aet": "A_VERY_LONG_AE_TITLE"}}, "must be a DICOM AE title"),
        ({"url": "http://orthanc:8042/dicom-web",
          "prefetch": {"enabled": True, "destination_aet": "WS", "move_scp": "PACS"}},
         "prefetch.retrieve_url is needed"),
    ],
)
def test_bad_config_is_one_sentence_with_the_key(settings, message):
    with pytest.raises(ConfigError) as raised:
        structure(settings, Dcm4cheeConfig, where="plugins.dcm4chee")
    assert message in str(raised.value)


def test_retrieve_root_is_derived_from_the_rs_root():
    config = structure({**BASE, "prefetch": {"enabled": True, "destination_aet": "WS", "move_scp": "PACS2"}},
                       Dcm4cheeConfig, where="plugins.dcm4chee")
    assert config.retrieve_root == "http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/dimse/PACS2"


def test_entry_point():
    (entry_point,) = importlib.metadata.entry_points(group="cris_connect", name="dcm4chee")
    assert entry_point.load() is plugin
    assert entry_point.dist.name == "cris-connect-dcm4chee"


@pytest.mark.anyio
async def test_bad_config_stops_bridge_start_up():
    config = Config(server=ServerConfig(plain=True, port=0),
                    plugins=PluginsConfig(enabled=("dcm4chee",), settings={"dcm4chee": {"url": "pacs"}}))
    with pytest.raises(ConfigError, match=r"plugins\.dcm4chee\.url: url must start with http"):
        async with Bridge(config):
            pass
