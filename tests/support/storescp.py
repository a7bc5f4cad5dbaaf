"""A DICOM Storage SCP (pynetdicom) that records what it receives: a C-MOVE destination.

Runs pynetdicom's threaded server on a free loopback port. Received instances are kept in memory
(test images are small); tests wait for them with a deadline rather than sleeping.
"""

from __future__ import annotations

import threading
import time

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from .orthanc import Modality
from .polling import await_until
from .ports import free_port
from .service import Service

SUCCESS = 0x0000


class StorageSCP(Service):
    """Accepts C-STORE (and C-ECHO) for every storage SOP class, as AE title ``aet``."""

    def __init__(self, aet: str = "CRIS_TEST_SCP", *, port: int | None = None) -> None:
        self.aet = aet
        self.host = "127.0.0.1"
        self._fixed_port = port is not None
        self.port = port or free_port()
        self._received: list[Dataset] = []
        self._condition = threading.Condition()
        self._server: ThreadedAssociationServer | None = None

    @property
    def modality(self) -> Modality:
        """How Orthanc (``DicomModalities``) should address this SCP."""
        return Modality(aet=self.aet, host=self.host, port=self.port)

    def start(self) -> None:
        if self._server is not None:
            return
        ae = AE(ae_title=self.aet)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        for attempt in range(5):
            try:
                server = ae.start_server(
                    (self.host, self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)]
                )
                break
            except OSError:
                # Someone took our free port before we bound it: pick another unless told which.
                if self._fixed_port or attempt == 4:
                    raise
                self.port = free_port()
        assert server is not None  # block=False returns the server
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event: evt.Event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        with self._condition:
            self._received.append(dataset)
            self._condition.notify_all()
        return SUCCESS

    @property
    def received(self) -> list[Dataset]:
        with self._condition:
            return list(self._received)

    @property
    def received_study_uids(self) -> set[str]:
        return {str(ds.StudyInstanceUID) for ds in self.received}

    def _matching(self, study_uid: str | None) -> list[Dataset]:
        return [ds for ds in self._received if study_uid is None or ds.StudyInstanceUID == study_uid]

    def wait_for_instances(
        self, count: int = 1, *, study_uid: str | None = None, timeout: float = 15.0
    ) -> list[Dataset]:
        """Block until ``count`` instances (of ``study_uid``, if given) have arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(found := self._matching(study_uid)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self.aet} received {len(found)} of {count} instances"
                        f" (study {study_uid or 'any'}) within {timeout:g} s"
                    )
                self._condition.wait(remaining)
            return found

    async def await_instances(
        self, count: int = 1, *, study_uid: str | None = None, timeout: float = 15.0
    ) -> list[Dataset]:
        """Async twin of :meth:`wait_for_instances` (polls, so it never blocks the event loop)."""

        def enough() -> list[Dataset]:
            with self._condition:
                found = self._matching(study_uid)
            return found if len(found) >= count else []

        return await await_until(enough, timeout=timeout, what=f"{count} instance(s) at {self.aet}")
