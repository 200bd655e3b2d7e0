"""Rules and models on stored mentions: rematch, preview, reenrich and `listener enrich`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from elasticsearch import Elasticsearch

from listener.config import load_project
from listener.enrichment import Enricher
from listener.mention import Author, Mention
from listener.rules import RuleInput, parse_rule
from listener.store.indexer import Indexer
from listener.store.relabel import preview_rule, reenrich, rematch_query

TEXTS = [
    ("Shell raised petrol prices again this week.", "news.example"),
    ("I found a pretty shell on the beach today.", "blog.example"),
    ("Shell says gas output is up; analysts are pleased.", "shell.com"),
    ("Acme support fixed my laptop in a day. Great service!", "forum.example"),
    ("Thanks @Apple for the quick fix on my iPhone!", "social.example"),
    ("Apple pie with cinnamon is the best dessert.", "food.example"),
]


def write_project(path: Path, prefix: str, shell_rule: str | None) -> Path:
    shell = f"query = '{shell_rule}'" if shell_rule else 'keywords = ["shell"]'
    path.write_text(
        f"""
[elasticsearch]
index_prefix = "{prefix}"

[[brands]]
name = "Shell"
{shell}

[[brands]]
name = "Acme"

[[brands]]
name = "Apple"
query = "(apple NEAR/3 (iphone OR mac)) OR @apple"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def stored(
    engine: Any, session_client: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, str]]:
    """The six texts crawled with a keyword-only Shell brand and stored in the engine."""
    prefix = f"rl{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LISTENER_ES_URL", engine.url)
    path = write_project(tmp_path / "listener.toml", prefix, None)
    project = load_project(path)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    mentions = [
        Mention.create(
            source="rss",
            source_kind="news",
            url=f"https://{domain}/post/{i}",
            text=text,
            published_at=start + timedelta(hours=i),
            author=Author(handle=f"user{i}"),
        )
        for i, (text, domain) in enumerate(TEXTS)
    ]
    indexer = Indexer(session_client, project)
    indexer.install_templates()
    result = indexer.index(list(Enricher(project).enrich(mentions)))
    assert result.indexed == len(TEXTS)
    indexer.refresh()
    yield path, prefix
    quiet = session_client.options(ignore_status=404)
    names = list(quiet.indices.get(index=f"{prefix}-*", allow_no_indices=True).body or {})
    if names:
        quiet.indices.delete(index=",".join(names))
    quiet.indices.delete_index_template(name=f"{prefix}-mentions")


def labels(client: Elasticsearch, prefix: str) -> dict[str, list[str]]:
    client.indices.refresh(index=f"{prefix}-mentions")
    hits = client.search(index=f"{prefix}-mentions", size=100, query={"match_all": {}})
    return {hit["_source"]["text"]: hit["_source"]["brand_names"] for hit in hits["hits"]["hits"]}


def test_rematch_applies_an_edited_rule_to_stored_mentions(
    stored: tuple[Path, str], session_client: Elasticsearch
) -> None:
    path, prefix = stored
    before = labels(session_client, prefix)
    assert before["I found a pretty shell on the beach today."] == ["Shell"]  # keyword noise
    rule = '"shell" NEAR/5 (oil OR gas OR petrol) NOT site:shell.com'
    write_project(path, prefix, rule)
    project = load_project(path)
    result = reenrich(session_client, project, query=rematch_query(project, ["Shell"]))
    after = labels(session_client, prefix)
    # The matcher and an independent reading of the rule agree on every stored text.
    parsed = parse_rule(rule)
    for text, domain in TEXTS:
        expected = parsed.matches(RuleInput(text=text, domain=domain)) is not None
        assert ("Shell" in after[text]) == expected, text
    assert result.removed["Shell"] == 2
    assert result.added["Shell"] == 0
    assert after["Thanks @Apple for the quick fix on my iPhone!"] == ["Apple"]


def test_preview_counts_what_a_draft_rule_matches(
    stored: tuple[Path, str], session_client: Elasticsearch
) -> None:
    path, _ = stored
    project = load_project(path)
    preview = preview_rule(session_client, project, parse_rule("shell NOT site:shell.com"))
    texts = [s["text"] for s in preview.samples]
    assert preview.count == 2
    assert texts == [TEXTS[1][0], TEXTS[0][0]]  # newest first


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listener.cli", *args], input=stdin, env=dict(os.environ),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_preview_command_json_and_parse_errors(stored: tuple[Path, str]) -> None:
    path, _ = stored
    env = dict(os.environ)
    result = run_cli("preview", "-c", str(path), "acme OR @apple", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["count"] == 2
    assert {s["text"] for s in payload["samples"]} == {TEXTS[3][0], TEXTS[4][0]}
    broken = run_cli("preview", "-c", str(path), "acme NEAR/x apple", env=env)
    assert broken.returncode == 2
    assert "position" in broken.stderr


def test_rematch_command_reports_changes(stored: tuple[Path, str]) -> None:
    path, prefix = stored
    write_project(path, prefix, '"shell" NEAR/5 (oil OR gas OR petrol) NOT site:shell.com')
    result = run_cli("rematch", "-c", str(path), "--brand", "shell", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "Shell" in result.stdout
    assert "6 stored mentions examined" not in result.stderr  # only candidates are read


def test_enrich_command_streams_ndjson(tmp_path: Path) -> None:
    path = write_project(tmp_path / "listener.toml", "unused", None)
    lines = [
        {"text": "Shell petrol is cheaper here than anywhere.", "id": "x1"},
        {"text": "Nothing to see.", "published_at": "2026-11-01T10:00:00Z", "title": "Hi"},
    ]
    env = dict(os.environ)
    result = run_cli(
        "enrich", "-c", str(path), input="\n".join(json.dumps(x) for x in lines), env=env
    )
    assert result.returncode == 0, result.stderr
    [first, second] = [Mention.model_validate_json(line) for line in result.stdout.splitlines()]
    assert first.id == "x1" and first.brand_names == ["Shell"] and first.language == "en"
    assert second.brand_names == [] and second.title == "Hi"
    # A bad line is reported and skipped; only --strict makes it an error (exit 2).
    bad = run_cli(
        "enrich", "-c", str(path), input='{"text": "ok"}\n{"title": "no text"}\n', env=env
    )
    assert bad.returncode == 0
    assert len(bad.stdout.splitlines()) == 1
    assert "stdin line 2: 'text' is required" in bad.stderr
    strict = run_cli("enrich", "-c", str(path), "--strict", input='{"title": "no text"}\n', env=env)
    assert strict.returncode == 2


def test_reenrich_command_runs_worker_processes(
    stored: tuple[Path, str], session_client: Elasticsearch
) -> None:
    path, prefix = stored
    result = cli("reenrich", "-c", str(path), "--processes", "2", "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    assert f"re-enriched {len(TEXTS)} of {len(TEXTS)} mentions" in result.stderr
    session_client.indices.refresh(index=f"{prefix}-mentions")
    hits = session_client.search(index=f"{prefix}-mentions", size=100)["hits"]["hits"]
    assert len(hits) == len(TEXTS)
    for hit in hits:
        source = hit["_source"]
        assert source["sentiment"] is not None or source["unsupported"], source["text"]
