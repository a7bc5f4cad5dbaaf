"""Skip a test when a real component is missing, but fail it under CI.

Locally a developer may not have installed Orthanc or Chromium; the test is skipped with the
package to install. Under CI (``CI`` set and non-empty) every real component must run, so a
missing one is a failure rather than a silent skip.
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest

INSTALL_HINT = "or run .ci/install-services"


def under_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(condition: object, reason: str) -> None:
    """Skip (locally) or fail (under CI) the current test unless ``condition`` holds."""
    if condition:
        return
    if under_ci():
        pytest.fail(f"required component missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_executable(name: str, why: str, *, package: str | None = None) -> str:
    """Return the path of executable ``name`` (a command or an absolute path).

    ``package`` is the Debian (or npm) package that provides it, named in the skip reason.
    """
    if os.path.isabs(name):
        path = name if os.access(name, os.X_OK) else None
    else:
        path = shutil.which(name)
    package = package or os.path.basename(name)
    require(
        path is not None,
        f"{name} not found ({why}): apt-get install -y {package} ({INSTALL_HINT})",
    )
    assert path is not None
    return path


def require_file(path: str, why: str, *, package: str) -> str:
    """Return ``path`` if it exists (e.g. a plugin shared library)."""
    require(
        os.path.exists(path),
        f"{path} not found ({why}): apt-get install -y {package} ({INSTALL_HINT})",
    )
    return path


def require_module(name: str, why: str, *, pip_package: str | None = None) -> ModuleType:
    """Import and return Python module ``name``, naming the pip package when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(False, f"Python module {name} not importable ({why}): pip install {pip_package or name}")
        raise  # unreachable: require() skipped or failed
