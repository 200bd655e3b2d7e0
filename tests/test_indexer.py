"""Bulk indexing against the real engine: idempotence, dead letters, spool and replay."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from elastic_transport import JsonSerializer
from elasticsearch import Elasticsearch
from elasticsearch.helpers import expand_action

from listener.config import ProjectConfig
from listener.mention import (
    Author,
    BrandMatch,
    Engagement,
    Entity,
    Mention,
    Rating,
    Sentiment,
    Span,
)
from listener.store.engine import free_port
from listener.store.indexer import Indexer, IndexResult
from listener.store.locations import LOCATIONS_FILE

MentionFactory = Callable[..., Mention]
JAN = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


class SmuggledMention(Mention):
    """A mention carrying a field the strict mapping does not know: the cluster rejects it."""

    smuggled: str = "not in the mapping"


def _fast(client: Elasticsearch, config: ProjectConfig) -> Indexer:
    return Indexer(client, config, max_retries=2, initial_backoff=0.01, max_backoff=0.02)


def _count(client: Elasticsearch, config: ProjectConfig) -> int:
    alias = f"{config.elasticsearch.index_prefix}-mentions"
    client.indices.refresh(index=alias)
    return int(client.count(index=alias)["count"])


def _down_client() -> Elasticsearch:
    """A client for a port nobody listens on: every request fails to connect."""
    return Elasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0, request_timeout=2)


def test_templates_install_idempotently(client: Elasticsearch, project: ProjectConfig) -> None:
    indexer = Indexer(client, project)
    assert indexer.install_templates() == [f"{indexer.prefix}-mentions"]
    assert indexer.install_templates() == [f"{indexer.prefix}-mentions"]
    stored = client.indices.get_index_template(name=f"{indexer.prefix}-mentions")
    template = stored["index_templates"][0]["index_template"]
    assert template["index_patterns"] == [f"{indexer.prefix}-mentions-*"]


def _every_field() -> Mention:
    """A mention with every field set, text needing JSON escapes, and floats with long reprs."""
    return Mention.create(
        source="testsource",
        source_kind="review",
        url="https://shop.example/p/1?utm_source=x#r2",
        keep_fragment=True,
        title='Acme "Phone" <b>&amp;</b> \u00e9t\u00e9 \U0001f4f1',
        text="Line one\nline two\ttabbed, \\ back\\slash, caf\u00e9 \u201cquoted\u201d \u2603 1e-7",
        published_at=datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC),
        crawled_at=datetime(2024, 3, 1, 0, 0, 0, 1, tzinfo=UTC),
        language="fr",
        author=Author(name="Zo\u00eb", handle="@zoe", url="https://shop.example/u/z", followers=7),
        engagement=Engagement(likes=3, comments=0, shares=None, views=10**12, score=-4, total=3),
        rating=Rating.from_raw(4.5, 5.0, 1.0),
        brands=[
            BrandMatch(
                brand="Acme",
                keyword="acme",
                positions=[Span(start=0, end=4)],
                sentiment=Sentiment(score=0.1 + 0.2, label="positive"),
                owned=True,
            )
        ],
        brand_names=["Acme"],
        entities=[Entity(text="Acme", label="ORG")],
        sentiment=Sentiment(score=-1 / 3, label="negative"),
    )


def test_the_stored_document_is_to_document_for_every_field(
    client: Elasticsearch, project: ProjectConfig
) -> None:
    """The Indexer sends pydantic's JSON text, not json.dumps(to_document()): same document."""
    mention = _every_field()
    indexer = Indexer(client, project)
    assert indexer.index([mention]).indexed == 1
    stored = client.get(index=indexer.index_name_for(mention), id=mention.id)
    assert stored["_source"] == mention.to_document()


def test_the_bulk_body_is_byte_for_byte_what_helpers_bulk_sends(
    project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """So the engine gets the same request as from the client's helper (and bench/ compares
    like with like): only the client's work to build it differs."""
    mentions = [_every_field(), make_mention(JAN), make_mention(datetime(2023, 12, 31, tzinfo=UTC))]
    indexer = Indexer(_down_client(), project)
    serializer = JsonSerializer()
    lines = []
    for mention in mentions:
        action, document = expand_action(
            {
                "_op_type": "index",
                "_index": indexer.index_name_for(mention),
                "_id": mention.id,
                "_source": mention.to_document(),
            }
        )
        lines += [serializer.dumps(action), serializer.dumps(document)]
    assert [body for _, body in indexer._bodies(mentions)] == [b"\n".join(lines) + b"\n"]


def test_a_lone_surrogate_in_the_text_is_indexed_as_before(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """pydantic refuses to write a lone surrogate as JSON: that mention goes the old way."""
    broken = make_mention(JAN).model_copy(update={"text": "broken \ud800 text"})
    result = Indexer(client, project).index([broken, make_mention(JAN)])
    assert (result.indexed, result.rejected, result.spooled) == (2, 0, 0)


def test_an_index_made_by_an_older_template_gets_the_new_fields(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """An index made before ``values``/``unsupported`` existed accepts mentions with them."""
    indexer = Indexer(client, project)
    indexer.install_templates()
    index = indexer.index_name_for(make_mention(JAN))
    stored = client.indices.get_index_template(name=f"{indexer.prefix}-mentions")
    mappings = stored["index_templates"][0]["index_template"]["template"]["mappings"]
    old = dict(mappings["properties"])
    del old["values"], old["unsupported"]
    client.indices.create(index=index, mappings={"dynamic": "strict", "properties": old})
    mention = make_mention(JAN).model_copy(
        update={"values": [Entity(text="today", label="DATE")], "unsupported": ["sentiment"]}
    )
    result = Indexer(client, project).index([mention])
    assert result.indexed == 1 and result.rejected == 0


def test_index_name_is_monthly_by_published_at(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    prefix = project.elasticsearch.index_prefix
    late = make_mention(datetime(2024, 3, 31, 23, 59, tzinfo=UTC))
    assert indexer.index_name_for(late) == f"{prefix}-mentions-2024.03"
    assert indexer.alias == f"{prefix}-mentions"


def test_indexing_twice_keeps_one_document(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    mention = make_mention(JAN, likes=1)
    assert indexer.index([mention]) == IndexResult(indexed=1)
    updated = mention.model_copy(update={"text": "edited text"})
    assert indexer.index([updated]) == IndexResult(indexed=1)
    assert _count(client, project) == 1
    stored = client.get(index=indexer.index_name_for(mention), id=mention.id)["_source"]
    assert stored["text"] == "edited text"
    # The index was created from the template: it joined the read alias.
    assert client.indices.get_alias(name=indexer.alias)


def test_same_mention_twice_in_one_batch(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    mention = make_mention(JAN)
    assert indexer.index([mention, mention]).indexed == 2
    assert _count(client, project) == 1


def test_moved_to_another_month_leaves_no_old_copy(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    mention = make_mention(JAN)
    indexer.index([mention])
    # No refresh: the old copy is found in real time.
    moved = mention.model_copy(update={"published_at": datetime(2024, 2, 2, tzinfo=UTC)})
    assert indexer.index([moved]).indexed == 1
    indexer.refresh()
    hits = client.search(index=indexer.alias, query={"ids": {"values": [mention.id]}})["hits"]
    assert [hit["_index"] for hit in hits["hits"]] == [indexer.index_name_for(moved)]


def test_rejected_documents_go_to_the_dead_letter_file(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    good = [make_mention(JAN) for _ in range(3)]
    base = make_mention(JAN).model_dump()
    bad = SmuggledMention(**base)
    result = indexer.index([good[0], bad, *good[1:]])
    assert result == IndexResult(indexed=3, rejected=1)
    assert _count(client, project) == 3

    lines = indexer.dead_letter_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert "smuggled" in record["reason"]
    assert record["index"] == indexer.index_name_for(bad)
    assert record["document"]["id"] == bad.id
    assert record["document"]["smuggled"] == "not in the mapping"
    assert not indexer.spooled_files()


def test_unreachable_cluster_spools_then_replay_indexes_everything(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    mentions = [make_mention(datetime(2024, month, 3, tzinfo=UTC)) for month in (1, 1, 2, 3)]
    down = _fast(_down_client(), project)
    assert down.index(mentions[:3]) == IndexResult(spooled=3)
    assert down.index(mentions[3:]) == IndexResult(spooled=1)
    spooled = down.spooled_files()
    assert len(spooled) == 2
    assert all(path.parent == project.home / "spool" for path in spooled)
    assert not list((project.home / "spool").glob(".*")), "no temporary files left"
    first = [json.loads(line)["id"] for line in spooled[0].read_text().splitlines()]
    assert sorted(first) == sorted(m.id for m in mentions[:3])

    # Still down: nothing is lost, files stay.
    assert down.replay_spool() == IndexResult(spooled=4)
    assert down.spooled_files() == spooled

    live = _fast(client, project)
    assert live.replay_spool() == IndexResult(indexed=4)
    assert live.spooled_files() == []
    assert _count(client, project) == 4
    assert live.replay_spool() == IndexResult()


def test_replay_sends_invalid_spool_lines_to_dead_letters(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = _fast(client, project)
    spool: Path = indexer.spool_dir
    spool.mkdir(parents=True)
    good = make_mention(JAN).to_document()
    (spool / "20240101T000000000000Z-manual.ndjson").write_text(
        json.dumps(good) + "\n" + json.dumps({"id": "broken"}) + "\n", encoding="utf-8"
    )
    assert indexer.replay_spool() == IndexResult(indexed=1, rejected=1)
    assert indexer.spooled_files() == []
    record = json.loads(indexer.dead_letter_path.read_text(encoding="utf-8"))
    assert "not a valid mention" in record["reason"]


def test_replay_while_down_keeps_waiting_mentions_and_dead_letters_once(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    down = _fast(_down_client(), project)
    down.spool_dir.mkdir(parents=True)
    mentions = [make_mention(JAN), make_mention(JAN)]
    lines = [json.dumps(m.to_document()) for m in mentions] + [json.dumps({"id": "broken"})]
    spool_file = down.spool_dir / "20240101T000000000000Z-manual.ndjson"
    spool_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert down.replay_spool() == IndexResult(rejected=1, spooled=2)
    assert down.replay_spool() == IndexResult(spooled=2)
    assert len(spool_file.read_text(encoding="utf-8").splitlines()) == 2
    assert len(down.dead_letter_path.read_text(encoding="utf-8").splitlines()) == 1

    assert _fast(client, project).replay_spool() == IndexResult(indexed=2)
    assert not spool_file.exists()
    assert _count(client, project) == 2


def test_empty_batch_is_a_no_op(client: Elasticsearch, project: ProjectConfig) -> None:
    assert Indexer(client, project).index([]) == IndexResult()


def test_chunks_smaller_than_the_batch(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    count = 7
    indexer = Indexer(client, project, chunk_size=3)
    result = indexer.index([make_mention(JAN) for _ in range(count)])
    assert result == IndexResult(indexed=count)
    assert _count(client, project) == count


class FlakyProxy:
    """A loopback proxy to the engine that refuses the first ``failures`` bulk requests.

    ``mode="request"`` answers the whole bulk request with 503; ``mode="items"``
    answers 200 with every item rejected with 429 (the cluster's back-pressure).
    """

    def __init__(self, upstream: str, failures: int, mode: str) -> None:
        self.upstream, self.failures, self.mode = upstream, failures, mode
        self.bulk_requests = 0
        proxy = self
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.path.split("?")[0].endswith("/_bulk"):
                    proxy.bulk_requests += 1
                    if proxy.bulk_requests <= proxy.failures:
                        self._answer(*proxy.refusal(body or b""))
                        return
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=self.command
                )
                for name in ("Content-Type", "Accept"):
                    if self.headers.get(name):
                        request.add_header(name, self.headers[name])
                try:
                    with direct.open(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                        kind = response.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as error:
                    status, payload = error.code, error.read()
                    kind = error.headers.get("Content-Type", "application/json")
                self._answer(status, payload, kind)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def refusal(self, body: bytes) -> tuple[int, bytes, str]:
        kind = "application/json"
        if self.mode == "request":
            error = {"error": {"type": "unavailable", "reason": "busy"}, "status": 503}
            return 503, json.dumps(error).encode(), kind
        items = []
        for line in body.decode().splitlines():
            action = json.loads(line) if line.strip() else {}
            if "index" in action and "_id" in action["index"]:
                meta = action["index"]
                error = {"type": "es_rejected_execution_exception", "reason": "queue full"}
                items.append({"index": {**meta, "status": 429, "error": error}})
        return 200, json.dumps({"took": 1, "errors": True, "items": items}).encode(), kind

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(engine: object) -> Iterator[Callable[[int, str], FlakyProxy]]:
    proxies: list[FlakyProxy] = []

    def start(failures: int, mode: str) -> FlakyProxy:
        proxies.append(FlakyProxy(engine.url, failures, mode))  # type: ignore[attr-defined]
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.mark.parametrize("mode", ["request", "items"])
def test_busy_cluster_is_retried_with_backoff(
    project: ProjectConfig,
    make_mention: MentionFactory,
    flaky: Callable[[int, str], FlakyProxy],
    client: Elasticsearch,
    mode: str,
) -> None:
    proxy = flaky(2, mode)
    through_proxy = Elasticsearch(proxy.url, max_retries=0)
    mentions = [make_mention(JAN) for _ in range(4)]
    assert _fast(through_proxy, project).index(mentions) == IndexResult(indexed=4)
    assert proxy.bulk_requests == 3
    assert _count(client, project) == 4


def test_a_cluster_that_stays_busy_gets_the_batch_spooled(
    project: ProjectConfig, make_mention: MentionFactory, flaky: Callable[[int, str], FlakyProxy]
) -> None:
    proxy = flaky(100, "items")
    through_proxy = Elasticsearch(proxy.url, max_retries=0)
    indexer = _fast(through_proxy, project)
    assert indexer.index([make_mention(JAN) for _ in range(3)]) == IndexResult(spooled=3)
    assert proxy.bulk_requests == 3  # first attempt and max_retries=2 retries
    assert len(indexer.spooled_files()) == 1
    assert not indexer.dead_letter_path.exists()


def test_a_mention_moved_twice_across_far_months_is_stored_once(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    # Many months of history, so a move has plenty of other indices to hide in.
    indexer.index(
        [make_mention(datetime(2022 + n // 12, n % 12 + 1, 3, tzinfo=UTC)) for n in range(24)]
    )
    mention = make_mention(JAN)
    indexer.index([mention])
    for when in (datetime(2022, 5, 1, tzinfo=UTC), datetime(2023, 12, 31, tzinfo=UTC)):
        moved = mention.model_copy(update={"published_at": when})
        assert indexer.index([moved]).indexed == 1
    indexer.refresh()
    hits = client.search(index=indexer.alias, query={"ids": {"values": [mention.id]}})["hits"]
    assert [hit["_index"] for hit in hits["hits"]] == [indexer.index_name_for(moved)]
    assert _count(client, project) == 25


def _copies(client: Elasticsearch, indexer: Indexer, mention: Mention) -> list[str]:
    """The monthly indices holding a copy of ``mention``."""
    indexer.refresh()
    hits = client.search(index=indexer.alias, query={"ids": {"values": [mention.id]}})["hits"]
    return sorted(hit["_index"] for hit in hits["hits"])


def _moved(mention: Mention, when: datetime) -> Mention:
    return mention.model_copy(update={"published_at": when})


FEB = datetime(2024, 2, 2, tzinfo=UTC)
JUN = datetime(2024, 6, 1, tzinfo=UTC)


def test_mentions_stored_before_the_location_record_are_found(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """A project indexed by a listener that kept one lookup entry per mention in the engine."""
    old = make_mention(JAN)
    earlier = Indexer(client, project)
    earlier.index([old])
    earlier.location_store.close()
    (project.home / LOCATIONS_FILE).unlink()
    client.indices.delete(index=earlier.locations)
    client.indices.create(
        index=earlier.locations,
        mappings={"dynamic": "strict", "properties": {"index": {"type": "keyword"}}},
    )
    client.index(index=earlier.locations, id="_complete", document={"index": []})
    later = Indexer(client, project)
    moved = _moved(old, JUN)
    assert later.index([moved]).indexed == 1
    assert _copies(client, later, old) == [later.index_name_for(moved)]
    assert later.location_store.lookup([old.id]) == {
        old.id: [later.index_name_for(old), later.index_name_for(moved)]
    }
    # The engine's old per-mention lookup is gone; it holds the record's token only.
    assert client.get(index=later.locations, id="_token")["found"]
    assert not client.options(ignore_status=404).get(index=later.locations, id="_complete")["found"]


def test_a_lost_location_record_is_rebuilt_from_the_index(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    first = Indexer(client, project)
    mentions = [make_mention(JAN) for _ in range(3)]
    first.index(mentions)
    first.location_store.close()
    (project.home / LOCATIONS_FILE).unlink()  # deleted, or a new LISTENER_HOME
    second = Indexer(client, project)
    moved = _moved(mentions[1], JUN)
    assert second.index([moved]).indexed == 1
    assert _copies(client, second, mentions[1]) == [second.index_name_for(moved)]
    assert second.location_store.count() == 3


def test_a_location_record_missing_entries_is_refilled(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """The engine counts more mentions than the record names (e.g. restored from a backup)."""
    first = Indexer(client, project)
    mentions = [make_mention(JAN) for _ in range(3)]
    first.index(mentions)
    first.location_store.forget_ids([mentions[0].id])
    second = Indexer(client, project)
    moved = _moved(mentions[0], JUN)
    assert second.index([moved]).indexed == 1
    assert _copies(client, second, mentions[0]) == [second.index_name_for(moved)]


def test_a_location_record_filled_against_another_engine_is_refilled(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    first = Indexer(client, project)
    mention = make_mention(JAN)
    first.index([mention])
    # Another engine (or a wiped one) has no token, or another one.
    client.index(index=first.locations, id="_token", document={"token": "another-engine"})
    first.location_store.forget_ids([mention.id])
    first.location_store.add([("unrelated", "elsewhere")])  # the counts alone would agree
    second = Indexer(client, project)
    moved = _moved(mention, JUN)
    assert second.index([moved]).indexed == 1
    assert _copies(client, second, mention) == [second.index_name_for(moved)]
    assert second.location_store.token() == "another-engine"


def test_a_refused_move_keeps_the_old_copy_findable(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """The record names the old and the new index until the old copy is really gone."""
    indexer = Indexer(client, project)
    mention = make_mention(JAN)
    indexer.index([mention])
    refused = SmuggledMention(**{**mention.model_dump(), "published_at": FEB})
    assert indexer.index([refused]).rejected == 1
    assert _copies(client, indexer, mention) == [indexer.index_name_for(mention)]
    recorded = indexer.location_store.lookup([mention.id])[mention.id]
    assert sorted(recorded) == sorted(
        [indexer.index_name_for(mention), indexer.index_name_for(refused)]
    )
    moved = _moved(mention, FEB)
    assert indexer.index([moved]).indexed == 1
    assert _copies(client, indexer, mention) == [indexer.index_name_for(moved)]
    # Moved back: the February copy goes, the January one stays.
    assert indexer.index([mention]).indexed == 1
    assert _copies(client, indexer, mention) == [indexer.index_name_for(mention)]


def test_one_mention_in_two_months_in_one_batch_is_stored_once(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    indexer = Indexer(client, project)
    mention = make_mention(JAN)
    assert indexer.index([mention, _moved(mention, JUN)]).indexed == 2
    assert _copies(client, indexer, mention) == [indexer.index_name_for(_moved(mention, JUN))]


def test_an_unusable_location_record_spools_the_batch(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    """Without the record a later move could leave a duplicate: nothing is written, nothing lost."""
    (project.home / LOCATIONS_FILE).mkdir(parents=True)  # a folder where the file should be
    indexer = _fast(client, project)
    mentions = [make_mention(JAN) for _ in range(2)]
    assert indexer.index(mentions) == IndexResult(spooled=2)
    assert not client.indices.exists_alias(name=indexer.alias)
    (project.home / LOCATIONS_FILE).rmdir()
    assert _fast(client, project).replay_spool() == IndexResult(indexed=2)
    assert _count(client, project) == 2


def test_clustered_workers_share_the_location_record(
    client: Elasticsearch,
    project: ProjectConfig,
    make_mention: MentionFactory,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two machines (own LISTENER_HOME each) on one Redis: a move seen by the other one."""
    project.cluster.redis_url = redis_url
    mention = make_mention(JAN)
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "machine-a"))
    assert Indexer(client, project).index([mention]).indexed == 1
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "machine-b"))
    other = Indexer(client, project)
    assert other.index([_moved(mention, FEB)]).indexed == 1
    assert _copies(client, other, mention) == [other.index_name_for(_moved(mention, FEB))]
    assert not (tmp_path / "machine-b" / LOCATIONS_FILE).exists()
    # Redis lost everything (flushed, restarted without persistence): filled from the index.
    redis.Redis.from_url(redis_url).flushall()
    again = Indexer(client, project)
    assert again.index([_moved(mention, JUN)]).indexed == 1
    assert _copies(client, again, mention) == [again.index_name_for(_moved(mention, JUN))]


def test_a_move_spooled_while_the_cluster_is_down_leaves_one_copy_after_replay(
    client: Elasticsearch, project: ProjectConfig, make_mention: MentionFactory
) -> None:
    mention = make_mention(JAN)
    assert Indexer(client, project).index([mention]).indexed == 1
    moved = _moved(mention, FEB)
    assert _fast(_down_client(), project).index([moved]) == IndexResult(spooled=1)
    later = Indexer(client, project)
    assert later.replay_spool() == IndexResult(indexed=1)
    assert _copies(client, later, mention) == [later.index_name_for(moved)]
