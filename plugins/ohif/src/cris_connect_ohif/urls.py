"""OHIF v3 URLs: the viewer URL for some studies, the study list, and reading a tab's URL back.

OHIF has no viewer URL by accession number: `/viewer?StudyInstanceUIDs=uid1,uid2` opens studies
(`/viewer/{dataSource}?...` forces a data source); `/?accession=A` only filters the study list.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs, quote, urlsplit

#: OHIF's route when a StudyInstanceUID is not in its data source.
NOT_FOUND_PATH = "/notfoundstudy"


def viewer_url(base: str, study_instance_uids: Iterable[str], *, mode: str = "viewer",
               data_source: str = "") -> str:
    """`{base}/{mode}[/{data_source}]?StudyInstanceUIDs=uid1,uid2` (order kept, duplicates dropped)."""
    uids = list(dict.fromkeys(study_instance_uids))
    if not uids:
        raise ValueError("a viewer URL needs at least one StudyInstanceUID")
    path = f"/{mode}/{data_source}" if data_source else f"/{mode}"
    return f"{base.rstrip('/')}{path}?StudyInstanceUIDs={quote(','.join(uids), safe=',')}"


def study_list_url(base: str, *, accessions: Iterable[str] = ()) -> str:
    """OHIF's study list, optionally filtered to accession numbers (shows "no studies" if absent)."""
    base = base.rstrip("/")
    accessions = list(accessions)
    if not accessions:
        return f"{base}/"
    return f"{base}/?accession={quote(','.join(accessions), safe=',')}"


def same_origin(url: str, base: str) -> bool:
    """True when `url` is on the viewer's origin (scheme, host and port)."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and bool(a.scheme)


def study_instance_uids(url: str) -> tuple[str, ...]:
    """The StudyInstanceUIDs a viewer URL shows (any mode or data source), in order; () otherwise.

    OHIF reads `StudyInstanceUIDs` (and accepts `studyInstanceUIDs`), comma-separated or repeated.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    values = query.get("StudyInstanceUIDs", []) + query.get("studyInstanceUIDs", [])
    uids = [uid.strip() for value in values for uid in value.split(",") if uid.strip()]
    return tuple(dict.fromkeys(uids))


def is_not_found(url: str) -> bool:
    return urlsplit(url).path.rstrip("/") == NOT_FOUND_PATH
