"""examples/dcm4chee.toml and examples/orthanc.toml are real configs that pass every check."""

from __future__ import annotations

from pathlib import Path

import pytest

from cris_connect.config import load, structure
from cris_connect_dcm4chee import Dcm4cheeConfig

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize("name", ["dcm4chee.toml", "orthanc.toml"])
def test_example_config_is_valid(name, monkeypatch, tmp_path):
    monkeypatch.setenv("DCM4CHEE_TOKEN", "token")
    monkeypatch.setenv("ORTHANC_PASSWORD", "password")
    text = (EXAMPLES / name).read_text()
    ca = tmp_path / "ca.pem"
    ca.write_text("not read by this test")
    path = tmp_path / name
    path.write_text(text.replace("/etc/ssl/certs/trust-root-ca.pem", str(ca)))
    config = load(path)
    assert "dcm4chee" in config.plugins.enabled
    section = structure(config.plugins.settings["dcm4chee"], Dcm4cheeConfig, where="plugins.dcm4chee")
    assert section.prefetch.enabled
