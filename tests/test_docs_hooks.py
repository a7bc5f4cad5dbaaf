"""docs/writing-an-adapter.md stays true: every hook in hookspecs.py is there, with its arguments."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from cris_connect import hookspecs

GUIDE = Path(__file__).parents[1] / "docs" / "writing-an-adapter.md"


def hooks() -> dict[str, list[str]]:
    """Every hook specification and its argument names."""
    return {
        name: list(inspect.signature(value).parameters)
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, f"{hookspecs.PROJECT}_spec")
    }


def documented() -> dict[str, list[str]]:
    """The guide's hook headings, `### \\`on_event(message, context, session)\\``, parsed."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(r"^### `(\w+)\(([^)]*)\)`", text, flags=re.MULTILINE)
    return {name: [arg.strip() for arg in args.split(",") if arg.strip()] for name, args in found}


def test_every_hook_is_in_the_adapter_guide() -> None:
    missing = sorted(set(hooks()) - set(documented()))
    assert not missing, f"hooks missing from {GUIDE.name} (add a `### \\`hook(args)\\`` heading): {missing}"


def test_the_guide_documents_no_hook_that_does_not_exist() -> None:
    stale = sorted(set(documented()) - set(hooks()))
    assert not stale, f"{GUIDE.name} documents hooks that hookspecs.py does not define: {stale}"


def test_the_guide_gives_each_hook_its_arguments() -> None:
    wrong = {name: (documented()[name], args) for name, args in hooks().items()
             if name in documented() and documented()[name] != args}
    assert not wrong, f"{GUIDE.name} headings (documented, actual) disagree with hookspecs.py: {wrong}"
