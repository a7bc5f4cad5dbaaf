"""Fixtures for the tests of tests/support itself.

Imported rather than loaded with ``pytest_plugins``, which pytest accepts only in the root
conftest; ``anyio_backend`` (asyncio and trio) comes from the root conftest.
"""

from tests.support.fixtures import (  # noqa: F401 - imported fixtures
    chromium,
    ohif_dist,
    ohif_server,
    ohif_viewer,
    orthanc,
    orthanc_factory,
    storage_scp,
)
