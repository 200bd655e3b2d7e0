"""The ``appstore`` source: own customer-review feeds through the real crawler and the parser."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_FIXTURES, RecordedSite, each_field_broken
from pydantic import ValidationError

from listener import testing
from listener.mention import Mention, SourceKind, mention_id
from listener.plugins import appstore
from listener.plugins.appstore import AppStoreOptions, AppStoreSource, app_id, entry_to_mention
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split

DATA = RecordedSite("appstore")
BASE = "https://itunes.example"
APP = "1500000001"
ACME = {"name": "Acme", "keywords": ["acme"]}
PST = timezone(timedelta(hours=-8))


def body(name: str) -> bytes:
    return (DATA / name).read_bytes()


def feed_path(country: str, page: int) -> str:
    return f"/{country}/rss/customerreviews/page={page}/id={APP}/sortby=mostrecent/json"


def source(**options: Any) -> AppStoreSource:
    return make_source(AppStoreSource, **{"base_url": BASE, "apps": [APP], **options})


def page_response(
    src: AppStoreSource, payload: bytes, country: str = "us", page: int = 1
) -> Response:
    url = src.feed_url(APP, country, page)
    meta = {"app": APP, "country": country, "page": page}
    return testing.respond(url, payload, content_type="text/javascript; charset=utf-8", meta=meta)


def remembered(tmp_path: Path, key: str, when: datetime) -> Checkpoint:
    """A checkpoint as a later run loads it: ``key`` was last seen at ``when``."""
    earlier = Checkpoint(tmp_path / "checkpoint.json")
    earlier.advance(key, when)
    earlier.save()
    return Checkpoint(tmp_path / "checkpoint.json")


def review_url(country: str, review: str) -> str:
    return f"https://apps.apple.com/{country}/app/id{APP}?see-all=reviews&reviewId={review}"


# --------------------------------------------------------------------------- options, requests


def test_options_accept_ids_in_several_spellings() -> None:
    options = AppStoreOptions(
        plugin="appstore",
        apps=[
            "1500000001",
            "id284882215",
            "https://apps.apple.com/us/app/acme-rocket/id389801252?mt=8",
        ],
        countries=["US", " gb "],
    )
    assert options.apps == ["1500000001", "284882215", "389801252"]
    assert options.countries == ["us", "gb"]
    assert options.base_url == "https://itunes.apple.com"
    for bad in ({"apps": []}, {"apps": ["acme-rocket"]}, {"countries": ["usa"]}):
        with pytest.raises(ValidationError):
            AppStoreOptions(plugin="appstore", **{"apps": [APP], **bad})
    with pytest.raises(ValueError, match="not an App Store app id"):
        app_id("https://apps.apple.com/us/app/acme-rocket")


def test_start_requests_one_feed_per_app_and_country() -> None:
    requests = list(source(apps=[APP, "284882215"], countries=["us", "gb"]).start_requests())
    assert [r.url for r in requests] == [
        f"{BASE}{feed_path('us', 1)}", f"{BASE}{feed_path('gb', 1)}",
        f"{BASE}/us/rss/customerreviews/page=1/id=284882215/sortby=mostrecent/json",
        f"{BASE}/gb/rss/customerreviews/page=1/id=284882215/sortby=mostrecent/json",
    ]  # fmt: skip
    assert requests[0].meta == {"app": APP, "country": "us", "page": 1}


# --------------------------------------------------------------------------- parsing


def test_reviews_become_rated_mentions() -> None:
    src = source()
    mentions, requests = split(src.parse(page_response(src, body("us_page1.json"))))
    assert src.skipped == {"the app's own entry, not a review": 1}
    newest, crash, pricey = mentions
    assert newest.url == newest.canonical_url == review_url("us", "11250000003")
    assert newest.id == mention_id("appstore", review_url("us", "11250000003"))
    assert (newest.source_kind, newest.domain) == (SourceKind.REVIEW, "apps.apple.com")
    assert newest.title == "Finally fast sync"
    assert newest.text == "Since 4.2 the sync is instant.\nBest update in a year!"
    assert newest.published_at == datetime(2026, 11, 20, 22, 41, 7, tzinfo=PST)
    assert newest.author.name == "nightowl_88"
    assert newest.author.url == "https://itunes.apple.com/us/reviews/id2011"
    assert newest.rating is not None
    assert newest.rating.model_dump() == {
        "value": 1.0,
        "raw": 5.0,
        "scale_min": 1.0,
        "scale_max": 5.0,
    }
    assert crash.rating is not None and crash.rating.value == 0.25
    assert pricey.rating is not None and pricey.rating.value == 0.75
    assert newest.engagement.likes == 12
    assert (newest.thread_id, newest.parent_id) == (APP, None)
    if "country" in Mention.model_fields:
        assert newest.model_dump()["country"] == "US"
    assert [r.url for r in requests] == [f"{BASE}{feed_path('us', 2)}"]


def test_the_last_page_link_and_max_pages_end_pagination() -> None:
    src = source()
    _, requests = split(src.parse(page_response(src, body("us_page2.json"), page=2)))
    assert requests == []  # rel=last says page 2
    limited = source(max_pages=1)
    assert split(limited.parse(page_response(limited, body("us_page1.json"))))[1] == []
    many = source(max_pages=50)
    data = json.loads(body("us_page1.json"))
    data["feed"]["link"] = []  # no last link: Apple's cap of 10 pages applies
    _, requests = split(many.parse(page_response(many, json.dumps(data).encode(), page=10)))
    assert requests == []


def test_a_single_review_comes_as_an_object() -> None:
    src = source()
    mentions, requests = split(src.parse(page_response(src, body("gb_page1.json"), country="gb")))
    assert [m.url for m in mentions] == [review_url("gb", "11250000100")]
    assert requests == []


def test_reviews_at_or_before_the_checkpoint_stop_pagination(tmp_path: Path) -> None:
    src = source()
    when = datetime(2026, 11, 20, 22, 41, 7, tzinfo=PST)
    src.checkpoint = remembered(tmp_path, src.key(APP, "us"), when)
    mentions, requests = split(src.parse(page_response(src, body("us_after.json"))))
    assert [m.title for m in mentions] == ["Widget is back"]
    assert requests == []
    backfill = source()
    backfill.since = datetime(2026, 11, 19, 12, tzinfo=UTC)
    mentions, requests = split(backfill.parse(page_response(backfill, body("us_page1.json"))))
    assert [m.title for m in mentions] == ["Finally fast sync", "Crashes on launch"]
    assert requests == []


def test_a_changed_entry_degrades_alone() -> None:
    src = source(countries=["de"])
    mentions, _ = split(src.parse(page_response(src, body("de_changed.json"), country="de")))
    unrated, nameless = mentions
    assert unrated.text == "Super App!" and unrated.rating is None  # "five" is not a number
    assert nameless.author.name is None and nameless.rating is not None
    assert src.skipped == {"without a date": 1}


def test_an_empty_feed_gives_nothing() -> None:
    src = source()
    assert split(src.parse(page_response(src, body("empty.json"), country="fr"))) == ([], [])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html><head><title>Apple</title></head><body>Gone</body></html>", "not return JSON"),
        (b'{"errorMessage": "Invalid value(s) for key(s): [country]", "queryParameters": {}}',
         "no 'feed'"),
        (b"[]", "no 'feed'"),
    ],
)  # fmt: skip
def test_errors_raise_value_error_naming_the_url(payload: bytes, message: str) -> None:
    src = source()
    response = page_response(src, payload)
    with pytest.raises(ValueError, match=re.escape(response.url) + ".*" + message):
        list(src.parse(response))


def test_entries_say_why_they_are_not_reviews() -> None:
    assert entry_to_mention({"updated": {"label": "2026-11-01T00:00:00-07:00"}}, APP, "us") == (
        "without an id"
    )
    entry = {"id": {"label": "1"}, "updated": {"label": "2026-11-01T00:00:00-07:00"}}
    assert entry_to_mention(entry, APP, "us") == "without text"


def test_the_plugin_registers_the_source() -> None:
    assert appstore.listener_register_sources() == [AppStoreSource]
    assert AppStoreSource.kind is SourceKind.REVIEW
    assert (AppStoreSource.concurrency, AppStoreSource.download_delay) == (1, 3.0)
    assert AppStoreSource.obey_robots_txt is True


# --------------------------------------------------------------------------- real crawls

OPTIONS = {"base_url": "{base_url}", "apps": [APP], "countries": ["us", "gb"]}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("appstore-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> ReplayResult:
    return replay_crawl("appstore", OPTIONS, DATA.routes(), brands=[ACME], home=home)


@pytest.fixture(scope="module")
def second_run(first_run: ReplayResult, home: Path) -> ReplayResult:
    routes = [
        Route(feed_path("us", 1), body=body("us_after.json")),
        Route(feed_path("gb", 1), body=body("gb_page1.json")),
    ]
    return replay_crawl("appstore", OPTIONS, routes, brands=[ACME], home=home)


def test_crawl_yields_every_review_of_every_storefront(first_run: ReplayResult) -> None:
    summary = first_run.source
    assert (summary["health"], summary["parse_errors"], summary["fetch_errors"]) == (
        "healthy",
        0,
        0,
    )
    assert summary["pages"] == 3
    by_url = {m.url: m for m in first_run.mentions}
    assert len(first_run.mentions) == len(by_url) == 6
    assert sorted(by_url) == sorted(
        [review_url("us", r) for r in ("11250000003", "11250000002", "11250000001")]
        + [review_url("us", r) for r in ("11240000009", "11240000008")]
        + [review_url("gb", "11250000100")]
    )
    ratings = sorted((m.rating.raw, m.rating.value) for m in first_run.mentions if m.rating)
    assert ratings == [(1, 0.0), (2, 0.25), (3, 0.5), (4, 0.75), (5, 1.0), (5, 1.0)]
    oldest = by_url[review_url("us", "11240000008")]
    assert oldest.published_at == datetime(2026, 11, 10, 17, 30, 12, tzinfo=UTC)
    assert oldest.author.name == "léa"
    assert sorted(r.path for r in first_run.requests if r.path != "/robots.txt") == [
        feed_path("gb", 1), feed_path("us", 1), feed_path("us", 2),
    ]  # fmt: skip


def test_second_crawl_stops_at_reviews_already_seen(second_run: ReplayResult) -> None:
    assert [m.title for m in second_run.mentions] == ["Widget is back"]
    assert second_run.source["fetch_errors"] == second_run.source["parse_errors"] == 0
    # No page 2 asked for: page 1 already reached the reviews of the first crawl.
    assert sorted(r.path for r in second_run.requests if r.path != "/robots.txt") == [
        feed_path("gb", 1), feed_path("us", 1),
    ]  # fmt: skip


def test_crawl_survives_rate_limits_errors_and_changed_entries(tmp_path: Path) -> None:
    options = {**OPTIONS, "countries": ["us", "de", "jp"]}
    routes = [
        Route(feed_path("us", 1), status=429, times=1, headers={"Retry-After": "1"}),
        Route(feed_path("us", 1), body=body("empty.json")),
        Route(feed_path("de", 1), body=body("de_changed.json")),
        Route(feed_path("jp", 1), headers={"Content-Type": "text/html"},
              body=b"<html><body><h1>Service Unavailable</h1></body></html>"),
    ]  # fmt: skip
    result = replay_crawl("appstore", options, routes, brands=[ACME], home=tmp_path)
    assert sorted(m.title or "" for m in result.mentions) == ["Geht so", "Super"]
    summary = result.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (1, 0)
    assert feed_path("jp", 1) in (summary["last_error"] or "")
    assert [r.status for r in result.requests if r.path == feed_path("us", 1)] == [429, 200]


# --------------------------------------------------------------------------- recorded responses

RECORDED = SHARED_FIXTURES / "api_responses"
RECORDED_FEEDS = sorted((RECORDED / "appstore").glob("*.json")) if RECORDED.is_dir() else []


@pytest.mark.skipif(not RECORDED_FEEDS, reason="no recorded App Store feeds in shared/fixtures")
@pytest.mark.parametrize("path", RECORDED_FEEDS, ids=[p.name for p in RECORDED_FEEDS])
def test_recorded_feeds(path: Path) -> None:
    """Recorded customer-review feeds, checked field by field against the raw JSON."""
    data = json.loads(path.read_text(encoding="utf-8"))
    raw = data["feed"].get("entry") or []
    entries = [e for e in (raw if isinstance(raw, list) else [raw]) if "im:rating" in e]
    src = source()
    mentions, _ = split(src.parse(page_response(src, path.read_bytes())))
    assert len(mentions) == len(entries)
    for entry, mention in zip(entries, mentions, strict=True):
        assert mention.url == review_url("us", entry["id"]["label"])
        assert mention.author.name == entry["author"]["name"]["label"]
        assert mention.published_at == datetime.fromisoformat(entry["updated"]["label"])
        assert mention.rating is not None
        assert mention.rating.raw == float(entry["im:rating"]["label"])
        assert mention.engagement.likes == int(entry["im:voteSum"]["label"])


# --------------------------------------------------------------------------- other shapes
# No real App Store feed is recorded in the shared fixtures: the shipped page is changed in
# the test into shapes real feeds take; the rest of the page must come through.


def test_a_feed_in_other_shapes_keeps_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    data = json.loads(body("us_page1.json"))
    entries = data["feed"]["entry"]
    review = next(e for e in entries if "im:rating" in e)
    html_only = {
        **review,
        "id": {"label": "9001"},
        "content": [
            {"label": "<p>Acme &amp; Globex <b>sync</b></p>", "attributes": {"type": "html"}}
        ],
    }
    both = {
        **review,
        "id": {"label": "9002"},
        "content": [
            {"label": "<p>markup</p>", "attributes": {"type": "html"}},
            {"label": "Plain  text\r\nwins", "attributes": {"type": "text"}},
        ],
    }
    zulu = {
        **review,
        "id": {"label": "9003"},
        "updated": {"label": "2026-11-20T06:41:07Z"},
        "im:rating": {"label": "4.0"},
        "im:voteSum": {"label": "-1"},
        "author": {"name": {"label": "Ünï Cödé"}},
    }
    title_only = {**review, "id": {"label": "9004"}, "content": {"label": "  "}}
    undated = {**review, "id": {"label": "9005"}, "updated": {"label": ""}}
    odd = {**review, "id": {"label": "9006"}, "content": {"label": "Odd", "attributes": "text"}}
    entries += [html_only, both, zulu, title_only, undated, odd, ["garbage"]]
    src = source()

    with caplog.at_level("WARNING"):
        mentions, _ = split(src.parse(page_response(src, json.dumps(data).encode())))

    found = {m.url.rsplit("/", 1)[-1].rsplit("=", 1)[-1]: m for m in mentions}
    assert src.skipped.get("without a date") == 1 and src.skipped.get("not an object") == 1
    assert "1 without a date (id 9005)" in caplog.text
    assert found["9001"].text == "Acme & Globex sync"
    assert found["9002"].text == "Plain  text\nwins"
    assert found["9003"].published_at == datetime(2026, 11, 20, 6, 41, 7, tzinfo=UTC)
    assert found["9003"].rating is not None and found["9003"].rating.raw == 4.0
    assert found["9003"].engagement.likes is None and found["9003"].author.name == "Ünï Cödé"
    assert found["9004"].text == review["title"]["label"]
    assert found["9006"].text == "Odd"


def test_no_broken_field_of_a_review_raises() -> None:
    """Every field of a review entry (and its author and content), one at a time, deleted,
    null or of another type: mapped or skipped with a reason, never raised."""
    data = json.loads(body("us_page1.json"))
    entries = data["feed"]["entry"]
    review = next(e for e in entries if "im:rating" in e)
    for label, broken in each_field_broken(review):
        src = source()
        page = {**data, "feed": {**data["feed"], "entry": [broken]}}
        mentions, _ = split(src.parse(page_response(src, json.dumps(page).encode())))
        assert len(mentions) + src.skipped.total() == 1, label


def test_a_feed_page_handed_over_without_its_request_names_its_app_and_storefront() -> None:
    """The recorded feed page handed to the source with no request meta: the app and
    storefront come from its URL, else from its feed id; a page naming neither is an
    error that says what is missing."""
    payload = body("us_page1.json")
    expected = split(source().parse(page_response(source(), payload, "us", 1)))[0]
    src = source()
    url = f"{BASE}{feed_path('gb', 1)}"
    mentions, requests = split(src.parse(testing.respond(url, payload, meta={})))
    assert [m.url for m in mentions] == [m.url.replace("/us/", "/gb/") for m in expected]
    assert [(r.url, r.meta["app"], r.meta["country"]) for r in requests] == [
        (f"{BASE}{feed_path('gb', 2)}", APP, "gb")
    ]
    # A mirror's URL that names nothing: the feed's own id names the US storefront.
    src = source()
    mentions, _ = split(src.parse(testing.respond(f"{BASE}/cache/1.json", payload, meta={})))
    assert [m.url for m in mentions] == [m.url for m in expected]
    unnamed = json.loads(payload)
    unnamed["feed"].pop("id")
    with pytest.raises(ValueError, match="names no app and storefront"):
        list(source().parse(testing.respond(f"{BASE}/cache/1.json", json.dumps(unnamed), meta={})))
