"""What the archive knows about an accession, shared between plugins without importing each other.

An archive adapter (dcm4chee, DICOMweb) registers as a provider and publishes a `StudyLookup` per
accession; a viewer adapter (OHIF) asks `bridge.studies.wait_for(accession)` instead of querying
the archive again. When CRIS sends EVENT or READONLY and a provider is registered, the bridge marks
the accessions pending *before* any plugin sees the command, so a viewer that asks first waits for
this lookup rather than reading a stale one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import anyio
import attrs

LookupStatus = Literal["pending", "found", "not_found", "failed"]


@attrs.frozen
class Study:
    """One study in the archive, with what a viewer or a prefetcher needs."""

    study_instance_uid: str
    accession: str | None = None
    patient_id: str | None = None
    issuer_of_patient_id: str | None = None
    study_date: str | None = None
    modalities: tuple[str, ...] = ()
    description: str | None = None


@attrs.frozen
class StudyLookup:
    """The outcome of finding one accession's studies: pending, found, not_found or failed."""

    accession: str
    status: LookupStatus
    studies: tuple[Study, ...] = ()
    #: Why it was not found or failed, in one sentence (no patient identifiers).
    reason: str | None = None
    #: The plugin that published it.
    source: str | None = None

    @property
    def study_instance_uids(self) -> tuple[str, ...]:
        return tuple(study.study_instance_uid for study in self.studies)


class StudyDirectory:
    """The bridge's shared accession -> studies table (`bridge.studies`)."""

    def __init__(
        self, *, on_publish: Callable[[StudyLookup], None] | None = None, max_entries: int = 10_000
    ) -> None:
        self._on_publish = on_publish
        self._lookups: dict[str, StudyLookup] = {}
        self._changed: dict[str, anyio.Event] = {}
        self._providers: set[str] = set()
        self._max_entries = max_entries

    @property
    def providers(self) -> frozenset[str]:
        """Names of the plugins that publish lookups; empty means: query the archive yourself."""
        return frozenset(self._providers)

    def register_provider(self, name: str) -> None:
        """Called by an archive adapter in `bridge_started`."""
        self._providers.add(name)

    def get(self, accession: str) -> StudyLookup | None:
        return self._lookups.get(accession)

    def begin(self, accessions: Iterable[str]) -> None:
        """Mark accessions pending (the bridge does this on EVENT/READONLY when a provider runs)."""
        for accession in accessions:
            self._store(StudyLookup(accession=accession, status="pending"))

    def publish(self, lookup: StudyLookup) -> None:
        """Record a lookup and wake everyone waiting for that accession."""
        self._store(lookup)
        event = self._changed.pop(lookup.accession, None)
        if event is not None:
            event.set()
        if self._on_publish is not None:
            self._on_publish(lookup)

    async def wait_for(self, accession: str, timeout: float) -> StudyLookup | None:
        """The accession's settled lookup, waiting up to `timeout` s while it is pending.

        Returns the pending lookup if the deadline passes, and None when nobody has looked.
        """
        with anyio.move_on_after(timeout):
            while (lookup := self._lookups.get(accession)) is not None and lookup.status == "pending":
                event = self._changed.setdefault(accession, anyio.Event())
                await event.wait()
        return self._lookups.get(accession)

    def _store(self, lookup: StudyLookup) -> None:
        self._lookups.pop(lookup.accession, None)
        self._lookups[lookup.accession] = lookup
        while len(self._lookups) > self._max_entries:  # a day's worklist, not a memory leak
            del self._lookups[next(iter(self._lookups))]
