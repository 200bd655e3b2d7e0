"""Retention and erasure on the real engine, including the spool and the dead-letter file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from listener.cli import main
from listener.config import ProjectConfig
from listener.mention import Mention
from listener.store.engine import free_port
from listener.store.indexer import Indexer
from listener.store.lifecycle import ERASURE_LOG, Selector, apply_retention, forget, month_end
from listener.store.locations import LOCATIONS_FILE

MentionFactory = Callable[..., Mention]
JAN, FEB, MAR = (datetime(2024, month, 10, tzinfo=UTC) for month in (1, 2, 3))


def _ids(client: Elasticsearch, indexer: Indexer) -> set[str]:
    """Ids stored under the alias (none once retention dropped every index)."""
    indexer.refresh()
    response = client.search(
        index=indexer.alias, size=1000, source=False, ignore_unavailable=True, allow_no_indices=True
    )
    return {hit["_id"] for hit in response["hits"]["hits"]}


def _spool(project: ProjectConfig, mentions: list[Mention]) -> Indexer:
    """Spool mentions as a crawl does when the cluster is down."""
    down = Elasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0, request_timeout=2)
    indexer = Indexer(down, project, max_retries=0)
    assert indexer.index(mentions).spooled == len(mentions)
    return indexer


def _write_project(project: ProjectConfig, tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "listener.toml"
    settings = project.elasticsearch
    path.write_text(
        f'[elasticsearch]\nurl = "{settings.url}"\nindex_prefix = "{settings.index_prefix}"\n'
        f'[[brands]]\nname = "Acme"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_month_end_is_the_first_instant_after_the_month() -> None:
    assert month_end("p-mentions-2024.12") == datetime(2025, 1, 1, tzinfo=UTC)
    assert month_end("p-mentions-2024.02") == datetime(2024, 3, 1, tzinfo=UTC)
    assert month_end("p-mentions") is None


def test_retention_drops_whole_months_past_the_cutoff(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    jan, feb, mar = make_mention(JAN), make_mention(FEB), make_mention(MAR)
    indexer.index([jan, feb, mar])
    now = datetime(2024, 4, 15, tzinfo=UTC)  # 30 days back: 16 March, inside March

    preview = apply_retention(client, project, days=30, now=now, dry_run=True)
    assert preview.dropped == [indexer.index_name_for(jan), indexer.index_name_for(feb)]
    assert _ids(client, indexer) == {jan.id, feb.id, mar.id}

    result = apply_retention(client, project, days=30, now=now)
    assert result.dropped == preview.dropped
    assert result.kept == [indexer.index_name_for(mar)]
    assert _ids(client, indexer) == {mar.id}
    # The location record forgot the dropped months; a re-crawled January mention is new again.
    assert indexer.location_store.lookup([jan.id, feb.id, mar.id]) == {
        mar.id: [indexer.index_name_for(mar)]
    }
    assert indexer.index([jan]).indexed == 1
    assert _ids(client, indexer) == {jan.id, mar.id}


def test_retention_without_days_drops_nothing(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    Indexer(client, project).index([make_mention(JAN)])
    result = apply_retention(client, project, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert (result.days, result.dropped) == (None, [])


def test_forget_an_author_everywhere(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    alice = [make_mention(JAN, author={"handle": "@Alice"}), make_mention(FEB)]
    alice[1] = alice[1].model_copy(update={"author": alice[0].author})
    bob = make_mention(JAN, author={"handle": "@bob"})
    indexer = Indexer(client, project)
    indexer.index([*alice, bob])
    spooled_alice = make_mention(MAR, author={"handle": "alice"})
    spooled_bob = make_mention(MAR, author={"handle": "bob"})
    _spool(project, [spooled_alice, spooled_bob])
    dead_alice = make_mention(MAR, author={"name": "alice"})
    indexer.dead_letter([dead_alice, make_mention(MAR)], "enrichment failed")

    selector = Selector(author="alice")
    preview = forget(client, project, selector, dry_run=True)
    assert (preview.count("index"), preview.count("spool"), preview.count("dead-letter")) == (
        2,
        1,
        1,
    )
    assert _ids(client, indexer) == {alice[0].id, alice[1].id, bob.id}
    assert not (project.home / ERASURE_LOG).exists()

    result = forget(client, project, selector)
    assert {m.id for m in result.mentions} == {
        alice[0].id,
        alice[1].id,
        spooled_alice.id,
        dead_alice.id,
    }
    assert _ids(client, indexer) == {bob.id}
    spool_lines = [
        json.loads(line)
        for path in indexer.spooled_files()
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert [doc["id"] for doc in spool_lines] == [spooled_bob.id]
    dead = [json.loads(line) for line in indexer.dead_letter_path.read_text().splitlines()]
    assert [record["document"]["id"] for record in dead] != [dead_alice.id]
    assert dead_alice.id not in {record["document"]["id"] for record in dead}
    assert len(dead) == 1
    logged = [json.loads(line) for line in (project.home / ERASURE_LOG).read_text().splitlines()]
    assert logged[0]["selector"] == {"author": "alice"}
    assert logged[0]["deleted"] == {"index": 2, "spool": 1, "dead_letter": 1}
    # The lookup forgot them too: indexing one again in another month leaves one copy.
    again = alice[0].model_copy(update={"published_at": MAR})
    assert indexer.index([again]).indexed == 1
    assert _ids(client, indexer) == {bob.id, again.id}

    # The spool still replays what was kept.
    assert indexer.replay_spool().indexed == 1
    assert _ids(client, indexer) == {bob.id, again.id, spooled_bob.id}


def test_forget_by_url_brand_and_date_all_must_match(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    tracked = make_mention(JAN, url="https://news.example/story?utm_source=x", brands=["Acme"])
    globex = make_mention(JAN, brands=["Globex"])
    late_globex = make_mention(MAR, brands=["Globex"])
    indexer.index([tracked, globex, late_globex])

    by_url = forget(client, project, Selector(url="https://NEWS.example/story"))
    assert [m.id for m in by_url.mentions] == [tracked.id]
    both = Selector(brand="globex", before=datetime(2024, 2, 1, tzinfo=UTC))
    assert [m.id for m in forget(client, project, both).mentions] == [globex.id]
    assert _ids(client, indexer) == {late_globex.id}


def test_clustered_retention_and_forget_keep_the_location_record_in_redis(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory, redis_url: str
) -> None:
    project.cluster.redis_url = redis_url
    indexer = Indexer(client, project)
    jan, feb = make_mention(JAN), make_mention(FEB)
    mar = make_mention(MAR, author={"handle": "dave"})
    moved = feb.model_copy(update={"published_at": MAR})
    indexer.index([jan, feb, mar])
    indexer.index([moved])  # named in February and March
    apply_retention(client, project, days=30, now=datetime(2024, 4, 15, tzinfo=UTC))
    store = indexer.location_store
    assert store.lookup([jan.id, feb.id, mar.id]) == {
        feb.id: [indexer.index_name_for(moved)],
        mar.id: [indexer.index_name_for(mar)],
    }
    forget(client, project, Selector(author="dave"))
    assert store.lookup([mar.id]) == {}
    assert store.count() == 1
    assert not (project.home / LOCATIONS_FILE).exists()


def test_a_selector_needs_a_criterion() -> None:
    with pytest.raises(ValueError, match="at least one of --author"):
        Selector()
    with pytest.raises(ValueError, match="--author must not be blank"):
        Selector(author=" ")


def test_forget_and_retention_commands(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory, tmp_path: Path
) -> None:
    indexer = Indexer(client, project)
    old, recent = make_mention(JAN, author={"handle": "carol"}), make_mention(MAR)
    indexer.index([old, recent])
    config = _write_project(project, tmp_path)
    runner = CliRunner()

    missing = runner.invoke(main, ["forget", "-c", str(config)])
    assert missing.exit_code == 2
    assert "give at least one of --author" in missing.output
    bad_date = runner.invoke(main, ["forget", "-c", str(config), "--before", "last tuesday"])
    assert bad_date.exit_code == 2
    assert "cannot read the time 'last tuesday'" in bad_date.output

    dry = runner.invoke(main, ["forget", "-c", str(config), "--author", "@carol", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would delete {old.id}" in dry.output
    done = runner.invoke(main, ["forget", "-c", str(config), "--author", "@carol"])
    assert done.exit_code == 0, done.output
    assert f"deleted {old.id} from {indexer.index_name_for(old)}" in done.output
    assert _ids(client, indexer) == {recent.id}

    no_days = runner.invoke(main, ["retention", "-c", str(config)])
    assert no_days.exit_code == 2
    assert "[retention] days = N" in no_days.output
    config = _write_project(project, tmp_path, "[retention]\ndays = 1\n")
    dropped = runner.invoke(main, ["retention", "-c", str(config)])
    assert dropped.exit_code == 0, dropped.output
    assert f"dropped {indexer.index_name_for(recent)}" in dropped.output
    assert _ids(client, indexer) == set()


def test_listener_run_applies_retention_at_start_and_then_hourly(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    from listener.service.scheduler import RETENTION_EVERY, Retention

    indexer = Indexer(client, project)
    jan, mar = make_mention(JAN), make_mention(MAR)
    indexer.index([jan])
    kept = project.model_copy(
        update={"retention": project.retention.model_copy(update={"days": 30})}
    )
    retention = Retention(kept, client)
    now = datetime(2024, 4, 15, tzinfo=UTC)
    retention.maybe_apply(now)  # the first tick applies it
    assert (retention.passes, _ids(client, indexer)) == (1, set())
    indexer.index([jan, mar])
    retention.maybe_apply(now + RETENTION_EVERY / 2)  # not due yet: January stays
    assert (retention.passes, _ids(client, indexer)) == (1, {jan.id, mar.id})
    retention.maybe_apply(now + RETENTION_EVERY)
    assert (retention.passes, _ids(client, indexer)) == (2, {mar.id})
    # Without [retention] days the service never drops anything.
    assert not Retention(project, client).enabled
