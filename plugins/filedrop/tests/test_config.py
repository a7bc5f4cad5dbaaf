"""`[plugins.filedrop]`: good sections structure, bad ones stop start-up with the key path.

Unwritable folders: the tests run as root, for whom permission bits stop nothing, so an unusable
folder is simulated by what stops root too: the path being a regular file, a parent being a
regular file, or (Linux) /proc, an existing directory in which no file can be created.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from cris_connect import Bridge, ConfigError
from cris_connect.config import from_mapping, structure
from cris_connect_filedrop.config import FiledropConfig


def section(settings: dict[str, Any]) -> FiledropConfig:
    return structure(settings, FiledropConfig, where="plugins.filedrop")


def refusal(settings: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        section(settings)
    return str(caught.value)


def test_missing_folders_are_created(tmp_path: Path) -> None:
    config = section({"outbox": str(tmp_path / "a" / "out"), "inbox": str(tmp_path / "b" / "in")})
    assert (tmp_path / "a" / "out").is_dir()
    for folder in ("in", "in/done", "in/failed"):
        assert (tmp_path / "b" / folder).is_dir()
    assert config.format == "json"
    assert config.commands == ("EVENT", "READONLY", "COMMIT", "RELEASE", "LOGIN", "LOGOUT")
    assert config.outbox_extension == ".json"
    assert not list((tmp_path / "a" / "out").iterdir()), "the writability probe is removed"


def test_a_folder_is_needed() -> None:
    assert refusal({}) == (
        "plugins.filedrop: set outbox (CRIS commands out as files), inbox (command files in), or both"
    )


def test_outbox_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a folder")
    assert refusal({"outbox": str(tmp_path / "out")}) == (
        f"plugins.filedrop.outbox: {tmp_path / 'out'} is a file, not a folder; remove it or choose "
        "another folder"
    )


def test_outbox_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    message = refusal({"outbox": str(tmp_path / "file" / "out")})
    assert message.startswith(f"plugins.filedrop.outbox: the folder {tmp_path / 'file' / 'out'} "
                              "cannot be created")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_outbox_that_is_not_writable() -> None:
    message = refusal({"outbox": "/proc"})
    assert message.startswith("plugins.filedrop.outbox: the folder /proc is not writable (")


def test_inbox_subfolder_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "done").write_text("")
    assert refusal({"inbox": str(tmp_path / "in")}).startswith(
        f"plugins.filedrop.inbox: {tmp_path / 'in' / 'done'} is a file, not a folder"
    )


def test_inbox_must_not_be_the_outbox(tmp_path: Path) -> None:
    assert refusal({"outbox": str(tmp_path), "inbox": f"{tmp_path}/."}) == (
        "plugins.filedrop.inbox: must not be the outbox folder; the adapter would read its own files"
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"format": "xml"}, "plugins.filedrop.format: 'xml' is not a format; use one of json, keyvalue, "
                            "template"),
        ({"commands": ["EVENT", "DISPLAY"]}, "plugins.filedrop.commands: 'DISPLAY' is not a CRIS command"),
        ({"commands": []}, "plugins.filedrop.commands: is empty"),
        ({"encoding": "klingon"}, "plugins.filedrop.encoding: 'klingon' is not a text encoding"),
        ({"extension": ".tmp"}, "plugins.filedrop.extension: '.tmp' must look like"),
        ({"extension": "txt"}, "plugins.filedrop.extension: 'txt' must look like"),
        ({"settle_time": 0}, "plugins.filedrop.settle_time: must be greater than 0"),
        ({"session_wait": -1}, "plugins.filedrop.session_wait: must be 0 or more seconds"),
        ({"poll": "yes"}, "plugins.filedrop.poll: expected true or false"),
        ({"outbx": "x"}, "plugins.filedrop: unknown key outbx"),
        ({"format": "template"}, 'plugins.filedrop.template: format = "template" needs a template file'),
    ],
)
def test_bad_values(tmp_path: Path, settings: dict[str, Any], expected: str) -> None:
    assert refusal({"outbox": str(tmp_path / "out"), **settings}).startswith(expected)


def test_several_problems_in_one_line(tmp_path: Path) -> None:
    message = refusal({"outbox": str(tmp_path), "format": "xml", "poll_interval": 0})
    assert message == (
        "plugins.filedrop.format: 'xml' is not a format; use one of json, keyvalue, template"
        " - and poll_interval: must be greater than 0"
    )


def test_commands_are_case_insensitive(tmp_path: Path) -> None:
    assert section({"outbox": str(tmp_path), "commands": ["event", "Release"]}).commands == (
        "event", "Release"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$command $whatever", "uses unknown placeholder(s) $whatever; the placeholders are $command"),
        ("$command $password", "uses $password; passwords are never written to files"),
        ("costs $5", "has a '$' that is not a placeholder; write $$ for a literal $"),
    ],
)
def test_bad_templates(tmp_path: Path, text: str, expected: str) -> None:
    template = tmp_path / "viewer.ini"
    template.write_text(text)
    message = refusal({"outbox": str(tmp_path / "out"), "format": "template", "template": str(template)})
    assert message.startswith(f"plugins.filedrop.template: {template} ")
    assert expected in message


def test_template_is_read_once_and_gives_the_extension(tmp_path: Path) -> None:
    template = tmp_path / "viewer.ini"
    template.write_text("[study]\nacc=$first_accession\n")
    config = section({"outbox": str(tmp_path / "out"), "format": "template", "template": str(template)})
    template.unlink()
    assert config.outbox_template is not None
    assert config.outbox_template.template == "[study]\nacc=$first_accession\n"
    assert config.outbox_extension == ".ini"


def test_unreadable_template(tmp_path: Path) -> None:
    assert refusal({"outbox": str(tmp_path), "format": "template", "template": str(tmp_path / "none")}) == (
        f"plugins.filedrop.template: the template {tmp_path / 'none'} cannot be read (No such file or "
        "directory)"
    )


@pytest.mark.anyio
async def test_bridge_refuses_to_start_with_an_unusable_outbox(tmp_path: Path) -> None:
    """Through the entry point, as `cris-connect serve` loads it: start-up stops, naming the folder."""
    (tmp_path / "out").write_text("")
    config = from_mapping({
        "server": {"plain": True, "port": 0},
        "plugins": {"enabled": ["filedrop"], "filedrop": {"outbox": str(tmp_path / "out")}},
    })
    with pytest.raises(ConfigError, match=r"^plugins\.filedrop\.outbox: .*out is a file, not a folder"):
        async with Bridge(config):
            pass  # pragma: no cover
