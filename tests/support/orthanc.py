"""A throwaway Orthanc archive (DICOMweb + DIMSE) run as an ordinary process.

Not the Debian system service: each ``Orthanc`` gets its own JSON config, storage and index in a
work directory, and random high ports (Orthanc 1.10 listens on all interfaces; it has no bind
address option). ``stop()`` keeps the storage, so ``start()`` afterwards brings the same archive
back on the same ports - the "archive down, archive back" case.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from . import processes
from .polling import wait_until
from .ports import free_port
from .service import Service

ORTHANC_EXECUTABLE = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


@dataclass(frozen=True)
class Modality:
    """A DICOM peer Orthanc may send to (C-STORE SCU / C-MOVE destination)."""

    aet: str
    port: int
    host: str = "127.0.0.1"

    def as_config(self) -> dict[str, Any]:
        return {"AET": self.aet, "Host": self.host, "Port": self.port}


class Orthanc(Service):
    """One Orthanc process. Use as a (sync or async) context manager, or ``start()``/``stop()``."""

    def __init__(
        self,
        workdir: Path,
        *,
        aet: str = "ORTHANC",
        modalities: Mapping[str, Modality] | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.workdir = workdir
        self.aet = aet
        self.modalities: dict[str, Modality] = dict(modalities or {})
        self.config_overrides = dict(config_overrides or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.log = workdir / "orthanc.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_root(self) -> str:
        return f"{self.base_url}/dicom-web"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def config(self) -> dict[str, Any]:
        storage = str(self.workdir / "storage")
        config: dict[str, Any] = {
            "Name": f"cris-connect-test-{self.aet}",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "Plugins": [DICOMWEB_PLUGIN],
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado"},
            "DicomModalities": {name: m.as_config() for name, m in self.modalities.items()},
            # Test peers (pynetdicom SCUs) are not all listed in DicomModalities.
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowMove": True,
            "DicomAlwaysAllowGet": True,
            "DicomScuTimeout": 10,
            # QIDO answers in UTF-8, so non-Latin-1 patient names survive the round trip.
            "DefaultEncoding": "Utf8",
            "WebDavEnabled": False,
            "SaveJobs": False,
        }
        config.update(self.config_overrides)
        return config

    def start(self) -> None:
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Rewritten on every start, so modalities added while running survive a restart.
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        self._process = processes.spawn(
            [ORTHANC_EXECUTABLE, f"--logfile={self.log}", str(config_path)],
            log=self.workdir / "orthanc.stdout.log",
        )
        try:
            wait_until(self._ready, timeout=self.start_timeout, what=f"Orthanc at {self.base_url}/system")
        except BaseException:
            self.kill()
            raise

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise processes.ExitedEarly("Orthanc", self._process.returncode, self.log)
        # trust_env=False: loopback never goes through an HTTP(S)_PROXY from the environment.
        try:
            return httpx.get(f"{self.base_url}/system", timeout=1.0, trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after ``stop_timeout``); Orthanc takes 2-4 s."""
        if self._process is not None:
            processes.stop(self._process, timeout=self.stop_timeout)
            self._process = None

    def kill(self) -> None:
        """Immediate SIGKILL: for teardown, when the storage is thrown away anyway."""
        if self._process is not None:
            processes.kill(self._process)
            self._process = None

    def upload(self, dicom: Path | str | bytes) -> dict[str, Any]:
        """Store one DICOM file (path or Part 10 bytes) via ``POST /instances``; Orthanc's answer."""
        body = dicom if isinstance(dicom, bytes) else Path(dicom).read_bytes()
        response = httpx.post(f"{self.base_url}/instances", content=body, timeout=30.0, trust_env=False)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def add_modality(self, name: str, modality: Modality) -> None:
        """Register a C-MOVE/C-STORE destination, now (REST) if running and in every later config."""
        self.modalities[name] = modality
        if self.running:
            response = httpx.put(
                f"{self.base_url}/modalities/{name}", json=modality.as_config(), timeout=10.0, trust_env=False
            )
            response.raise_for_status()
