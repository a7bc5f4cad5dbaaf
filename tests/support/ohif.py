"""The OHIF viewer (npm ``@ohif/app``) served by nginx next to an Orthanc, as hospitals deploy it.

The built viewer comes from ``npm pack`` once into a cache (``$CRIS_CONNECT_CACHE/ohif`` or
``~/.cache/cris-connect/ohif``), unpacked once per version and never modified: each viewer gets
its own ``app-config.js`` through an nginx override. Orthanc sends no CORS headers, so nginx
proxies ``/dicom-web/`` and ``/wado`` to it on the viewer's own origin.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from .nginx import Nginx
from .service import Service

OHIF_PACKAGE = "@ohif/app"
OHIF_VERSION = "3.13.2"
DATA_SOURCE = "orthanc"
_DIST_PREFIX = "package/dist/"
_COMPLETE = ".unpacked"  # written last: a dist dir without it is a crashed unpack


def cache_dir() -> Path:
    root = os.environ.get("CRIS_CONNECT_CACHE") or Path.home() / ".cache" / "cris-connect"
    return Path(root) / "ohif"


def tarball_path(version: str = OHIF_VERSION) -> Path:
    # The name npm pack gives a scoped package's tarball.
    return cache_dir() / f"ohif-app-{version}.tgz"


def fetch_tarball(version: str = OHIF_VERSION, *, npm: str = "npm") -> Path:
    """``npm pack`` the viewer into the cache unless it is already there (~50 MB)."""
    tarball = tarball_path(version)
    if tarball.exists():
        return tarball
    with _cache_lock():
        if not tarball.exists():
            subprocess.run(
                [
                    npm,
                    "pack",
                    "--silent",
                    "--pack-destination",
                    str(tarball.parent),
                    f"{OHIF_PACKAGE}@{version}",
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
    return tarball


def unpacked_dist(version: str = OHIF_VERSION, *, npm: str = "npm") -> Path:
    """The viewer's ``dist`` directory (~200 MB), unpacked from the cached tarball once."""
    dist = cache_dir() / version / "dist"
    if (dist / _COMPLETE).exists():
        return dist
    tarball = fetch_tarball(version, npm=npm)
    with _cache_lock():
        if (dist / _COMPLETE).exists():
            return dist
        shutil.rmtree(dist, ignore_errors=True)
        # Unpack beside the target and rename, so readers never see half a viewer.
        staging = Path(tempfile.mkdtemp(prefix="dist-", dir=cache_dir()))
        try:
            with tarfile.open(tarball) as archive:
                members = [
                    m
                    for m in archive.getmembers()
                    if m.name.startswith(_DIST_PREFIX) and m.name != _DIST_PREFIX
                ]
                for member in members:
                    member.name = member.name[len(_DIST_PREFIX) :]
                archive.extractall(staging, members=members, filter="data")
            staging.chmod(0o755)  # mkdtemp made it private
            (staging / _COMPLETE).touch()
            dist.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(dist)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dist


@contextmanager
def _cache_lock() -> Iterator[None]:
    # Parallel test processes (xdist workers) share the cache.
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def app_config_js(*, dicomweb_root: str = "/dicom-web", wado_uri_root: str = "/wado") -> str:
    """An ``app-config.js`` with one DICOMweb data source (same-origin paths by default)."""
    config = {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        "showStudyList": True,
        "maxNumberOfWebWorkers": 3,
        "showLoadingIndicator": True,
        # The "investigational use only" banner would cover part of every screenshot.
        "investigationalUseDialog": {"option": "never"},
        # No onboarding tour popping up over the first viewer a fresh browser profile opens.
        "customizationService": [{"ohif.tours": {"$set": []}}],
        "defaultDataSourceName": DATA_SOURCE,
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": DATA_SOURCE,
                "configuration": {
                    "friendlyName": "Orthanc (test archive)",
                    "name": DATA_SOURCE,
                    "qidoRoot": dicomweb_root,
                    "wadoRoot": dicomweb_root,
                    "wadoUriRoot": wado_uri_root,
                    "qidoSupportsIncludeField": False,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "omitQuotationForMultipartRequest": True,
                    "bulkDataURI": {"enabled": True},
                },
            }
        ],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"


class OhifViewer(Service):
    """OHIF from ``dist`` behind nginx, reading studies from the Orthanc at ``orthanc_url``."""

    def __init__(self, workdir: Path, *, dist: Path, orthanc_url: str) -> None:
        self.workdir = workdir
        self.dist = dist
        self.orthanc_url = orthanc_url
        self.app_config = workdir / "app-config.js"
        self.nginx = Nginx(
            workdir / "nginx",
            root=dist,
            files={"/app-config.js": self.app_config},
            proxies={"/dicom-web/": orthanc_url, "/wado": orthanc_url},
            # As OHIF's own nginx recipe: cross-origin isolation enables SharedArrayBuffer.
            headers={
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Embedder-Policy": "require-corp",
            },
        )

    @property
    def base_url(self) -> str:
        return self.nginx.base_url

    def viewer_url(self, *study_instance_uids: str) -> str:
        """The URL that opens these studies (OHIF has no viewer URL by accession number)."""
        return f"{self.base_url}/viewer?StudyInstanceUIDs={quote(','.join(study_instance_uids), safe=',')}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.app_config.write_text(app_config_js())
        self.nginx.start()

    def stop(self) -> None:
        self.nginx.stop()
