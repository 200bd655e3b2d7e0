"""The plugin manager: built-ins and entry points load; broken plugins are reported and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import install_plugin

from listener.errors import PluginError
from listener.plugin_manager import build_registry

GOOD_PLUGIN = """
from listener import hookimpl
from listener.source import Source, SourceOptions


class Options(SourceOptions):
    endpoint: str = "https://example.com"


class ExampleSource(Source):
    name = "{name}"
    kind = "social"
    Options = Options
    api_version = {api}

    def start_requests(self):
        return []

    def parse(self, response):
        return []


@hookimpl
def listener_register_sources():
    return [ExampleSource]
"""


def test_builtins_are_registered_like_plugins() -> None:
    registry = build_registry()
    assert {"rss", "hackernews"} <= set(registry.sources)
    assert registry.packages["rss"] == "listener"
    assert registry.problems == []


def test_entry_point_plugin_is_found(site: Path) -> None:
    install_plugin(site, "example", GOOD_PLUGIN.format(name="example", api=1))
    registry = build_registry()
    assert registry.source("example").__name__ == "ExampleSource"
    assert registry.packages["example"] == "fake-listener-example"


def test_disabled_plugins_are_not_loaded(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(site, "example", GOOD_PLUGIN.format(name="example", api=1))
    monkeypatch.setenv("LISTENER_DISABLE_PLUGINS", "example, rss")
    registry = build_registry()
    assert "example" not in registry.sources
    assert "rss" not in registry.sources
    assert "hackernews" in registry.sources


def test_plugin_whose_import_fails_is_skipped_and_reported(site: Path) -> None:
    install_plugin(site, "broken", "import package_that_does_not_exist\n")
    registry = build_registry()
    assert "hackernews" in registry.sources
    [problem] = registry.problems
    assert problem.plugin == "broken"
    assert "ModuleNotFoundError" in problem.reason
    with pytest.raises(PluginError, match="plugin broken was skipped: import failed"):
        registry.source("broken")


def test_incompatible_contract_version_is_refused_with_both_versions(site: Path) -> None:
    install_plugin(site, "future", GOOD_PLUGIN.format(name="future", api=2))
    registry = build_registry()
    assert "future" not in registry.sources
    [problem] = registry.problems
    assert "written for listener source API version 2" in problem.reason
    assert "implements version 1" in problem.reason


def test_misspelt_hook_is_an_error(site: Path) -> None:
    install_plugin(
        site,
        "typo",
        """
        from listener import hookimpl

        @hookimpl
        def listener_register_source():
            return []
        """,
    )
    with pytest.raises(PluginError, match="listener_register_source"):
        build_registry()


def test_hook_returning_a_non_source_is_skipped(site: Path) -> None:
    install_plugin(
        site,
        "wrong",
        """
        from listener import hookimpl

        @hookimpl
        def listener_register_sources():
            return [object]
        """,
    )
    registry = build_registry()
    assert [p.plugin for p in registry.problems] == ["wrong"]
    assert "not a Source subclass" in registry.problems[0].reason
