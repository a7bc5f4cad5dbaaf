"""The config file: strict, and every error names the key path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from cris_connect import config as config_module
from cris_connect.config import ConfigError


def load_text(tmp_path: Path, text: str) -> config_module.Config:
    path = tmp_path / "site.toml"
    path.write_text(text)
    return config_module.load(path)


def test_a_complete_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOX_DIR", "/srv/pacs/in")
    config = load_text(tmp_path, """
[server]
port = 9999
plain = true
allowed_origins = ["https://cris.example.nhs.uk"]
[logging]
show_identifiers = true
[plugins]
enabled = ["log", "filedrop"]
hook_timeout = 2.5
[plugins.filedrop]
outbox = "${OUTBOX_DIR}"
""")
    assert config.server.port == 9999 and config.server.scheme == "ws"
    assert config.server.allowed_origins == ("https://cris.example.nhs.uk",)
    assert config.logging.show_identifiers
    assert config.plugins.enabled == ("log", "filedrop") and config.plugins.hook_timeout == 2.5
    assert config.plugins.settings == {"filedrop": {"outbox": "/srv/pacs/in"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\nplain = true", "server: unknown key prot (known keys: host, port,"),
        ("[server]\nport = 'nine'\nplain = true", "server.port: expected an integer, got 'nine'"),
        ("[server]\nport = true\nplain = true", "server.port: expected an integer, got True"),
        ("[server]\nport = 70000\nplain = true", "server.port: 70000 is not a TCP port"),
        ("[server]\nplain = true\nallowed_origins = ['a', 3]", 'server.allowed_origins: expected a list of strings like ["a", "b"], got'),
        ("[server]\nport = 9998", "server.cert and server.key are needed for wss://; run `cris-connect cert`"),
        ("[server]\nplain = true\nhost = '0.0.0.0'", "server.host: 0.0.0.0 is not loopback"),
        ("[server]\nplain = true\nhost = '0.0.0.0'\nallow_remote = true", "server.plain: listening on 0.0.0.0"),
        ("[server]\nplain = true\nmax_sessions = 0", "server.max_sessions: must be greater than 0"),
        ("[sever]\nport = 1", "sever: unknown section"),
        ("server = 3", "server: expected a table"),
        ("[server]\nplain = true\n[plugins]\nenabled = 'log'", "plugins.enabled: expected a list of strings"),
        ("[server]\nplain = true\ncert = '${NO_SUCH_VARIABLE_X}'", "server.cert: environment variable NO_SUCH_VARIABLE_X is not set"),
        ("[server\nport = 1", "is not valid TOML"),
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert message in str(caught.value)
    assert str(tmp_path / "site.toml") in str(caught.value)  # and which file


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; check the path"):
        config_module.load(tmp_path / "nope.toml")


def test_example_configs_are_valid() -> None:
    examples = Path(__file__).parents[2] / "examples"
    for path in sorted(examples.glob("*.toml")):
        if path.name == "site.toml":
            config = config_module.load(path)
            assert config.server.port == 9998
