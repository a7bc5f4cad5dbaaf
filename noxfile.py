"""The one entry point for checks: `nox -s tests`, `nox -s lint`, `nox -s typecheck`, `nox -s bench`."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent
PLUGINS = sorted(str(p.parent) for p in ROOT.glob("plugins/*/pyproject.toml"))
EXAMPLES = sorted(str(p.parent) for p in ROOT.glob("examples/*/pyproject.toml"))
# pydicom/pynetdicom/httpx: tests/support makes studies, runs a storage SCP and talks to Orthanc.
# prometheus-client: the console's /metrics (core's optional `metrics` extra) is tested too.
TEST_TOOLS = [
    "pytest>=8", "hypothesis>=6.100", "trio>=0.26", "pydicom>=2.4", "pynetdicom>=2.1", "httpx>=0.27",
    "prometheus-client>=0.20",
]


def _editable(*paths: str) -> list[str]:
    return [arg for path in paths for arg in ("-e", path)]


def _distributions() -> list[str]:
    sdk = ["sdk"] if (ROOT / "sdk" / "pyproject.toml").exists() else []
    return ["core", *sdk, *PLUGINS, *EXAMPLES]


@nox.session
def tests(session: nox.Session) -> None:
    """Install core, the SDK, every plugin and example adapter (editable, one pip call); run all tests."""
    session.install(*_editable(*_distributions()), *TEST_TOOLS)
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("adapter", PLUGINS)
def adapter(session: nox.Session, adapter: str) -> None:
    """One adapter with only core and the SDK beside it: catches undeclared dependencies."""
    sdk = ["sdk"] if (ROOT / "sdk" / "pyproject.toml").exists() else []
    session.install(*_editable("core", *sdk, adapter), *TEST_TOOLS)
    session.run("pytest", adapter, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core and the SDK."""
    session.install("mypy", *_editable("core", "sdk"), "trio", "pytest")
    session.run("mypy", "core/src/cris_connect", "sdk/src/cris_connect_sdk")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark harness; `nox -s bench -- --quick` for the one-minute variant."""
    if not (ROOT / "benchmarks").exists():
        session.skip("no benchmarks/ yet")
    session.install(*_editable(*_distributions()), "trio")
    session.run("python", "-m", "benchmarks", *session.posargs)
