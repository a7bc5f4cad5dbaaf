"""OHIF URLs and `[plugins.ohif]` checks: pure functions, no I/O."""

from __future__ import annotations

import pytest

from cris_connect.config import ConfigError, from_mapping
from cris_connect.plugins import plugin_config
from cris_connect_ohif import OhifConfig, study_instance_uids, study_list_url, viewer_url
from cris_connect_ohif.urls import is_not_found, same_origin


def test_viewer_url_holds_every_study_once_in_order() -> None:
    url = viewer_url("http://ohif:3000/", ["1.2.3", "1.2.4", "1.2.3"])
    assert url == "http://ohif:3000/viewer?StudyInstanceUIDs=1.2.3,1.2.4"


def test_viewer_url_with_mode_and_data_source() -> None:
    url = viewer_url("https://ohif.nhs.uk", ["1.2"], mode="segmentation", data_source="pacs")
    assert url == "https://ohif.nhs.uk/segmentation/pacs?StudyInstanceUIDs=1.2"


def test_viewer_url_needs_a_study() -> None:
    with pytest.raises(ValueError, match="at least one"):
        viewer_url("http://ohif", [])


def test_study_list_url_filters_by_accession() -> None:
    assert study_list_url("http://ohif/") == "http://ohif/"
    assert study_list_url("http://ohif", accessions=["RX1", "RX 2"]) == "http://ohif/?accession=RX1,RX%202"


@pytest.mark.parametrize(
    ("url", "uids"),
    [
        ("http://ohif/viewer?StudyInstanceUIDs=1.2.3", ("1.2.3",)),
        ("http://ohif/viewer/orthanc?StudyInstanceUIDs=1.2.3,1.2.4&hangingprotocolId=mpr",
         ("1.2.3", "1.2.4")),
        ("http://ohif/tmtv?studyInstanceUIDs=9.8", ("9.8",)),
        ("http://ohif/viewer?StudyInstanceUIDs=1.2&StudyInstanceUIDs=1.3", ("1.2", "1.3")),
        ("http://ohif/viewer?StudyInstanceUIDs=1.2%2C1.3", ("1.2", "1.3")),
        ("http://ohif/", ()),
        ("http://ohif/?accession=RX1", ()),
        ("about:blank", ()),
    ],
)
def test_study_instance_uids_read_back_from_a_tab(url: str, uids: tuple[str, ...]) -> None:
    assert study_instance_uids(url) == uids


def test_round_trip() -> None:
    uids = ("1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2")
    assert study_instance_uids(viewer_url("http://ohif", uids)) == uids


def test_same_origin_and_not_found() -> None:
    assert same_origin("http://127.0.0.1:81/viewer?x=1", "http://127.0.0.1:81")
    assert not same_origin("http://127.0.0.1:82/viewer", "http://127.0.0.1:81")
    assert not same_origin("about:blank", "http://127.0.0.1:81")
    assert is_not_found("http://ohif/notfoundstudy") and not is_not_found("http://ohif/viewer")


def _structure(settings: dict[str, object]) -> OhifConfig:
    config: OhifConfig = plugin_config(
        "ohif", {"register_config_class": lambda: [OhifConfig]}, settings  # type: ignore[dict-item]
    )
    return config


def test_defaults_need_only_the_url() -> None:
    config = _structure({"url": "https://ohif.example.nhs.uk/"})
    assert config.url == "https://ohif.example.nhs.uk"
    assert config.qido_root == "https://ohif.example.nhs.uk/dicom-web"
    assert (config.show, config.cdp_url, config.on_release) == ("cdp", "http://127.0.0.1:9222", "study_list")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "plugins.ohif.url: required key 'url' is missing"),
        ({"url": "ohif.example"}, "plugins.ohif.url: url must be an http:// or https:// URL"),
        ({"url": "http://o", "show": "window"}, "plugins.ohif.show: show must be one of 'cdp', 'browser'"),
        ({"url": "http://o", "on_release": "close"}, "plugins.ohif.on_release: on_release must be one of"),
        ({"url": "http://o", "mode": "view/er"}, "plugins.ohif.mode: mode must be one OHIF route segment"),
        ({"url": "http://o", "mode": ""}, "plugins.ohif.mode: mode must be one OHIF route segment"),
        ({"url": "http://o", "cdp_url": "9222"}, "plugins.ohif.cdp_url: cdp_url must be an http://"),
        ({"url": "http://o", "load_timeout": 0}, "plugins.ohif.load_timeout: load_timeout must be greater"),
        ({"url": "http://o", "load_timeout": "5"}, "plugins.ohif.load_timeout: expected a number"),
        ({"url": "http://o", "dicomweb_token_env": "CRIS_OHIF_NO_SUCH_VARIABLE"},
         "names the environment variable CRIS_OHIF_NO_SUCH_VARIABLE, which is not set"),
        ({"url": "http://o", "colour": "blue"}, "plugins.ohif: unknown key colour"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _structure(settings)
    assert message in str(caught.value)


def test_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OHIF_QIDO_TOKEN", "s3cret")
    config = _structure({"url": "http://o", "dicomweb_token_env": "OHIF_QIDO_TOKEN"})
    assert config.token == "s3cret" and "s3cret" not in repr(config)


def test_example_config_file_is_valid() -> None:
    import tomllib
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "examples" / "ohif.toml"
    config = from_mapping(tomllib.loads(example.read_text()))
    assert "ohif" in config.plugins.enabled
    _structure(dict(config.plugins.settings["ohif"]))
