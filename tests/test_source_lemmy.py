"""The ``lemmy`` source: own fixtures in the API v3 format and a replayed crawl.

No recorded Lemmy responses exist in the shared fixtures (``api_responses`` has
no ``lemmy`` folder), so the recorded-response test skips until one is added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
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
from listener.plugins import lemmy
from listener.plugins.lemmy import LemmyOptions, LemmySource, comment_to_mention, post_to_mention
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split

DATA = RecordedSite("lemmy")
RECORDED = SHARED_FIXTURES / "api_responses" / "lemmy"
BASE = "http://127.0.0.1:8999"
SEARCH = "/api/v3/search"
BRANDS = [
    BrandConfig(name="Acme", keywords=["acme", "#acme"]),
    BrandConfig(name="Globex", keywords=["globex"]),
]
TOKEN = "LISTENER_TEST_LEMMY_TOKEN"


def source(**options: Any) -> LemmySource:
    return make_source(LemmySource, brands=BRANDS, **{"instances": [BASE], **options})


def respond(src: LemmySource, body: bytes | str, page: int = 1, key: str = "k") -> Response:
    url = src.search_url(BASE, "acme", None, page)
    meta = {"key": key, "instance": BASE, "term": "acme", "community": None, "page": page}
    return testing.respond(url, body, meta=meta)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def remember(src: LemmySource, folder: Path, newest: dict[str, datetime]) -> None:
    path = folder / "lemmy.json"
    path.write_text(json.dumps({"newest": {k: v.isoformat() for k, v in newest.items()}}))
    src.checkpoint = Checkpoint(path)


def when(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- options and requests


def test_options_validation() -> None:
    options = LemmyOptions(plugin="lemmy")
    assert (options.instances, options.search_type, options.limit) == (
        ["https://lemmy.world"],
        "All",
        50,
    )
    assert LemmyOptions(
        plugin="lemmy", communities=["!Technology", "gadgets@beehaw.org"]
    ).communities == [
        "technology",
        "gadgets@beehaw.org",
    ]
    for bad in (
        {"instances": []},
        {"limit": 51},
        {"communities": ["not a community"]},
        {"search_type": "Users"},
        {"instances": ["https://a.example", "https://b.example"], "token_env": TOKEN},
        {"tokens": {"c.example": TOKEN}},
    ):
        with pytest.raises(ValidationError):
            LemmyOptions(plugin="lemmy", **bad)


def test_a_missing_token_is_a_clear_error_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN, raising=False)
    with pytest.raises(ConfigError, match=rf"token_env.*{TOKEN}"):
        source(token_env=TOKEN)


def test_one_search_per_instance_community_and_term(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN, "jwt")
    src = LemmySource(
        LemmyOptions(
            plugin="lemmy",
            instances=["https://lemmy.example", "https://beehaw.example/"],
            communities=["technology"],
            tokens={"lemmy.example": TOKEN},
            limit=20,
        ),
        BRANDS,
    )
    requests = list(src.start_requests())
    assert [(urlsplit(r.url).hostname, query_of(r.url)["q"][0]) for r in requests] == [
        ("lemmy.example", "acme"),
        ("lemmy.example", "globex"),
        ("beehaw.example", "acme"),
        ("beehaw.example", "globex"),
    ]
    assert query_of(requests[0].url) == {
        "q": ["acme"],
        "type_": ["All"],
        "sort": ["New"],
        "listing_type": ["All"],
        "page": ["1"],
        "limit": ["20"],
        "community_name": ["technology"],
    }
    assert requests[0].meta["key"] == "lemmy.example/c/technology/acme"
    assert requests[0].headers["Authorization"] == "Bearer jwt"
    assert "Authorization" not in requests[2].headers  # the token belongs to one server
    plain = next(iter(source().start_requests()))
    assert plain.meta["key"] == "127.0.0.1/acme" and "community_name" not in query_of(plain.url)


# --------------------------------------------------------------------------- own fixtures


def test_a_page_maps_posts_and_comments() -> None:
    src = source(limit=2)
    mentions, requests = split(
        src.parse(respond(src, (DATA / "search_acme_page1.json").read_bytes()))
    )
    own, federated, reply = mentions

    assert own.url == own.canonical_url == "https://lemmy.example/post/101"
    assert own.id == mention_id("lemmy", own.canonical_url)
    assert (own.domain, own.source_kind) == ("lemmy.example", SourceKind.FORUM)
    assert own.title == "Acme Rocket 14: two years later"
    assert own.text == (
        "Still going strong.\n\n* battery at 91%\n* no dead pixels\n\nWould buy **Acme** again."
    )
    assert own.published_at == datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
    assert (own.author.name, own.author.handle, own.author.url) == (
        "Anna K.",
        "anna@lemmy.example",
        "https://lemmy.example/u/anna",
    )
    e = own.engagement
    assert (e.likes, e.comments, e.score, e.shares, e.total) == (25, 4, 23, None, 29)
    assert (own.thread_id, own.parent_id) == ("post/101", None)

    # A link post federated from another server: its own URL, its title as text.
    assert federated.canonical_url == "https://beehaw.example/post/998"
    assert federated.text == federated.title == "Acme announces Rocket 15 with USB-C"
    assert federated.author.handle == "ben_r@beehaw.example"
    assert federated.author.name == "ben_r"  # no display name

    assert reply.canonical_url == "https://lemmy.example/comment/5003"
    assert reply.title == "Re: Acme Rocket 14: two years later"
    assert (reply.thread_id, reply.parent_id) == ("post/101", "comment/5001")
    assert (reply.engagement.likes, reply.engagement.comments) == (6, 1)

    (following,) = requests  # two posts on a page of two: there may be more
    assert query_of(following.url)["page"] == ["2"]
    assert following.meta["page"] == 2
    assert src.checkpoint.values["k"] == "2026-11-20T11:30:00+00:00"


def test_a_page_that_is_not_full_is_the_last() -> None:
    src = source(limit=2)
    mentions, requests = split(
        src.parse(respond(src, (DATA / "search_acme_page2.json").read_bytes(), 2))
    )
    assert requests == [] and [m.engagement.score for m in mentions] == [-1]
    assert (
        split(
            source(limit=2, max_pages=1).parse(
                respond(src, (DATA / "search_acme_page1.json").read_bytes())
            )
        )[1]
        == []
    )


def test_older_items_are_skipped_and_stop_paging(tmp_path: Path) -> None:
    src = source(limit=2)
    remember(src, tmp_path, {"k": datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)})
    mentions, requests = split(
        src.parse(respond(src, (DATA / "search_acme_run2.json").read_bytes()))
    )
    assert [m.canonical_url for m in mentions] == [
        "https://lemmy.example/post/120",
        "https://beehaw.example/comment/88123",
    ]
    assert requests == []  # the post list reached the checkpoint, the comment list is short
    top_level = mentions[1]
    assert (top_level.thread_id, top_level.parent_id) == ("post/120", "post/120")


def test_lemmy_0_18_dates_without_a_zone_are_utc() -> None:
    view = load("search_acme_page1.json")["posts"][0]
    view["post"]["published"] = "2023-07-01T12:34:56.789012"
    outcome = post_to_mention(view, BASE)
    assert isinstance(outcome, Mention)
    assert outcome.published_at == datetime(2023, 7, 1, 12, 34, 56, 789012, tzinfo=UTC)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": "rate_limit_error"}', "Lemmy error: rate_limit_error"),
        ('{"error": "couldnt_find_community", "message": null}', "couldnt_find_community"),
        ('{"type_": "All", "results": []}', "not a Lemmy search response"),
        ("[]", "not a Lemmy search response"),
        ("<html><body>502 Bad Gateway</body></html>", "did not return JSON"),
    ],
)
def test_errors_and_changed_responses_raise_value_error_naming_the_url(
    body: str, message: str
) -> None:
    src = source()
    response = respond(src, body)
    with pytest.raises(ValueError, match=re.escape(response.url)) as error:
        list(src.parse(response))
    assert message in str(error.value)


def test_an_empty_page_gives_nothing() -> None:
    src = source()
    empty = '{"type_": "All", "comments": [], "posts": [], "communities": [], "users": []}'
    assert split(src.parse(respond(src, empty))) == ([], [])
    assert src.checkpoint.values == {}


def test_a_changed_item_degrades_that_mention_only() -> None:
    page = load("search_acme_page1.json")
    own, federated = page["posts"]
    del own["post"]["published"]
    federated["creator"] = None
    # Not a number (a numeric string such as "57" is read: listener.sourcekit.to_count).
    federated["counts"] = {"upvotes": "57 upvotes"}
    (reply,) = page["comments"]
    reply["comment"]["path"] = None
    page["posts"].append({"post": {"id": 7, "published": "2026-11-01T00:00:00Z", "deleted": True}})
    page["comments"].append("x")
    src = source(limit=50)
    mentions, _ = split(src.parse(respond(src, json.dumps(page))))
    link, comment = mentions
    assert link.author.handle is None and link.engagement.likes is None
    assert comment.parent_id == "post/101"  # without a path: the post
    assert src.skipped == {"without a date": 1, "deleted or removed": 1, "not an object": 1}


@pytest.mark.parametrize(
    ("view", "reason"),
    [
        ({"comment": "x"}, "without a comment"),
        ({"comment": {"published": "2026-11-01T00:00:00Z"}}, "without an id"),
        ({"comment": {"id": 1, "removed": True}}, "deleted or removed"),
        (
            {"comment": {"id": 1, "published": "2026-11-01T00:00:00Z", "content": " "}},
            "without text",
        ),
    ],
)
def test_comments_that_cannot_be_mentions_say_why(view: dict[str, Any], reason: str) -> None:
    outcome = comment_to_mention(view, BASE)
    assert isinstance(outcome, str) and outcome.startswith(reason)


def test_the_recorded_site_for_contract_checks_loads() -> None:
    """The recorded site the package ships, which ``listener plugins check lemmy`` replays."""
    routes = DATA.routes()
    assert routes and all(route.status == 200 and route.body for route in routes)
    assert LemmySource.example_options


def test_the_plugin_registers_the_source() -> None:
    assert lemmy.listener_register_sources() == [LemmySource]
    assert (LemmySource.name, LemmySource.kind) == ("lemmy", SourceKind.FORUM)
    assert (LemmySource.download_delay, LemmySource.concurrency) == (10.0, 1)


# --------------------------------------------------------------------------- replayed crawls

REPLAY_BRANDS = [{"name": "Acme", "keywords": ["acme"]}, {"name": "Globex", "keywords": ["globex"]}]
REPLAY_OPTIONS = {"instances": ["{base_url}"], "limit": 2}
EMPTY = b'{"type_": "All", "comments": [], "posts": [], "communities": [], "users": []}'


def _routes_first_run() -> list[Route]:
    page2 = {"q": "acme", "page": "2"}
    return [
        Route(SEARCH, query=page2, status=429, times=1, headers={"Retry-After": "1"}),
        Route(SEARCH, query=page2, body=(DATA / "search_acme_page2.json").read_bytes()),
        Route(SEARCH, query={"q": "acme"}, body=(DATA / "search_acme_page1.json").read_bytes()),
        Route(SEARCH, query={"q": "globex"}, body=b'{"error": "couldnt_find_object"}'),
    ]


def _routes_second_run() -> list[Route]:
    return [
        Route(SEARCH, query={"q": "acme"}, body=(DATA / "search_acme_run2.json").read_bytes()),
        Route(SEARCH, query={"q": "globex"}, body=EMPTY),
    ]


@pytest.fixture(scope="module")
def crawls(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ReplayResult, ReplayResult, Path]]:
    home = tmp_path_factory.mktemp("lemmy-home")
    first = replay_crawl(
        "lemmy", REPLAY_OPTIONS, _routes_first_run(), brands=REPLAY_BRANDS, home=home
    )
    second = replay_crawl(
        "lemmy", REPLAY_OPTIONS, _routes_second_run(), brands=REPLAY_BRANDS, home=home
    )
    yield first, second, home


@pytest.mark.slow
def test_replayed_first_run(crawls: tuple[ReplayResult, ReplayResult, Path]) -> None:
    first, _, _ = crawls
    assert first.returncode == 0, first.log
    page1, page2 = load("search_acme_page1.json"), load("search_acme_page2.json")
    views = {v["post"]["ap_id"]: v for v in page1["posts"] + page2["posts"]}
    views |= {v["comment"]["ap_id"]: v for v in page1["comments"]}
    assert sorted(m.canonical_url for m in first.mentions) == sorted(views)
    for mention in first.mentions:
        view = views[mention.canonical_url]
        item = view.get("comment") or view["post"]
        assert mention.id == mention_id("lemmy", mention.canonical_url)
        assert mention.published_at == when(item["published"])
        assert mention.engagement.score == view["counts"]["score"]
        assert (
            mention.author.handle
            == f"{view['creator']['name']}@{urlsplit(view['creator']['actor_id']).hostname}"
        )
        assert mention.thread_id == f"post/{(view.get('post') or item)['id']}"

    stats = first.source
    assert (stats["mentions"], stats["parse_errors"], stats["fetch_errors"]) == (4, 1, 0)
    assert "Lemmy error: couldnt_find_object" in stats["last_error"]
    pages = [(r.param("page"), r.status) for r in first.requests if r.param("q") == "acme"]
    assert pages == [("1", 200), ("2", 429), ("2", 200)]


@pytest.mark.slow
def test_replayed_second_run_asks_only_for_newer_items(
    crawls: tuple[ReplayResult, ReplayResult, Path],
) -> None:
    first, second, home = crawls
    assert second.returncode == 0, second.log
    acme = [r.param("page") for r in second.requests if r.param("q") == "acme"]
    assert acme == ["1"]  # the first page reached what the first run saw
    assert sorted(m.canonical_url for m in second.mentions) == [
        "https://beehaw.example/comment/88123",
        "https://lemmy.example/post/120",
    ]
    assert not {m.id for m in second.mentions} & {m.id for m in first.mentions}
    state = json.loads((home / "state" / "lemmy.json").read_text(encoding="utf-8"))
    assert state["newest"] == {"127.0.0.1/acme": "2026-11-22T08:12:00+00:00"}


# --------------------------------------------------------------------------- recorded responses


def test_recorded_search_responses_match_the_raw_json() -> None:
    files = sorted(RECORDED.glob("*.json")) if RECORDED.is_dir() else []
    if not files:
        pytest.skip(f"no recorded Lemmy responses in {RECORDED}")
    for path in files:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not {"posts", "comments"} & set(raw):
            continue
        src = source(limit=50)
        mentions, _ = split(src.parse(respond(src, json.dumps(raw))))
        kept = [
            v["post"]["ap_id"]
            for v in raw.get("posts", [])
            if not (v["post"]["deleted"] or v["post"]["removed"])
        ] + [
            v["comment"]["ap_id"]
            for v in raw.get("comments", [])
            if not (v["comment"]["deleted"] or v["comment"]["removed"])
        ]
        assert [m.canonical_url for m in mentions] == kept, path.name


# --------------------------------------------------------------------------- other shapes
# No real Lemmy recordings exist in the shared fixtures: the shipped page is changed in the
# test into the shapes real pages take (0.18 times without a zone, Lemmy 1.0 field names,
# deleted and removed items, link posts, deleted creators); the rest must come through.


def test_a_page_in_other_shapes_keeps_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    page = load("search_acme_page1.json")
    first, second = page["posts"][:2]
    comment = page["comments"][0]
    link = {
        **second,
        "post": {
            **second["post"],
            "id": 900,
            "body": None,
            "ap_id": "https://other.example/post/9",
            "url": "https://example.com/acme-review",
            "name": "Acme  review  (link)",
        },
    }
    modern = {
        **first,
        "post": {
            **first["post"],
            "id": 901,
            "ap_id": "https://new.example/post/1",
            "published_at": "2026-11-21T08:00:00Z",
            "score": 9,
            "upvotes": 11,
            "comments": 2,
        },
    }
    del modern["post"]["published"]
    modern.pop("counts", None)
    old = {
        **first,
        "post": {
            **first["post"],
            "id": 902,
            "ap_id": "https://old.example/post/2",
            "published": "2026-11-21T07:00:00.123456",
        },
    }  # 0.18: no zone
    old["creator"] = {**first["creator"], "display_name": None, "deleted": True}
    removed = {**first, "post": {**first["post"], "id": 903, "removed": True}}
    gone = {**comment, "comment": {**comment["comment"], "id": 904, "deleted": True, "content": ""}}
    page["posts"] += [link, modern, old, removed]
    page["comments"] += [gone, "garbage"]
    src = source(limit=50)

    with caplog.at_level("WARNING"):
        mentions, _ = split(src.parse(respond(src, json.dumps(page))))

    found = {m.canonical_url: m for m in mentions}
    assert len(mentions) == 2 + 1 + 3
    assert src.skipped == {"deleted or removed": 2, "not an object": 1}
    assert "2 deleted or removed (post 903, comment 904)" in caplog.text
    assert found["https://other.example/post/9"].text == "Acme review (link)"
    newer = found["https://new.example/post/1"]
    assert newer.published_at == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert (newer.engagement.likes, newer.engagement.comments, newer.engagement.score) == (11, 2, 9)
    older = found["https://old.example/post/2"]
    assert older.published_at == datetime(2026, 11, 21, 7, 0, 0, 123456, tzinfo=UTC)
    assert older.author.name == first["creator"]["name"]


def test_no_broken_field_of_a_post_or_comment_raises() -> None:
    """Every field of a post view and of a comment view (and their post, creator and
    counts), one at a time, deleted, null or of another type: never raised."""
    page = load("search_acme_page1.json")
    for kind in ("posts", "comments"):
        for label, broken in each_field_broken(page[kind][0]):
            src = source(limit=50)
            changed = {**page, kind: [broken, *page[kind][1:]]}
            mentions, _ = split(src.parse(respond(src, json.dumps(changed))))
            assert len(mentions) + src.skipped.total() == 3, label


def test_titles_and_texts_escaped_by_lemmy_0_18_are_decoded() -> None:
    """Lemmy 0.18.3 and 0.18.4 stored '&', '<' and '>' as entities in titles, bodies and
    comments (LemmyNet/lemmy#3754, #3987): read as Markdown renders them."""
    page = load("search_acme_page1.json")
    post, comment = page["posts"][0], page["comments"][0]
    post["post"].update(name="Acme &amp; Globex: Q&amp;A", body="a &lt;b&gt; &amp;&amp; c")
    comment["comment"]["content"] = "AT&amp;T &gt; Acme"
    comment["post"]["name"] = "Acme &amp; Globex: Q&amp;A"
    src = source(limit=50)
    mentions, _ = split(src.parse(respond(src, json.dumps(page))))
    found = {m.canonical_url: m for m in mentions}
    asked = found[post["post"]["ap_id"]]
    assert (asked.title, asked.text) == ("Acme & Globex: Q&A", "a <b> && c")
    said = found[comment["comment"]["ap_id"]]
    assert (said.text, said.title) == ("AT&T > Acme", "Re: Acme & Globex: Q&A")


def test_a_search_page_handed_over_without_its_request_follows_its_own_query() -> None:
    """The recorded search page handed to the source with no request meta: its posts and
    comments are read, and the next page is asked for with the term, community and page
    of its own URL (it used to fail on the missing 'term' whenever the page was full)."""
    src = source(limit=2)
    url = src.search_url(BASE, "acme", "tech@lemmy.example", 1)
    payload = (DATA / "search_acme_page1.json").read_bytes()
    mentions, requests = split(src.parse(testing.respond(url, payload, meta={})))
    data = load("search_acme_page1.json")
    assert len(mentions) == len(data["posts"]) + len(data["comments"])
    assert [r.url for r in requests] == [src.search_url(BASE, "acme", "tech@lemmy.example", 2)]
    assert requests[0].meta["term"] == "acme" and requests[0].meta["page"] == 2
