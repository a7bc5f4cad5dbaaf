"""Fixtures for the dcm4chee adapter's tests.

- `replay`: a small HTTP server answering dcm4chee's recorded responses (`recordings/*.json`),
  because dcm4chee (WildFly + LDAP + a database) cannot run here. It records what it was asked.
- `archive`: a real Orthanc (DICOMweb + DIMSE) with one patient's current study and four priors,
  plus a Storage SCP as the workstation, module-scoped because Orthanc takes seconds to stop.
- `running_bridge(settings)`: a real bridge on a free loopback port with the adapter enabled
  through its entry point, and `CrisClient` - a real WebSocket client playing CRIS Reporting.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cris_connect import Bridge, Config, ServerConfig, client
from cris_connect.config import PluginsConfig
from cris_connect.studies import StudyLookup
from tests.support.polling import await_until
from tests.support.requirements import require_executable, require_file

RECORDINGS = Path(__file__).parent / "recordings"
DCM4CHEE_RS = "/dcm4chee-arc/aets/DCM4CHEE/rs"


# Recorded dcm4chee responses


@dataclass
class Recording:
    name: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int
    response_headers: dict[str, str]
    body: bytes
    delay: float = 0.0

    @classmethod
    def load(cls, path: Path) -> Recording:
        data = json.loads(path.read_text())
        request, response = data["request"], data["response"]
        if "json" in response:
            body = json.dumps(response["json"]).encode()
        else:
            body = response.get("body", "").encode()
        return cls(
            name=path.stem, method=request["method"], path=request["path"],
            query=request.get("query", {}), headers=request.get("headers", {}),
            status=response["status"], response_headers=response.get("headers", {}), body=body,
            delay=response.get("delay", 0.0),
        )

    def matches(self, method: str, path: str, query: Mapping[str, list[str]]) -> bool:
        return (
            method == self.method and fnmatch.fnmatchcase(path, self.path)
            and all(query.get(key) == [value] for key, value in self.query.items())
        )


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class ReplayServer:
    """Answers each request with the first recording whose method, path and query keys match."""

    recordings: list[Recording]
    received: list[Received] = field(default_factory=list)
    #: When set, every request is answered 503 (the archive "down" behind its proxy).
    down: bool = False
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def rs_url(self) -> str:
        return self.base_url + DCM4CHEE_RS

    def requests_to(self, path_part: str) -> list[Received]:
        return [r for r in self.received if path_part in r.path]

    def start(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                split = urlsplit(self.path)
                query = parse_qs(split.query)
                replay.received.append(Received(self.command, split.path, query, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if replay.down:
                    return self._send(503, {"Content-Type": "text/html"}, b"<html>Service Unavailable</html>")
                for recording in replay.recordings:
                    if recording.matches(self.command, split.path, query):
                        for header, value in recording.headers.items():
                            if self.headers.get(header) != value:
                                return self._send(401, {"WWW-Authenticate": "Bearer"}, b"")
                        if recording.delay:
                            threading.Event().wait(recording.delay)
                        return self._send(recording.status, recording.response_headers, recording.body)
                return self._send(404, {"Content-Type": "application/json"},
                                  b'{"errorMessage":"no recording for this request"}')

            def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for header, value in headers.items():
                        self.send_header(header, value)
                    if status != 204:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if status != 204:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="replay", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture(scope="module")
def replay_server() -> Iterator[ReplayServer]:
    recordings = [Recording.load(p) for p in sorted(RECORDINGS.glob("*.json"))]
    # The most specific first: a recording that also names query keys wins over one that does not.
    recordings.sort(key=lambda r: -len(r.query))
    server = ReplayServer(recordings)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def replay(replay_server: ReplayServer) -> ReplayServer:
    replay_server.received.clear()
    replay_server.down = False
    return replay_server


# A real Orthanc with one patient's history


@dataclass
class Archive:
    orthanc: Any
    scp: Any
    history: Any
    other_patient: Any
    #: UID -> number of instances stored.
    instances: dict[str, int]

    @property
    def qido_url(self) -> str:
        return str(self.orthanc.dicomweb_root)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    from tests.support.orthanc import DICOMWEB_PLUGIN, ORTHANC_EXECUTABLE

    require_executable(ORTHANC_EXECUTABLE, "the test DICOM archive", package="orthanc")
    require_file(DICOMWEB_PLUGIN, "Orthanc's DICOMweb plugin", package="orthanc-dicomweb")
    from tests.support import dicom
    from tests.support.orthanc import Orthanc
    from tests.support.storescp import StorageSCP

    with StorageSCP(aet="CRIS_WS") as scp:
        orthanc = Orthanc(tmp_path_factory.mktemp("orthanc"), aet="ORTHANC",
                          modalities={"CRIS_WS": scp.modality})
        orthanc.start()
        try:
            history = dicom.patient_with_priors(4, patient_id="9434765919", issuer_of_patient_id="NHS")
            other = dicom.Study(patient_id="4857773456", study_description="XR CHEST", modality="CR")
            instances = {}
            for study in (*history.studies, other):
                datasets = dicom.make_study(study, series=1, instances_per_series=2)
                for ds in datasets:
                    orthanc.upload(dicom.to_bytes(ds))
                instances[study.study_instance_uid] = len(datasets)
            yield Archive(orthanc, scp, history, other, instances)
        finally:
            orthanc.kill()  # storage is thrown away: no need for the 2-4 s graceful stop


# The bridge and CRIS


@asynccontextmanager
async def running_bridge(settings: Mapping[str, Any], *, plugins: tuple[object, ...] = (),
                         hook_timeout: float = 10.0) -> AsyncIterator[Bridge]:
    config = Config(
        server=ServerConfig(plain=True, port=0),
        plugins=PluginsConfig(enabled=("dcm4chee",), settings={"dcm4chee": dict(settings)},
                              hook_timeout=hook_timeout),
    )
    async with Bridge(config, plugins=plugins) as bridge:
        yield bridge


class CrisClient:
    """CRIS Reporting, as far as these tests need it: send EVENT / READONLY over a real WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def event(self, *accessions: str, command: str = "EVENT", **fields: str) -> None:
        await self.ws.send(json.dumps({"command": command, "accession": list(accessions), **fields}))


@asynccontextmanager
async def cris(bridge: Bridge) -> AsyncIterator[CrisClient]:
    async with client.connect(bridge.url) as ws:
        yield CrisClient(ws)


async def settled(bridge: Bridge, accession: str, timeout: float = 15.0) -> StudyLookup:
    """The accession's published lookup; fails the test if it is still pending at the deadline.

    The EVENT may still be on its way to the bridge, so first wait (with a deadline) until the
    bridge has marked it pending or published it.
    """
    await await_until(lambda: bridge.studies.get(accession), timeout=timeout,
                      what=f"the bridge to receive {accession}")
    lookup = await bridge.studies.wait_for(accession, timeout)
    assert lookup is not None, f"nobody looked up {accession}"
    assert lookup.status != "pending", f"{accession} still pending after {timeout} s"
    return lookup


class StudiesRecorder:
    """A second plugin, as the OHIF adapter would be: records `on_studies_found`."""

    name = "recorder"

    def __init__(self) -> None:
        self.lookups: list[StudyLookup] = []

    from cris_connect import hookimpl as _hookimpl

    @_hookimpl
    def on_studies_found(self, lookup: StudyLookup) -> None:
        self.lookups.append(lookup)


class Helpers:
    running_bridge = staticmethod(running_bridge)
    cris = staticmethod(cris)
    settled = staticmethod(settled)
    await_until = staticmethod(await_until)
    StudiesRecorder = StudiesRecorder


@pytest.fixture
def kit() -> Helpers:
    """`kit.running_bridge(settings)`, `kit.cris(bridge)`, `kit.settled(bridge, accession)`,
    `kit.StudiesRecorder()` (test files cannot import conftest under --import-mode=importlib)."""
    return Helpers()
