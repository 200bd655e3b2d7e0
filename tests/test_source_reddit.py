"""The ``reddit`` source: own fixtures, a replayed crawl, and PRAW's recorded responses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import SHARED_FIXTURES, RecordedSite, each_field_broken
from pydantic import ValidationError

from listener import testing
from listener.config import BrandConfig
from listener.errors import ConfigError
from listener.mention import Mention, SourceKind, mention_id
from listener.plugins import reddit
from listener.plugins.reddit import (
    RedditOptions,
    RedditSource,
    comment_to_mention,
    post_to_mention,
    time_window,
)
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split

DATA = RecordedSite("reddit")
RECORDED = SHARED_FIXTURES / "api_responses" / "reddit"
BASE = "http://127.0.0.1:8999"
WEB = "https://www.reddit.com"
BRANDS = [
    BrandConfig(name="Acme", keywords=["acme", "#acme"]),
    BrandConfig(name="Globex", keywords=["globex"]),
]


def source(**options: Any) -> RedditSource:
    return make_source(RedditSource, brands=BRANDS, **{"base_url": BASE, **options})


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def respond(url: str, body: bytes | str, **meta: Any) -> Response:
    return testing.respond(url, body, meta={"kind": "listing", "key": "acme", "page": 0, **meta})


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def created(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def remember(src: RedditSource, folder: Path, **newest: datetime) -> None:
    """Give ``src`` a checkpoint as an earlier run would have left it."""
    path = folder / "reddit.json"
    values = {key: when.isoformat() for key, when in newest.items()}
    path.write_text(json.dumps({"newest": values}), encoding="utf-8")
    src.checkpoint = Checkpoint(path)


def saved(src: RedditSource, key: str) -> datetime | None:
    """What the checkpoint will save for ``key``."""
    value = src.checkpoint.values.get(key)
    return datetime.fromisoformat(value) if value else None


# --------------------------------------------------------------------------- options


def test_options_defaults_and_validation() -> None:
    options = RedditOptions(plugin="reddit")
    assert (options.base_url, options.subreddits, options.subreddit_mode) == (None, [], "search")
    assert (options.limit, options.comments, options.max_pages) == (100, True, 5)
    assert RedditOptions(
        plugin="reddit", subreddits=["r/Acme", "/r/acme/", "gadgets"]
    ).subreddits == [
        "Acme",
        "gadgets",
    ]
    for bad in (
        {"subreddits": ["not a name"]},
        {"limit": 101},
        {"client_id_env": "ID"},
        {"token_env": "T", "client_id_env": "ID", "client_secret_env": "S"},
        {"subreddit_mode": "hot"},
    ):
        with pytest.raises(ValidationError):
            RedditOptions(plugin="reddit", **bad)


def test_a_missing_credential_is_a_clear_error_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTENER_TEST_REDDIT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"token_env.*LISTENER_TEST_REDDIT_TOKEN"):
        source(token_env="LISTENER_TEST_REDDIT_TOKEN")
    monkeypatch.setenv("LISTENER_TEST_REDDIT_ID", "abc")
    monkeypatch.setenv("LISTENER_TEST_REDDIT_SECRET", "  ")
    with pytest.raises(ConfigError, match=r"client_secret_env.*LISTENER_TEST_REDDIT_SECRET"):
        source(
            client_id_env="LISTENER_TEST_REDDIT_ID", client_secret_env="LISTENER_TEST_REDDIT_SECRET"
        )


# --------------------------------------------------------------------------- requests


def test_site_wide_search_is_one_newest_first_search_per_term() -> None:
    requests = list(
        source(limit=25, user_agent="linux:listener-test:0.1 (by /u/someone)").start_requests()
    )
    assert [urlsplit(r.url).path for r in requests] == ["/search.json", "/search.json"]
    assert query_of(requests[0].url) == {
        "q": ["acme"],
        "sort": ["new"],
        "t": ["all"],
        "type": ["link"],
        "limit": ["25"],
        "raw_json": ["1"],
    }
    assert query_of(requests[1].url)["q"] == ["globex"]
    assert requests[0].meta == {
        "kind": "listing",
        "key": "acme",
        "page": 0,
        "threads": True,
        "brands": ["Acme"],
    }
    assert requests[0].headers == {
        "Accept": "application/json",
        "User-Agent": "linux:listener-test:0.1 (by /u/someone)",
    }


def test_subreddit_search_and_new_modes() -> None:
    search = list(source(subreddits=["BuyItForLife", "gadgets"]).start_requests())
    assert urlsplit(search[0].url).path == "/r/BuyItForLife+gadgets/search.json"
    assert query_of(search[0].url)["restrict_sr"] == ["1"]
    assert search[0].meta["key"] == "r/BuyItForLife+gadgets?q=acme"

    new = list(source(subreddits=["acme"], subreddit_mode="new").start_requests())
    assert [urlsplit(r.url).path for r in new] == ["/r/acme/new.json", "/r/acme/comments.json"]
    assert [r.meta["key"] for r in new] == ["r/acme/new", "r/acme/comments"]
    assert not any(r.meta["threads"] for r in new)
    only_posts = list(
        source(subreddits=["acme"], subreddit_mode="new", comments=False).start_requests()
    )
    assert [urlsplit(r.url).path for r in only_posts] == ["/r/acme/new.json"]


def test_without_credentials_the_public_site_and_with_a_token_the_oauth_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    public = RedditSource(RedditOptions(plugin="reddit"), BRANDS)
    assert next(iter(public.start_requests())).url.startswith("https://www.reddit.com/search.json?")
    monkeypatch.setenv("LISTENER_TEST_REDDIT_TOKEN", "tok123")
    oauth = RedditSource(
        RedditOptions(plugin="reddit", token_env="LISTENER_TEST_REDDIT_TOKEN"), BRANDS
    )
    first = next(iter(oauth.start_requests()))
    assert first.url.startswith("https://oauth.reddit.com/search.json?")
    assert first.headers["Authorization"] == "bearer tok123"


def test_application_credentials_are_exchanged_for_a_token_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTENER_TEST_REDDIT_ID", "client")
    monkeypatch.setenv("LISTENER_TEST_REDDIT_SECRET", "s3cret")
    src = source(
        client_id_env="LISTENER_TEST_REDDIT_ID",
        client_secret_env="LISTENER_TEST_REDDIT_SECRET",
        token_url=f"{BASE}/api/v1/access_token",
    )
    (token_request,) = src.start_requests()
    assert (token_request.method, token_request.url) == ("POST", f"{BASE}/api/v1/access_token")
    assert token_request.headers["Authorization"] == "Basic Y2xpZW50OnMzY3JldA=="  # client:s3cret
    assert token_request.body == b"grant_type=client_credentials"
    answer = (
        '{"access_token": "app-only", "token_type": "bearer", "expires_in": 86400, "scope": "*"}'
    )
    response = Response(token_request.url, 200, {}, answer.encode(), token_request)
    mentions, searches = split(src.parse(response))
    assert mentions == [] and len(searches) == 2
    assert all(r.headers["Authorization"] == "bearer app-only" for r in searches)
    refused = Response(token_request.url, 200, {}, b'{"error": "invalid_client"}', token_request)
    with pytest.raises(ValueError, match=re.escape(token_request.url)):
        list(src.parse(refused))


def test_time_window_is_the_narrowest_that_covers_the_checkpoint() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert time_window(None, now) == "all"
    assert time_window(now - timedelta(minutes=30), now) == "hour"
    assert time_window(now - timedelta(minutes=50), now) == "day"  # 15 minutes of slack
    assert time_window(now - timedelta(days=3), now) == "week"
    assert time_window(now - timedelta(days=20), now) == "month"
    assert time_window(now - timedelta(days=200), now) == "year"
    assert time_window(now - timedelta(days=400), now) == "all"


def test_the_checkpoint_narrows_the_search_window(tmp_path: Path) -> None:
    src = source()
    remember(src, tmp_path, acme=datetime.now(UTC) - timedelta(days=2))
    first, second = src.start_requests()
    assert query_of(first.url)["t"] == ["week"]
    assert query_of(second.url)["t"] == ["all"]  # globex: nothing seen yet


# --------------------------------------------------------------------------- own fixtures


def test_a_search_page_gives_posts_thread_requests_and_the_next_page() -> None:
    src = source(limit=3)
    url = f"{BASE}/search.json?q=acme&sort=new&t=all&type=link&limit=3&raw_json=1"
    mentions, requests = split(
        src.parse(respond(url, (DATA / "search_acme_page1.json").read_bytes(), threads=True))
    )

    assert [m.thread_id for m in mentions] == ["t3_1gq7x2a", "t3_1gq5k0d", "t3_1gq2m9z"]
    rocket, link, removed = mentions
    assert (
        rocket.url
        == f"{WEB}/r/BuyItForLife/comments/1gq7x2a/acme_rocket_14_after_two_years_still_going/"
    )
    assert rocket.canonical_url == f"{WEB}/r/BuyItForLife/comments/1gq7x2a/"
    assert rocket.id == mention_id("reddit", rocket.canonical_url)
    assert rocket.domain == "reddit.com" and rocket.source_kind is SourceKind.FORUM
    assert rocket.title == "Acme Rocket 14 after two years: still going"
    assert rocket.text == (
        "Bought it in 2024.\n\nbattery still at 91%\nscreen has no dead pixels"
        "\n\nWould buy Acme again."
    )
    assert rocket.published_at == datetime(2026, 11, 18, 14, 5, tzinfo=UTC)
    assert (rocket.author.name, rocket.author.handle) == ("kettle_pilot", "kettle_pilot")
    assert rocket.author.url == f"{WEB}/user/kettle_pilot/"
    e = rocket.engagement
    assert (e.likes, e.comments, e.shares, e.views, e.score, e.total) == (412, 8, 1, None, 412, 421)
    assert rocket.parent_id is None
    # A link post: its title is its text; views where Reddit reports them.
    assert (link.text, link.engagement.views, link.engagement.comments) == (link.title, 1520, 0)
    # Removed by moderators, author deleted: the title remains, the author does not.
    assert removed.text == "Acme router drops Wi-Fi every night"
    assert removed.author.name is None and removed.author.url is None

    thread, following = requests
    assert thread.url == f"{BASE}/comments/1gq7x2a.json?sort=new&limit=200&raw_json=1"
    assert thread.meta == {"kind": "thread", "key": "acme", "post": "1gq7x2a"}
    assert query_of(following.url)["after"] == ["t3_1gq2m9z"]
    assert query_of(following.url)["count"] == ["3"]
    assert following.meta["page"] == 1
    assert saved(src, "acme") == rocket.published_at


def test_a_comment_page_gives_the_comment_tree() -> None:
    src = source()
    url = f"{BASE}/comments/1gq7x2a.json?sort=new&limit=200&raw_json=1"
    mentions, requests = split(
        src.parse(respond(url, (DATA / "comments_1gq7x2a.json").read_bytes(), kind="thread"))
    )
    assert requests == []
    assert [m.author.handle for m in mentions] == ["skeptic_sue", "frugal_fran", "kettle_pilot"]
    sue, fran, reply = mentions
    assert sue.canonical_url == f"{WEB}/r/BuyItForLife/comments/1gq7x2a/comment/lx1g8h9/"
    assert sue.url == f"{WEB}/r/BuyItForLife/comments/1gq7x2a/post/lx1g8h9/"
    assert sue.title == "Re: Acme Rocket 14 after two years: still going"
    assert sue.text == "Mine died after a year. Acme replaced it though."
    assert (sue.engagement.likes, sue.engagement.score, sue.engagement.total) == (0, -2, 0)
    assert (fran.thread_id, fran.parent_id) == ("t3_1gq7x2a", "t3_1gq7x2a")
    assert (reply.thread_id, reply.parent_id) == ("t3_1gq7x2a", "t1_lx1a2b3")
    assert reply.published_at == datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
    assert src.skipped == {"without text (deleted or removed)": 1}
    assert src.unfetched == 4  # behind a "load more comments" link
    assert saved(src, "acme") is None  # thread comments do not move the checkpoint


def test_pagination_stops_at_max_pages_at_the_end_and_at_older_items(tmp_path: Path) -> None:
    url = f"{BASE}/search.json?q=acme&sort=new&t=all&type=link&limit=100&raw_json=1"
    page2 = (DATA / "search_acme_page2.json").read_bytes()
    assert (
        split(
            source(max_pages=1).parse(respond(url, (DATA / "search_acme_page1.json").read_bytes()))
        )[1]
        == []
    )
    last = load("search_acme_page2.json")
    last["data"]["after"] = None
    assert split(source().parse(respond(url, json.dumps(last))))[1] == []

    src = source()
    remember(src, tmp_path, acme=datetime(2026, 11, 9, tzinfo=UTC))
    mentions, requests = split(src.parse(respond(url, page2)))
    assert [m.thread_id for m in mentions] == ["t3_1gp9a1b"]  # the other is older
    assert requests == []
    assert saved(src, "acme") == datetime(2026, 11, 10, 18, tzinfo=UTC)


def test_since_overrides_the_checkpoint(tmp_path: Path) -> None:
    src = source()
    remember(src, tmp_path, acme=datetime(2026, 11, 30, tzinfo=UTC))
    src.since = datetime(2026, 11, 1, tzinfo=UTC)
    url = f"{BASE}/search.json?q=acme"
    mentions, _ = split(src.parse(respond(url, (DATA / "search_acme_page2.json").read_bytes())))
    assert len(mentions) == 2


# --------------------------------------------------------------------------- failures


def test_an_html_page_instead_of_json_raises_value_error_naming_the_url() -> None:
    url = f"{BASE}/search.json?q=acme"
    body = "<!doctype html><html><head><title>Blocked</title></head><body>whoa there!</body></html>"
    with pytest.raises(ValueError, match=re.escape(url) + ".*did not return JSON"):
        list(source().parse(respond(url, body)))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"message": "Forbidden", "error": 403}', "Reddit error: 403 Forbidden"),
        ('{"reason": "private", "message": "Forbidden", "error": 403}', "Reddit error"),
        ('{"kind": "Listing", "data": {"items": []}}', "not a Reddit listing"),
        ('{"kind": "t3", "data": {"children": []}}', "not a Reddit listing"),
        ("[]", "not a Reddit comment page"),  # a list: only a comment page is one
    ],
)
def test_error_json_and_changed_listings_raise_value_error(body: str, message: str) -> None:
    url = f"{BASE}/search.json?q=acme"
    with pytest.raises(ValueError, match=re.escape(url)) as error:
        list(source().parse(respond(url, body)))
    assert message in str(error.value)


def test_a_thread_that_is_not_two_listings_raises_value_error() -> None:
    url = f"{BASE}/comments/1gq7x2a.json"
    with pytest.raises(ValueError, match="not a Reddit comment page"):
        list(
            source().parse(respond(url, json.dumps(load("search_acme_page1.json")), kind="thread"))
        )


def test_an_empty_page_gives_nothing_and_asks_for_nothing() -> None:
    empty = (
        '{"kind": "Listing", "data": {"after": null, "dist": 0, "children": [], "before": null}}'
    )
    src = source()
    assert split(src.parse(respond(f"{BASE}/search.json?q=acme", empty))) == ([], [])
    assert saved(src, "acme") is None


def test_a_changed_item_degrades_that_mention_only() -> None:
    page = load("search_acme_page1.json")
    first, second, third = (child["data"] for child in page["data"]["children"])
    del first["created_utc"]  # renamed field: this post cannot be dated
    second["author"] = {"name": "gadget_wire"}  # an object instead of a string
    second["ups"] = "many"
    del second["permalink"]  # the URL is rebuilt from the subreddit and id
    third["num_comments"] = None
    page["data"]["children"].append({"kind": "t5", "data": {"display_name": "acme"}})
    page["data"]["children"].append("garbage")
    src = source()
    mentions, _ = split(src.parse(respond(f"{BASE}/search.json?q=acme", json.dumps(page))))

    link, removed = mentions
    assert link.author.name is None and link.engagement.likes is None
    assert link.engagement.score == 57
    assert link.url == link.canonical_url == f"{WEB}/r/gadgets/comments/1gq5k0d/"
    assert removed.engagement.comments is None
    assert src.skipped == {"without a date": 1, "of kind 't5'": 1, "not an object": 1}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"created_utc": 1.0, "title": "x"}, "without an id"),
        ({"id": "a", "title": "x", "subreddit": "acme"}, "without a date"),
        ({"id": "a", "created_utc": "soon", "title": "x", "subreddit": "acme"}, "without a date"),
        ({"id": "a", "created_utc": 1.0, "title": "x"}, "without a permalink"),
        (
            {"id": "a", "created_utc": 1.0, "subreddit": "acme", "selftext": "[deleted]"},
            "without text",
        ),
    ],
)
def test_posts_that_cannot_be_mentions_say_why(data: dict[str, Any], reason: str) -> None:
    outcome = post_to_mention(data)
    assert isinstance(outcome, str) and outcome.startswith(reason)


def test_a_comment_listing_item_and_escaped_html() -> None:
    outcome = comment_to_mention(
        {
            "id": "c9",
            "created_utc": 1790000000,
            "body": "Acme &amp; Globex",
            "body_html": "&lt;div&gt;&lt;p&gt;Acme &amp;amp; Globex&lt;/p&gt;&lt;/div&gt;",
            "link_id": "t3_p1",
            "parent_id": "t1_c8",
            "link_title": "Which  hub?",
            "subreddit": "homeautomation",
            "author": "x",
            "ups": 2,
            "score": 2,
        }
    )
    assert isinstance(outcome, Mention)
    assert (outcome.text, outcome.title) == ("Acme & Globex", "Re: Which hub?")
    assert outcome.url == outcome.canonical_url == f"{WEB}/r/homeautomation/comments/p1/comment/c9/"
    assert outcome.published_at == datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)


def test_the_recorded_site_for_contract_checks_loads() -> None:
    """The recorded site the package ships, which ``listener plugins check reddit`` replays."""
    routes = DATA.routes()
    assert routes and all(route.status == 200 and route.body for route in routes)
    assert RedditSource.example_options


def test_the_plugin_registers_the_source() -> None:
    assert reddit.listener_register_sources() == [RedditSource]
    assert (RedditSource.name, RedditSource.kind) == ("reddit", SourceKind.FORUM)
    assert (RedditSource.download_delay, RedditSource.concurrency) == (6.0, 1)


# --------------------------------------------------------------------------- replayed crawls


def _routes_first_run() -> list[Route]:
    after = {"q": "acme", "after": "t3_1gq2m9z"}
    return [
        Route("/search.json", query=after, status=429, times=1, headers={"Retry-After": "1"}),
        Route("/search.json", query=after, body=(DATA / "search_acme_page2.json").read_bytes()),
        Route(
            "/search.json", query={"q": "acme"}, body=(DATA / "search_acme_page1.json").read_bytes()
        ),
        Route("/comments/1gq7x2a.json", body=(DATA / "comments_1gq7x2a.json").read_bytes()),
        # Reddit's error JSON, with a 200 as some proxies send it.
        Route(
            "/search.json",
            query={"q": "globex"},
            body=b'{"message": "Internal Server Error", "error": 500}',
        ),
    ]


def _routes_second_run() -> list[Route]:
    empty = (
        b'{"kind": "Listing", "data": {"after": null, "dist": 0, "children": [], "before": null}}'
    )
    return [
        Route(
            "/search.json", query={"q": "acme"}, body=(DATA / "search_acme_run2.json").read_bytes()
        ),
        Route("/comments/1gr1n2p.json", body=(DATA / "comments_1gr1n2p.json").read_bytes()),
        Route("/search.json", query={"q": "globex"}, body=empty),
    ]


REPLAY_BRANDS = [{"name": "Acme", "keywords": ["acme"]}, {"name": "Globex", "keywords": ["globex"]}]
REPLAY_OPTIONS = {"base_url": "{base_url}", "max_pages": 2, "limit": 3}


@pytest.fixture(scope="module")
def crawls(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ReplayResult, ReplayResult, Path]]:
    home = tmp_path_factory.mktemp("reddit-home")
    first = replay_crawl(
        "reddit", REPLAY_OPTIONS, _routes_first_run(), brands=REPLAY_BRANDS, home=home
    )
    second = replay_crawl(
        "reddit", REPLAY_OPTIONS, _routes_second_run(), brands=REPLAY_BRANDS, home=home
    )
    yield first, second, home


@pytest.mark.slow
def test_replayed_first_run_follows_pages_threads_and_survives_errors(
    crawls: tuple[ReplayResult, ReplayResult, Path],
) -> None:
    first, _, _ = crawls
    assert first.returncode == 0, first.log
    assert len(first.mentions) == 8
    assert {m.canonical_url for m in first.mentions} == {
        f"{WEB}/r/BuyItForLife/comments/1gq7x2a/",
        f"{WEB}/r/gadgets/comments/1gq5k0d/",
        f"{WEB}/r/techsupport/comments/1gq2m9z/",
        f"{WEB}/r/homeautomation/comments/1gp9a1b/",
        f"{WEB}/r/acme/comments/1gp3c2d/",
        f"{WEB}/r/BuyItForLife/comments/1gq7x2a/comment/lx1g8h9/",
        f"{WEB}/r/BuyItForLife/comments/1gq7x2a/comment/lx1a2b3/",
        f"{WEB}/r/BuyItForLife/comments/1gq7x2a/comment/lx1c4d5/",
    }
    for mention in first.mentions:
        assert mention.id == mention_id("reddit", mention.canonical_url)
        assert mention.published_at.tzinfo is not None
    by_url = {m.canonical_url: m for m in first.mentions}
    rocket = by_url[f"{WEB}/r/BuyItForLife/comments/1gq7x2a/"]
    assert (rocket.engagement.likes, rocket.engagement.comments) == (412, 8)
    reply = by_url[f"{WEB}/r/BuyItForLife/comments/1gq7x2a/comment/lx1c4d5/"]
    assert (reply.thread_id, reply.parent_id, reply.author.handle) == (
        "t3_1gq7x2a",
        "t1_lx1a2b3",
        "kettle_pilot",
    )
    assert by_url[f"{WEB}/r/acme/comments/1gp3c2d/"].engagement.score == -3

    stats = first.source
    assert stats["mentions"] == 8
    assert stats["statuses"] == {"200": 4}
    assert (stats["parse_errors"], stats["fetch_errors"]) == (1, 0)
    assert "Reddit error: 500 Internal Server Error" in stats["last_error"]
    assert "/search.json?q=globex" in stats["last_error"]
    page2 = [r for r in first.requests if r.path == "/search.json" and r.param("after")]
    assert [r.status for r in page2] == [429, 200]
    assert page2[1].param("count") == "3"
    threads = [r.path for r in first.requests if r.path.startswith("/comments/")]
    assert threads == ["/comments/1gq7x2a.json"]  # the only found post with comments


@pytest.mark.slow
def test_replayed_second_run_asks_only_for_newer_items(
    crawls: tuple[ReplayResult, ReplayResult, Path],
) -> None:
    first, second, home = crawls
    assert second.returncode == 0, second.log
    searches = [r for r in second.requests if r.path == "/search.json"]
    assert sorted(r.param("q") or "" for r in searches) == ["acme", "globex"]
    acme = next(r for r in searches if r.param("q") == "acme")
    assert acme.param("after") is None  # the first page reached what the first run saw
    seen = datetime(2026, 11, 18, 14, 5, tzinfo=UTC)
    assert acme.param("t") == time_window(seen, datetime.now(UTC))
    assert [r.path for r in second.requests if r.path.startswith("/comments/")] == [
        "/comments/1gr1n2p.json"
    ]
    assert [m.canonical_url for m in second.mentions] == [
        f"{WEB}/r/acme/comments/1gr1n2p/",
        f"{WEB}/r/technology/comments/1gqz9y8/",
        f"{WEB}/r/acme/comments/1gr1n2p/comment/ly2b3c4/",
    ]
    assert not {m.id for m in second.mentions} & {m.id for m in first.mentions}
    assert second.source["parse_errors"] == 0
    state = json.loads((home / "state" / "reddit.json").read_text(encoding="utf-8"))
    assert state["newest"]["acme"] == "2026-11-21T08:00:00+00:00"
    assert "globex" not in state["newest"]


# --------------------------------------------------------------------------- recorded responses


def cassette(name: str) -> dict[str, Any]:
    path = RECORDED / name
    if not path.is_file():
        pytest.skip(f"recorded responses not available: {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def recorded(name: str, path_part: str) -> tuple[str, bytes]:
    for interaction in cassette(name)["interactions"]:
        uri = interaction["request"]["uri"]
        if path_part in uri:
            return uri, interaction["response"]["body"]["string"].encode("utf-8")
    raise AssertionError(f"{name} has no request to {path_part}")


@pytest.mark.parametrize(
    ("name", "path_part"),
    [
        ("asyncpraw_cassettes/TestSubreddit.test_search.json", "/search/"),
        ("praw_cassettes/TestSubredditListings.test_new.json", "/new"),
    ],
)
def test_recorded_listings_match_the_raw_json(name: str, path_part: str) -> None:
    uri, body = recorded(name, path_part)
    raw = json.loads(body)
    posts = [c["data"] for c in raw["data"]["children"] if c["kind"] == "t3"]
    src = source()
    mentions, requests = split(src.parse(respond(uri, body, threads=True)))

    assert len(mentions) == len(posts) > 0
    for post, mention in zip(posts, mentions, strict=True):
        canonical = f"{WEB}/r/{post['subreddit']}/comments/{post['id']}/"
        assert mention.canonical_url == canonical
        assert mention.id == mention_id("reddit", canonical)
        assert mention.url == WEB + post["permalink"]
        assert mention.published_at == created(post["created_utc"])
        assert mention.author.handle == post["author"]
        assert mention.engagement.likes == post["ups"]
        assert mention.engagement.score == post["score"]
        assert mention.engagement.comments == post["num_comments"]
        assert mention.engagement.shares == post.get("num_crossposts")
        assert mention.title == " ".join(post["title"].split())
        assert mention.thread_id == post["name"]
        if post["selftext"] and post["selftext"] not in ("[deleted]", "[removed]"):
            assert "<" not in mention.text or "<" in post["selftext"]
        else:
            assert mention.text == mention.title
    threads = [r for r in requests if r.meta.get("kind") == "thread"]
    assert [r.meta["post"] for r in threads] == [p["id"] for p in posts if p["num_comments"] > 0]
    following = [r for r in requests if r.meta.get("kind") == "listing"]
    if raw["data"]["after"]:
        assert query_of(following[0].url)["after"] == [raw["data"]["after"]]
    else:
        assert following == []


def _raw_comments(children: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for child in children:
        if child["kind"] == "t1":
            yield child["data"]
            if isinstance(child["data"].get("replies"), dict):
                yield from _raw_comments(child["data"]["replies"]["data"]["children"])


def _raw_more(children: list[dict[str, Any]]) -> int:
    total = 0
    for child in children:
        if child["kind"] == "more":
            total += child["data"]["count"]
        elif isinstance(child["data"].get("replies"), dict):
            total += _raw_more(child["data"]["replies"]["data"]["children"])
    return total


@pytest.mark.parametrize(
    ("name", "path_part"),
    [
        ("asyncpraw_cassettes/TestSubmission.test_comments.json", "/comments/2gmzqe"),
        ("praw_cassettes/TestSubmission.test_comments.json", "/comments/2gmzqe"),
        ("praw_cassettes/TestCommentForest.test_replace__on_direct_comment.json", "context=100"),
    ],
)
def test_recorded_comment_trees_match_the_raw_json(name: str, path_part: str) -> None:
    uri, body = recorded(name, path_part)
    raw = json.loads(body)
    post = raw[0]["data"]["children"][0]["data"]
    comments = list(_raw_comments(raw[1]["data"]["children"]))
    kept = [c for c in comments if c["body"] not in ("[deleted]", "[removed]")]
    src = source()
    mentions, requests = split(src.parse(respond(uri, body, kind="thread")))

    assert requests == []
    assert len(mentions) == len(kept) > 0
    assert src.skipped.total() == len(comments) - len(kept)
    assert src.unfetched == _raw_more(raw[1]["data"]["children"])
    for comment, mention in zip(kept, mentions, strict=True):
        canonical = f"{WEB}/r/{comment['subreddit']}/comments/{post['id']}/comment/{comment['id']}/"
        assert mention.canonical_url == canonical
        assert mention.published_at == created(comment["created_utc"])
        assert mention.thread_id == comment["link_id"] == post["name"]
        assert mention.parent_id == comment["parent_id"]
        assert mention.title == "Re: " + " ".join(post["title"].split())
        assert mention.engagement.score == comment["score"]
        handle = None if comment["author"] == "[deleted]" else comment["author"]
        assert mention.author.handle == handle


# --------------------------------------------------------------------------- held-out shapes
# PRAW's recorded pages, changed in the test into shapes real listings take that the
# recordings happen not to hold: every other item of the page must come through intact.

SEARCH_CASSETTE = ("asyncpraw_cassettes/TestSubreddit.test_search.json", "/search/")
THREAD_CASSETTE = ("praw_cassettes/TestSubmission.test_comments.json", "/comments/2gmzqe")


def recorded_page() -> tuple[str, dict[str, Any]]:
    uri, body = recorded(*SEARCH_CASSETTE)
    return uri, json.loads(body)


def parse_page(uri: str, page: Any, **meta: Any) -> tuple[RedditSource, list[Mention]]:
    src = source()
    mentions, _ = split(src.parse(respond(uri, json.dumps(page), threads=True, **meta)))
    return src, mentions


def by_name(mentions: list[Mention]) -> dict[str, Mention]:
    return {m.thread_id or "": m for m in mentions}


def test_recorded_posts_in_other_shapes_keep_the_rest_of_the_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri, page = recorded_page()
    children = page["data"]["children"]
    posts = [c["data"] for c in children]
    deleted, removed, link, gallery, profile, escaped, undated, stringy = posts[:8]
    deleted["author"] = "[deleted]"  # the account is gone, the post stays
    deleted["author_fullname"] = None
    removed["selftext"] = "[removed]"  # removed by moderators: only the title is left
    removed["selftext_html"] = None
    removed["removed_by_category"] = "moderator"
    for post in (link, gallery):  # a link post and a gallery carry no text of their own
        post.update(is_self=False, selftext="", selftext_html=None, url="https://example.com/a")
    gallery.update(is_gallery=True, gallery_data={"items": [{"media_id": "m1", "id": 1}]})
    gallery["crosspost_parent_list"] = [dict(link)]  # and it is a crosspost of the link
    profile.update(subreddit="u_some-user_with-20ch", subreddit_name_prefixed="u/some-user")
    profile["permalink"] = f"/r/u_some-user_with-20ch/comments/{profile['id']}/a_title/"
    escaped.update(title="AT&amp;T &lt;3 Acme", selftext_html=None, selftext="Q&amp;A")
    undated["created_utc"] = None
    stringy.update(created_utc=f"{stringy['created_utc']:.3f}", ups="12", num_comments="3")
    children.insert(3, {"kind": "more", "data": {"count": 4, "children": ["a", "b"]}})
    children[0]["data"]["stickied"] = True

    with caplog.at_level("WARNING"):
        src, mentions = parse_page(uri, page)

    found = by_name(mentions)
    assert len(mentions) == len(posts) - 1  # all but the undated one
    assert undated["name"] not in found
    assert src.skipped == {"without a date": 1, "of kind 'more'": 1}
    # The warning names the skipped item and why.
    assert f"1 without a date ({undated['name']})" in caplog.text
    assert found[deleted["name"]].author.name is None
    assert found[deleted["name"]].text.strip()
    assert found[removed["name"]].text == " ".join(removed["title"].split())
    assert found[link["name"]].text == found[link["name"]].title == link["title"].strip()
    # The gallery (no captions) crossposts the link: the link's title is what it shows.
    assert found[gallery["name"]].text == " ".join(link["title"].split())
    mention = found[profile["name"]]
    canonical = f"{WEB}/r/u_some-user_with-20ch/comments/{profile['id']}/"
    assert (mention.canonical_url, mention.url) == (canonical, WEB + profile["permalink"])
    assert (found[escaped["name"]].title, found[escaped["name"]].text) == ("AT&T <3 Acme", "Q&A")
    mention = found[stringy["name"]]
    assert mention.published_at == created(float(stringy["created_utc"]))
    assert (mention.engagement.likes, mention.engagement.comments) == (12, 3)


def test_a_recorded_page_that_lost_its_children_or_came_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri, page = recorded_page()
    page["data"].update(children=[], after=None, dist=0)
    assert parse_page(uri, page)[1] == []
    with pytest.raises(ValueError, match="not a Reddit listing"):
        parse_page(uri, {"kind": "Listing", "data": {"after": None}})
    # An error body with HTTP 200 names the URL instead of passing for an empty page.
    with pytest.raises(ValueError, match=re.escape(uri)):
        parse_page(uri, {"message": "Too Many Requests", "error": 429})


def test_recorded_comment_tree_in_other_shapes() -> None:
    uri, body = recorded(*THREAD_CASSETTE)
    raw = json.loads(body)
    top = raw[1]["data"]["children"][0]["data"]
    reply = top["replies"]["data"]["children"][0]["data"]
    top["author"] = None  # a suspended account
    top["body"] = "&gt; quoted\n\nAT&amp;T"  # no body_html: the escaped markdown is read
    top["body_html"] = None
    reply["replies"] = {
        "kind": "Listing",
        "data": {
            "children": [
                {
                    "kind": "t1",
                    "data": {
                        **reply,
                        "id": "gone1",
                        "name": "t1_gone1",
                        "body": "[deleted]",
                        "author": "[deleted]",
                        "body_html": '<div class="md"><p>[deleted]</p></div>',
                        "replies": "",
                    },
                },
                {"kind": "more", "data": {"count": 7, "children": ["x"]}},
            ]
        },
    }
    src = source()
    mentions, _ = split(src.parse(respond(uri, json.dumps(raw), kind="thread")))
    assert [m.parent_id for m in mentions] == [top["parent_id"], reply["parent_id"]]
    assert mentions[0].author.name is None
    assert mentions[0].text == "> quoted\n\nAT&T"
    assert mentions[1].text.strip() and mentions[1].author.handle == reply["author"]
    assert src.skipped == {"without text (deleted or removed)": 1}
    assert src.unfetched == 7


def test_a_recorded_comment_page_is_read_as_one_whatever_the_request_said() -> None:
    """/comments/ID answers a list of two listings: read as a thread even from a listing."""
    uri, body = recorded(*THREAD_CASSETTE)
    as_thread = split(source().parse(respond(uri, body, kind="thread")))[0]
    as_listing = split(source().parse(respond(uri, body)))[0]
    assert [m.id for m in as_listing] == [m.id for m in as_thread] and as_thread


def test_a_post_whose_values_make_the_mention_fail_is_skipped_not_the_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An absolute permalink that is not a well-formed URL passes the permalink check but
    makes Mention.create raise: that post is skipped as unreadable and named, the page kept."""
    uri, page = recorded_page()
    broken = page["data"]["children"][1]["data"]
    broken["permalink"] = f"https://[www.reddit.com/r/x/comments/{broken['id']}/"
    with caplog.at_level("WARNING"):
        src, mentions = parse_page(uri, page)
    assert len(mentions) == len(page["data"]["children"]) - 1
    (reason,) = src.skipped
    assert reason.startswith("unreadable (ValueError: ")
    assert f"({broken['name']})" in caplog.text


def test_no_broken_field_of_a_recorded_post_or_comment_raises() -> None:
    """Every field of a recorded post and comment, one at a time, deleted, null or of
    another type: the item is mapped or skipped with a reason, parse() never raises."""
    uri, page = recorded_page()
    post = page["data"]["children"][0]
    for label, broken in each_field_broken(post["data"]):
        listing = {"kind": "Listing", "data": {"after": None, "children": [
            {"kind": "t3", "data": broken}, page["data"]["children"][1]]}}  # fmt: skip
        src, mentions = parse_page(uri, listing)
        assert len(mentions) + src.skipped.total() == 2, label
    thread_uri, body = recorded(*THREAD_CASSETTE)
    raw = json.loads(body)
    comment = raw[1]["data"]["children"][0]["data"]
    for label, broken in each_field_broken(comment, depth=1):
        raw[1]["data"]["children"][0]["data"] = broken
        src = source()
        mentions, _ = split(src.parse(respond(thread_uri, json.dumps(raw), kind="thread")))
        assert len(mentions) + src.skipped.total() >= 1, label


def test_recorded_crossposts_polls_and_galleries_read_what_a_reader_sees() -> None:
    """Posts of the recorded search page turned into a poll, a captioned gallery and
    crossposts: their text is what Reddit shows beyond the title (options, captions, the
    crossposted post's title and text), and the title alone when there is nothing more."""
    uri, page = recorded_page()
    posts = [c["data"] for c in page["data"]["children"]]
    selfpost = next(p for p in posts if p["selftext"].strip() and p["selftext_html"])
    others = [p for p in posts if p is not selfpost]
    poll, gallery, crosspost, same_title, broken = others[:5]
    for post in (poll, gallery, crosspost, same_title, broken):
        post.update(selftext="", selftext_html=None, is_self=False)
    poll.update(
        is_self=True,
        selftext="Which one do you use?",
        poll_data={
            "voting_end_timestamp": 1600000000000,
            "total_vote_count": 12,
            "options": [{"id": "1", "text": "Acme &amp; Co"}, {"id": "2", "text": "Globex"},
                        {"id": "3", "text": ""}, "bad"],
        },
    )  # fmt: skip
    gallery.update(
        is_gallery=True,
        gallery_data={
            "items": [
                {"media_id": "a1", "id": 1, "caption": "The  Acme anvil"},
                {"media_id": "a2", "id": 2},  # no caption
                {"media_id": "a3", "id": 3, "caption": "The Acme anvil"},  # repeated
                {"media_id": "a4", "id": 4, "caption": "Unboxed", "outbound_url": "https://x.example"},
            ]
        },
    )  # fmt: skip
    crosspost.update(crosspost_parent=selfpost["name"], crosspost_parent_list=[dict(selfpost)])
    same_title["crosspost_parent_list"] = [{**selfpost, "title": same_title["title"],
                                            "selftext": "", "selftext_html": None}]  # fmt: skip
    broken["crosspost_parent_list"] = [None]

    src, mentions = parse_page(uri, page)

    found = by_name(mentions)
    assert len(mentions) == len(posts) and src.skipped.total() == 0
    assert found[poll["name"]].text == "Which one do you use?\n\n- Acme & Co\n- Globex"
    assert found[gallery["name"]].text == "The Acme anvil\nUnboxed"
    parent_text = found[selfpost["name"]].text
    assert found[crosspost["name"]].title == " ".join(crosspost["title"].split())
    assert found[crosspost["name"]].text == (
        " ".join(selfpost["title"].split()) + "\n\n" + parent_text
    )
    for post in (same_title, broken):  # nothing beyond the title: the title
        assert found[post["name"]].text == " ".join(post["title"].split())
