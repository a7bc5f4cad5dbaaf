"""Fixtures for the OHIF adapter's tests; the helpers they use are in helpers.py.

- `browser`: one real headless Chromium per test module (DevTools on a free loopback port).
- `fake_ohif`: the stand-in OHIF site and archive (helpers.FakeOhif), emptied for each test.
- `ohif_dist`: the OHIF build from npm (tests/support), for the end-to-end tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from plugins.ohif.tests.helpers import FakeOhif, handler
from tests.support.fixtures import ohif_dist  # noqa: F401 - the cached OHIF build, session-scoped
from tests.support.requirements import require_executable

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium per module: starting one takes a second or two."""
    require_executable(CHROMIUM, "the headless browser the adapter drives", package="chromium")
    from tests.support.chromium import Chromium

    with Chromium(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def fake_site() -> Iterator[FakeOhif]:
    site = FakeOhif()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(site))
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake OHIF", daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def fake_ohif(fake_site: FakeOhif) -> FakeOhif:
    fake_site.reset()
    return fake_site


