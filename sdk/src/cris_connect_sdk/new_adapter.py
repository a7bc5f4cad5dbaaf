"""`cris-connect new-adapter NAME [--dir DIR]`: a new adapter package whose tests pass as generated.

The package is `cris-connect-NAME` with the `cris_connect` entry point, a `src/` layout, a config
class, an example config file, a README that links the hook reference, and tests that use the
SDK's fixtures and run the conformance kit. Template files live in `adapter_template/`; `.tmpl`
is dropped from their names and `{{name}}`-style placeholders are filled in.
"""

from __future__ import annotations

import argparse
import importlib.resources
import re
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from cris_connect import __version__ as core_version
from cris_connect_sdk.__about__ import __version__ as sdk_version

#: Where the template's README sends adapter authors for every hook's contract.
HOOK_REFERENCE = "https://github.com/cris-connect/cris-connect/blob/main/docs/writing-an-adapter.md#4-hooks"

#: An adapter name is its entry-point name and its `[plugins.NAME]` section: keep it a plain word.
NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")

RENAMED = {"gitignore": ".gitignore"}


def placeholders(name: str) -> dict[str, str]:
    if not NAME.fullmatch(name):
        raise ValueError(
            f"adapter name {name!r} must be lowercase letters and digits, words joined by '_' "
            "(e.g. myviewer or my_viewer): it becomes the [plugins.NAME] section and the module name"
        )
    return {
        "name": name,
        "module": f"cris_connect_{name}",
        "distribution": f"cris-connect-{name.replace('_', '-')}",
        "title": name.replace("_", " ").title().replace(" ", ""),
        "core_version": core_version,
        "sdk_version": sdk_version,
        "hook_reference": HOOK_REFERENCE,
    }


def render(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), m.group(0)), text)


def generate(name: str, directory: Path) -> Path:
    """Write the package into `directory/cris-connect-NAME`; refuses to overwrite anything."""
    values = placeholders(name)
    target = directory / values["distribution"]
    if target.exists():
        raise ValueError(f"{target} already exists; choose another --dir or remove it")
    template = importlib.resources.files("cris_connect_sdk") / "adapter_template"
    for source, relative in _walk(template, ()):
        parts = [part.replace("__module__", values["module"]) for part in relative]
        parts[-1] = parts[-1].removesuffix(".tmpl")
        parts[-1] = RENAMED.get(parts[-1], parts[-1])
        path = target.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(source.read_text(encoding="utf-8"), values), encoding="utf-8")
    return target


def _walk(node: Traversable, relative: tuple[str, ...]) -> list[tuple[Traversable, tuple[str, ...]]]:
    found = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            found += _walk(child, (*relative, child.name))
        elif child.name.endswith(".tmpl"):
            found.append((child, (*relative, child.name)))
    return found


def run(args: argparse.Namespace) -> int:
    target = generate(args.name, Path(args.dir))
    print(f"Made {target}. Next:\n"
          f"  cd {target}\n"
          '  pip install -e ".[test]"\n'
          "  pytest          # its tests and the conformance kit pass as generated\n"
          f"Then drive your viewer in src/cris_connect_{args.name}/adapter.py.")
    return 0


def add_command(commands: Any) -> None:
    """Entry point `cris_connect.commands`: adds `new-adapter` to the `cris-connect` command."""
    parser = commands.add_parser("new-adapter", help="generate a new adapter package (cris-connect-NAME)")
    parser.add_argument("name", help="the adapter's name, e.g. myviewer")
    parser.add_argument("--dir", default=".", help="where to create cris-connect-NAME (default: here)")
    parser.set_defaults(func=run)
