"""The ``hackernews`` source: Algolia HN search pages from the demo site and own fixtures."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import SHARED_FIXTURES, each_field_broken
from pydantic import ValidationError

from listener import demo_site, testing
from listener.config import BrandConfig
from listener.mention import Mention, SourceKind
from listener.plugins import hackernews
from listener.plugins.hackernews import (
    HackerNewsOptions,
    HackerNewsSource,
    hit_to_mention,
)
from listener.source import Request, Response
from listener.sourcekit import search_terms
from listener.testing import make_source, split

DATA = Path(__file__).resolve().parent / "data"
HN = demo_site.DIRECTORY / "hn"
BASE = "http://127.0.0.1:8999"

BRANDS = [
    BrandConfig(name="Acme", keywords=["acme", "#acme", "acme corp"], exclude=["acme anvil"]),
    BrandConfig(name="Globex", keywords=["globex", "@globex"]),
    BrandConfig(name="Initech", keywords=["initech"]),
]
TERMS = ["acme", "acme corp", "globex", "initech"]
PAGE_FILES = {
    (term, page): HN / f"{term.replace(' ', '-')}-page{page}.json"
    for term in TERMS
    for page in (0, 1)
}
# Hits that two searches return (objectID: the searches).
DUPLICATES = {
    "48125321": {"acme", "acme corp"},  # story: Acme Corp Q3 revenue …
    "47627179": {"acme", "acme corp"},  # comment: "Acme Corp has shipped late …"
    "47766697": {"acme", "globex"},  # comment: "Acme's support was great, unlike Globex …"
    "48036447": {"acme corp", "globex"},  # comment: split storage between Globex and Acme Corp
}


def source(brands: list[BrandConfig] | None = None, **options: Any) -> HackerNewsSource:
    settings = {"base_url": BASE, "hits_per_page": 5, **options}
    return make_source(HackerNewsSource, brands=brands or BRANDS, **settings)


def page_response(
    src: HackerNewsSource, term: str, page: int, body: bytes | None = None
) -> Response:
    url = src.search_url(term, page)
    request = Request(
        url=url, headers={"Accept": "application/json"}, meta={"term": term, "page": page}
    )
    payload = PAGE_FILES[(term, page)].read_bytes() if body is None else body
    return testing.respond(request, payload, content_type="application/json; charset=utf-8")


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


# --------------------------------------------------------------------------- search terms


def test_search_terms_strip_hashtags_and_handles_and_skip_duplicates() -> None:
    brands = [
        *BRANDS,
        BrandConfig(name="Acme Labs", keywords=["ACME", "  acme   labs "]),
        BrandConfig(name="NoKeywords"),
    ]
    assert search_terms(brands) == {
        "acme": ["Acme", "Acme Labs"],
        "acme corp": ["Acme"],
        "globex": ["Globex"],
        "initech": ["Initech"],
        "acme labs": ["Acme Labs"],
        "NoKeywords": ["NoKeywords"],  # no keywords: the brand name
    }


def test_start_requests_is_one_first_page_per_distinct_term() -> None:
    requests = list(source().start_requests())

    assert [r.meta["term"] for r in requests] == TERMS
    assert requests[0].url == (
        f"{BASE}/api/v1/search_by_date?query=acme&tags=(story,comment)&hitsPerPage=5&page=0"
    )
    for request, term in zip(requests, TERMS, strict=True):
        assert urlsplit(request.url).path == "/api/v1/search_by_date"
        assert query_of(request.url) == {
            "query": [term],
            "tags": ["(story,comment)"],
            "hitsPerPage": ["5"],
            "page": ["0"],
        }
        assert request.meta["page"] == 0
        assert request.headers["Accept"] == "application/json"
    assert requests[0].meta["brands"] == ["Acme"]


def test_options_defaults_and_bounds() -> None:
    options = HackerNewsOptions(plugin="hackernews")
    assert options.base_url == "https://hn.algolia.com"
    assert (options.hits_per_page, options.tags, options.max_pages) == (50, "(story,comment)", 5)
    for bad in ({"hits_per_page": 0}, {"hits_per_page": 1001}, {"base_url": "hn.algolia.com"}):
        with pytest.raises(ValidationError):
            HackerNewsOptions(plugin="hackernews", **bad)
    with pytest.raises(ValidationError):
        HackerNewsOptions.model_validate({"plugin": "hackernews", "hitsPerPage": 5})


def test_base_url_with_a_path_and_custom_tags() -> None:
    src = source(base_url="https://mirror.example/hn/", tags="story", hits_per_page=1000)
    url = src.search_url("#acme corp", 2)
    assert url.startswith("https://mirror.example/hn/api/v1/search_by_date?")
    assert query_of(url) == {
        "query": ["#acme corp"],
        "tags": ["story"],
        "hitsPerPage": ["1000"],
        "page": ["2"],
    }


# --------------------------------------------------------------------------- demo pages


def test_demo_first_page_gives_five_mentions_and_the_next_page_request() -> None:
    src = source()
    mentions, requests = split(list(src.parse(page_response(src, "acme", 0))))

    assert len(mentions) == 5
    assert len(requests) == 1
    following = requests[0]
    assert query_of(following.url) == {
        "query": ["acme"],
        "tags": ["(story,comment)"],
        "hitsPerPage": ["5"],
        "page": ["1"],
    }
    assert following.meta == {"term": "acme", "page": 1}
    assert following.headers == {"Accept": "application/json"}


@pytest.mark.parametrize("term", TERMS)
def test_demo_second_page_is_the_last(term: str) -> None:
    src = source()
    mentions, requests = split(list(src.parse(page_response(src, term, 1))))
    assert len(mentions) == 5
    assert requests == []


def test_max_pages_stops_pagination() -> None:
    src = source(max_pages=1)
    _, requests = split(list(src.parse(page_response(src, "globex", 0))))
    assert requests == []


@pytest.mark.parametrize(("term", "page"), sorted(PAGE_FILES))
def test_demo_pages_map_every_hit_field(term: str, page: int) -> None:
    data = json.loads(PAGE_FILES[(term, page)].read_bytes())
    src = source()
    mentions, _ = split(list(src.parse(page_response(src, term, page))))

    assert len(mentions) == len(data["hits"]) == 5
    for hit, mention in zip(data["hits"], mentions, strict=True):
        object_id = hit["objectID"]
        assert (
            mention.url
            == mention.canonical_url
            == (f"https://news.ycombinator.com/item?id={object_id}")
        )
        assert mention.domain == "news.ycombinator.com"
        assert mention.source == "hackernews"
        assert mention.source_kind is SourceKind.FORUM
        assert mention.published_at == datetime.fromtimestamp(hit["created_at_i"], UTC)
        assert mention.published_at.tzinfo is not None
        assert mention.author.name == mention.author.handle == hit["author"]
        assert mention.author.url == f"https://news.ycombinator.com/user?id={hit['author']}"
        assert mention.thread_id == str(hit["story_id"])
        assert "<" not in mention.text and "&#x27;" not in mention.text
        if "comment" in hit["_tags"]:
            assert mention.title == f"Re: {hit['story_title']}"
            assert mention.parent_id == str(hit["parent_id"])
            assert mention.engagement.likes is None and mention.engagement.comments is None
        else:
            assert mention.title == hit["title"]
            assert mention.parent_id is None
            assert mention.engagement.likes == mention.engagement.score == hit["points"]
            assert mention.engagement.comments == hit["num_comments"]
            assert mention.engagement.total == hit["points"] + hit["num_comments"]
            if not hit.get("story_text"):
                assert mention.text == hit["title"]  # a link story: its title is its text


def test_demo_hit_texts_are_plain_text() -> None:
    src = source()
    mentions = [
        mention
        for term, page in PAGE_FILES
        for mention in split(list(src.parse(page_response(src, term, page))))[0]
    ]
    by_id = {m.url.rsplit("=", 1)[1]: m for m in mentions}

    code = by_id["47765889"].text  # <p> paragraphs and <pre><code>
    assert code.startswith("We run about 200 Acme Cloud Functions in production.")
    assert "\n\nacme functions deploy webhook --timeout 15s\n\nOtherwise it's been boring" in code
    french = by_id["47618609"].text
    assert french == (
        "J'ai commandé le Rocket 14 ce matin. Acme a vraiment soigné l'écran et la batterie, "
        "j'ai hâte de le recevoir !"
    )
    ask = by_id["47765310"]  # Ask HN: the story text, not the title
    assert ask.title == "Ask HN: Anyone running Acme Cloud Functions in production?"
    assert ask.text.startswith("We're evaluating Acme Cloud Functions")
    assert ask.text.endswith("Does anyone have real-world numbers? Anything that bit you?")
    show = by_id["48000230"]  # links in story_text keep their text
    assert "https://git.example/kwong/tpsgen" in show.text
    handle = by_id["48036142"]
    assert handle.text.startswith("@globex status page has been green")


def test_demo_whole_search_has_40_hits_36_unique() -> None:
    src = source()
    found: dict[str, set[str]] = {}
    total = 0
    for (term, page), _ in sorted(PAGE_FILES.items()):
        mentions, _ = split(list(src.parse(page_response(src, term, page))))
        total += len(mentions)
        for mention in mentions:
            found.setdefault(mention.id, set()).add(term)
    assert total == 40
    assert len(found) == 36
    twice = {mention_id: terms for mention_id, terms in found.items() if len(terms) > 1}
    expected = {hackernews_id(object_id): terms for object_id, terms in DUPLICATES.items()}
    assert twice == expected


def hackernews_id(object_id: str) -> str:
    outcome = hit_to_mention(
        {"objectID": object_id, "created_at_i": 0, "title": "t", "_tags": ["story"]}
    )
    assert isinstance(outcome, Mention)
    return outcome.id


def test_demo_pages_are_consistent() -> None:
    """The recorded pages agree with themselves the way the real API does."""
    hits: dict[str, dict[str, Any]] = {}
    for (term, page), path in PAGE_FILES.items():
        data = json.loads(path.read_bytes())
        assert (data["query"], data["page"], data["nbPages"], data["nbHits"]) == (term, page, 2, 10)
        assert data["hitsPerPage"] == len(data["hits"]) == 5
        times = [hit["created_at_i"] for hit in data["hits"]]
        assert times == sorted(times, reverse=True)  # search_by_date: newest first
        for hit in data["hits"]:
            created = datetime.fromisoformat(hit["created_at"])
            assert created.timestamp() == hit["created_at_i"]
            assert datetime(2026, 10, 9, tzinfo=UTC) <= created < datetime(2026, 11, 20, tzinfo=UTC)
            assert re.fullmatch(r"\d+", hit["objectID"])
            hits[hit["objectID"]] = hit
    stories = {k: h for k, h in hits.items() if "story" in h["_tags"]}
    comments = {k: h for k, h in hits.items() if "comment" in h["_tags"]}
    assert (len(stories), len(comments)) == (10, 26)
    for comment in comments.values():
        story = stories[str(comment["story_id"])]
        assert comment["story_title"] == story["title"]
        assert comment.get("story_url") == story.get("url")
        parent = hits.get(str(comment["parent_id"]))
        assert parent is not None and parent["created_at_i"] < comment["created_at_i"]
        assert int(comment["objectID"]) in parent["children"]
        assert comment["points"] is None and "num_comments" not in comment


def test_demo_dates_spread_over_six_weeks() -> None:
    src = source()
    dates = [
        mention.published_at
        for term, page in PAGE_FILES
        for mention in split(list(src.parse(page_response(src, term, page))))[0]
    ]
    assert min(dates).date().isoformat() == "2026-10-09"
    assert max(dates).date().isoformat() == "2026-11-19"
    assert len({date.isocalendar()[1] for date in dates}) == 6  # no HN hit in ISO week 44


# --------------------------------------------------------------------------- other shapes


def test_older_response_format_with_nulls() -> None:
    src = source()
    body = (DATA / "hn_legacy_format.json").read_bytes()
    mentions, requests = split(list(src.parse(page_response(src, "initech", 0, body))))

    assert requests == []  # nbPages is 1
    story, comment = mentions
    assert story.title == "Initech open-sources its ledger export tools"
    assert story.text == story.title
    assert story.thread_id == "23389020"  # no story_id: the story is its own thread
    assert story.published_at == datetime(2020, 6, 2, 8, 46, 56, tzinfo=UTC)
    assert (story.engagement.likes, story.engagement.comments) == (12, 3)
    # created_at_i is null: created_at is used.
    assert comment.published_at == datetime(2020, 6, 2, 9, 12, 1, tzinfo=UTC)
    assert comment.title == "Re: Initech open-sources its ledger export tools"
    assert (comment.thread_id, comment.parent_id) == ("23389020", "23389020")
    assert comment.engagement.likes is None
    assert src.skipped == {"without text (deleted or empty)": 1}


@pytest.mark.parametrize(
    ("hit", "reason"),
    [
        ({"created_at_i": 1, "title": "x", "_tags": ["story"]}, "without an objectID"),
        ({"objectID": "1", "title": "x", "_tags": ["story"]}, "without a date"),
        ({"objectID": "1", "created_at": "yesterday", "_tags": ["story"]}, "without a date"),
        ({"objectID": "1", "created_at_i": 1, "_tags": ["pollopt"]}, "without text"),
    ],
)
def test_hits_that_cannot_be_mentions_say_why(hit: dict[str, Any], reason: str) -> None:
    outcome = hit_to_mention(hit)
    assert isinstance(outcome, str) and outcome.startswith(reason)


def test_a_hit_without_tags_is_a_comment_when_it_has_comment_text() -> None:
    outcome = hit_to_mention(
        {
            "objectID": "42",
            "created_at": "2026-11-01T10:00:00.000Z",
            "comment_text": "Globex <i>again</i>?",
            "story_id": 40,
            "parent_id": 41,
            "story_title": "Outage",
            "author": "x",
            "points": -3,
        }
    )
    assert isinstance(outcome, Mention)
    assert (outcome.title, outcome.text, outcome.parent_id) == ("Re: Outage", "Globex again?", "41")
    assert (outcome.engagement.likes, outcome.engagement.score) == (None, -3)
    assert outcome.published_at == datetime(2026, 11, 1, 10, tzinfo=UTC)


# --------------------------------------------------------------------------- errors


def test_an_html_error_page_instead_of_json_raises_value_error_naming_the_url() -> None:
    src = source()
    body = (DATA / "error_page.html").read_bytes()
    response = page_response(src, "acme", 0, body)
    with pytest.raises(ValueError, match=re.escape(response.url)) as error:
        list(src.parse(response))
    assert "did not return JSON" in str(error.value)


@pytest.mark.parametrize(
    "body",
    [b'{"message": "Too many requests", "status": 429}', b"[]", b'{"hits": null}', b'"hits"'],
)
def test_json_without_hits_raises_value_error_naming_the_url(body: bytes) -> None:
    src = source()
    response = page_response(src, "acme", 0, body)
    with pytest.raises(ValueError, match=re.escape(response.url)) as error:
        list(src.parse(response))
    assert "no 'hits' list" in str(error.value)


def test_an_http_error_status_raises_value_error() -> None:
    src = source()
    response = page_response(src, "acme", 0)
    response.status = 503
    with pytest.raises(ValueError, match="HTTP 503"):
        list(src.parse(response))


def test_the_plugin_registers_the_source() -> None:
    assert hackernews.listener_register_sources() == [HackerNewsSource]
    assert (HackerNewsSource.name, HackerNewsSource.kind) == ("hackernews", SourceKind.FORUM)
    assert HackerNewsSource.Options is HackerNewsOptions


def test_second_run_asks_only_for_newer_hits(tmp_path: Path) -> None:
    from listener.testing import replay_crawl

    options = {"base_url": "{base_url}", "hits_per_page": 5, "max_pages": 2}
    brands = [{"name": "Acme", "keywords": ["acme"]}]
    first = replay_crawl("hackernews", options, demo_site.DIRECTORY, brands=brands, home=tmp_path)
    second = replay_crawl("hackernews", options, demo_site.DIRECTORY, brands=brands, home=tmp_path)
    searches = [r for r in first.requests if r.path == "/api/v1/search_by_date"]
    assert searches and all(r.param("numericFilters") is None for r in searches)
    newest = max(int(m.published_at.timestamp()) for m in first.mentions)
    again = [r for r in second.requests if r.path == "/api/v1/search_by_date"]
    assert again
    assert {r.param("numericFilters") for r in again} == {f"created_at_i>{newest}"}


# --------------------------------------------------------------------------- recorded items
# Real items of the official Firebase API (hack_pop's ExVCR cassettes, 2016), read as they
# were recorded and changed in the test into the other shapes items take.

RECORDED = SHARED_FIXTURES / "api_responses" / "hackernews"


def firebase_items() -> list[dict[str, Any]]:
    path = RECORDED / "hack_pop_firebase_topstories_items.json"
    if not path.is_file():
        pytest.skip(f"recorded responses not available: {path}")
    interactions = json.loads(path.read_text(encoding="utf-8"))
    return [
        json.loads(i["response"]["body"])
        for i in interactions
        if "/v0/item/" in i["request"]["url"]
    ]


def item_response(url: str, data: Any) -> Response:
    return testing.respond(url, json.dumps(data), meta={"term": "acme", "page": 0})


def test_recorded_firebase_items_are_read_as_hits() -> None:
    items = firebase_items()
    src = source()
    mentions, requests = split(src.parse(item_response(f"{BASE}/v0/items", items)))
    assert requests == [] and len(mentions) == len(items) > 20
    for item, mention in zip(items, mentions, strict=True):
        assert mention.url == f"https://news.ycombinator.com/item?id={item['id']}"
        assert mention.published_at == datetime.fromtimestamp(item["time"], UTC)
        assert mention.author.handle == item["by"]
        assert mention.title == " ".join(item["title"].split())
        assert mention.engagement.score == item["score"]
        assert mention.engagement.comments == item.get("descendants")
        assert mention.thread_id == str(item["id"])
        assert mention.text.strip()


def test_recorded_job_item_and_items_in_other_shapes(caplog: pytest.LogCaptureFixture) -> None:
    path = RECORDED / "hack_pop_firebase_item_12991490_job.json"
    if not path.is_file():
        pytest.skip(f"recorded responses not available: {path}")
    job = json.loads(json.loads(path.read_text(encoding="utf-8"))[0]["response"]["body"])
    story = firebase_items()[0]
    comment = {
        "by": "pg",
        "id": 1,
        "parent": story["id"],
        "time": 1479182200.5,
        "type": "comment",
        "text": "Acme &amp; Globex<p>second &#x27;para&#x27;",
    }
    deleted = {
        "deleted": True,
        "id": 2,
        "parent": story["id"],
        "time": 1479182300,
        "type": "comment",
    }
    dead = {**comment, "id": 3, "dead": True, "text": "[flagged]"}
    no_author = {**comment, "id": 4, "by": None, "time": str(comment["time"])}
    src = source()
    with caplog.at_level("WARNING"):
        mentions, _ = split(
            src.parse(
                item_response(f"{BASE}/v0/item", [job, story, comment, deleted, dead, no_author])
            )
        )
    assert [m.url.rsplit("=", 1)[1] for m in mentions] == [
        str(job["id"]),
        str(story["id"]),
        "1",
        "4",
    ]
    assert src.skipped == {"deleted or dead": 2}
    assert "2 deleted or dead (id 2, id 3)" in caplog.text
    posting, _, reply, anonymous = mentions
    assert "&amp;" not in posting.text and "Operations & Logistics" in posting.text
    assert posting.title == job["title"]
    assert reply.text == "Acme & Globex\n\nsecond 'para'" and reply.parent_id == str(story["id"])
    assert reply.title is None and reply.thread_id is None
    assert anonymous.author.handle is None
    assert anonymous.published_at == reply.published_at


def test_an_algolia_item_tree_and_a_single_firebase_item() -> None:
    story = firebase_items()[0]
    src = source()
    mentions, _ = split(src.parse(item_response(f"{BASE}/v0/item/{story['id']}", story)))
    assert [m.title for m in mentions] == [story["title"]]
    tree = {
        "id": 9,
        "created_at": "2016-11-15T03:55:55.000Z",
        "created_at_i": 1479182155,
        "type": "story",
        "author": "a",
        "title": "Acme",
        "url": None,
        "text": None,
        "points": 3,
        "parent_id": None,
        "story_id": 9,
        "children": [
            {
                "id": 10,
                "created_at": "2016-11-15T04:00:00.000Z",
                "type": "comment",
                "author": None,
                "text": None,
                "parent_id": 9,
                "story_id": 9,
                "children": [],
            },
            {
                "id": 11,
                "created_at": "2016-11-15T04:01:00.000Z",
                "type": "comment",
                "author": "b",
                "text": "<p>Globex</p>",
                "parent_id": 9,
                "story_id": 9,
                "children": [
                    {
                        "id": 12,
                        "created_at": "2016-11-15T04:02:00Z",
                        "type": "comment",
                        "author": "c",
                        "text": "Initech",
                        "parent_id": 11,
                        "story_id": 9,
                        "children": [],
                    }
                ],
            },
        ],
    }
    src = source()
    mentions, requests = split(src.parse(item_response(f"{BASE}/api/v1/items/9", tree)))
    assert requests == []
    assert [(m.text, m.thread_id, m.parent_id) for m in mentions] == [
        ("Acme", "9", None),
        ("Globex", "9", "9"),
        ("Initech", "9", "11"),
    ]
    assert src.skipped == {"without text (deleted or empty)": 1}


def test_no_broken_field_of_a_recorded_item_or_a_hit_raises() -> None:
    """Every field of a recorded Firebase item and of a search hit, one at a time, deleted,
    null or of another type: mapped or skipped with a reason, never raised."""
    first, other = firebase_items()[:2]
    for label, broken in each_field_broken(first):
        src = source()
        mentions, _ = split(src.parse(item_response(f"{BASE}/v0/items", [broken, other])))
        assert len(mentions) + src.skipped.total() == 2, label
    page = json.loads(PAGE_FILES[("acme", 0)].read_text(encoding="utf-8"))
    for hit in page["hits"][:2]:  # a story and a comment
        for label, broken in each_field_broken(hit):
            src = source()
            body = json.dumps({**page, "hits": [broken]}).encode()
            mentions, _ = split(src.parse(page_response(src, "acme", 0, body)))
            assert len(mentions) + src.skipped.total() == 1, label


def test_hits_that_are_no_objects_are_skipped_and_the_rest_of_the_page_read() -> None:
    """The recorded search page with a null and a string among its hits."""
    page = json.loads(PAGE_FILES[("acme", 0)].read_text(encoding="utf-8"))
    hits = page["hits"]
    body = json.dumps({**page, "hits": [None, *hits, "48125321"]}).encode()
    src = source()
    mentions, _ = split(src.parse(page_response(src, "acme", 0, body)))

    original, _ = split(source().parse(page_response(src, "acme", 0)))
    assert [m.id for m in mentions] == [m.id for m in original]
    assert src.skipped == {"not an object": 2}


def test_a_poll_and_its_options_as_firebase_items() -> None:
    """A poll (type poll, parts) and its options (type pollopt, poll): an option is part of
    the poll's thread; the shapes are those of the API's documentation."""
    story = firebase_items()[0]
    poll = {
        **story,
        "id": 126809,
        "type": "poll",
        "parts": [126810, 126811],
        "text": "Which Acme product?",
        "title": "Poll: Acme",
    }
    option = {
        "by": "pg",
        "id": 126810,
        "poll": 126809,
        "score": 335,
        "text": "Acme Rocket",
        "time": 1204403652,
        "type": "pollopt",
    }
    src = source()
    mentions, _ = split(src.parse(item_response(f"{BASE}/v0/items", [poll, option])))
    asked, answer = mentions
    assert (asked.title, asked.text, asked.thread_id) == (
        "Poll: Acme",
        "Which Acme product?",
        "126809",
    )
    assert (answer.text, answer.thread_id, answer.parent_id) == ("Acme Rocket", "126809", "126809")
    assert answer.engagement.score == 335


def test_a_firebase_items_replies_are_asked_for_and_read_in_its_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recorded story's kids (reply ids), each asked for as an item; a reply (in the
    API's documented comment shape) is a comment of the story's thread, and its own kids
    are asked for too, up to hits_per_page an item and hits_per_page * max_pages a thread."""
    story = next(item for item in firebase_items() if len(item.get("kids", [])) >= 6)
    url = f"https://hacker-news.firebaseio.com/v0/item/{story['id']}.json"
    src = source(hits_per_page=3, max_pages=2)  # 3 replies an item, 6 a thread
    mentions, requests = split(src.parse(testing.respond(url, json.dumps(story), meta={})))

    assert [m.title for m in mentions] == [story["title"]]
    api = "https://hacker-news.firebaseio.com/v0"
    assert [r.url for r in requests] == [f"{api}/item/{kid}.json" for kid in story["kids"][:3]]
    assert {(r.meta["story"], r.meta["story_title"]) for r in requests} == {
        (story["id"], story["title"])
    }

    def reply(request: Request, kids: list[int], **fields: Any) -> list[Mention | Request]:
        item = {
            "by": "norvig",
            "id": request.meta["item"],
            "kids": kids,
            "parent": story["id"],
            "text": "Acme&#x27;s answer",
            "time": story["time"] + 60,
            "type": "comment",
            **fields,
        }
        return list(src.parse(testing.respond(request, json.dumps(item))))

    first, first_asks = split(reply(requests[0], [9001, 9002, 9003, 9004]))
    assert [(m.thread_id, m.parent_id, m.title, m.text) for m in first] == [
        (str(story["id"]), str(story["id"]), f"Re: {story['title']}", "Acme's answer")
    ]
    assert [r.meta["item"] for r in first_asks] == [9001, 9002, 9003]  # the thread's 6
    assert {r.meta["story"] for r in first_asks} == {story["id"]}
    with caplog.at_level("INFO", logger=hackernews.log.name):
        deleted, deleted_asks = split(reply(requests[1], [9005], deleted=True, text=None))
    assert deleted == [] and src.skipped == {"deleted or dead": 1}
    assert deleted_asks == []  # the thread's bound is reached
    assert "are not asked for" in caplog.text


def test_recorded_firebase_story_list_asks_for_its_items() -> None:
    """The recorded /v0/topstories.json (a list of 500 item ids): its first hits_per_page
    items are asked for at the list's own API, each once; the recorded items answer."""
    path = RECORDED / "hack_pop_firebase_topstories_items.json"
    if not path.is_file():
        pytest.skip(f"recorded responses not available: {path}")
    interactions = json.loads(path.read_text(encoding="utf-8"))
    listing = next(i for i in interactions if i["request"]["url"].endswith("/topstories.json"))
    url, ids = listing["request"]["url"], json.loads(listing["response"]["body"])
    src = source(hits_per_page=30)
    mentions, requests = split(src.parse(testing.respond(url, json.dumps([*ids, ids[0]]), meta={})))
    api = url.split("/v0/", 1)[0] + "/v0"
    assert mentions == [] and len(ids) > 30
    assert [r.url for r in requests] == [f"{api}/item/{item}.json" for item in ids[:30]]
    recorded_items = {i["request"]["url"] for i in interactions}
    assert {r.url for r in requests} <= recorded_items  # the cassette answers every one
