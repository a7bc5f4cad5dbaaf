"""The adapter at work: find each accession's studies, publish them, prefetch the priors.

All archive traffic runs in background tasks (`bridge.start_soon`), so the plugin's hooks return
at once: the lookup for the next EVENT never waits behind a slow archive or a long move, and
the hook timeout never cuts a lookup short. Every lookup ends in a published `StudyLookup` -
found, not_found or failed, with the reason - never in silence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import anyio
import attrs

from cris_connect.masking import mask_identifier
from cris_connect.studies import StudyLookup
from cris_connect_dcm4chee import dimse
from cris_connect_dcm4chee.archive import CFindStudies, QidoStudies, StudyQuery
from cris_connect_dcm4chee.config import Dcm4cheeConfig
from cris_connect_dcm4chee.dicomjson import FoundStudy
from cris_connect_dcm4chee.prefetch import CMove, Mover, RestExport, RestRetrieve
from cris_connect_dcm4chee.streaks import Streaks
from cris_connect_dcm4chee.web import ArchiveError, ArchiveHttp, make_client

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge

log = logging.getLogger("cris_connect.plugins.dcm4chee")

#: Characters QIDO and C-FIND treat as wildcards or value separators: such an accession could
#: match other patients' studies, so it is never sent.
UNSAFE_IN_ACCESSION = frozenset("*?\\")


@attrs.frozen
class PrefetchReport:
    """What one accession's prefetch did (for logs, tests and the benchmark)."""

    accession: str
    #: Priors chosen (the N most recent), newest first.
    chosen: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    #: Already at the destination, or moved earlier by this adapter.
    skipped: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    #: Why nothing was attempted, if so.
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.reason is None


class Adapter:
    """One running instance: created in `bridge_started`, closed in `bridge_stopping`."""

    def __init__(self, bridge: Bridge, config: Dcm4cheeConfig, *, source: str = "dcm4chee") -> None:
        self.bridge = bridge
        self.config = config
        self.source = source
        self.show_identifiers = bridge.config.logging.show_identifiers
        self.streaks = Streaks(log)
        self._client = make_client(config)
        self.http = ArchiveHttp(self._client, retries=config.retries, backoff=config.backoff)
        peer = dimse.Peer(
            host=config.dimse.host, port=config.dimse.port, called_aet=config.dimse.called_aet,
            calling_aet=config.dimse.calling_aet, timeout=config.dimse.timeout,
        )
        self.query: StudyQuery = (
            QidoStudies(self.http, config.url) if config.query == "qido" else CFindStudies(peer)
        )
        self.mover = self._make_mover(peer)
        self.destination: QidoStudies | None = None
        self._destination_client = None
        if config.prefetch.destination_qido_url:
            # The workstation's own archive: no credentials of the central archive go there.
            self._destination_client = make_client(attrs.evolve(config, username="", token_env="",
                                                                password_env=""))
            self.destination = QidoStudies(
                ArchiveHttp(self._destination_client, retries=0, backoff=0),
                config.prefetch.destination_qido_url,
            )
        self._limiter = anyio.CapacityLimiter(config.max_concurrent_lookups)
        # One move at a time: priors queue behind each other instead of flooding the workstation.
        self._move_lock = anyio.Lock()
        self._in_flight: set[str] = set()
        self._prefetching: set[str] = set()
        self._moved: set[str] = set()
        self.prefetches: dict[str, PrefetchReport] = {}
        self._prefetch_done: dict[str, anyio.Event] = {}

    def _make_mover(self, peer: dimse.Peer) -> Mover | None:
        prefetch = self.config.prefetch
        if not prefetch.enabled or prefetch.priors == 0:
            return None
        if prefetch.method == "retrieve":
            return RestRetrieve(self.http, self.config.retrieve_root, prefetch.destination_aet,
                                queue=prefetch.queue, timeout=prefetch.timeout)
        if prefetch.method == "export":
            return RestExport(self.http, self.config.url, prefetch.exporter, timeout=prefetch.timeout)
        return CMove(attrs.evolve(peer, dimse_timeout=prefetch.timeout), prefetch.destination_aet)

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._destination_client is not None:
            await self._destination_client.aclose()

    # Lookups

    def start_lookups(self, accessions: Iterable[str], *, nhs: str | None, chi: str | None,
                      prefetch: bool) -> None:
        """Start one background lookup per accession (an accession already being looked up is not
        asked twice: the running lookup publishes for both)."""
        for accession in dict.fromkeys(accessions):
            if accession in self._in_flight:
                continue
            self._in_flight.add(accession)
            try:
                self.bridge.start_soon(self._lookup_and_prefetch, accession, nhs, chi, prefetch,
                                       name=f"dcm4chee lookup {accession}")
            except RuntimeError:  # the bridge is stopping
                self._in_flight.discard(accession)
                self._publish(StudyLookup(accession=accession, status="failed", source=self.source,
                                          reason="cris-connect is shutting down"))

    async def _lookup_and_prefetch(self, accession: str, nhs: str | None, chi: str | None,
                                   prefetch: bool) -> None:
        try:
            async with self._limiter:
                lookup, found = await self.find(accession)
        except Exception as exc:  # a bug must still end the viewer's wait, with a reason
            log.exception("dcm4chee: looking up accession %s failed unexpectedly", accession)
            lookup, found = self._failed(accession, f"internal error: {type(exc).__name__}: {exc}"), []
        finally:
            self._in_flight.discard(accession)
        self._publish(lookup)
        if prefetch and found and self.mover is not None:
            await self.prefetch(accession, found, nhs=nhs, chi=chi)

    async def find(self, accession: str) -> tuple[StudyLookup, list[FoundStudy]]:
        """The accession's lookup (never raises for archive trouble) and the studies behind it."""
        if not accession.strip() or UNSAFE_IN_ACCESSION & set(accession):
            return StudyLookup(
                accession=accession, status="not_found", source=self.source,
                reason="the accession is empty or contains *, ? or \\, which the archive would treat "
                       "as a pattern; it was not looked up",
            ), []
        try:
            found = await self.query.find({"AccessionNumber": accession})
        except ArchiveError as exc:
            self.streaks.failed(self.query.where, str(exc))
            return self._failed(accession, str(exc)), []
        self.streaks.succeeded(self.query.where)
        # An archive with fuzzy matching switched on may answer near misses: keep exact ones.
        matches = [f for f in found if f.study.accession in (None, accession)]
        if not matches:
            reason = f"no study with AccessionNumber {accession} in {self.query.where}"
            log.info("dcm4chee: %s", reason)
            return StudyLookup(accession=accession, status="not_found", reason=reason, source=self.source), []
        return StudyLookup(
            accession=accession, status="found", studies=tuple(f.study for f in matches), source=self.source
        ), matches

    def _failed(self, accession: str, reason: str) -> StudyLookup:
        return StudyLookup(accession=accession, status="failed", reason=reason, source=self.source)

    def _publish(self, lookup: StudyLookup) -> None:
        self.bridge.studies.publish(lookup)

    # Priors

    async def wait_prefetched(self, accession: str, within: float) -> PrefetchReport | None:
        """The accession's prefetch report once it is done (None if none ran by the deadline)."""
        with anyio.move_on_after(within):
            while accession not in self.prefetches:
                await self._prefetch_done.setdefault(accession, anyio.Event()).wait()
        return self.prefetches.get(accession)

    def _report(self, report: PrefetchReport) -> PrefetchReport:
        self.prefetches[report.accession] = report
        event = self._prefetch_done.pop(report.accession, None)
        if event is not None:
            event.set()
        return report

    async def prefetch(self, accession: str, current: Sequence[FoundStudy], *, nhs: str | None,
                       chi: str | None) -> PrefetchReport | None:
        """Move the patient's most recent priors; once per accession unless it failed."""
        if accession in self._prefetching or (
            accession in self.prefetches and self.prefetches[accession].ok
        ):
            return None  # a second EVENT for the same report: the priors are on their way
        self._prefetching.add(accession)
        self.prefetches.pop(accession, None)
        try:
            report = await self._prefetch(accession, current, nhs=nhs, chi=chi)
        except Exception as exc:
            log.exception("dcm4chee: prefetching priors for accession %s failed unexpectedly", accession)
            report = PrefetchReport(accession=accession, reason=f"internal error: {type(exc).__name__}")
        finally:
            self._prefetching.discard(accession)
        return self._report(report)

    def _patient(self, current: Sequence[FoundStudy], nhs: str | None,
                 chi: str | None) -> tuple[str, str | None] | None:
        prefetch = self.config.prefetch
        for source in prefetch.patient_id_from:
            if source == "nhs" and nhs:
                return nhs, prefetch.nhs_issuer or None
            if source == "chi" and chi:
                return chi, prefetch.chi_issuer or None
            if source == "study":
                for found in current:
                    if found.study.patient_id:
                        return found.study.patient_id, found.study.issuer_of_patient_id
        return None

    def _mask(self, patient_id: str) -> str:
        return patient_id if self.show_identifiers else mask_identifier(patient_id)

    async def _prefetch(self, accession: str, current: Sequence[FoundStudy], *, nhs: str | None,
                        chi: str | None) -> PrefetchReport:
        assert self.mover is not None
        prefetch = self.config.prefetch
        patient = self._patient(current, nhs, chi)
        if patient is None:
            reason = f"no patient ID from {', '.join(prefetch.patient_id_from)}"
            log.info("dcm4chee: priors of accession %s not prefetched: %s", accession, reason)
            return PrefetchReport(accession=accession, reason=reason)
        patient_id, issuer = patient
        matching = {"PatientID": patient_id}
        if issuer:
            matching["IssuerOfPatientID"] = issuer
        try:
            found = await self.query.find(matching)
        except ArchiveError as exc:
            self.streaks.failed(self.query.where, str(exc))
            return PrefetchReport(accession=accession, reason=f"priors query failed: {exc}")
        self.streaks.succeeded(self.query.where)
        chosen = choose_priors(current, found, prefetch.priors)
        moved: list[str] = []
        skipped: list[str] = []
        failed: list[str] = []
        for prior in chosen:
            uid = prior.study.study_instance_uid
            if uid in self._moved or await self._at_destination(uid):
                skipped.append(uid)
                continue
            async with self._move_lock:
                try:
                    result = await self.mover.move(uid)
                except ArchiveError as exc:
                    self.streaks.failed(self.mover.where, str(exc))
                    failed.append(uid)
                    continue
            self.streaks.succeeded(self.mover.where)
            self._moved.add(uid)
            moved.append(uid)
            log.info("dcm4chee: prior %s of accession %s %s (%d sent, %d warnings)", uid, accession,
                     "queued" if result.state == "queued" else "moved", result.completed, result.warning)
        log.info(
            "dcm4chee: accession %s, patient %s: %d prior(s) found, %d chosen, %d moved, %d already "
            "there, %d failed", accession, self._mask(patient_id),
            sum(1 for f in found if f.study.study_instance_uid not in _uids(current)),
            len(chosen), len(moved), len(skipped), len(failed),
        )
        return PrefetchReport(accession=accession, chosen=tuple(p.study.study_instance_uid for p in chosen),
                              moved=tuple(moved), skipped=tuple(skipped), failed=tuple(failed))

    async def _at_destination(self, uid: str) -> bool:
        if self.destination is None:
            return False
        try:
            present = await self.destination.find({"StudyInstanceUID": uid})
        except ArchiveError as exc:
            # Not knowing is no reason to withhold the prior: moving it again is harmless.
            self.streaks.failed(self.destination.where, str(exc))
            return False
        self.streaks.succeeded(self.destination.where)
        return any(f.study.study_instance_uid == uid for f in present)


def _uids(studies: Iterable[FoundStudy]) -> set[str]:
    return {f.study.study_instance_uid for f in studies}


def choose_priors(current: Sequence[FoundStudy], found: Iterable[FoundStudy], count: int) -> list[FoundStudy]:
    """The `count` most recent studies in `found` that are not the current ones and not dated
    after them (the same day counts: a same-day X-ray is a prior of the CT being reported)."""
    current_uids = _uids(current)
    newest_current = max((f.study.study_date for f in current if f.study.study_date), default=None)
    priors = {}
    for candidate in found:
        uid = candidate.study.study_instance_uid
        if uid in current_uids or uid in priors:
            continue
        if newest_current and candidate.study.study_date and candidate.study.study_date > newest_current:
            continue  # a later study is not a prior of this report
        priors[uid] = candidate
    return sorted(priors.values(), key=lambda f: f.recency, reverse=True)[:count]
