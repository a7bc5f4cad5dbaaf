"""Moving priors to the workstation: dcm4chee's REST retrieve and export, or plain C-MOVE.

Each `Mover` moves one study and returns a `MoveResult`, or raises `ArchiveError`. Which priors
to move (the N most recent, minus those already at the destination) is decided by the plugin.
"""

from __future__ import annotations

import json
from typing import Protocol
from urllib.parse import quote

from cris_connect_dcm4chee import dimse
from cris_connect_dcm4chee.dimse import MoveResult
from cris_connect_dcm4chee.web import ArchiveError, ArchiveHttp


class Mover(Protocol):
    #: For log lines: "dcm4chee retrieve via http://... to WS1".
    where: str

    async def move(self, study_instance_uid: str) -> MoveResult: ...


def _counts(text: bytes, where: str, state: str) -> MoveResult:
    # Synchronous export/retrieve answer {"completed": n, "warning": n, "failed": n}; queued ones
    # answer a task description instead, which has no counts.
    try:
        payload = json.loads(text) if text.strip() else {}
    except ValueError:
        raise ArchiveError(f"{where}: the answer is not JSON") from None
    if not isinstance(payload, dict):
        raise ArchiveError(f"{where}: expected a JSON object, got {type(payload).__name__}")

    def count(key: str) -> int:
        value = payload.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return MoveResult(completed=count("completed"), warning=count("warning"), failed=count("failed"),
                      state=state)


class _RestMover:
    def __init__(self, http: ArchiveHttp, timeout: float) -> None:
        self.http = http
        self.timeout = timeout

    async def _post(self, url: str, params: dict[str, str]) -> MoveResult:
        # 200 all sent, 202 queued, 206 some failed, 502 none could be sent (dcm4chee's answers).
        response = await self.http.request(
            "POST", url, params=params or None, seconds=self.timeout, accept=(200, 202, 204, 206, 502)
        )
        where = f"POST {url}"
        if response.status_code == 202:
            return MoveResult(state="queued")
        result = _counts(response.content, where, "done")
        if response.status_code in (206, 502) or result.failed:
            raise ArchiveError(
                f"{where}: HTTP {response.status_code}, {result.failed} instance(s) failed, "
                f"{result.completed} sent"
            )
        return result


class RestRetrieve(_RestMover):
    """`POST {dimse_root}/studies/{uid}/export/dicom:{destination}`: dcm4chee C-MOVEs the study
    from `move_scp` (itself or another PACS) to the workstation; with a queue it answers 202."""

    def __init__(self, http: ArchiveHttp, dimse_root: str, destination: str, *, queue: str,
                 timeout: float) -> None:
        super().__init__(http, timeout)
        self.dimse_root = dimse_root
        self.destination = destination
        self.queue = queue
        self.where = f"dcm4chee retrieve at {dimse_root} to {destination}"

    async def move(self, study_instance_uid: str) -> MoveResult:
        url = f"{self.dimse_root}/studies/{quote(study_instance_uid)}/export/dicom:{quote(self.destination)}"
        return await self._post(url, {"dcmQueueName": self.queue} if self.queue else {})


class RestExport(_RestMover):
    """`POST {rs_root}/studies/{uid}/export/{exporter}`: a configured exporter (202, queued) or
    `dicom:AET` (synchronous C-STORE from dcm4chee itself)."""

    def __init__(self, http: ArchiveHttp, rs_root: str, exporter: str, *, timeout: float) -> None:
        super().__init__(http, timeout)
        self.rs_root = rs_root
        self.exporter = exporter
        self.where = f"dcm4chee export {exporter} at {rs_root}"

    async def move(self, study_instance_uid: str) -> MoveResult:
        url = f"{self.rs_root}/studies/{quote(study_instance_uid)}/export/{quote(self.exporter, safe=':')}"
        return await self._post(url, {})


class CMove:
    """Study-level C-MOVE from the archive to the workstation's AE."""

    def __init__(self, peer: dimse.Peer, destination: str) -> None:
        self.peer = peer
        self.destination = destination
        self.where = f"C-MOVE from {peer} to {destination}"

    async def move(self, study_instance_uid: str) -> MoveResult:
        return await dimse.move_study(self.peer, study_instance_uid, self.destination)
