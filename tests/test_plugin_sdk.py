"""The plugin SDK: a third-party plugin installed as its own distribution, isolation, scaffold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import install_plugin

from listener.config import parse_project
from listener.contract import check_plugin
from listener.health import source_health
from listener.mention import Mention
from listener.plugin_manager import build_registry, reset_registry
from listener.replay import Route
from listener.testing import replay_crawl

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "listener-shopreviews"
EXAMPLE_FIXTURES = EXAMPLE / "listener_shopreviews" / "fixtures"


def listener_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listener.cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_example_plugin_is_installed_as_its_own_distribution() -> None:
    reset_registry()
    registry = build_registry()
    assert "shopreviews" in registry.sources, (
        "the example plugin is installed by the README's test command: "
        "pip install -e examples/listener-shopreviews"
    )
    assert registry.packages["shopreviews"] == "listener-shopreviews"
    hooks = registry.hooks_of(registry.plugin_of["shopreviews"])
    assert hooks == ["listener_prepare_nlp", "listener_register_sources"]


def test_plugins_list_shows_version_package_options_and_hooks() -> None:
    result = listener_cli("plugins", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    sources = {row["source"]: row for row in json.loads(result.stdout)["sources"]}
    example = sources["shopreviews"]
    assert example["version"] == "0.2.0"
    assert example["package"] == "listener-shopreviews"
    assert "skus: list[str] (required)" in example["options"]
    assert "listener_prepare_nlp" in example["hooks"]
    assert sources["rss"]["package"] == "listener"


def test_example_plugin_is_crawled_through_the_real_engine() -> None:
    result = replay_crawl(
        "shopreviews", {"base_url": "{base_url}", "skus": ["RKT-14"]}, EXAMPLE_FIXTURES
    )
    assert result.source["health"] == "healthy"
    assert [m.rating.raw for m in result.mentions if m.rating] == [5.0, 2.0, 4.0]
    assert {m.thread_id for m in result.mentions} == {"RKT-14"}
    assert [r.param("page") for r in result.requests if r.path.startswith("/v1/")] == ["1", "2"]


def test_disabled_plugin_is_not_loaded() -> None:
    env = {**os.environ, "LISTENER_DISABLE_PLUGINS": "shopreviews"}
    result = listener_cli("plugins", "list", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert "shopreviews" not in {row["source"] for row in json.loads(result.stdout)["sources"]}


def test_prepare_nlp_hook_changes_the_pipeline() -> None:
    from listener.enrichment import Enricher

    reset_registry()
    project = parse_project({"brands": [{"name": "Acme"}]}, Path("listener.toml"))
    mention = Mention.create(
        source="test",
        source_kind="review",
        url="https://shop.example/r/1",
        text="My Acme Rocket 14 arrived today and it is superb.",
        published_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    [enriched] = Enricher(project).enrich([mention])
    assert ("Rocket 14", "PRODUCT") in {(e.text, e.label) for e in enriched.entities}


def test_contract_checks_pass_for_the_example() -> None:
    reset_registry()
    checks = check_plugin("shopreviews")
    assert [c.name for c in checks if not c.ok] == []
    assert len(checks) == 6


FAILING_PLUGIN = """
from listener import hookimpl
from listener.source import Request, Source, SourceOptions


class Options(SourceOptions):
    base_url: str


class Flaky(Source):
    name = "{name}"
    kind = "social"
    Options = Options
    api_version = 1

    def start_requests(self):
        for page in range(6):
            yield Request(f"{{self.options.base_url}}/items?page={{page}}")

    def parse(self, response):
        {parse_body}


@hookimpl
def listener_register_sources():
    return [Flaky]
"""

ITEMS = [Route("/items", body=b'{"items": []}', headers={"Content-Type": "application/json"})]


@pytest.fixture
def subprocess_site(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make fake plugins in ``site`` visible to crawl subprocesses too."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


def test_plugin_raising_in_parse_is_paused_and_reported(subprocess_site: Path) -> None:
    install_plugin(
        subprocess_site,
        "raiser",
        FAILING_PLUGIN.format(name="raiser", parse_body='return [response.json()["data"]]'),
    )
    result = replay_crawl(
        "raiser", {"base_url": "{base_url}"}, ITEMS, crawl={"max_consecutive_failures": 3}
    )
    summary = result.source
    assert result.mentions == []
    assert summary["paused"] is True
    assert summary["parse_errors"] == 3
    assert summary["health"] == "broken"
    assert summary["last_error"].startswith("KeyError: 'data' at http://127.0.0.1:")
    assert "/items?page=" in summary["last_error"]


def test_plugin_returning_invalid_mentions_is_counted(subprocess_site: Path) -> None:
    install_plugin(
        subprocess_site,
        "badmentions",
        FAILING_PLUGIN.format(name="badmentions", parse_body='return [{"text": "not a Mention"}]'),
    )
    result = replay_crawl("badmentions", {"base_url": "{base_url}"}, ITEMS)
    assert result.mentions == []
    assert result.source["parse_errors"] == 6
    assert "yielded dict, expected Mention or Request" in result.source["last_error"]


def test_plugin_with_invalid_options_model_fails_its_contract_check(site: Path) -> None:
    install_plugin(
        site,
        "noopts",
        """
        from pydantic import BaseModel
        from listener import hookimpl
        from listener.source import Source


        class Options(BaseModel):
            plugin: str


        class NoOpts(Source):
            name = "noopts"
            kind = "social"
            Options = Options
            api_version = 1


        @hookimpl
        def listener_register_sources():
            return [NoOpts]
        """,
    )
    reset_registry()
    checks = {c.name: c for c in check_plugin("noopts")}
    assert not checks["options model"].ok
    assert "SourceOptions" in checks["options model"].detail


def test_source_health_classifies_runs() -> None:
    def run(health: str, when: str) -> dict[str, object]:
        return {
            "finished_at": when,
            "sources": {
                "feeds": {"health": health, "mentions": 3, "last_success": "https://x/"},
                "api": {"health": "healthy", "mentions": 5, "last_success": "https://y/"},
            },
        }

    runs = [run("healthy", "2026-11-01"), run("broken", "2026-11-02"), run("healthy", "2026-11-03")]
    report = {entry.source: entry for entry in source_health(runs)}
    assert report["api"].status == "healthy"
    assert report["feeds"].status == "degraded"
    assert report["feeds"].history == ["healthy", "broken", "healthy"]
    runs.append(run("broken", "2026-11-04"))
    assert {e.source: e.status for e in source_health(runs)}["feeds"] == "broken"


@pytest.mark.slow
def test_scaffolded_plugin_installs_and_passes_its_own_tests(tmp_path: Path) -> None:
    created = listener_cli("plugins", "new", "shoutbox", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    package = tmp_path / "listener-shoutbox"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "-e", str(package)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    try:
        listed = listener_cli("plugins", "list", "--format", "json")
        assert "shoutbox" in {row["source"] for row in json.loads(listed.stdout)["sources"]}
        checked = listener_cli("plugins", "check", "shoutbox")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "all 6 contract checks passed" in checked.stdout
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=package, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert tests.returncode == 0, tests.stdout[-3000:]
        assert "4 passed" in tests.stdout
    finally:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--quiet", "-y", "listener-shoutbox"],
            capture_output=True, check=False,
        )  # fmt: skip
        reset_registry()
