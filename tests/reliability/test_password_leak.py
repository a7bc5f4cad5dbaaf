"""No password (nor shared secret, nor unmasked NHS number) in any output: a run with the `log` and `journal` plugins where LOGIN goes both
ways (and CRIS sends passwords in every wrong shape), then a grep of everything it produced."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import attrs
import pytest

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json, wait_until
from cris_connect import Bridge, InvalidMessage, Login, NoSession, codec
from cris_connect.config import Config, PluginsConfig, ServerConfig
from cris_connect.server import SECRET_HEADER

pytestmark = pytest.mark.anyio

PASSWORD = "Tr0ub4dor&3-leak-canary"
PIN = 73105291  # a numeric password, as a careless client might send it
SHARED_SECRET = "shared-secret-leak-canary"
NHS_NUMBER = 9434765919  # not a secret, but never in a log unmasked


async def test_no_password_in_logs_journal_exceptions_or_reprs(tmp_path: Path, logs) -> None:
    journal_path = tmp_path / "journal.jsonl"
    config = Config(
        server=ServerConfig(plain=True, port=0, shared_secret=SHARED_SECRET),
        plugins=PluginsConfig(enabled=["log", "journal"],
                              settings={"journal": {"path": str(journal_path), "fsync": "always"}}),
    )
    recorder = Recorder()
    outputs: list[str] = []
    async with Bridge(config, plugins=[recorder]) as bridge:
        async with cris(bridge.url, additional_headers={SECRET_HEADER: SHARED_SECRET}) as ws:
            sent = [
                {"command": "LOGIN", "username": "jsmith", "password": PASSWORD},
                {"command": "LOGIN", "username": "jsmith", "password": PIN},  # wrong type: refused
                {"command": "LOGIN", "username": "jsmith", "password": [PASSWORD]},  # wrong type: refused
                {"command": "EVENT", "accession": ["RX1"], "password": PASSWORD, "pwd": PASSWORD},
                {"command": "PRIORITY", "password": PASSWORD},  # unknown command
                {"command": "EVENT", "accession": ["RX1"], "examCode": {"password": PASSWORD}},  # refused
                {"command": "EVENT", "accession": ["RX1"], "nhs": NHS_NUMBER},  # a number: refused
            ]
            for message in sent:
                await send_json(ws, message)
            await ws.send(json.dumps(sent[0]).encode())  # a binary frame carrying it: refused
            await recorder.wait_for("on_command", 3)
            await recorder.wait_for("on_refused", 5)

            # PACS -> CRIS: the password must reach CRIS, and nothing else.
            assert await bridge.send(Login(username="jsmith", password=PASSWORD)) == 1
            assert (await recv_json(ws))["password"] == PASSWORD
            session = bridge.sessions[0]
            session.secure = False  # as a remote ws:// session would be: refused, with a reason
            with pytest.raises(NoSession) as refused:
                await bridge.send(Login(username="jsmith", password=PASSWORD))
            outputs.append(str(refused.value))
            session.secure = True
            with pytest.raises(InvalidMessage) as invalid:
                await bridge.send(Login(username="", password=PASSWORD))
            outputs.append(str(invalid.value))
            await wait_until(lambda: any("-> LOGIN" in r.getMessage() for r in logs.records),
                             what="the log plugin's LOGIN line")

            # reprs of everything a developer might print
            outputs += [repr(Login(username="jsmith", password=PASSWORD)), repr(session), str(session),
                        repr(session.context), repr(bridge.config), repr(config.server), repr(bridge.health()),
                        repr(recorder.calls),
                        # an adapter's own section may hold a password (dcm4chee's does)
                        repr(attrs.evolve(config, plugins=attrs.evolve(
                            config.plugins, settings={"archive": {"url": "http://pacs", "password": PASSWORD}})))]
            for message in sent:
                try:
                    outputs.append(repr(codec.decode(json.dumps(message))))
                except codec.DecodeError as exc:
                    outputs.append(str(exc))
                    outputs.append(repr(exc))
    # After shutdown: every line our loggers wrote, with tracebacks, and every journal file.
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    ours = [record for record in logs.records if record.name.startswith("cris_connect")]
    outputs += [formatter.format(record) for record in ours]
    outputs += [repr(record.args) for record in ours]
    outputs += [path.read_text() for path in tmp_path.iterdir() if path.name.startswith("journal.jsonl")]
    text = "\n".join(outputs)

    assert "<- LOGIN username=jsmith password=***" in text  # the log plugin did log the LOGINs
    assert '"command":"LOGIN"' in text and '"direction":"out"' in text  # and the journal recorded them
    assert len([r for r in ours if "frame refused" in r.getMessage()]) == 5
    for secret in (PASSWORD, str(PIN), SHARED_SECRET, str(NHS_NUMBER)):
        leaks = [line for line in text.splitlines() if secret in line]
        assert leaks == [], f"{secret} leaked in: " + " | ".join(line[max(0, line.index(secret) - 150):line.index(secret) + 30] for line in leaks)
