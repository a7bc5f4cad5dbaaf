"""`cris-connect new-adapter`: the generated package installs and its own tests pass, as generated.

The package is installed (editable, as its README says) into a fresh virtual environment that
sees this environment's packages (cris-connect, the SDK, pytest) but not the repository's conftest,
so its tests run exactly as they would in the adapter author's CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from cris_connect_sdk.new_adapter import generate


def cris_connect(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cris_connect", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def venv_seeing_this_one(directory: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True, timeout=60)
    python = directory / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir (not a bare path) so this environment's own .pth files - editable installs - apply.
    here = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "_parent_environment.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    return python


def test_the_generated_adapter_passes_its_own_tests(tmp_path: Path) -> None:
    made = cris_connect("new-adapter", "myviewer", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    package = tmp_path / "cris-connect-myviewer"
    assert f"Made {package}" in made.stdout

    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    entry_points = pyproject["project"]["entry-points"]["cris_connect"]
    assert entry_points == {"myviewer": "cris_connect_myviewer.adapter:adapter"}
    assert "docs/writing-an-adapter.md" in (package / "README.md").read_text()

    python = venv_seeing_this_one(tmp_path / "venv")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python),
         "install", "-q", "--no-deps", "-e", str(package)],
        capture_output=True, text=True, timeout=180,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTHONPATH")}
    tests = subprocess.run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-q"], cwd=package,
                           env=env, capture_output=True, text=True, timeout=180)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    # 4 adapter tests and 6 async conformance checks on 2 backends, plus the entry-point check.
    assert "21 passed" in tests.stdout, tests.stdout


def test_names_are_checked_and_nothing_is_overwritten(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="adapter name 'My-Viewer' must be lowercase letters and digits"):
        generate("My-Viewer", tmp_path)
    generate("my_viewer", tmp_path)
    assert (tmp_path / "cris-connect-my-viewer" / "src" / "cris_connect_my_viewer" / "adapter.py").exists()
    again = cris_connect("new-adapter", "my_viewer", "--dir", str(tmp_path))
    assert again.returncode == 2
    assert "cris-connect-my-viewer already exists; choose another --dir or remove it" in again.stderr
