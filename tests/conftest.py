"""Shared fixtures: one storage engine per test session, one index prefix per test.

Storage tests talk to a real Elasticsearch-API server: the embedded engine
started once for the session on a free loopback port, or the cluster named by
``LISTENER_TEST_ES_URL``.
"""

from __future__ import annotations

import importlib.resources
import itertools
import json
import logging
import os
import subprocess
import sys
import textwrap
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from listener.config import ProjectConfig, parse_project
from listener.errors import EngineError
from listener.mention import BrandMatch, Engagement, Mention, Sentiment
from listener.sdk.plugin_manager import reset_registry
from listener.sdk.replay import MANIFEST, Route, load_site
from listener.store.engine import EmbeddedEngine, find_binary

BRANDS = ("Acme", "Globex", "Initech")


def _shared_fixtures() -> Path:
    """Where the recorded real-world data lives (read in place, never copied into the repo).

    ``LISTENER_FIXTURES`` if set (as for the bench scripts), else the first
    ``shared/fixtures`` folder beside the checkout or beside one of its parents
    (a git worktree nested one level deeper finds the same data). Tests that
    need it skip when it is absent.
    """
    configured = os.environ.get("LISTENER_FIXTURES")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[1]
    for folder in checkout.parents:
        candidate = folder / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return checkout.parent / "shared" / "fixtures"


SHARED_FIXTURES = _shared_fixtures()
# The bench helpers some tests import (and subprocesses) read the same variable.
os.environ.setdefault("LISTENER_FIXTURES", str(SHARED_FIXTURES))

#: The built-in sources' recorded sites as the package ships them (``listener plugins check``).
SHIPPED_FIXTURES = Path(str(importlib.resources.files("listener.plugins") / "fixtures"))
TEST_DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class RecordedSite:
    """A built-in source's recorded site for its tests: the shipped one plus ``tests/data/NAME``.

    The tests read the files the package ships (``plugins/fixtures/NAME``) rather than
    copies of them; ``tests/data/NAME`` holds only what the tests add (later runs, error
    pages, more routes). ``site / "file.json"`` is the tests' own file if there is one,
    else the shipped one; :meth:`routes` reads the tests' ``routes.json`` if they have
    one (its files found in either folder), else the shipped manifest.
    """

    name: str

    @property
    def own(self) -> Path:
        return TEST_DATA / self.name

    @property
    def shipped(self) -> Path:
        return SHIPPED_FIXTURES / self.name

    def __truediv__(self, name: str) -> Path:
        own = self.own / name
        return own if own.exists() else self.shipped / name

    def routes(self) -> list[Route]:
        if (self.own / MANIFEST).is_file():
            return load_site(self.own, also=[self.shipped])
        return load_site(self.shipped)


_SENTIMENT_SCORES = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}
_counter = itertools.count()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one pytest-xdist worker more than the CPUs this process may use.

    Many tests spend part of their time waiting on a crawl subprocess, the engine or a
    browser, which leaves a core idle with one worker per CPU. Measured on 2 cores, quiet,
    same code (``python -m pytest -n N``): 2 workers 255 s, 3 workers 232 s (the same CPU
    time), 4 workers 262 s (each worker also starts its own session fixtures).
    """
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the tests that share a module-scoped fixture on one pytest-xdist worker.

    With ``--dist loadgroup`` (pyproject's addopts) the tests of a file that use a
    module-scoped fixture (a loaded model, a replayed crawl, an indexed corpus) form
    one group, so the fixture is built once; every other test goes to whichever
    worker is free, so one file of slow independent tests does not hold up the run.
    """
    wide = {"module", "package", "class"}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        if any(defs and defs[-1].scope in wide for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    _long_ones_first(items)


#: The longest tests (or files whose tests share one worker), longest first, as
#: ``python -m pytest --durations=60`` measured them. pytest-xdist hands out work in
#: collection order (``--no-loadscope-reorder`` in pyproject's addopts), so these start
#: first and the short tests fill in around them; a long test started last would hold up
#: the whole run on one core. Order only: which tests run, and how, is unchanged.
LONG_FIRST = (
    "tests/test_rules_agreement.py",
    "tests/test_service_cluster.py::test_two_workers_one_killed_mid_crawl",
    "tests/test_faults.py::test_engine_killed_mid_crawl",
    "tests/test_plugin_sdk.py::test_scaffolded_plugin",
    "tests/test_service_run.py::test_listener_run_picks_up_new_items_and_resumes_after_sigterm",
    "tests/test_crawl_e2e.py::test_crawl_enrich_index_and_query_the_demo_site",
    "tests/test_first_use.py::test_a_source_entry_label_is_stored",
    "tests/test_web_browser.py",
    "tests/test_first_use.py::test_rematch_removes_labels",
    "tests/test_service_run.py::test_listener_run_keeps_one_embedded_engine_up",
    "tests/test_code_quality.py::test_mypy_is_clean",
    "tests/test_plugin_sdk.py::test_plugins_check_passes_from_the_installed_wheel",
    "tests/test_faults.py::test_a_broken_cluster_gets_every_mention_spooled_then_indexed",
    "tests/test_first_use.py::test_cluster_down_is_one_line",
    "tests/test_enrichment_pool.py::test_a_crawl_stores_the_same_mentions",
    "tests/test_crawl_e2e.py::test_engine_down_mid_crawl",
    "tests/test_faults.py::test_mentions_saved_nowhere",
    "tests/test_first_use.py::test_broken_and_malformed_sources",
    "tests/test_crawl_e2e.py::test_scrapy_crawl_command",
    "tests/test_crawl_e2e.py::test_broken_sources_are_reported",
    "tests/test_faults.py::test_future_dated_mentions",
    "tests/test_faults.py::test_an_unwritable_spool",
    "tests/test_crawl_e2e.py::test_demo_command",
    "tests/test_enrichment_pool.py::test_enrichment_workers_exit",
    "tests/test_first_use.py::test_a_401_is_reported",
    "tests/test_service_cluster.py::test_a_worker_stopped_with_sigterm",
    "tests/test_relabel.py::test_reenrich_command_runs_worker_processes",
    "tests/test_relabel.py::test_rematch_command_reports_changes",
)


def _long_ones_first(items: list[pytest.Item]) -> None:
    """Sort the LONG_FIRST tests to the front in that order, then ``slow`` ones, then the rest.

    A test sharing a worker with others (an ``xdist_group``) moves with its whole group,
    placed by its group's longest member. The sort is stable: otherwise collection order.
    """
    last = len(LONG_FIRST)

    def rank(item: pytest.Item) -> int:
        for place, prefix in enumerate(LONG_FIRST):
            if item.nodeid.startswith(prefix):
                return place
        return last if item.get_closest_marker("slow") else last + 1

    def group(item: pytest.Item) -> str:
        marker = item.get_closest_marker("xdist_group")
        return str(marker.args[0] if marker and marker.args else item.nodeid)

    best: dict[str, int] = {}
    for item in items:
        key = group(item)
        best[key] = min(best.get(key, last + 1), rank(item))
    items.sort(key=lambda item: best[group(item)])


@dataclass(frozen=True)
class ExternalCluster:
    """A cluster given by ``LISTENER_TEST_ES_URL`` instead of the embedded engine."""

    url: str


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine | ExternalCluster]:
    """The storage engine for the session: embedded, or the cluster in LISTENER_TEST_ES_URL."""
    external = os.environ.get("LISTENER_TEST_ES_URL")
    if external:
        yield ExternalCluster(external.rstrip("/"))
        return
    try:
        find_binary()
    except EngineError as error:
        pytest.skip(str(error))
    with EmbeddedEngine(tmp_path_factory.mktemp("engine")) as embedded:
        yield embedded


@pytest.fixture(scope="session")
def session_client(engine: EmbeddedEngine | ExternalCluster) -> Iterator[Elasticsearch]:
    """One client for the whole session."""
    client = Elasticsearch(engine.url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def prefix(session_client: Elasticsearch) -> Iterator[str]:
    """A fresh index prefix for one test; its indices and template are removed after it."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    quiet = session_client.options(ignore_status=404)
    indices = list(quiet.indices.get(index=f"{name}-*", allow_no_indices=True).body or {})
    if indices:
        quiet.indices.delete(index=",".join(indices))
    quiet.indices.delete_index_template(name=f"{name}-mentions")


@pytest.fixture
def client(session_client: Elasticsearch) -> Elasticsearch:
    """An Elasticsearch client connected to the session's engine."""
    return session_client


def make_project(
    url: str | None, tmp_path: Path, prefix: str, **elasticsearch: Any
) -> ProjectConfig:
    """A project with three brands (Initech never gets mentions in the test data)."""
    settings: dict[str, Any] = {"index_prefix": prefix, **elasticsearch}
    if url:
        settings["url"] = url
    data = {
        "elasticsearch": settings,
        "brands": [
            {"name": "Acme", "keywords": ["acme", "acme corp"]},
            {"name": "Globex"},
            {"name": "Initech"},
        ],
    }
    return parse_project(data, tmp_path / "listener.toml")


def _delete_prefix(client: Elasticsearch, prefix: str) -> None:
    """Drop a test's indices and templates (wildcard deletes are refused by design)."""
    quiet = client.options(ignore_status=404)
    names = list(quiet.indices.get(index=f"{prefix}-*", allow_no_indices=True).body or {})
    if names:
        quiet.indices.delete(index=",".join(names))
    quiet.indices.delete_index_template(name=f"{prefix}-mentions")


@pytest.fixture
def project(
    engine: EmbeddedEngine | ExternalCluster,
    session_client: Elasticsearch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ProjectConfig]:
    """A project on the session engine with its own index prefix and LISTENER_HOME."""
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    prefix = f"t{uuid.uuid4().hex[:12]}"
    yield make_project(engine.url, tmp_path, prefix)
    _delete_prefix(session_client, prefix)


MentionFactory = Callable[..., Mention]


@pytest.fixture
def make_mention() -> MentionFactory:
    """Build a test Mention with brands, sentiment and engagement set directly."""

    def build(
        published_at: datetime,
        *,
        brands: Iterable[str] = ("Acme",),
        text: str | None = None,
        title: str | None = None,
        sentiment: str = "neutral",
        likes: int = 0,
        comments: int = 0,
        shares: int = 0,
        url: str | None = None,
        source: str = "testsource",
        **fields: Any,
    ) -> Mention:
        number = next(_counter)
        names = list(brands)
        label = sentiment
        return Mention.create(
            source=source,
            source_kind="blog",
            url=url or f"https://blog.example.com/posts/{number}",
            title=title,
            text=text or f"Post number {number} about {' and '.join(names) or 'nothing'}.",
            published_at=published_at,
            brands=[BrandMatch(brand=name, keyword=name.lower()) for name in names],
            brand_names=names,
            sentiment=Sentiment(score=_SENTIMENT_SCORES[label], label=label),
            engagement=Engagement(likes=likes, comments=comments, shares=shares),
            **fields,
        )

    return build


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where tests install throwaway plugin distributions."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    reset_registry()
    yield folder
    for name in [m for m in sys.modules if m.startswith("fake_listener_")]:
        del sys.modules[name]
    reset_registry()


def install_plugin(site: Path, name: str, module_source: str) -> None:
    """Write a module and a dist-info whose entry point registers it in the ``listener`` group."""
    module = f"fake_listener_{name}"
    (site / f"{module}.py").write_text(textwrap.dedent(module_source), encoding="utf-8")
    dist = site / f"fake_listener_{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fake-listener-{name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(f"[listener]\n{name} = {module}\n", encoding="utf-8")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real redis-server on a free loopback port for the session (skips if not installed)."""
    from listener.service.testing import RedisServer, redis_server_binary

    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return str(redis_server.url)


def run_cli(
    *args: str, env: dict[str, str], input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``listener ARGS`` in this process with exactly ``env`` as its environment.

    For commands whose test is about what they print and their exit code, not about
    being a process: starting an interpreter and importing the CLI costs about a second
    of CPU per command. Crawls, signals and worker processes stay in real processes.
    Returns what :func:`subprocess.run` would (an uncaught exception: exit 1, its
    traceback on stderr). The root logger's handlers, which the command adds to, are
    restored afterwards.
    """
    from click.testing import CliRunner

    from listener.cli import main, output

    changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    changes.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # rich fixes a console's width from COLUMNS when it is made; a new process would read
    # this run's COLUMNS, so the shared consoles read it (or the 80-column default) now.
    widths = [(console, console._width) for console in (output.out, output.err)]
    try:
        for console, _ in widths:
            console._width = None
        result = CliRunner().invoke(main, list(args), input=input, env=changes)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for console, width in widths:
            console._width = width
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["listener", *args], result.exit_code, result.stdout, stderr)


#: Stand-ins for one field of a recorded API item: gone, null, or of another JSON type.
BROKEN_VALUES: tuple[Any, ...] = ("<deleted>", None, "", "x", -7, 2.5, True, [], {})


def each_field_broken(item: dict[str, Any], depth: int = 2) -> Iterator[tuple[str, Any]]:
    """Copies of ``item`` with one field at a time (to ``depth`` levels of objects) deleted,
    null or of another type, each with a label naming the field and the value.

    For the API sources' held-out-shape tests: a real recorded item broken in every way a
    field can be, one field at a time.
    """

    def fields(node: dict[str, Any], prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for key, value in node.items():
            yield (*prefix, key)
            if isinstance(value, dict) and len(prefix) + 1 < depth:
                yield from fields(value, (*prefix, key))

    for path in list(fields(item, ())):
        for value in BROKEN_VALUES:
            broken = json.loads(json.dumps(item))
            node = broken
            for key in path[:-1]:
                node = node[key]
            if value == "<deleted>":
                del node[path[-1]]
            else:
                node[path[-1]] = value
            yield f"{'.'.join(path)}={value!r}", broken
