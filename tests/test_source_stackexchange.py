"""The ``stackexchange`` source: own fixtures through the real crawler, parser, recorded data."""

from __future__ import annotations

import gzip
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import SHARED_FIXTURES, RecordedSite, each_field_broken
from pydantic import ValidationError

from listener import testing
from listener.config import BrandConfig, parse_project
from listener.errors import ConfigError, PluginError
from listener.mention import Mention, SourceKind, mention_id
from listener.plugins import stackexchange
from listener.plugins.stackexchange import (
    NO_COMMENT_BODY,
    StackExchangeOptions,
    StackExchangeSource,
    item_to_mention,
    site_host,
)
from listener.sdk.plugin_manager import instantiate_sources
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split

DATA = RecordedSite("stackexchange")
RECORDED = SHARED_FIXTURES / "api_responses"
RECORDED = RECORDED / "stackexchange"
BASE = "https://api.example"
SEARCH = "/2.3/search/advanced"
ACME = {"name": "Acme", "keywords": ["acme"]}
GLOBEX = {"name": "Globex", "keywords": ["globex"]}
INITECH = {"name": "Initech", "keywords": ["initech"]}
GZIP_JSON = {"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"}


def body(name: str) -> bytes:
    return (DATA / name).read_bytes()


def gzipped(name: str) -> bytes:
    return gzip.compress(body(name))


def source(**options: Any) -> StackExchangeSource:
    brands = [BrandConfig(name="Acme", keywords=["acme", "#acme"])]
    return make_source(StackExchangeSource, brands=brands, **{"base_url": BASE, **options})


def respond(url: str, payload: bytes, meta: dict[str, Any]) -> Response:
    return testing.respond(url, payload, content_type="application/json; charset=utf-8", meta=meta)


def search_response(src: StackExchangeSource, payload: bytes, page: int = 1) -> Response:
    meta = {"kind": "search", "site": "stackoverflow", "term": "acme", "page": page}
    return respond(src.search_url("stackoverflow", "acme", page), payload, meta)


def answers_response(src: StackExchangeSource, payload: bytes, ids: list[str]) -> Response:
    meta = {
        "kind": "answers", "site": "stackoverflow", "term": "acme", "questions": ids,
        "titles": {"79001": "How to configure Acme Cloud runners behind a proxy?"}, "page": 1,
    }  # fmt: skip
    return respond(src.answers_url("stackoverflow", "acme", ids), payload, meta)


def query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def remembered(tmp_path: Path, key: str, when: datetime) -> Checkpoint:
    """A checkpoint as a later run loads it: ``key`` was last seen at ``when``."""
    earlier = Checkpoint(tmp_path / "checkpoint.json")
    earlier.advance(key, when)
    earlier.save()
    return Checkpoint(tmp_path / "checkpoint.json")


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --------------------------------------------------------------------------- options, requests


def test_options_defaults_and_bounds() -> None:
    options = StackExchangeOptions(plugin="stackexchange")
    assert options.base_url == "https://api.stackexchange.com"
    assert (options.sites, options.page_size, options.filter) == (
        ["stackoverflow"],
        100,
        "withbody",
    )
    for bad in ({"page_size": 101}, {"sites": []}, {"sites": ["https://x/y"]}, {"key": "k"}):
        with pytest.raises(ValidationError):
            StackExchangeOptions(plugin="stackexchange", **bad)


@pytest.mark.parametrize(
    ("site", "host"),
    [
        ("stackoverflow", "stackoverflow.com"), ("superuser", "superuser.com"),
        ("math", "math.stackexchange.com"), ("pt.stackoverflow", "pt.stackoverflow.com"),
        ("mathoverflow.net", "mathoverflow.net"), ("askubuntu.com", "askubuntu.com"),
    ],
)  # fmt: skip
def test_site_hosts(site: str, host: str) -> None:
    assert site_host(site) == host


def test_start_requests_search_each_site_for_each_distinct_term() -> None:
    requests = list(source(sites=["stackoverflow", "superuser"]).start_requests())
    assert [(urlsplit(r.url).path, query(r.url)["site"]) for r in requests] == [
        (SEARCH, "stackoverflow"), (SEARCH, "superuser"),
    ]  # fmt: skip
    assert requests[0].url.startswith(f"{BASE}{SEARCH}?")
    assert query(requests[0].url) == {
        "order": "desc", "sort": "activity", "q": "acme", "site": "stackoverflow",
        "filter": "withbody", "pagesize": "100", "page": "1",
    }  # fmt: skip


def test_an_optional_key_is_sent_and_a_missing_one_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LISTENER_TEST_SE_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"api_key_env.*LISTENER_TEST_SE_KEY"):
        source(api_key_env="LISTENER_TEST_SE_KEY")
    entry = {"plugin": "stackexchange", "api_key_env": "LISTENER_TEST_SE_KEY"}
    project = parse_project({"brands": [ACME], "sources": [entry]}, tmp_path / "listener.toml")
    with pytest.raises(PluginError, match=r"sources\[0\] \(stackexchange\).*LISTENER_TEST_SE_KEY"):
        instantiate_sources(project)
    monkeypatch.setenv("LISTENER_TEST_SE_KEY", "abc((")
    request = next(iter(source(api_key_env="LISTENER_TEST_SE_KEY").start_requests()))
    assert query(request.url)["key"] == "abc(("
    assert "key" not in query(next(iter(source().start_requests())).url)  # no key: none sent


def test_a_checkpoint_or_since_asks_only_for_newer_activity(tmp_path: Path) -> None:
    src = source()
    src.checkpoint = remembered(tmp_path, src.key("stackoverflow", "acme"), at(1795191000))
    assert query(next(iter(src.start_requests())).url)["min"] == "1795191000"
    assert query(src.answers_url("stackoverflow", "acme", ["1"]))["fromdate"] == "1795191000"
    backfill = source()
    backfill.since = datetime(2026, 1, 1, tzinfo=UTC)
    assert query(next(iter(backfill.start_requests())).url)["min"] == "1767225600"


# --------------------------------------------------------------------------- parsing


def test_a_search_page_gives_questions_an_answers_request_and_the_next_page() -> None:
    src = source()
    mentions, requests = split(src.parse(search_response(src, body("search_acme_page1.json"))))
    first, unanswered = mentions
    assert first.url == (
        "https://stackoverflow.com/questions/79001/how-to-configure-acme-cloud-runners-behind-a-proxy"
    )
    assert first.canonical_url == "https://stackoverflow.com/questions/79001"
    assert first.id == mention_id("stackexchange", "https://stackoverflow.com/questions/79001")
    assert (first.source_kind, first.domain) == (SourceKind.FORUM, "stackoverflow.com")
    assert first.title == "How to configure Acme Cloud runners behind a proxy?"
    assert first.text == (
        "Our build agents sit behind a corporate proxy. The Acme Cloud runner ignores "
        "HTTPS_PROXY:\n\nexport HTTPS_PROXY=http://proxy.corp:3128\nacme-runner start\n\n"
        "What am I missing?"
    )
    assert first.published_at == datetime(2026, 11, 19, 12, tzinfo=UTC)
    assert (first.author.name, first.author.handle) == ("Jörg Weber", "1200345")
    assert first.author.url == "https://stackoverflow.com/users/1200345/j%c3%b6rg-weber"
    assert first.engagement.model_dump() == {
        "likes": None, "comments": 2, "shares": None, "views": 154, "score": 3, "total": 2,
    }  # fmt: skip
    assert (first.thread_id, first.parent_id) == ("79001", None)

    assert unanswered.title == 'Acme SDK throws "TokenExpired" after upgrade'
    assert unanswered.text == (
        "Since 3.0 every call fails with TokenExpired even right after login & refresh."
    )
    assert (unanswered.author.name, unanswered.author.handle, unanswered.author.url) == (
        "user48211", None, None,
    )  # fmt: skip
    assert unanswered.engagement.score == -1

    answers, following = requests
    assert urlsplit(answers.url).path == "/2.3/questions/79001/answers"  # 78950 has no answers
    assert query(answers.url)["sort"] == "creation"
    assert answers.meta["titles"] == {"79001": first.title}
    assert answers.priority == 1
    assert (urlsplit(following.url).path, query(following.url)["page"]) == (SEARCH, "2")


def test_answer_pages_become_replies_to_their_question() -> None:
    src = source()
    mentions, requests = split(
        src.parse(answers_response(src, body("answers_79001.json"), ["79001"]))
    )
    assert requests == []
    accepted, other = mentions
    assert accepted.url == accepted.canonical_url == "https://stackoverflow.com/a/79012"
    assert accepted.title == "Re: How to configure Acme Cloud runners behind a proxy?"
    assert accepted.text.startswith("The runner reads ACME_PROXY, not HTTPS_PROXY. Set both:")
    assert (accepted.thread_id, accepted.parent_id) == ("79001", "79001")
    assert (accepted.engagement.score, accepted.engagement.comments) == (5, None)
    assert accepted.author.handle == "998877"
    assert other.published_at == datetime(2026, 11, 19, 15, tzinfo=UTC)


def test_the_last_page_and_max_pages_end_pagination() -> None:
    src = source()
    _, requests = split(src.parse(search_response(src, body("search_acme_page2.json"), page=2)))
    assert [urlsplit(r.url).path for r in requests] == ["/2.3/questions/78800/answers"]
    limited = source(max_pages=1)
    _, requests = split(limited.parse(search_response(limited, body("search_acme_page1.json"))))
    assert [urlsplit(r.url).path for r in requests] == ["/2.3/questions/79001/answers"]
    without = source(answers=False)
    _, requests = split(without.parse(search_response(without, body("search_acme_page1.json"))))
    assert [urlsplit(r.url).path for r in requests] == [SEARCH]


def test_items_at_or_before_the_checkpoint_are_not_yielded_again(tmp_path: Path) -> None:
    src = source()
    src.checkpoint = remembered(tmp_path, src.key("stackoverflow", "acme"), at(1795191000))
    mentions, requests = split(src.parse(search_response(src, body("search_acme_after.json"))))
    assert [m.canonical_url for m in mentions] == ["https://stackoverflow.com/questions/79060"]
    # The older question has a new answer: its answers since the checkpoint are asked for.
    assert [urlsplit(r.url).path for r in requests] == ["/2.3/questions/79001/answers"]
    assert query(requests[0].url)["fromdate"] == "1795191000"


def test_backoff_stops_further_requests_to_that_method_only() -> None:
    src = source()
    data = json.loads(body("search_acme_page1.json"))
    data["backoff"] = 10
    _, requests = split(src.parse(search_response(src, json.dumps(data).encode())))
    assert [urlsplit(r.url).path for r in requests] == ["/2.3/questions/79001/answers"]
    assert src.skipped["requests not sent: backoff"] == 1


def test_an_exhausted_quota_stops_all_further_requests() -> None:
    src = source()
    data = json.loads(body("search_acme_page1.json"))
    data["quota_remaining"] = 0
    mentions, requests = split(src.parse(search_response(src, json.dumps(data).encode())))
    assert len(mentions) == 2 and requests == []  # what arrived is still used
    assert src.quota_remaining == 0
    assert src.skipped["requests not sent: quota exhausted"] == 2


def test_a_gzipped_body_is_read_even_without_a_content_encoding_header() -> None:
    src = source()
    mentions, _ = split(src.parse(search_response(src, gzipped("search_acme_page1.json"))))
    assert len(mentions) == 2


def test_a_changed_item_degrades_alone() -> None:
    src = source()
    mentions, requests = split(src.parse(search_response(src, body("search_initech_changed.json"))))
    assert requests == []
    (only,) = mentions
    assert only.canonical_url == only.url == "https://stackoverflow.com/questions/78710"
    assert only.author.name is None  # owner is not an object any more
    assert only.engagement.views == 7
    assert src.skipped == {"without a date": 1, "not a question or an answer": 1}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (body("error_throttle.json"), "error 502 throttle_violation: too many requests"),
        (b"<html><body>Service Unavailable</body></html>", "did not return JSON"),
        (b'{"quota_max": 300}', "no 'items' list"),
        (b"\x1f\x8b\x08\x00broken", "broken gzip"),
    ],
)
def test_errors_raise_value_error_naming_the_url(payload: bytes, message: str) -> None:
    src = source()
    response = search_response(src, payload)
    with pytest.raises(ValueError, match=re.escape(response.url) + ".*" + message):
        list(src.parse(response))


def test_an_empty_page_gives_nothing() -> None:
    src = source()
    assert split(src.parse(search_response(src, body("search_empty.json")))) == ([], [])


def test_the_plugin_registers_the_source() -> None:
    assert stackexchange.listener_register_sources() == [StackExchangeSource]
    assert StackExchangeSource.kind is SourceKind.FORUM
    assert (StackExchangeSource.concurrency, StackExchangeSource.download_delay) == (1, 0.5)
    assert StackExchangeSource.obey_robots_txt is False  # a documented API, see the docs


# --------------------------------------------------------------------------- real crawls


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stackexchange-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> ReplayResult:
    # As the real API answers: every body gzip-compressed, Content-Encoding set.
    routes = [
        Route(route.path, query=route.query, headers=GZIP_JSON, body=gzip.compress(route.body))
        for route in DATA.routes()
    ]
    return replay_crawl(
        "stackexchange", {"base_url": "{base_url}"}, routes, brands=[ACME], home=home
    )


@pytest.fixture(scope="module")
def second_run(first_run: ReplayResult, home: Path) -> ReplayResult:
    routes = [
        Route(SEARCH, query={"q": "acme", "min": "1795191000"}, headers=GZIP_JSON,
              body=gzipped("search_acme_after.json")),
        Route("/2.3/questions/79001/answers", query={"fromdate": "1795191000"},
              headers=GZIP_JSON, body=gzipped("answers_79001_after.json")),
    ]  # fmt: skip
    return replay_crawl(
        "stackexchange", {"base_url": "{base_url}"}, routes, brands=[ACME], home=home
    )


def test_crawl_yields_questions_and_answers(first_run: ReplayResult) -> None:
    summary = first_run.source
    assert (summary["health"], summary["parse_errors"], summary["fetch_errors"]) == (
        "healthy",
        0,
        0,
    )
    urls = sorted(m.canonical_url for m in first_run.mentions)
    assert urls == [
        "https://stackoverflow.com/a/78990", "https://stackoverflow.com/a/79005",
        "https://stackoverflow.com/a/79012", "https://stackoverflow.com/questions/78800",
        "https://stackoverflow.com/questions/78950", "https://stackoverflow.com/questions/79001",
    ]  # fmt: skip
    by_url = {m.canonical_url: m for m in first_run.mentions}
    answer = by_url["https://stackoverflow.com/a/78990"]
    assert answer.title == "Re: Globex vs Acme for object storage?"
    assert (answer.thread_id, answer.parent_id, answer.engagement.score) == ("78800", "78800", 12)
    assert answer.author.name == "Elena Moretti"
    assert by_url["https://stackoverflow.com/questions/78800"].engagement.views == 1893
    paths = sorted((r.path, r.param("page")) for r in first_run.requests if r.path != "/robots.txt")
    assert paths == [
        ("/2.3/questions/78800/answers", "1"), ("/2.3/questions/79001/answers", "1"),
        (SEARCH, "1"), (SEARCH, "2"),
    ]  # fmt: skip
    assert all("gzip" in r.headers.get("Accept-Encoding", "") for r in first_run.requests)


def test_second_crawl_asks_only_for_newer_items(second_run: ReplayResult) -> None:
    summary = second_run.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (0, 0)
    assert sorted(m.canonical_url for m in second_run.mentions) == [
        "https://stackoverflow.com/a/79050", "https://stackoverflow.com/questions/79060",
    ]  # fmt: skip
    search = [r for r in second_run.requests if r.path == SEARCH]
    assert [r.param("min") for r in search] == ["1795191000"]


def test_crawl_survives_rate_limits_errors_and_changed_schemas(tmp_path: Path) -> None:
    routes = [
        Route(SEARCH, query={"q": "acme"}, status=429, times=1, headers={"Retry-After": "1"},
              body=b'{"error_id": 502, "error_name": "throttle_violation"}'),
        Route(SEARCH, query={"q": "acme"}, headers=GZIP_JSON, body=gzipped("search_empty.json")),
        Route(SEARCH, query={"q": "globex"}, status=400, body=body("error_throttle.json")),
        Route(SEARCH, query={"q": "initech"}, body=body("search_initech_changed.json")),
    ]  # fmt: skip
    result = replay_crawl(
        "stackexchange", {"base_url": "{base_url}"}, routes, brands=[ACME, GLOBEX, INITECH],
        home=tmp_path,
    )  # fmt: skip
    assert [m.canonical_url for m in result.mentions] == [
        "https://stackoverflow.com/questions/78710"
    ]
    summary = result.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (0, 1)
    assert [r.status for r in result.requests if r.param("q") == "globex"] == [400]
    assert [r.status for r in result.requests if r.param("q") == "acme"] == [429, 200]


# --------------------------------------------------------------------------- recorded responses


def recorded(name: str) -> dict[str, Any]:
    path = RECORDED / name
    if not path.is_file():
        pytest.skip(f"recorded fixture {path} is not available")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", ["perceval_questions_page1.json", "perceval_questions_page2.json"])
def test_recorded_question_pages(name: str) -> None:
    """Perceval's anonymised pages: bodies and titles are blank, answers are embedded."""
    data = recorded(name)
    src = source()
    mentions, requests = split(src.parse(search_response(src, json.dumps(data).encode())))
    items = data["items"]
    answers = [a for q in items for a in q.get("answers", [])]
    with_text = [i for i in items + answers if (i.get("title") or i.get("body_markdown"))]
    assert len(mentions) == len(with_text) == 0  # the anonymised data has no text at all
    comments = [c for post in items + answers for c in post.get("comments", [])]
    assert src.skipped == {"without text": len(items) + len(answers)} | (
        {NO_COMMENT_BODY: len(comments)} if comments else {}
    )
    # Embedded answers are used as they are: no answers request.
    assert all(urlsplit(r.url).path == SEARCH for r in requests)
    assert len(requests) == (1 if data["has_more"] else 0)
    assert src.quota_remaining == data["quota_remaining"]


@pytest.mark.parametrize("name", ["perceval_questions_page1.json", "perceval_questions_page2.json"])
def test_recorded_items_map_their_fields(name: str) -> None:
    """With some text given, every recorded question and answer maps field by field."""
    data = recorded(name)
    for question in data["items"]:
        items = [question, *({"title": "", **a} for a in question.get("answers", []))]
        for item in items:
            filled = {**item, "body_markdown": "Some &lt;b&gt;text&lt;/b&gt; about Acme"}
            mention = item_to_mention(filled, "stackoverflow", {str(item["question_id"]): "Q"})
            assert isinstance(mention, Mention)
            assert mention.text == "Some <b>text</b> about Acme"
            assert mention.published_at == at(item["creation_date"])
            owner = item["owner"]
            assert mention.author.name == html.unescape(owner["display_name"])
            assert mention.author.handle == str(owner["user_id"])
            assert mention.author.url == owner["link"]
            assert mention.engagement.score == item["score"]
            assert mention.engagement.likes == item["up_vote_count"]
            assert mention.thread_id == str(item["question_id"])
            if "answer_id" in item:
                assert mention.canonical_url == f"https://stackoverflow.com/a/{item['answer_id']}"
                assert mention.parent_id == str(item["question_id"])
                assert mention.engagement.comments == item["comment_count"]
                assert mention.title == "Re: Q"
            else:
                assert mention.canonical_url == (
                    f"https://stackoverflow.com/questions/{item['question_id']}"
                )
                assert mention.parent_id is None
                assert mention.engagement.views == item["view_count"]
                assert mention.engagement.comments == item["answer_count"]
            # The recorded links are blank or relative: the canonical URL stands in.
            assert mention.url == mention.canonical_url


def test_recorded_other_endpoint_items_are_skipped() -> None:
    data = recorded("stackapi_users_associated.json")
    src = source()
    mentions, requests = split(src.parse(search_response(src, json.dumps(data).encode())))
    assert mentions == []
    assert src.skipped == {"not a question or an answer": len(data["items"])}
    assert len(requests) == 1  # has_more: the wrapper is still read
    assert src.quota_remaining == data["quota_remaining"] == 9823


# --------------------------------------------------------------------------- held-out shapes


def test_recorded_page_in_other_shapes_keeps_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    """Perceval's page with text filled in, changed into shapes real pages take."""
    data = recorded("perceval_questions_page1.json")
    for item in data["items"]:  # the anonymised recording has no text at all
        for post in (item, *item.get("answers", [])):
            post["body_markdown"] = "A post about Acme"
    for post in (data["items"][1], *data["items"][1]["answers"]):
        post["question_id"] = 2  # anonymised into the same id as the first
    question = data["items"][0]
    question.update(
        title="Acme&#39;s C&amp;C &lt;tool&gt; fails",  # titles come HTML-encoded
        body="<p>Using <code>acme --x</code> &amp; Globex</p>",
        creation_date=str(question["creation_date"]),  # a number as a string
        owner={"user_type": "does_not_exist", "display_name": "user12&#39;s"},  # deleted user
    )
    del question["link"]
    answers = question["answers"]
    first = answers[0]
    first.update(body_markdown="Try `acme &lt;x&gt;`\r\n\r\nIt works", link="")
    del first["owner"]  # a community wiki / migrated answer without owner
    answers.append({**first, "answer_id": 999, "body_markdown": "   ", "body": None})
    answers.append({**first, "answer_id": 1000, "creation_date": None})
    src = source()

    with caplog.at_level("WARNING"):
        mentions, _ = split(src.parse(search_response(src, json.dumps(data).encode())))

    found = {m.canonical_url: m for m in mentions}
    asked = found[f"https://stackoverflow.com/questions/{question['question_id']}"]
    answered = found[f"https://stackoverflow.com/a/{first['answer_id']}"]
    assert asked.title == "Acme's C&C <tool> fails"
    assert asked.text == "Using acme --x & Globex"
    assert asked.published_at == at(int(question["creation_date"]))
    assert (asked.author.name, asked.author.handle, asked.author.url) == ("user12's", None, None)
    assert asked.canonical_url == f"https://stackoverflow.com/questions/{question['question_id']}"
    assert answered.text == "Try `acme <x>`\n\nIt works" and answered.author.name is None
    assert answered.title == "Re: Acme's C&C <tool> fails"
    everything = [*data["items"], *(a for q in data["items"] for a in q["answers"])]
    assert len(mentions) == len(everything) - 2
    comments = [c for post in everything for c in post.get("comments", [])]
    assert src.skipped == {"without text": 1, "without a date": 1, NO_COMMENT_BODY: len(comments)}
    assert "without text (answer 999)" in caplog.text
    assert "without a date (answer 1000)" in caplog.text


def test_an_empty_last_page_and_a_throttle_error() -> None:
    data = recorded("perceval_questions_page2.json")
    data.update(items=[], has_more=False, quota_remaining=0)
    src = source()
    assert split(src.parse(search_response(src, json.dumps(data).encode()))) == ([], [])
    assert src.quota_remaining == 0
    throttled = {
        "error_id": 502,
        "error_message": "too many requests from this IP",
        "error_name": "throttle_violation",
    }
    with pytest.raises(ValueError, match="502 throttle_violation"):
        list(src.parse(search_response(src, json.dumps(throttled).encode())))


def test_no_broken_field_of_a_recorded_question_or_answer_raises() -> None:
    """Every field of a recorded question (and its owner) and of its embedded answer, one
    at a time, deleted, null or of another type: mapped or skipped, never raised."""
    data = recorded("perceval_questions_page1.json")
    question = {**data["items"][0], "body_markdown": "About Acme", "comments": []}
    question["answers"] = [{**question["answers"][0], "body_markdown": "Use Acme"}]
    for label, broken in each_field_broken(question):
        src = source()
        page = json.dumps({**data, "items": [broken]}).encode()
        mentions, _ = split(src.parse(search_response(src, page)))
        assert mentions or src.skipped, label
    for label, broken in each_field_broken(question["answers"][0]):
        src = source()
        page = json.dumps({**data, "items": [{**question, "answers": [broken]}]}).encode()
        mentions, _ = split(src.parse(search_response(src, page)))
        assert len(mentions) + src.skipped.total() == 2, label


def recorded_comments() -> list[dict[str, Any]]:
    """The comments perceval recorded embedded in its questions (no body: default filter)."""
    data = recorded("perceval_questions_page1.json")
    comments = [c for q in data["items"] for c in q.get("comments", [])]
    assert comments and all("body" not in c for c in comments)
    return comments


def test_recorded_comments_page_maps_comments_or_names_the_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A /comments page: without bodies (the default filter) each comment is skipped with
    the filter that adds them named; with bodies each maps to a reply to its post."""
    comments = recorded_comments()
    url = f"{BASE}/2.3/comments?site=stackoverflow&order=desc&sort=creation"
    page = {"items": comments, "has_more": True, "quota_max": 300, "quota_remaining": 290}
    src = source()
    with caplog.at_level("WARNING"):
        mentions, requests = split(src.parse(respond(url, json.dumps(page).encode(), {})))
    assert mentions == [] and requests == []  # no answers URL built from nothing
    assert src.skipped == {
        "without text (comment bodies come only with filter=withbody)": len(comments)
    }
    assert f"comment {comments[0]['comment_id']}" in caplog.text

    on_question, on_answer = (dict(c) for c in comments[:2])
    on_question["body"] = "Does this work with <code>acme</code> &amp; Globex?"
    on_answer.update(
        comment_id=777, post_id=2, post_type="answer", body="Thanks, Acme fixed it",
        link="https://stackoverflow.com/questions/1/acme-fails/2#comment777_2",
    )  # fmt: skip
    page["items"] = [on_question, on_answer]
    src = source()
    mentions, _ = split(src.parse(answers_response(src, json.dumps(page).encode(), ["1"])))
    asked, answered = mentions
    assert (
        asked.canonical_url
        == f"https://stackoverflow.com/posts/comments/{on_question['comment_id']}"
    )
    assert asked.url == asked.canonical_url  # the recorded link is blank
    assert asked.text == "Does this work with acme & Globex?"
    assert (asked.thread_id, asked.parent_id) == ("1", "1")
    assert asked.published_at == at(on_question["creation_date"])
    owner = on_question["owner"]
    assert (asked.author.name, asked.author.handle) == (
        owner["display_name"],
        str(owner["user_id"]),
    )
    assert asked.engagement.score == on_question["score"]
    assert (answered.thread_id, answered.parent_id) == ("1", "a/2")
    assert answered.url == on_answer["link"]


def test_recorded_questions_and_answers_as_a_posts_page() -> None:
    """/posts items (questions and answers mixed, told apart by post_type) built from the
    recorded question and answer: each maps as the question or answer it is."""
    data = recorded("perceval_questions_page1.json")
    question = data["items"][0]
    answer = question["answers"][0]
    fields = ("owner", "creation_date", "score", "last_activity_date", "comment_count")
    asked = {
        "post_id": question["question_id"], "post_type": "question", "title": "Acme &amp; Co?",
        "body": "<p>Acme fails</p>", "link": "https://stackoverflow.com/questions/1/acme-co",
        **{k: question[k] for k in fields},
    }  # fmt: skip
    answered = {
        "post_id": answer["answer_id"], "post_type": "answer", "body": "<p>Use Acme 2</p>",
        "link": f"https://stackoverflow.com/questions/1/acme-co/{answer['answer_id']}#{answer['answer_id']}",
        **{k: answer[k] for k in fields},
    }  # fmt: skip
    unlinked = {**answered, "post_id": 55, "link": None}
    page = {"items": [asked, answered, unlinked, {"post_id": 9, "post_type": "tag_wiki"}],
            "has_more": False}  # fmt: skip
    src = source()
    url = f"{BASE}/2.3/posts?site=superuser&filter=withbody"
    mentions, _ = split(src.parse(respond(url, json.dumps(page).encode(), {})))
    q, a, loose = mentions
    assert q.canonical_url == f"https://stackoverflow.com/questions/{question['question_id']}"
    assert (q.title, q.text, q.parent_id) == ("Acme & Co?", "Acme fails", None)
    assert q.engagement.comments == question["comment_count"]
    assert a.canonical_url == f"https://stackoverflow.com/a/{answer['answer_id']}"
    assert (a.thread_id, a.parent_id, a.text) == ("1", "1", "Use Acme 2")
    assert a.published_at == at(answer["creation_date"])
    # An answer whose link does not name its question: read, on the site's own host.
    assert loose.canonical_url == "https://superuser.com/a/55" and loose.thread_id is None
    assert src.skipped == {"not a question or an answer": 1}


def test_recorded_embedded_comments_are_read_as_replies() -> None:
    """Perceval's questions embed their comments (a custom filter); given bodies, each is a
    reply to its post in its question's thread, titled after the question."""
    data = recorded("perceval_questions_page1.json")
    question = data["items"][0]
    question.update(title="Acme on CI", body_markdown="Acme fails on CI")
    comment = question["comments"][0]
    comment["body"] = "Which <b>Acme</b> version?"
    answer = question["answers"][0]
    answer.update(body_markdown="Update Acme", comments=[
        {**comment, "comment_id": 4242, "post_type": "answer", "post_id": answer["answer_id"],
         "body": "That did it"},
    ])  # fmt: skip
    src = source()
    mentions, _ = split(src.parse(search_response(src, json.dumps(data).encode())))
    found = {m.canonical_url.rsplit("/", 1)[1]: m for m in mentions}
    on_question = found[str(comment["comment_id"])]
    assert on_question.text == "Which Acme version?" and on_question.title == "Re: Acme on CI"
    assert (on_question.thread_id, on_question.parent_id) == (str(question["question_id"]),) * 2
    on_answer = found["4242"]
    assert on_answer.thread_id == str(question["question_id"])
    assert on_answer.parent_id == f"a/{answer['answer_id']}"
