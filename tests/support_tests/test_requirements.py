import pytest

from tests.support.requirements import require, require_executable, require_module


def test_met_requirement_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require(True, "never shown")


def test_missing_component_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y no-such-package"):
        require_executable("no-such-tool-xyz", "testing", package="no-such-package")


def test_empty_ci_variable_counts_as_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        require(False, "missing")


def test_missing_component_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match=r"under CI: .*orthanc"):
        require_executable("/nonexistent/Orthanc", "the archive", package="orthanc")


def test_missing_module_names_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pip install some-dist"):
        require_module("no_such_module_xyz", "testing", pip_package="some-dist")


def test_present_executable_path_is_returned() -> None:
    assert require_executable("sh", "testing").endswith("/sh")
