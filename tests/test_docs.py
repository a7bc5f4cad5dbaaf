"""Documentation kept true: every hook is documented, and the Quick start is what CI runs."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from cris_connect import hookspecs

ROOT = Path(__file__).parents[1]


def hook_names() -> list[str]:
    return [name for name, value in vars(hookspecs).items()
            if inspect.isfunction(value) and hasattr(value, "cris_connect_spec")]


def test_there_are_hooks_to_document() -> None:
    assert {"on_event", "on_release", "bridge_started", "on_sent"} <= set(hook_names())


def test_every_hook_is_documented_in_docs_hooks() -> None:
    text = (ROOT / "docs" / "hooks.md").read_text()
    documented = set(re.findall(r"^### `(\w+)\(", text, flags=re.MULTILINE))
    missing = sorted(set(hook_names()) - documented)
    assert not missing, f"hooks missing from docs/hooks.md: {missing}"
    stale = sorted(documented - set(hook_names()))
    assert not stale, f"docs/hooks.md documents hooks that do not exist: {stale}"


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ") and line.strip()]


def test_quick_start_is_exactly_two_command_lines() -> None:
    lines = quick_start()
    assert len(lines) == 2, lines
    assert "cris_connect demo" in lines[0] and "nox -s tests" in lines[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start()[1] in [line.strip() for line in ci]
