"""pytest fixtures for the real services; load with ``pytest_plugins = ["tests.support.fixtures"]``.

All fixtures are synchronous, so sync and async tests (either anyio backend) can use them. Each
checks its component first: missing locally -> skip naming the package; missing under CI -> fail.
Heavy imports happen after that check, so a missing pynetdicom skips instead of breaking collection.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .requirements import require, require_executable, require_file, require_module

if TYPE_CHECKING:
    from .chromium import Chromium
    from .ohif import OhifViewer
    from .orthanc import Modality, Orthanc
    from .storescp import StorageSCP


def require_orthanc() -> None:
    """Skip (or fail under CI) unless Orthanc and its DICOMweb plugin are installed."""
    from .orthanc import DICOMWEB_PLUGIN, ORTHANC_EXECUTABLE

    require_executable(ORTHANC_EXECUTABLE, "the test DICOM archive", package="orthanc")
    require_file(DICOMWEB_PLUGIN, "Orthanc's DICOMweb plugin", package="orthanc-dicomweb")


@pytest.fixture
def orthanc_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Orthanc]]:
    """``make(aet="ORTHANC", modalities={name: Modality}, config_overrides={})`` -> a started
    Orthanc; for tests that need two archives (e.g. a retrieve from another PACS)."""
    require_orthanc()
    from .orthanc import Orthanc

    started: list[Orthanc] = []

    def make(
        aet: str = "ORTHANC",
        modalities: dict[str, Modality] | None = None,
        config_overrides: dict[str, Any] | None = None,
    ) -> Orthanc:
        server = Orthanc(
            tmp_path_factory.mktemp(f"orthanc-{aet}"),
            aet=aet,
            modalities=modalities,
            config_overrides=config_overrides,
        )
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.kill()  # its storage is thrown away: no need for the 2-4 s graceful stop


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., Orthanc]) -> Orthanc:
    """A fresh, empty, running Orthanc (AE title ``ORTHANC``) per test.

    Attributes: ``base_url``, ``dicomweb_root``, ``aet``, ``http_port``, ``dicom_port``, ``log``;
    methods: ``upload()``, ``add_modality()``, ``stop()``/``start()``/``restart()`` (and their
    ``a*`` async twins) for archive-down tests.
    """
    return orthanc_factory()


@pytest.fixture
def storage_scp() -> Iterator[StorageSCP]:
    """A running Storage SCP (AE title ``CRIS_TEST_SCP``) on a free loopback port.

    ``storage_scp.modality`` is what to give ``orthanc.add_modality()``; ``received``,
    ``received_study_uids``, ``wait_for_instances()``/``await_instances()`` report what arrived.
    """
    require_module("pynetdicom", "the test Storage SCP")
    from .storescp import StorageSCP

    with StorageSCP() as scp:
        yield scp


@pytest.fixture(scope="session")
def ohif_dist() -> Path:
    """The unpacked OHIF viewer build (fetched with npm on first use, then cached)."""
    from . import ohif

    if not ohif.tarball_path().exists():
        npm = require_executable("npm", "fetching the OHIF viewer with npm pack", package="npm")
        try:
            ohif.fetch_tarball(npm=npm)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
            # Offline, or the registry is unreachable: an environment problem, not a test failure.
            output = (getattr(error, "stderr", None) or b"").decode(errors="replace")[-500:]
            require(False, f"npm pack {ohif.OHIF_PACKAGE}@{ohif.OHIF_VERSION} failed: {error} {output}")
    return ohif.unpacked_dist()


@pytest.fixture
def ohif_server(
    orthanc: Orthanc, ohif_dist: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OhifViewer]:
    """The OHIF viewer behind nginx, reading from the ``orthanc`` fixture through same-origin
    ``/dicom-web`` and ``/wado``. Attributes: ``base_url``, ``viewer_url(*uids)``, ``nginx``."""
    from .nginx import NGINX_EXECUTABLE
    from .ohif import OhifViewer

    require_executable(NGINX_EXECUTABLE, "serving the OHIF viewer", package="nginx")
    with OhifViewer(tmp_path_factory.mktemp("ohif"), dist=ohif_dist, orthanc_url=orthanc.base_url) as viewer:
        yield viewer


@pytest.fixture
def ohif_viewer(ohif_server: OhifViewer) -> str:
    """The OHIF viewer's base URL, e.g. ``http://127.0.0.1:PORT`` (open ``/viewer?StudyInstanceUIDs=``)."""
    return ohif_server.base_url


@pytest.fixture
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """A headless Chromium with an empty profile. Attributes: ``debug_url`` (``/json/*``),
    ``websocket_url`` (browser target), ``port``, ``pid``; methods ``pages()``, ``new_page()``."""
    from .chromium import CHROMIUM_EXECUTABLE, Chromium

    require_executable(CHROMIUM_EXECUTABLE, "the headless browser", package="chromium")
    with Chromium(tmp_path_factory.mktemp("chromium")) as browser:
        yield browser
