"""The plugin manager: built-ins and entry points load; broken plugins are reported and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import install_plugin

from listener.errors import PluginError
from listener.sdk.plugin_manager import build_registry
from listener.source import HOOK_API_VERSION

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
    for name, cls in registry.sources.items():
        if registry.packages[name] == "listener":
            # Built-ins declare their contract version like any plugin must.
            assert cls.__dict__.get("api_version") == HOOK_API_VERSION, name
            assert registry.hooks_of(registry.plugin_of[name]) == ["listener_register_sources"]


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


def test_source_without_a_contract_version_is_refused_saying_what_to_add(site: Path) -> None:
    module = GOOD_PLUGIN.format(name="unversioned", api=1).replace("    api_version = 1\n", "")
    assert "api_version" not in module
    install_plugin(site, "unversioned", module)
    registry = build_registry()
    assert "unversioned" not in registry.sources
    assert "hackernews" in registry.sources  # the rest of listener goes on
    [problem] = registry.problems
    assert problem.plugin == "unversioned"
    assert "does not declare the listener source contract version" in problem.reason
    assert f"add `api_version = {HOOK_API_VERSION}` to the class" in problem.reason
    assert "fake_listener_unversioned.ExampleSource" in problem.reason


def test_undecorated_register_hook_is_an_error_not_a_silent_registration(site: Path) -> None:
    module = GOOD_PLUGIN.format(name="bare", api=1).replace("@hookimpl\n", "")
    assert "@hookimpl" not in module
    install_plugin(site, "bare", module)
    with pytest.raises(PluginError) as raised:
        build_registry()
    message = str(raised.value)
    assert "plugin 'bare'" in message
    assert "listener_register_sources is not decorated with @listener.hookimpl" in message


def test_undecorated_prepare_nlp_is_an_error_naming_the_plugin(site: Path) -> None:
    module = GOOD_PLUGIN.format(name="nlpbare", api=1) + (
        "\n\ndef listener_prepare_nlp(nlp, config):\n    nlp.add_pipe('sentencizer')\n"
    )
    install_plugin(site, "nlpbare", module)
    with pytest.raises(
        PluginError, match=r"plugin 'nlpbare': listener_prepare_nlp is not decorated"
    ):
        build_registry()


def test_misspelt_undecorated_hook_is_an_error(site: Path) -> None:
    module = GOOD_PLUGIN.format(name="typo2", api=1) + (
        "\n\ndef listener_prepare_nlpp(nlp, config):\n    pass\n"
    )
    install_plugin(site, "typo2", module)
    with pytest.raises(PluginError) as raised:
        build_registry()
    message = str(raised.value)
    assert "plugin 'typo2': listener_prepare_nlpp is not a listener hook" in message
    assert "listener_prepare_nlp, listener_register_sources" in message


def test_misspelt_decorated_hook_error_names_the_plugin(site: Path) -> None:
    install_plugin(
        site,
        "typo3",
        """
        from listener import hookimpl

        @hookimpl
        def listener_prepare_nl(nlp, config):
            pass
        """,
    )
    with pytest.raises(PluginError, match=r"plugin 'typo3' implements a hook listener does not"):
        build_registry()


def test_imported_listener_package_is_not_taken_for_a_hook(site: Path) -> None:
    install_plugin(
        site,
        "imports",
        "import listener_helpers_pkg as listener_helpers\n"
        + GOOD_PLUGIN.format(name="imports", api=1),
    )
    (site / "listener_helpers_pkg.py").write_text("VALUE = 1\n", encoding="utf-8")
    registry = build_registry()
    assert registry.source("imports").__name__ == "ExampleSource"
