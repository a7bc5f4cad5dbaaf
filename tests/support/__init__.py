"""Real services for adapter tests: Orthanc, a storage SCP, OHIF behind nginx, headless Chromium.

Each module holds one idea; ``tests.support.fixtures`` is the pytest plugin that turns them into
fixtures. Load it from a root ``conftest.py`` with ``pytest_plugins = ["tests.support.fixtures"]``.
"""
