"""The ``discourse`` source: own fixtures through the real crawler, the parser, recorded forums."""

from __future__ import annotations

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
from listener.plugins import discourse
from listener.plugins.discourse import DiscourseOptions, DiscourseSource, post_to_mention
from listener.sdk.plugin_manager import instantiate_sources
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split
from listener.text import html_to_text

DATA = RecordedSite("discourse")
RECORDED = SHARED_FIXTURES / "api_responses"
RECORDED = RECORDED / "discourse"
FORUM = "https://forum.example"
BRANDS = [BrandConfig(name="Acme", keywords=["acme", "#acme"]), BrandConfig(name="Globex")]
ACME = {"name": "Acme", "keywords": ["acme"]}
GLOBEX = {"name": "Globex", "keywords": ["globex"]}
INITECH = {"name": "Initech", "keywords": ["initech"]}


def body(name: str) -> bytes:
    return (DATA / name).read_bytes()


def source(brands: list[BrandConfig] | None = None, **options: Any) -> DiscourseSource:
    return make_source(DiscourseSource, brands=brands or BRANDS, **{"forums": [FORUM], **options})


def respond(url: str, payload: bytes, meta: dict[str, Any], status: int = 200) -> Response:
    return testing.respond(url, payload, status=status, content_type="application/json", meta=meta)


def search_response(payload: bytes, term: str = "acme", page: int = 1) -> Response:
    src = source()
    meta = {"kind": "search", "forum": FORUM, "term": term, "page": page}
    return respond(src.search_url(FORUM, term, page), payload, meta)


def topic_response(payload: bytes, topic_id: int, posts: list[int], **topic: Any) -> Response:
    meta = {
        "kind": "topic", "forum": FORUM, "term": "acme", "topic": {"id": topic_id, **topic},
        "posts": posts,
    }  # fmt: skip
    return respond(f"{FORUM}/t/{topic_id}.json", payload, meta)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --------------------------------------------------------------------------- options


def test_options_need_forums_and_strip_trailing_slashes() -> None:
    with pytest.raises(ValidationError):
        DiscourseOptions(plugin="discourse")
    with pytest.raises(ValidationError):
        DiscourseOptions(plugin="discourse", forums=["forum.example"])
    options = DiscourseOptions(plugin="discourse", forums=["https://forum.example/community/"])
    assert options.forums == ["https://forum.example/community"]
    assert (options.full_text, options.max_pages, options.api_key_env) == (True, 5, None)


def test_a_missing_api_key_variable_is_a_clear_error_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LISTENER_TEST_DISCOURSE_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"api_key_env.*LISTENER_TEST_DISCOURSE_KEY"):
        source(api_key_env="LISTENER_TEST_DISCOURSE_KEY")
    project = parse_project(
        {
            "brands": [ACME],
            "sources": [
                {
                    "plugin": "discourse",
                    "forums": [FORUM],
                    "api_key_env": "LISTENER_TEST_DISCOURSE_KEY",
                }
            ],
        },
        tmp_path / "listener.toml",
    )
    with pytest.raises(
        PluginError, match=r"sources\[0\] \(discourse\).*LISTENER_TEST_DISCOURSE_KEY"
    ):
        instantiate_sources(project)

    monkeypatch.setenv("LISTENER_TEST_DISCOURSE_KEY", "k3y")
    monkeypatch.setenv("LISTENER_TEST_DISCOURSE_USER", "system")
    src = source(
        api_key_env="LISTENER_TEST_DISCOURSE_KEY", api_username_env="LISTENER_TEST_DISCOURSE_USER"
    )
    request = next(iter(src.start_requests()))
    assert request.headers["Api-Key"] == "k3y"
    assert request.headers["Api-Username"] == "system"
    assert "k3y" not in request.url
    with pytest.raises(ConfigError, match="api_username_env"):
        source(api_username_env="LISTENER_TEST_DISCOURSE_USER")


# --------------------------------------------------------------------------- requests


def test_start_requests_search_every_forum_for_every_distinct_term_newest_first() -> None:
    src = source(forums=[FORUM, "https://talk.example/community"])
    requests = list(src.start_requests())
    assert [r.url for r in requests] == [
        f"{FORUM}/search.json?q=acme%20order%3Alatest",
        f"{FORUM}/search.json?q=Globex%20order%3Alatest",
        "https://talk.example/community/search.json?q=acme%20order%3Alatest",
        "https://talk.example/community/search.json?q=Globex%20order%3Alatest",
    ]
    assert requests[0].meta == {"kind": "search", "forum": FORUM, "term": "acme", "page": 1}
    assert requests[0].headers == {"Accept": "application/json"}


def remembered(tmp_path: Path, key: str, when: datetime) -> Checkpoint:
    """A checkpoint as a later run loads it: ``key`` was last seen at ``when``."""
    earlier = Checkpoint(tmp_path / "checkpoint.json")
    earlier.advance(key, when)
    earlier.save()
    return Checkpoint(tmp_path / "checkpoint.json")


def test_a_checkpoint_or_since_asks_only_for_newer_posts(tmp_path: Path) -> None:
    src = source()
    src.checkpoint = remembered(tmp_path, src.key(FORUM, "acme"), utc("2026-11-19T16:40:02Z"))
    urls = [r.url for r in src.start_requests()]
    assert parse_qs(urlsplit(urls[0]).query)["q"] == ["acme order:latest after:2026-11-19"]
    assert parse_qs(urlsplit(urls[1]).query)["q"] == ["Globex order:latest"]

    backfill = source()
    backfill.since = datetime(2026, 1, 1, tzinfo=UTC)
    for url in (r.url for r in backfill.start_requests()):
        assert parse_qs(urlsplit(url).query)["q"][0].endswith(" after:2026-01-01")


def test_checkpoint_keys_ignore_scheme_and_port() -> None:
    assert DiscourseSource.key("http://127.0.0.1:8123/forum", "acme") == "127.0.0.1/forum acme"
    assert DiscourseSource.key("https://Forum.example", "acme") == "forum.example acme"


# --------------------------------------------------------------------------- search pages


def test_a_search_page_asks_for_each_topic_once_and_for_the_next_page() -> None:
    src = source()
    mentions, requests = split(src.parse(search_response(body("search_acme_page1.json"))))
    assert mentions == []
    topics, following = requests[:-1], requests[-1]
    assert [r.url for r in topics] == [f"{FORUM}/t/102.json", f"{FORUM}/t/101.json"]
    assert [r.meta["posts"] for r in topics] == [[5101], [5012, 4990]]
    assert all(r.priority == 1 for r in topics)  # topics before further searches
    assert topics[1].meta["topic"]["title"] == "Which CI runners are you using these days?"
    assert following.url == f"{FORUM}/search.json?q=acme%20order%3Alatest&page=2"
    assert following.meta["page"] == 2

    # Another term finds a post in topic 101: the topic is not fetched again.
    _, again = split(src.parse(search_response(body("search_globex.json"), term="globex")))
    assert [r.url for r in again] == [f"{FORUM}/t/101/posts.json?post_ids%5B%5D=5013"]


def test_the_last_page_and_max_pages_end_pagination() -> None:
    _, requests = split(source().parse(search_response(body("search_acme_page2.json"), page=2)))
    assert [r.url for r in requests] == [f"{FORUM}/t/103.json"]
    _, limited = split(source(max_pages=1).parse(search_response(body("search_acme_page1.json"))))
    assert not any("search.json" in r.url for r in limited)


def test_search_blurbs_become_mentions_without_full_text() -> None:
    src = source(full_text=False)
    mentions, requests = split(src.parse(search_response(body("search_acme_page1.json"))))
    assert len(requests) == 1 and "page=2" in requests[0].url
    assert [m.canonical_url for m in mentions] == [
        f"{FORUM}/t/102/24", f"{FORUM}/t/101/3", f"{FORUM}/t/101/1",
    ]  # fmt: skip
    reply = mentions[1]
    assert reply.text.startswith("We moved our build agents to Acme Cloud last month")
    assert reply.title == "Re: Which CI runners are you using these days?"
    assert reply.engagement.likes == 4
    assert (reply.thread_id, reply.parent_id) == ("101", "101")  # search hits name no parent
    assert src.checkpoint.values[src.key(FORUM, "acme")] == "2026-11-19T16:40:02.515000+00:00"


def test_posts_at_or_before_the_checkpoint_are_not_fetched_and_stop_pagination(
    tmp_path: Path,
) -> None:
    src = source()
    key = src.key(FORUM, "acme")
    src.checkpoint = remembered(tmp_path, key, utc("2026-11-19T16:40:02.515Z"))
    _, requests = split(src.parse(search_response(body("search_acme_after.json"))))
    assert [(r.url, r.meta["posts"]) for r in requests] == [(f"{FORUM}/t/104.json", [5230])]


# --------------------------------------------------------------------------- topics


def test_topic_posts_become_full_mentions() -> None:
    src = source()
    response = topic_response(body("topic_101.json"), 101, [5012, 4990, 5013])
    mentions, requests = split(src.parse(response))
    assert requests == []
    reply, opening, nested = mentions

    assert reply.url == f"{FORUM}/t/which-ci-runners-are-you-using-these-days/101/3"
    assert reply.canonical_url == f"{FORUM}/t/101/3"
    assert reply.id == mention_id("discourse", f"{FORUM}/t/101/3")
    assert (reply.source, reply.source_kind, reply.domain) == (
        "discourse", SourceKind.FORUM, "forum.example",
    )  # fmt: skip
    assert reply.title == "Re: Which CI runners are you using these days?"
    assert reply.text == (
        "We moved our build agents to Acme Cloud last month and cold starts dropped by half.\n\n"
        "The only thing I miss is the old dashboard:\n\nacme runners list --status idle"
    )
    assert reply.published_at == datetime(2026, 11, 18, 9, 12, 44, 120000, tzinfo=UTC)
    assert (reply.author.name, reply.author.handle) == ("María López", "mlopez")
    assert reply.author.url == f"{FORUM}/u/mlopez"
    assert reply.engagement.model_dump() == {
        "likes": 4, "comments": 1, "shares": None, "views": 47, "score": 31, "total": 5,
    }  # fmt: skip
    assert (reply.thread_id, reply.parent_id) == ("101", "101")

    assert opening.title == "Which CI runners are you using these days?"
    assert opening.url == f"{FORUM}/t/which-ci-runners-are-you-using-these-days/101"
    assert opening.canonical_url == f"{FORUM}/t/101/1"
    # The opening post carries the topic's figures: its views and its replies.
    assert (opening.engagement.views, opening.engagement.comments) == (812, 4)
    assert (opening.engagement.likes, opening.engagement.score) == (7, 58)
    assert (opening.thread_id, opening.parent_id) == ("101", None)

    assert nested.text.endswith("after the price change & the outage in October.")
    assert (nested.thread_id, nested.parent_id) == ("101", "101/3")


def test_hits_beyond_the_first_posts_of_a_topic_are_fetched_by_id() -> None:
    src = source()
    topic = {"title": "Agent disconnects after upgrading to 4.2"}
    mentions, requests = split(src.parse(topic_response(body("topic_102.json"), 102, [5101])))
    assert mentions == []
    assert [r.url for r in requests] == [f"{FORUM}/t/102/posts.json?post_ids%5B%5D=5101"]
    follow = requests[0]
    posts = testing.respond(follow, body("posts_102.json"), meta={"topic": {"id": 102, **topic}})
    (late,) = split(src.parse(posts))[0]
    assert late.canonical_url == f"{FORUM}/t/102/24"
    assert late.title == "Re: Agent disconnects after upgrading to 4.2"
    assert (late.thread_id, late.parent_id) == ("102", "102/22")
    assert late.author.name == "Priya Raman"


def test_a_changed_post_degrades_alone_and_a_changed_topic_raises() -> None:
    src = source(brands=[BrandConfig(name="Initech")])
    response = topic_response(body("topic_105.json"), 105, [5300, 5301])
    (mention,) = split(src.parse(response))[0]
    assert mention.canonical_url == f"{FORUM}/t/105/2"
    assert mention.text == "Tried the Initech exporter on 40 GB, took four minutes."
    assert mention.engagement.likes == 3  # from actions_summary
    assert src.skipped == {"without a date": 1}

    changed = topic_response(body("topic_106_changed.json"), 106, [5310])
    with pytest.raises(ValueError, match=re.escape(changed.url) + ".*post_stream"):
        list(src.parse(changed))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"search_error.json", "Your search term is too short"),
        (b'{"errors": ["You have performed this action too many times."], '
         b'"error_type": "rate_limit"}', "too many times.*rate_limit"),
        (b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", "not return JSON"),
        (b'{"topic_list": {"topics": []}}', "not a Discourse search response"),
        (b"[]", ""),
    ],
)  # fmt: skip
def test_error_answers_raise_value_error_naming_the_url(payload: bytes, message: str) -> None:
    if payload.endswith(b".json"):
        payload = body(payload.decode())
    response = search_response(payload)
    if payload == b"[]":  # an old-style search with nothing found
        assert split(source().parse(response)) == ([], [])
        return
    with pytest.raises(ValueError, match=re.escape(response.url) + ".*" + message):
        list(source().parse(response))


def test_an_empty_search_page_gives_nothing() -> None:
    assert split(source().parse(search_response(body("search_empty.json")))) == ([], [])


def test_the_plugin_registers_the_source() -> None:
    assert discourse.listener_register_sources() == [DiscourseSource]
    assert (DiscourseSource.name, DiscourseSource.kind) == ("discourse", SourceKind.FORUM)
    assert (DiscourseSource.concurrency, DiscourseSource.download_delay) == (1, 1.0)
    assert DiscourseSource.obey_robots_txt is False  # a documented API, see the docs


# --------------------------------------------------------------------------- real crawls


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("discourse-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> ReplayResult:
    # The site `listener plugins check` replays (shipped) with the routes tests/data/discourse adds.
    return replay_crawl(
        "discourse", {"forums": ["{base_url}"]}, DATA.routes(), brands=[ACME, GLOBEX], home=home
    )


@pytest.fixture(scope="module")
def second_run(first_run: ReplayResult, home: Path) -> ReplayResult:
    routes = [
        Route("/search.json", query={"q": "acme order:latest after:2026-11-19"}, body=body(
            "search_acme_after.json")),
        Route("/search.json", query={"q": "globex order:latest after:2026-11-18"}, body=body(
            "search_empty.json")),
        Route("/t/104.json", body=body("topic_104.json")),
    ]  # fmt: skip
    return replay_crawl(
        "discourse", {"forums": ["{base_url}"]}, routes, brands=[ACME, GLOBEX], home=home
    )


def test_crawl_yields_every_hit_once_with_full_text(first_run: ReplayResult) -> None:
    summary = first_run.source
    assert (summary["health"], summary["parse_errors"], summary["fetch_errors"]) == (
        "healthy",
        0,
        0,
    )
    by_path = {path_of(m.canonical_url): m for m in first_run.mentions}
    assert len(first_run.mentions) == len(by_path) == 6
    assert sorted(by_path) == [
        "/t/101/1", "/t/101/3", "/t/101/4", "/t/102/24", "/t/103/1", "/t/103/2",
    ]  # fmt: skip
    for mention in first_run.mentions:
        assert mention.id == mention_id("discourse", mention.canonical_url)
        assert mention.published_at.tzinfo is not None
        assert mention.author.handle and mention.author.url
    assert by_path["/t/101/4"].text.startswith("Interesting. We tried Globex runners")
    assert by_path["/t/102/24"].text.endswith("Rolling back to 4.1 fixed it for us.")
    anonymous = by_path["/t/103/2"]  # an empty display name: the user name stands in
    assert (anonymous.author.name, anonymous.author.handle) == ("tkowalski", "tkowalski")
    assert by_path["/t/103/1"].engagement.views == 233


def test_crawl_follows_search_pages(first_run: ReplayResult) -> None:
    searches = [r for r in first_run.requests if r.path == "/search.json"]
    assert sorted((r.param("q"), r.param("page") or "1") for r in searches) == [
        ("acme order:latest", "1"), ("acme order:latest", "2"), ("globex order:latest", "1"),
    ]  # fmt: skip
    topics = sorted(r.path for r in first_run.requests if r.path.startswith("/t/"))
    assert topics == [
        "/t/101.json", "/t/101/posts.json", "/t/102.json", "/t/102/posts.json", "/t/103.json",
    ]  # fmt: skip


def test_second_crawl_asks_only_for_newer_posts(second_run: ReplayResult) -> None:
    assert second_run.source["fetch_errors"] == 0 and second_run.source["parse_errors"] == 0
    assert [path_of(m.canonical_url) for m in second_run.mentions] == ["/t/104/1"]
    newest = second_run.mentions[0]
    assert newest.published_at == datetime(2026, 11, 21, 11, 0, 41, 300000, tzinfo=UTC)
    searches = [r for r in second_run.requests if r.path == "/search.json"]
    assert sorted(r.param("q") or "" for r in searches) == [
        "acme order:latest after:2026-11-19", "globex order:latest after:2026-11-18",
    ]  # fmt: skip
    assert all(r.param("page") is None for r in searches)  # older posts reached: no page 2
    assert [r.path for r in second_run.requests if r.path.startswith("/t/")] == ["/t/104.json"]


def test_crawl_survives_errors_rate_limits_and_changed_schemas(tmp_path: Path) -> None:
    routes = [
        Route("/search.json", query={"q": "acme order:latest"}, body=body("search_error.json")),
        Route("/search.json", query={"q": "globex order:latest"}, status=429, times=1,
              headers={"Retry-After": "1", "Content-Type": "application/json"},
              body=b'{"errors": ["Slow down."], "error_type": "rate_limit"}'),
        Route("/search.json", query={"q": "globex order:latest"}, body=body("search_empty.json")),
        Route("/search.json", query={"q": "initech order:latest"},
              body=body("search_initech_changed.json")),
        Route("/t/105.json", body=body("topic_105.json")),
        Route("/t/106.json", body=body("topic_106_changed.json")),
    ]  # fmt: skip
    result = replay_crawl(
        "discourse", {"forums": ["{base_url}"]}, routes, brands=[ACME, GLOBEX, INITECH],
        home=tmp_path,
    )  # fmt: skip
    assert [path_of(m.canonical_url) for m in result.mentions] == ["/t/105/2"]
    summary = result.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (2, 0)
    assert summary["health"] == "degraded"
    globex = [r.status for r in result.requests if r.param("q") == "globex order:latest"]
    assert globex == [429, 200]


# --------------------------------------------------------------------------- recorded responses


def recorded(name: str) -> dict[str, Any]:
    path = RECORDED / name
    if not path.is_file():
        pytest.skip(f"recorded fixture {path} is not available")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def expected_likes(post: dict[str, Any]) -> int | None:
    for action in post.get("actions_summary") or []:
        if action["id"] == 2:
            return int(action["count"])
    return None


@pytest.mark.parametrize("name", ["topic.json", "perceval_topic_1149.json", "perceval_posts.json"])
def test_recorded_topics_parse_into_their_posts(name: str) -> None:
    data = recorded(name)
    wanted = [post["id"] for post in data["post_stream"]["posts"]]
    # Posts with nothing but an image have no text to mention.
    posts = [p for p in data["post_stream"]["posts"] if re.sub(r"<[^>]*>", "", p["cooked"]).strip()]
    response = topic_response(json.dumps(data).encode(), data["id"], wanted)
    src = source()
    mentions, requests = split(src.parse(response))
    assert requests == []
    assert len(mentions) == len(posts)
    assert src.skipped.total() == len(wanted) - len(posts)
    for post, mention in zip(posts, mentions, strict=True):
        number = post["post_number"]
        assert mention.canonical_url == f"{FORUM}/t/{data['id']}/{number}"
        assert mention.published_at == utc(post["created_at"])
        assert mention.author.handle == post["username"]
        assert mention.author.name == (post["name"] or post["username"])
        assert mention.engagement.likes == expected_likes(post)
        assert mention.engagement.score == round(post["score"])
        assert mention.thread_id == str(data["id"])
        if number == 1:
            assert mention.title == data["title"]
            assert mention.engagement.views == data["views"]
            assert mention.parent_id is None
        else:
            assert mention.title == f"Re: {data['title']}"
            assert mention.engagement.views == post["reads"]
            reply_to = post["reply_to_post_number"]
            parent = f"{data['id']}/{reply_to}" if reply_to and reply_to > 1 else str(data["id"])
            assert mention.parent_id == parent
        assert mention.text and "<p>" not in mention.text


def test_recorded_latest_posts_parse_one_by_one() -> None:
    data = recorded("posts_latest.json")
    for post in data["latest_posts"]:
        mention = post_to_mention(post, {}, FORUM)
        assert isinstance(mention, Mention)
        assert mention.title == (
            post["topic_title"] if post["post_number"] == 1 else f"Re: {post['topic_title']}"
        )
        # The rendered (cooked) HTML as text, not the Markdown source.
        assert mention.text == html_to_text(post["cooked"])
        assert mention.text.split()[:2] == post["raw"].split()[:2]
        assert mention.url.startswith(f"{FORUM}/t/{post['topic_slug']}/{post['topic_id']}")
        assert mention.published_at == utc(post["created_at"])


def test_recorded_legacy_search_fetches_its_topics() -> None:
    data = json.dumps(recorded("search_legacy_minimal.json")).encode()
    mentions, requests = split(source().parse(search_response(data)))
    assert mentions == []
    assert [r.url for r in requests] == [f"{FORUM}/t/{n}.json" for n in (1, 2, 3)]
    assert requests[0].meta["topic"] == {"id": 1, "title": "Test topic #1"}


@pytest.mark.parametrize("name", ["latest.json", "perceval_latest_topics.json"])
def test_recorded_topic_lists_are_not_search_results(name: str) -> None:
    response = search_response(json.dumps(recorded(name)).encode())
    with pytest.raises(ValueError, match="not a Discourse search response"):
        list(source().parse(response))


# --------------------------------------------------------------------------- held-out shapes


def test_recorded_topic_in_other_shapes_keeps_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    """Perceval's recorded topic, with posts added in the shapes real topics hold."""
    data = recorded("perceval_topic_1149.json")
    reply = data["post_stream"]["posts"][1]
    base = {**reply, "reply_to_post_number": None}

    def post(number: int, **changes: Any) -> dict[str, Any]:
        return {**base, "id": 20000 + number, "post_number": number, **changes}

    added = [
        post(3, user_deleted=True, cooked="<p>(post deleted by author)</p>"),
        post(4, hidden=True, cooked="", raw=None),  # hidden by flags: no text is served
        post(5, post_type=3, action_code="closed.enabled", cooked=""),  # a small action
        post(
            6,
            username=None,
            name=None,
            cooked="<p>Acme &amp; Globex &lt;3</p>",
            created_at="2016-02-01T10:00:00+01:00",
            reply_to_post_number=2,
            actions_summary=[{"id": 2, "count": 4}],
            score="12.6",
        ),
        post(
            7,
            name="",
            display_username=None,
            topic_slug="ублок-ориджин",  # forums in other scripts keep them in slugs
            actions_summary=7,  # not a list: no likes, the post is still read
            cooked='<aside class="quote"><blockquote><p>quoted</p></blockquote>'
            "</aside><p>Ünïcödé 中文 reply</p>",
            created_at="2016-02-01T10:00:00Z",
        ),
        post(8, created_at=None),
    ]
    data["post_stream"]["posts"] += added
    wanted = [p["id"] for p in data["post_stream"]["posts"]]
    src = source()

    with caplog.at_level("WARNING"):
        mentions, requests = split(
            src.parse(topic_response(json.dumps(data).encode(), data["id"], wanted))
        )

    assert requests == []
    numbers = [m.canonical_url.rsplit("/", 1)[1] for m in mentions]
    assert numbers == ["1", "2", "6", "7"]
    assert src.skipped == {
        "deleted": 1,
        "without text": 1,
        "a moderator action, not a post": 1,
        "without a date": 1,
    }
    assert "1 without a date (post 20008)" in caplog.text and "(post 20003)" in caplog.text
    anonymous, quoting = mentions[2], mentions[3]
    assert anonymous.author.handle is None and anonymous.text == "Acme & Globex <3"
    assert anonymous.published_at == utc("2016-02-01T09:00:00Z")
    assert anonymous.parent_id == f"{data['id']}/2"
    assert (anonymous.engagement.likes, anonymous.engagement.score) == (4, 13)
    assert quoting.author.name == quoting.author.handle == base["username"]
    assert "Ünïcödé 中文 reply" in quoting.text and quoting.parent_id == str(data["id"])
    assert quoting.url.startswith(f"{FORUM}/t/%D1%83%D0%B1")
    assert mentions[0].title == data["title"] and mentions[1].title == f"Re: {data['title']}"


def test_recorded_latest_posts_are_read_as_a_page() -> None:
    """/posts.json (the forum's latest posts) handed to the source: every post is read."""
    data = recorded("posts_latest.json")
    posts = data["latest_posts"]
    data["latest_posts"] = [*posts, {**posts[0], "id": 1, "created_at": "soon"}, None]
    src = source()
    mentions, requests = split(src.parse(topic_response(json.dumps(data).encode(), 0, [])))
    assert requests == [] and len(mentions) == len(posts)
    assert src.skipped == {"without a date": 1, "not an object": 1}
    for post, mention in zip(posts, mentions, strict=True):
        assert mention.canonical_url == f"{FORUM}/t/{post['topic_id']}/{post['post_number']}"
        assert mention.text == html_to_text(post["cooked"])


def test_no_broken_field_of_a_recorded_post_raises() -> None:
    """Every field of a recorded topic's post, and of a search hit, one at a time, deleted,
    null or of another type: mapped, asked for or skipped with a reason, never raised."""
    data = recorded("perceval_topic_1149.json")
    first, other = data["post_stream"]["posts"]
    ids = [first["id"], other["id"]]
    kept = f"{FORUM}/t/{data['id']}/{other['post_number']}"
    for label, broken in each_field_broken(first, depth=1):
        topic = {**data, "post_stream": {"posts": [broken, other]}}
        payload = json.dumps(topic).encode()
        mentions, _ = split(source().parse(topic_response(payload, data["id"], ids)))
        assert kept in {m.canonical_url for m in mentions}, label
    search = json.loads(body("search_acme_page1.json"))
    for label, broken in each_field_broken(search["posts"][0], depth=1):
        page = json.dumps({**search, "posts": [broken]}).encode()
        src = source(full_text=False)
        mentions, _ = split(src.parse(search_response(page)))
        assert len(mentions) + src.skipped.total() == 1, label


@pytest.mark.parametrize("name", ["latest.json", "perceval_latest_topics.json"])
def test_recorded_topic_list_answering_a_search_names_the_option(name: str) -> None:
    """A search answered with a topic list stays an error, now naming what to configure."""
    response = search_response(json.dumps(recorded(name)).encode())
    with pytest.raises(ValueError, match=r"topic list .*base URL under 'forums'"):
        list(source().parse(response))


def test_recorded_topic_list_is_read_as_a_page_of_topics(caplog: pytest.LogCaptureFixture) -> None:
    """/latest.json handed to the source: each topic is fetched once for its opening post
    (what the list shows), and the recorded topic 1149 answers with that post."""
    data = recorded("perceval_latest_topics.json")
    listed = data["topic_list"]["topics"]
    data["topic_list"]["topics"] = [*listed, listed[0], {"title": "no id"}, None]
    data["topic_list"]["more_topics_url"] = "/latest?page=1"
    src = source()
    # Handed over as a bare page (no request meta): the forum is read from its URL.
    response = respond(f"{FORUM}/latest.json", json.dumps(data).encode(), {})
    with caplog.at_level("WARNING"):
        mentions, requests = split(src.parse(response))
    assert mentions == []
    assert [r.url for r in requests] == [
        *(f"{FORUM}/t/{t['id']}.json" for t in listed),  # the repeated topic asked once
        f"{FORUM}/latest.json?page=1",
    ]
    assert src.skipped == {"without a topic id": 1, "not an object": 1}
    assert "skipped 2 of 5 topics" in caplog.text and "(topic no id)" in caplog.text
    ask = requests[1]
    assert ask.meta["topic"]["title"] == listed[1]["title"] and ask.meta["posts"] == []

    topic = recorded("perceval_topic_1149.json")
    assert topic["id"] == listed[1]["id"]
    answer = respond(ask.url, json.dumps(topic).encode(), ask.meta)
    (opening,), more = split(src.parse(answer))
    first = topic["post_stream"]["posts"][0]
    assert more == [] and first["post_number"] == 1
    # The topic's own title (recorded later than the list) wins over the listed one.
    assert opening.title == topic["title"] and opening.text == html_to_text(first["cooked"])
    assert opening.canonical_url == f"{FORUM}/t/{topic['id']}/1"

    # The next page is read the same way; a list older than the checkpoint is not followed.
    older = source(max_pages=2)
    older.since = datetime(2030, 1, 1, tzinfo=UTC)
    page = respond(f"{FORUM}/latest.json?page=1", json.dumps(data).encode(), requests[-1].meta)
    _, asked = split(older.parse(page))
    assert all("/t/" in r.url for r in asked)


def test_recorded_try_discourse_latest_with_a_subfolder_forum() -> None:
    """try.discourse.org's recorded /latest.json, its three listed topics sharing id 1, on a
    forum in a sub-folder: one topic request, the next page under the same folder."""
    data = recorded("latest.json")
    forum = "https://talk.example/community"
    meta = {"kind": "topics", "forum": forum, "term": "acme"}
    response = respond(f"{forum}/latest.json", json.dumps(data).encode(), meta)
    _, requests = split(source().parse(response))
    assert [r.url for r in requests] == [
        f"{forum}/t/1.json",
        f"{forum}/latest.json?page=1",
    ]


@pytest.mark.parametrize("name", ["topic.json", "perceval_topic_1149.json"])
def test_recorded_topic_handed_over_alone_is_read_whole(name: str) -> None:
    """A /t/ID.json page handed to the source without a request of its own (no meta): every
    post with text is read, the forum taken from the page's URL."""
    data = recorded(name)
    posts = [p for p in data["post_stream"]["posts"] if re.sub(r"<[^>]*>", "", p["cooked"]).strip()]
    src = source()
    url = f"{FORUM}/t/{data['slug']}/{data['id']}.json"
    mentions, requests = split(src.parse(respond(url, json.dumps(data).encode(), {})))
    assert requests == [] and len(mentions) == len(posts) > 1
    numbers = [m.canonical_url for m in mentions]
    assert numbers == [f"{FORUM}/t/{data['id']}/{p['post_number']}" for p in posts]
    assert mentions[0].title == data["title"]


def test_a_search_page_handed_over_without_its_request_is_read_as_one() -> None:
    """The plugin's recorded search page and the recorded legacy search, handed to the
    source with no request meta: read as searches (they used to raise 'not a Discourse
    topic'), the forum from the URL, the term from its q or the answer's own term."""
    payload = body("search_acme_page1.json")
    _, expected = split(source().parse(search_response(payload)))
    for url in (f"{FORUM}/search.json?q=acme%20order%3Alatest", f"{FORUM}/search.json"):
        src = source()
        _, requests = split(src.parse(respond(url, payload, {})))
        assert [r.url for r in requests] == [r.url for r in expected]
        assert {r.meta["term"] for r in requests} == {"acme"}
    legacy = json.dumps(recorded("search_legacy_minimal.json")).encode()
    _, requests = split(source().parse(respond(f"{FORUM}/search.json?term=test", legacy, {})))
    assert [r.url for r in requests] == [f"{FORUM}/t/{n}.json" for n in (1, 2, 3)]
