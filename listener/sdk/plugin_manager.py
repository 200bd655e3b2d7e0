"""Finding sources: built-in plugins and third-party ones from the ``listener`` entry points."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy
from pydantic import ValidationError

from listener.config import ProjectConfig
from listener.errors import ConfigError, PluginError
from listener.sdk import hookspecs
from listener.sdk.source import HOOK_API_VERSION, Source

log = logging.getLogger(__name__)

BUILTIN_PACKAGE = "listener.plugins"


def default_plugins() -> tuple[str, ...]:
    """Built-in sources: every public module of ``listener.plugins`` (the ``plugins/`` folder).

    They are registered exactly like third-party plugins, so each one is also an
    example of the public contract.
    """
    package = importlib.import_module(BUILTIN_PACKAGE)
    return tuple(
        f"{BUILTIN_PACKAGE}.{module.name}"
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name)
        if not module.name.startswith("_")
    )


ENTRY_POINT_GROUP = "listener"
DISABLE_VARIABLE = "LISTENER_DISABLE_PLUGINS"


@dataclass
class PluginProblem:
    """A plugin that was skipped, and why."""

    plugin: str
    reason: str


@dataclass
class Registry:
    """The loaded plugin manager and the sources it provides."""

    manager: pluggy.PluginManager
    sources: dict[str, type[Source]] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)
    #: Which registered plugin provides each source.
    plugin_of: dict[str, str] = field(default_factory=dict)

    def hooks_of(self, plugin_name: str) -> list[str]:
        """The ``listener_*`` hooks a registered plugin implements."""
        plugin = self.manager.get_plugin(plugin_name)
        if plugin is None:
            return []
        return sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])

    def source(self, name: str) -> type[Source]:
        try:
            return self.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none"
            skipped = "".join(f"; plugin {p.plugin} was skipped: {p.reason}" for p in self.problems)
            raise PluginError(
                f"unknown source plugin {name!r} (available: {known}){skipped}"
            ) from None


def _disabled() -> set[str]:
    return {
        name.strip() for name in os.environ.get(DISABLE_VARIABLE, "").split(",") if name.strip()
    }


def _check_source(cls: object, plugin: str) -> type[Source]:
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise PluginError(
            f"plugin {plugin}: listener_register_sources returned {cls!r}, not a Source subclass"
        )
    for attribute in ("name", "kind"):
        if not getattr(cls, attribute, None):
            raise PluginError(
                f"plugin {plugin}: source {cls.__qualname__} does not set {attribute!r}"
            )
    declared = getattr(cls, "api_version", None)
    if declared is None:
        raise PluginError(
            f"plugin {plugin}: source {cls.name!r} ({cls.__module__}.{cls.__qualname__}) does not "
            "declare the listener source contract version it was written for; add "
            f"`api_version = {HOOK_API_VERSION}` to the class (listener.source.HOOK_API_VERSION "
            "of the listener you tested it with)"
        )
    if declared != HOOK_API_VERSION:
        raise PluginError(
            f"plugin {plugin}: source {cls.name!r} was written for listener source API "
            f"version {declared}, but this listener implements version {HOOK_API_VERSION}; "
            "upgrade the plugin (or listener)"
        )
    return cls


def _unmarked_hooks(manager: pluggy.PluginManager, plugin_name: str, plugin: object) -> list[str]:
    """``listener_*`` attributes of a plugin that pluggy will never call, with the reason.

    pluggy only sees functions marked with ``@hookimpl`` (and ``check_pending``
    only checks those), so an undecorated ``listener_prepare_nlp`` or a
    misspelt undecorated hook would be ignored without a word.
    """
    known = {name for name in vars(hookspecs) if name.startswith("listener_")}
    implemented = {caller.name for caller in manager.get_hookcallers(plugin) or []}
    problems = []
    for attribute in sorted(vars(plugin) if isinstance(plugin, ModuleType) else dir(plugin)):
        if not attribute.startswith("listener_") or attribute in implemented:
            continue
        value = getattr(plugin, attribute, None)
        if isinstance(value, ModuleType):
            continue  # a package named listener_… imported by the plugin
        if attribute in known:
            problems.append(
                f"{attribute} is not decorated with @listener.hookimpl, so it would never be "
                "called; add the decorator"
            )
        else:
            problems.append(
                f"{attribute} is not a listener hook (known: {', '.join(sorted(known))}); "
                "hook names must match listener.sdk.hookspecs exactly"
            )
    return [f"plugin {plugin_name!r}: {problem}" for problem in problems]


def build_registry() -> Registry:
    """Build a fresh plugin manager: built-ins, then entry points, minus disabled ones."""
    manager = pluggy.PluginManager("listener")
    manager.add_hookspecs(hookspecs)
    registry = Registry(manager=manager)
    disabled = _disabled()

    candidates: list[tuple[str, str, ModuleType | None, Exception | None]] = []
    for module_name in default_plugins():
        short = module_name.rsplit(".", 1)[-1]
        if short in disabled:
            continue
        try:
            builtin = importlib.import_module(module_name)
        except Exception as import_error:  # reported and skipped like any other broken plugin
            candidates.append((short, "listener", None, import_error))
        else:
            candidates.append((short, "listener", builtin, None))
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in disabled:
            continue
        package = entry_point.dist.name if entry_point.dist else "?"
        try:
            module = entry_point.load()
        except Exception as load_error:  # a broken third-party plugin must not stop listener
            candidates.append((entry_point.name, package, None, load_error))
        else:
            candidates.append((entry_point.name, package, module, None))

    for name, package, module, failure in candidates:
        if failure is not None or module is None:
            reason = f"import failed: {type(failure).__name__}: {failure}"
            log.warning("skipping plugin %s: %s", name, reason)
            registry.problems.append(PluginProblem(name, reason))
            continue
        try:
            manager.register(module, name=name)
        except Exception as error:
            reason = f"registration failed: {error}"
            log.warning("skipping plugin %s: %s", name, reason)
            registry.problems.append(PluginProblem(name, reason))
            continue
        registry.packages[name] = package

    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(
            f"plugin {manager.get_name(error.plugin)!r} implements a hook listener does not "
            f"define ({error}); hook names must match listener.sdk.hookspecs exactly"
        ) from None
    unmarked = [
        problem
        for plugin_name, plugin in manager.list_name_plugin()
        for problem in _unmarked_hooks(manager, plugin_name, plugin)
    ]
    if unmarked:
        raise PluginError("; ".join(unmarked))

    # Only @hookimpl-marked implementations count (the pluggy way), one plugin at a time
    # so that a failing plugin is reported by name and the others go on.
    implementations = {
        impl.plugin_name: impl.function
        for impl in manager.hook.listener_register_sources.get_hookimpls()
    }
    for plugin_name, plugin in manager.list_name_plugin():
        implementation = implementations.get(plugin_name)
        if implementation is None:
            continue
        try:
            classes: Any = implementation()
            checked = [_check_source(cls, plugin_name) for cls in classes or []]
        except Exception as error:
            reason = (
                str(error) if isinstance(error, PluginError) else f"{type(error).__name__}: {error}"
            )
            log.warning("skipping plugin %s: %s", plugin_name, reason)
            registry.problems.append(PluginProblem(plugin_name, reason))
            manager.unregister(plugin)
            continue
        for cls in checked:
            if cls.name in registry.sources:
                raise PluginError(
                    f"two plugins provide a source named {cls.name!r} "
                    f"({registry.sources[cls.name].__module__} and {cls.__module__}); "
                    f"disable one with {DISABLE_VARIABLE}"
                )
            if cls.name in disabled:
                continue
            registry.sources[cls.name] = cls
            registry.plugin_of[cls.name] = plugin_name
            registry.packages.setdefault(cls.name, registry.packages.get(plugin_name, "?"))
    return registry


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use (not at import)."""
    global _registry
    if _registry is None:
        _registry = build_registry()
    return _registry


def reset_registry() -> None:
    """Forget the registry so the next use rebuilds it (tests, changed environment)."""
    global _registry
    _registry = None


def instantiate_sources(project: ProjectConfig) -> list[Source]:
    """One Source per ``[[sources]]`` entry, options validated by the plugin's own model.

    Errors name the project file and the entry, e.g. ``sources[1] (rss).feeds``.
    """
    registry = get_registry()
    where = project.path or "project file"
    sources: list[Source] = []
    labels: set[str] = set()
    for index, entry in enumerate(project.sources):
        entry_name = f"{where}: sources[{index}] ({entry.label})"
        try:
            cls = registry.source(entry.plugin)
        except PluginError as error:
            raise ConfigError(f"{entry_name}: {error}") from None
        payload = {"plugin": entry.plugin, "name": entry.name, **entry.options}
        try:
            options = cls.Options.model_validate(payload)
        except ValidationError as error:
            details = "; ".join(
                f"{'.'.join(str(p) for p in problem['loc']) or '(entry)'}: "
                + (
                    "unknown option for this plugin"
                    if problem["type"] == "extra_forbidden"
                    else problem["msg"].removeprefix("Value error, ")
                )
                + (
                    ""
                    if problem["type"] in ("missing", "extra_forbidden")
                    else f" (got {problem.get('input')!r})"
                )
                for problem in error.errors()
            )
            raise ConfigError(f"{entry_name}: {details}") from None
        try:
            source = cls(options, project.brands)
        except Exception as error:
            raise PluginError(
                f"{entry_name}: plugin {entry.plugin!r} failed to start: {error}"
            ) from error
        if source.label in labels:
            raise ConfigError(
                f"{entry_name}: two sources are both called {source.label!r}; "
                'give one a distinct name = "…"'
            )
        labels.add(source.label)
        sources.append(source)
    return sources
