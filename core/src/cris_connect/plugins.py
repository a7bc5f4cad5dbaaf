"""Finding, loading and configuring adapters.

Adapters are distributions that declare an entry point in the group `cris_connect`; the config
file's `plugins.enabled` chooses which run. Only enabled ones are imported, so a broken adapter
that nobody enabled cannot stop the bridge. Built-in plugins (`log`) are entry points of the core
distribution and load the same way.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from cris_connect import hookspecs
from cris_connect.config import ConfigError, PluginsConfig, structure

GROUP = "cris_connect"


class PluginError(RuntimeError):
    """An adapter that cannot be loaded; the text names it and says what to do."""


@attrs.frozen
class Available:
    """An installed adapter, as `cris-connect plugins` lists it."""

    name: str
    target: str
    distribution: str | None
    version: str | None

    @classmethod
    def from_entry_point(cls, entry_point: importlib.metadata.EntryPoint) -> Available:
        dist = entry_point.dist
        return cls(
            name=entry_point.name,
            target=entry_point.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )


def installed() -> dict[str, importlib.metadata.EntryPoint]:
    """Every adapter installed in this environment, by entry-point name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def make_plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def load_entry_point(name: str, entry_points: Mapping[str, importlib.metadata.EntryPoint]) -> object:
    entry_point = entry_points.get(name)
    if entry_point is None:
        known = ", ".join(sorted(entry_points)) or "none"
        raise PluginError(
            f"plugins.enabled: no plugin named {name!r} is installed (installed: {known}); "
            f"install its package (e.g. pip install cris-connect-{name}) or remove it from the list"
        )
    try:
        return entry_point.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {name!r} ({entry_point.value}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def plugin_name(plugin: object) -> str:
    """The name a plugin object passed in code goes by: its `name`, else its module or class."""
    name = getattr(plugin, "name", None)
    if isinstance(name, str):
        return name
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def register(
    manager: pluggy.PluginManager, config: PluginsConfig, extra: Sequence[object] = ()
) -> dict[str, object]:
    """Register the enabled adapters and the plugin objects given in code; check their hooks."""
    plugins: dict[str, object] = {}
    entry_points = installed() if config.enabled else {}
    for name in config.enabled:
        loaded = load_entry_point(name, entry_points)
        # An entry point naming a class gets a fresh instance per bridge, so two bridges in one
        # process never share an adapter's state; a module or an object is used as it is.
        plugins[name] = loaded() if isinstance(loaded, type) else loaded
    for obj in extra:
        name = plugin_name(obj)
        if name in plugins:
            name = f"{name}-{len(plugins)}"
        plugins[name] = obj
    for name, obj in plugins.items():
        try:
            manager.register(obj, name=name)
        except ValueError:
            raise PluginError(f"plugin {name!r} is registered twice; list it once") from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r}: {exc}") from None
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}; see docs/hooks.md for the hook names") from None
    return plugins


def callers_for(manager: pluggy.PluginManager, plugin: object) -> dict[str, pluggy.HookCaller]:
    """A hook caller per hook this plugin implements, that calls only this plugin.

    Calls still go through pluggy (argument subsets, hook-call monitoring for the SDK's
    recorder); building the callers once keeps dispatch cheap.
    """
    others = [p for p in manager.get_plugins() if p is not plugin]
    callers: dict[str, pluggy.HookCaller] = {}
    for hook_name in dir(manager.hook):
        caller = getattr(manager.hook, hook_name)
        if not isinstance(caller, pluggy.HookCaller) or hook_name.startswith("_"):
            continue
        if any(impl.plugin is plugin for impl in caller.get_hookimpls()):
            callers[hook_name] = manager.subset_hook_caller(hook_name, remove_plugins=others)
    return callers


def implemented_hooks(manager: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(callers_for(manager, plugin))


def plugin_config(
    name: str, callers: Mapping[str, pluggy.HookCaller], settings: Mapping[str, Any]
) -> Any:
    """Structure `[plugins.<name>]` into the class the plugin declares; errors name the key path."""
    config_class = None
    if "register_config_class" in callers:
        results = callers["register_config_class"]()
        config_class = results[0] if results else None
    if config_class is None:
        if settings:
            raise ConfigError(
                f"plugins.{name}: this plugin takes no settings; remove the [plugins.{name}] section"
            )
        return None
    return structure(settings, config_class, where=f"plugins.{name}")


def check_sections(config: PluginsConfig, names: Iterable[str]) -> None:
    unused = set(config.settings) - set(names)
    if unused:
        raise ConfigError(
            f"plugins.{sorted(unused)[0]}: section for a plugin that is not enabled; add it to "
            "plugins.enabled or remove the section"
        )
