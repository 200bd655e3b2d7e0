"""The ``youtube`` source: own fixtures through the real crawler, the parser, recorded API data."""

from __future__ import annotations

import html
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
from listener.config import BrandConfig, parse_project
from listener.errors import ConfigError, PluginError
from listener.mention import Mention, SourceKind, mention_id
from listener.plugins import youtube
from listener.plugins.youtube import YouTubeOptions, YouTubeSource, comment_to_mention
from listener.sdk.plugin_manager import instantiate_sources
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split

DATA = RecordedSite("youtube")
RECORDED = SHARED_FIXTURES / "api_responses"
RECORDED = RECORDED / "youtube"
BASE = "https://yt.example/youtube/v3"
KEY_VARIABLE = "LISTENER_TEST_YOUTUBE_KEY"
KEY = "AIza-test-key"
V1, V2, V3, V4 = "Rk7xQ2mP9aA", "Bq3LmZt8YwE", "Hx5nT0vK2sU", "Nw2cD8fG4hJ"
CHANNEL = "UCq8Fh2XyZ0aB1cD2eF3gH4i"
T1 = "UgzK4q1Lw8PfA3nR5tB4AaABAg"
ACME = {"name": "Acme", "keywords": ["acme"]}


def body(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VARIABLE, KEY)


def source(**options: Any) -> YouTubeSource:
    settings: dict[str, Any] = {"base_url": BASE, "api_key_env": KEY_VARIABLE, **options}
    brands = [BrandConfig(name="Acme", keywords=["acme", "#acme"])]
    return make_source(YouTubeSource, brands=brands, **settings)


def respond(url: str, payload: bytes, meta: dict[str, Any]) -> Response:
    return testing.respond(url, payload, content_type="application/json; charset=UTF-8", meta=meta)


def threads_response(
    src: YouTubeSource, payload: bytes, video: str = V1, title: str | None = None
) -> Response:
    meta = {"kind": "threads", "scope": "video", "id": video, "title": title, "page": 1}
    return respond(src.threads_url("video", video), payload, meta)


def query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def remembered(tmp_path: Path, key: str, when: datetime) -> Checkpoint:
    """A checkpoint as a later run loads it: ``key`` was last seen at ``when``."""
    earlier = Checkpoint(tmp_path / "checkpoint.json")
    earlier.advance(key, when)
    earlier.save()
    return Checkpoint(tmp_path / "checkpoint.json")


# --------------------------------------------------------------------------- options, credential


def test_options_validate_ids_and_need_something_to_read() -> None:
    options = YouTubeOptions(plugin="youtube")
    assert (options.api_key_env, options.search, options.base_url) == (
        "YOUTUBE_API_KEY", True, "https://www.googleapis.com/youtube/v3",
    )  # fmt: skip
    for bad in (
        {"videos": ["https://youtu.be/Rk7xQ2mP9aA"]},
        {"channels": ["@acme"]},
        {"search": False},
        {"videos_per_search": 51},
    ):
        with pytest.raises(ValidationError):
            YouTubeOptions(plugin="youtube", **bad)
    assert YouTubeOptions(plugin="youtube", search=False, videos=[V1]).videos == [V1]


def test_a_missing_api_key_is_a_clear_error_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(KEY_VARIABLE)
    with pytest.raises(ConfigError, match=rf"api_key_env.*{KEY_VARIABLE}.*not set"):
        source()
    monkeypatch.delenv("YOUTUBE_API_KEY", raising=False)
    project = parse_project({"brands": [ACME], "sources": [{"plugin": "youtube"}]}, tmp_path / "p")
    with pytest.raises(PluginError, match=r"sources\[0\] \(youtube\).*YOUTUBE_API_KEY"):
        instantiate_sources(project)


def test_start_requests_search_terms_then_channels_and_videos() -> None:
    requests = list(source(channels=[CHANNEL], videos=[V1, V1]).start_requests())
    assert [urlsplit(r.url).path for r in requests] == [
        "/youtube/v3/search", "/youtube/v3/commentThreads", "/youtube/v3/commentThreads",
    ]  # fmt: skip
    assert query(requests[0].url) == {
        "part": "snippet", "type": "video", "order": "date", "q": "acme", "maxResults": "25",
    }  # fmt: skip
    assert query(requests[1].url)["allThreadsRelatedToChannelId"] == CHANNEL
    assert query(requests[2].url) == {
        "part": "snippet,replies", "videoId": V1, "order": "time", "maxResults": "100",
        "textFormat": "plainText",
    }  # fmt: skip
    for request in requests:
        assert request.headers["X-Goog-Api-Key"] == KEY
        assert KEY not in request.url


def test_a_checkpoint_or_since_searches_only_newer_videos(tmp_path: Path) -> None:
    src = source(region_code="DE", relevance_language="de")
    src.checkpoint = remembered(tmp_path, "search:acme", utc("2026-11-10T15:00:07Z"))
    url = next(iter(src.start_requests())).url
    assert query(url)["publishedAfter"] == "2026-11-10T15:00:07Z"
    assert (query(url)["regionCode"], query(url)["relevanceLanguage"]) == ("DE", "de")
    backfill = source()
    backfill.since = datetime(2026, 1, 1, tzinfo=UTC)
    assert query(next(iter(backfill.start_requests())).url)["publishedAfter"] == (
        "2026-01-01T00:00:00Z"
    )


# --------------------------------------------------------------------------- parsing


def test_search_pages_ask_for_each_video_s_comments_once() -> None:
    src = source()
    meta = {"kind": "search", "term": "acme", "page": 1}
    response = respond(src.search_url("acme"), body("search_acme_page1.json"), meta)
    mentions, requests = split(src.parse(response))
    assert mentions == []
    first, second, following = requests
    assert [query(r.url).get("videoId") for r in (first, second)] == [V1, V2]
    assert first.meta["title"] == "Acme Rocket 14 review: the battery is unreal"
    assert query(following.url)["pageToken"] == "CAIQAA"
    assert src.checkpoint.values["search:acme"] == "2026-11-10T15:00:07+00:00"
    # The same videos found again (another term, say) are not asked for twice.
    assert split(src.parse(response))[1] == [following]


def test_comment_threads_become_mentions_with_replies_asked_for() -> None:
    src = source()
    title = "Acme Rocket 14 review: the battery is unreal"
    mentions, requests = split(
        src.parse(threads_response(src, body(f"threads_{V1}_page1.json"), title=title))
    )
    top, other = mentions
    assert top.url == top.canonical_url == f"https://www.youtube.com/watch?v={V1}&lc={T1}"
    assert top.id == mention_id("youtube", top.canonical_url)
    assert (top.source_kind, top.domain) == (SourceKind.VIDEO, "youtube.com")
    assert top.title == f"Re: {title}"
    assert top.text == "Battery claims hold up for me: 14 hours of mixed use on my Acme Rocket."
    assert top.published_at == datetime(2026, 11, 12, 8, 15, tzinfo=UTC)
    assert (top.author.name, top.author.handle) == ("@marta_codes", "@marta_codes")
    assert top.author.url == "http://www.youtube.com/@marta_codes"
    assert (top.engagement.likes, top.engagement.comments) == (52, 3)
    assert (top.thread_id, top.parent_id) == (V1, V1)
    # No @handle in the display name nor the channel URL: no handle.
    assert (other.author.name, other.author.handle) == ("Sam Rivers", None)
    assert other.text == "Keyboard flex is a deal breaker for me.\nReturned it."

    replies, following = requests
    assert query(replies.url) == {
        "part": "snippet", "parentId": T1, "maxResults": "100", "textFormat": "plainText",
    }  # fmt: skip
    assert query(following.url)["pageToken"] == "QURTSl9pMnRva2Vu"


def test_reply_pages_become_replies_to_the_top_level_comment() -> None:
    src = source()
    meta = {
        "kind": "replies",
        "key": f"video:{V1}",
        "video": V1,
        "title": None,
        "parent": T1,
        "page": 1,
    }
    mentions, requests = split(
        src.parse(respond(src.replies_url(T1), body(f"replies_{T1}.json"), meta))
    )
    assert requests == []
    assert len(mentions) == 3
    for reply in mentions:
        assert (reply.thread_id, reply.parent_id) == (V1, T1)
        assert reply.canonical_url.startswith(f"https://www.youtube.com/watch?v={V1}&lc={T1}.")
        assert reply.engagement.comments is None
    assert src.checkpoint.values[f"video:{V1}"] == "2026-11-13T07:45:00+00:00"


def test_embedded_replies_are_used_when_they_are_all_there() -> None:
    data = json.loads(body(f"threads_{V1}_page1.json"))
    data["items"][0]["snippet"]["totalReplyCount"] = 1
    src = source()
    mentions, requests = split(src.parse(threads_response(src, json.dumps(data).encode())))
    assert [m.parent_id for m in mentions] == [V1, T1, V1]
    assert [urlsplit(r.url).path for r in requests] == ["/youtube/v3/commentThreads"]


def test_threads_at_or_before_the_checkpoint_stop_pagination(tmp_path: Path) -> None:
    src = source(channels=[CHANNEL])
    src.checkpoint = remembered(tmp_path, f"channel:{CHANNEL}", utc("2026-11-14T16:20:00Z"))
    meta = {"kind": "threads", "scope": "channel", "id": CHANNEL, "title": None, "page": 1}
    url = src.threads_url("channel", CHANNEL)
    response = respond(url, body(f"threads_channel_{CHANNEL}_after.json"), meta)
    mentions, requests = split(src.parse(response))
    assert [m.text for m in mentions] == ["Is the Acme 2.1 update out yet?"]
    assert mentions[0].thread_id == "Zp9wQ1rT3yV"  # the channel's thread names its video
    assert requests == []  # a nextPageToken, but older threads were reached


def test_a_changed_thread_degrades_alone() -> None:
    src = source()
    mentions, _ = split(src.parse(threads_response(src, body("threads_changed.json"), video=V2)))
    assert [m.author.handle for m in mentions] == ["@ci_nerd"]
    assert src.skipped == {"without a date": 1, "threads without a top-level comment": 1}


def test_text_display_is_used_when_the_original_is_missing() -> None:
    snippet = {"videoId": V1, "publishedAt": "2026-11-12T08:15:00Z", "likeCount": 1}
    marked = {"id": "c1", "snippet": {**snippet, "textDisplay": "Nice &amp; <b>fast</b><br>really"}}
    plain = {"id": "c2", "snippet": {**snippet, "textDisplay": "a &lt; b"}}
    first, second = comment_to_mention(marked), comment_to_mention(plain)
    assert isinstance(first, Mention) and isinstance(second, Mention)
    assert (first.text, second.text) == ("Nice & fast\nreally", "a < b")
    assert comment_to_mention({"id": "c3", "snippet": {"publishedAt": "2026-11-12"}}) == (
        "without a video (a channel discussion comment)"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (body("error_quota.json"), "403 quotaExceeded: The request cannot be completed"),
        (body("error_comments_disabled.json"), "403 commentsDisabled"),
        (b"<!DOCTYPE html><title>Error 404 (Not Found)</title>", "did not return JSON"),
        (b'{"kind": "youtube#commentThreadListResponse"}', "no 'items' list"),
    ],
)
def test_errors_raise_value_error_naming_the_url(payload: bytes, message: str) -> None:
    src = source()
    response = threads_response(src, payload)
    with pytest.raises(ValueError, match=re.escape(response.url) + ".*" + message):
        list(src.parse(response))


def test_an_empty_page_gives_nothing() -> None:
    src = source()
    assert split(src.parse(threads_response(src, body(f"threads_{V3}.json"), video=V3))) == ([], [])


def test_the_plugin_registers_the_source() -> None:
    assert youtube.listener_register_sources() == [YouTubeSource]
    assert YouTubeSource.kind is SourceKind.VIDEO
    assert (YouTubeSource.concurrency, YouTubeSource.download_delay) == (2, 0.2)
    assert YouTubeSource.obey_robots_txt is False  # a documented API, see the docs


# --------------------------------------------------------------------------- real crawls

OPTIONS = {"base_url": "{base_url}", "api_key_env": KEY_VARIABLE, "channels": [CHANNEL]}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("youtube-home")


@pytest.fixture(scope="module")
def keyed() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_VARIABLE, KEY)
        yield


@pytest.fixture(scope="module")
def first_run(home: Path, keyed: None) -> ReplayResult:
    return replay_crawl("youtube", OPTIONS, DATA.routes(), brands=[ACME], home=home)


@pytest.fixture(scope="module")
def second_run(first_run: ReplayResult, home: Path, keyed: None) -> ReplayResult:
    routes = [
        Route("/search", query={"q": "acme", "publishedAfter": "2026-11-10T15:00:07Z"},
              body=body("search_acme_after.json")),
        Route("/commentThreads", query={"videoId": V4}, body=body(f"threads_{V4}.json")),
        Route("/commentThreads", query={"allThreadsRelatedToChannelId": CHANNEL},
              body=body(f"threads_channel_{CHANNEL}_after.json")),
    ]  # fmt: skip
    return replay_crawl("youtube", OPTIONS, routes, brands=[ACME], home=home)


def test_crawl_yields_comments_and_replies(first_run: ReplayResult) -> None:
    summary = first_run.source
    assert (summary["health"], summary["parse_errors"], summary["fetch_errors"]) == (
        "healthy",
        0,
        0,
    )
    by_comment = {query(m.url)["lc"]: m for m in first_run.mentions}
    assert len(first_run.mentions) == len(by_comment) == 8
    replies = [m for m in first_run.mentions if m.parent_id == T1]
    assert len(replies) == 3  # all three, fetched once, not the embedded one again
    assert {m.thread_id for m in first_run.mentions} == {V1, V2, "Zp9wQ1rT3yV"}
    assert by_comment[T1].title == "Re: Acme Rocket 14 review: the battery is unreal"
    channel = by_comment["UgzQ2wE4rT6yU8iO0pA4AaABAg"]
    assert channel.title is None and channel.engagement.likes == 30
    for mention in first_run.mentions:
        assert mention.published_at.tzinfo is not None


def test_crawl_follows_pages_and_sends_the_key_in_a_header(first_run: ReplayResult) -> None:
    api = [r for r in first_run.requests if r.path != "/robots.txt"]
    assert sorted((r.path, r.param("pageToken") or "") for r in api if r.path != "/comments") == [
        ("/commentThreads", ""), ("/commentThreads", ""), ("/commentThreads", ""),
        ("/commentThreads", ""), ("/commentThreads", "QURTSl9pMnRva2Vu"),
        ("/search", ""), ("/search", "CAIQAA"),
    ]  # fmt: skip
    assert [r.param("parentId") for r in api if r.path == "/comments"] == [T1]
    for request in api:
        assert request.headers.get("X-Goog-Api-Key") == KEY
        assert KEY not in request.target


def test_second_crawl_asks_only_for_newer_items(second_run: ReplayResult) -> None:
    summary = second_run.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (0, 0)
    assert sorted(m.text for m in second_run.mentions) == [
        "Is the Acme 2.1 update out yet?", "Still happy with mine after a month.",
    ]  # fmt: skip
    searches = [r for r in second_run.requests if r.path == "/search"]
    assert [r.param("publishedAfter") for r in searches] == ["2026-11-10T15:00:07Z"]
    # The channel page reached older threads: its next page is not asked for.
    assert not any(r.param("pageToken") for r in second_run.requests)


def test_crawl_survives_rate_limits_and_errors(tmp_path: Path, keyed: None) -> None:
    options = {**OPTIONS, "videos": [V2]}
    routes = [
        Route("/search", query={"q": "acme"}, status=429, times=1, headers={"Retry-After": "1"},
              body=b'{"error": {"code": 429, "message": "Too many requests"}}'),
        Route("/search", query={"q": "acme"}, body=body("search_acme_after.json")),
        Route("/commentThreads", query={"videoId": V4}, status=403,
              body=body("error_comments_disabled.json")),
        Route("/commentThreads", query={"videoId": V2}, body=body("threads_changed.json")),
        # An error body with status 200, as a caching proxy may serve it.
        Route("/commentThreads", query={"allThreadsRelatedToChannelId": CHANNEL},
              body=body("error_quota.json")),
    ]  # fmt: skip
    result = replay_crawl("youtube", options, routes, brands=[ACME], home=tmp_path)
    assert [m.author.handle for m in result.mentions] == ["@ci_nerd"]
    summary = result.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (1, 1)
    assert "YouTube API error 403 quotaExceeded" in result.log
    assert [r.status for r in result.requests if r.path == "/search"] == [429, 200]


# --------------------------------------------------------------------------- recorded responses


def recorded(name: str) -> dict[str, Any]:
    path = RECORDED / name
    if not path.is_file():
        pytest.skip(f"recorded fixture {path} is not available")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(
    "name",
    [
        "comment_thread_single.json",
        "comment_threads_by_video_paged_1.json",
        "comment_threads_by_video_paged_2.json",
    ],
)
def test_recorded_comment_threads(name: str) -> None:
    data = recorded(name)
    video = data["items"][0]["snippet"]["videoId"]
    src = source()
    mentions, requests = split(src.parse(threads_response(src, json.dumps(data).encode(), video)))
    assert len(mentions) == len(data["items"])
    for thread, mention in zip(data["items"], mentions, strict=True):
        top = thread["snippet"]["topLevelComment"]
        snippet = top["snippet"]
        assert mention.url == f"https://www.youtube.com/watch?v={snippet['videoId']}&lc={top['id']}"
        assert mention.text == snippet["textOriginal"].strip()
        assert mention.published_at == utc(snippet["publishedAt"])
        assert mention.author.name == snippet["authorDisplayName"]
        assert mention.author.url == snippet["authorChannelUrl"]
        assert mention.engagement.likes == snippet["likeCount"]
        assert mention.engagement.comments == thread["snippet"]["totalReplyCount"]
        assert (mention.thread_id, mention.parent_id) == (video, video)
    with_replies = [t["id"] for t in data["items"] if t["snippet"]["totalReplyCount"]]
    asked = [
        query(r.url)["parentId"] for r in requests if urlsplit(r.url).path.endswith("comments")
    ]
    assert asked == with_replies
    pages = [r for r in requests if urlsplit(r.url).path.endswith("commentThreads")]
    assert [query(r.url)["pageToken"] for r in pages] == (
        [data["nextPageToken"]] if "nextPageToken" in data else []
    )


@pytest.mark.parametrize(
    "name", ["comments_by_parent_paged_1.json", "comments_by_parent_paged_2.json"]
)
def test_recorded_reply_pages(name: str) -> None:
    data = recorded(name)
    src = source()
    parent = data["items"][0]["snippet"]["parentId"]
    meta = {
        "kind": "replies",
        "key": "video:x",
        "video": V1,
        "title": None,
        "parent": parent,
        "page": 1,
    }
    mentions, requests = split(
        src.parse(respond(src.replies_url(parent), json.dumps(data).encode(), meta))
    )
    assert len(mentions) == len(data["items"])
    for item, mention in zip(data["items"], mentions, strict=True):
        assert mention.canonical_url == f"https://www.youtube.com/watch?v={V1}&lc={item['id']}"
        assert mention.parent_id == item["snippet"]["parentId"]
        assert mention.author.name == item["snippet"]["authorDisplayName"]
        assert mention.published_at == utc(item["snippet"]["publishedAt"])
        assert mention.engagement.likes == item["snippet"]["likeCount"]
    assert len(requests) == (1 if "nextPageToken" in data else 0)


@pytest.mark.parametrize("name", ["search_by_keywords_p1.json", "search_by_keywords_p2.json"])
def test_recorded_search_pages(name: str) -> None:
    data = recorded(name)
    src = source()
    meta = {"kind": "search", "term": "acme", "page": 1}
    _, requests = split(src.parse(respond(src.search_url("acme"), json.dumps(data).encode(), meta)))
    videos = [i["id"]["videoId"] for i in data["items"] if i["id"]["kind"] == "youtube#video"]
    threads = [r for r in requests if urlsplit(r.url).path.endswith("commentThreads")]
    assert [query(r.url)["videoId"] for r in threads] == videos
    titles = [" ".join(html.unescape(i["snippet"]["title"]).split()) for i in data["items"]]
    assert [r.meta["title"] for r in threads] == titles
    newest = max(utc(i["snippet"]["publishedAt"]) for i in data["items"])
    assert src.checkpoint.values["search:acme"] == newest.isoformat()
    following = [r for r in requests if urlsplit(r.url).path.endswith("search")]
    assert [query(r.url)["pageToken"] for r in following] == [data["nextPageToken"]]


def test_recorded_video_list_is_not_a_comment_list() -> None:
    data = recorded("videos_info_multi.json")
    src = source()
    mentions, requests = split(src.parse(threads_response(src, json.dumps(data).encode())))
    assert (mentions, requests) == ([], [])
    assert src.skipped == {"threads without a top-level comment": len(data["items"])}


# --------------------------------------------------------------------------- held-out shapes
# The recorded commentThreads page (python-youtube), changed in the test into shapes real
# pages take: every other thread must come through.


def test_recorded_threads_in_other_shapes_keep_the_rest_of_the_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = recorded("comment_threads_by_video_paged_1.json")
    video = data["items"][0]["snippet"]["videoId"]
    markup, handle, counted, offset, gone = data["items"][:5]
    snippet = markup["snippet"]["topLevelComment"]["snippet"]
    del snippet["textOriginal"]  # only the author is sure to get the raw text
    snippet["textDisplay"] = 'Acme &amp; Globex&#39;s<br>next <a href="http://x.example/">line</a>'
    snippet = handle["snippet"]["topLevelComment"]["snippet"]
    snippet.update(
        authorDisplayName="@acme-fan", authorChannelUrl="http://www.youtube.com/@acme-fan"
    )
    snippet = counted["snippet"]["topLevelComment"]["snippet"]
    snippet["likeCount"] = "12"
    first_reply = {
        "kind": "youtube#comment",
        "id": counted["id"] + ".8r1",
        "snippet": {
            **snippet,
            "textOriginal": "Same here",
            "parentId": counted["id"],
            "likeCount": 0,
        },
    }
    blank_reply = {
        "kind": "youtube#comment",
        "id": counted["id"] + ".8r2",
        "snippet": {**snippet, "textOriginal": "", "textDisplay": "", "parentId": counted["id"]},
    }
    counted["snippet"]["totalReplyCount"] = "2"
    counted["replies"] = {"comments": [first_reply, blank_reply]}
    offset["snippet"]["topLevelComment"]["snippet"]["publishedAt"] = "2019-11-21T20:18:39+01:00"
    del gone["snippet"]["topLevelComment"]  # a thread whose comment was removed
    src = source()

    with caplog.at_level("WARNING"):
        mentions, _ = split(src.parse(threads_response(src, json.dumps(data).encode(), video)))

    assert len(mentions) == len(data["items"]) - 1 + 1  # one thread lost, one reply gained
    assert src.skipped == {"threads without a top-level comment": 1, "without text": 1}
    assert f"id {gone['id']}" in caplog.text and f"id {blank_reply['id']}" in caplog.text
    found = {m.canonical_url.rsplit("lc=", 1)[1]: m for m in mentions}
    text = found[markup["id"]].text
    assert text.startswith("Acme & Globex's") and "next line" in text and "&" + "amp;" not in text
    assert found[handle["id"]].author.handle == "@acme-fan"
    assert found[counted["id"]].engagement.likes == 12
    assert found[counted["id"]].engagement.comments == 2
    assert found[first_reply["id"]].parent_id == counted["id"]
    assert found[offset["id"]].published_at == utc("2019-11-21T19:18:39Z")


def test_recorded_reply_page_without_video_ids_or_raw_text() -> None:
    data = recorded("comments_by_parent_paged_1.json")
    for item in data["items"]:
        item["snippet"].pop("videoId", None)
        item["snippet"]["textOriginal"] = None
        item["snippet"]["textDisplay"] = "It&#39;s &quot;fine&quot;"  # textFormat=plainText
    parent = data["items"][0]["snippet"]["parentId"]
    src = source()
    meta = {
        "kind": "replies",
        "key": "video:x",
        "video": V1,
        "title": "A  video",
        "parent": parent,
        "page": 1,
    }
    mentions, _ = split(
        src.parse(respond(src.replies_url(parent), json.dumps(data).encode(), meta))
    )
    assert len(mentions) == len(data["items"])
    assert {(m.text, m.thread_id, m.title) for m in mentions} == {
        ('It\'s "fine"', V1, "Re: A  video")
    }


def test_no_broken_field_of_a_recorded_thread_or_reply_raises() -> None:
    """Every field of a recorded comment thread (down to its comment's snippet) and of a
    reply, one at a time, deleted, null or of another type: never raised, the page kept."""
    data = recorded("comment_threads_by_video_paged_1.json")
    video = data["items"][0]["snippet"]["videoId"]
    first, other = data["items"][:2]
    for label, broken in each_field_broken(first, depth=4):
        src = source()
        page = json.dumps({**data, "items": [broken, other]}).encode()
        mentions, _ = split(src.parse(threads_response(src, page, video)))
        assert other["id"] in {m.canonical_url.rsplit("lc=", 1)[1] for m in mentions}, label
    replies = recorded("comments_by_parent_paged_1.json")
    parent = replies["items"][0]["snippet"]["parentId"]
    meta = {"kind": "replies", "key": "video:x", "video": V1, "title": None, "parent": parent,
            "page": 1}  # fmt: skip
    for label, broken in each_field_broken(replies["items"][0]):
        src = source()
        page = json.dumps({**replies, "items": [broken]}).encode()
        mentions, _ = split(src.parse(respond(src.replies_url(parent), page, meta)))
        assert len(mentions) + src.skipped.total() == 1, label


def test_a_recorded_video_list_read_as_search_results_asks_for_each_video_s_comments() -> None:
    """videos.list items carry the video id as their 'id' (not id.videoId): read as search
    results, each video's comments are asked for."""
    data = recorded("videos_info_multi.json")
    src = source()
    meta = {"kind": "search", "term": "acme", "page": 1}
    _, requests = split(src.parse(respond(src.search_url("acme"), json.dumps(data).encode(), meta)))
    threads = [r for r in requests if urlsplit(r.url).path.endswith("commentThreads")]
    assert [query(r.url)["videoId"] for r in threads] == [i["id"] for i in data["items"]]
    assert [r.meta["title"] for r in threads] == [
        " ".join(html.unescape(i["snippet"]["title"]).split()) for i in data["items"]
    ]


def test_recorded_comments_without_published_at_are_dated_by_updated_at(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recorded commentThreads page whose comments lack publishedAt (or carry one that
    cannot be read): each is dated by its updatedAt, the log names them; a comment with
    neither is skipped by name."""
    data = recorded("comment_threads_by_video_paged_1.json")
    video = data["items"][0]["snippet"]["videoId"]
    missing, unreadable, edited, neither = data["items"][:4]
    top = [t["snippet"]["topLevelComment"]["snippet"] for t in data["items"][:4]]
    del top[0]["publishedAt"]
    top[1]["publishedAt"] = "yesterday"
    top[2]["updatedAt"] = "2020-01-02T03:04:05Z"  # edited later: publishedAt still wins
    del top[3]["publishedAt"], top[3]["updatedAt"]
    src = source()

    with caplog.at_level("INFO"):
        mentions, _ = split(src.parse(threads_response(src, json.dumps(data).encode(), video)))

    found = {m.canonical_url.rsplit("lc=", 1)[1]: m for m in mentions}
    assert found[missing["id"]].published_at == utc(top[0]["updatedAt"])
    assert found[unreadable["id"]].published_at == utc(top[1]["updatedAt"])
    assert found[edited["id"]].published_at == utc(top[2]["publishedAt"])
    assert neither["id"] not in found and src.skipped == {"without a date": 1}
    assert len(mentions) == len(data["items"]) - 1
    assert src.dated_by_update == 2
    assert "2 items" in caplog.text and "dated by their updatedAt" in caplog.text
    assert f"id {missing['id']}" in caplog.text and f"id {unreadable['id']}" in caplog.text


def test_recorded_replies_and_videos_without_published_at_use_updated_at() -> None:
    """The recorded replies page and videos.list page without publishedAt: replies dated by
    updatedAt; a video's updatedAt advances the search checkpoint as publishedAt would."""
    replies = recorded("comments_by_parent_paged_1.json")
    for item in replies["items"]:
        del item["snippet"]["publishedAt"]
    parent = replies["items"][0]["snippet"]["parentId"]
    src = source()
    meta = {"kind": "replies", "key": "video:x", "video": V1, "title": None, "parent": parent,
            "page": 1}  # fmt: skip
    mentions, _ = split(
        src.parse(respond(src.replies_url(parent), json.dumps(replies).encode(), meta))
    )
    assert [m.published_at for m in mentions] == [
        utc(i["snippet"]["updatedAt"]) for i in replies["items"]
    ]
    assert src.dated_by_update == len(replies["items"])

    videos = recorded("videos_info_multi.json")
    for item in videos["items"]:
        item["snippet"]["updatedAt"] = item["snippet"].pop("publishedAt")
    newest = max(utc(i["snippet"]["updatedAt"]) for i in videos["items"])
    src = source()
    search = {"kind": "search", "term": "acme", "page": 1}
    src.parse(respond(src.search_url("acme"), json.dumps(videos).encode(), search))
    assert src.checkpoint.values["search:acme"] == newest.isoformat()
    assert src.dated_by_update == len(videos["items"])


def test_recorded_pages_handed_over_without_their_request_are_read_by_their_items() -> None:
    """Recorded commentThreads, comments and search pages handed to the source with no
    request meta, or comments where threads were expected: each read as what its items are,
    its video, parent or term taken from its URL or items."""
    threads = recorded("comment_threads_by_video_paged_1.json")
    video = threads["items"][0]["snippet"]["videoId"]
    src = source()
    url = src.threads_url("video", video)
    mentions, requests = split(src.parse(respond(url, json.dumps(threads).encode(), {})))
    assert len(mentions) >= len(threads["items"])
    assert {m.thread_id for m in mentions} == {video}
    following = [r for r in requests if r.meta.get("kind") == "threads"]
    assert [query(r.url)["pageToken"] for r in following] == [threads["nextPageToken"]]

    replies = recorded("comments_by_parent_paged_1.json")
    parent = replies["items"][0]["snippet"]["parentId"]
    meta = {"kind": "threads", "scope": "video", "id": V1, "title": None, "page": 1}
    src = source()
    url = src.replies_url(parent)
    mentions, _ = split(src.parse(respond(url, json.dumps(replies).encode(), meta)))
    assert len(mentions) == len(replies["items"]) and src.skipped.total() == 0
    assert {(m.parent_id, m.thread_id) for m in mentions} == {(parent, V1)}
    # Alone, a reply page names no video (comments.list leaves videoId out): no link to
    # build, so each reply is skipped by name rather than the page lost to a KeyError.
    src = source()
    mentions, requests = split(src.parse(respond(url, json.dumps(replies).encode(), {})))
    assert mentions == [] and [query(r.url)["pageToken"] for r in requests] == [
        replies["nextPageToken"]
    ]
    assert src.skipped == {"without a video (a channel discussion comment)": len(replies["items"])}

    search = recorded("search_by_keywords_p1.json")
    src = source()
    url = src.search_url("python")
    _, requests = split(src.parse(respond(url, json.dumps(search).encode(), {})))
    videos = [i["id"]["videoId"] for i in search["items"] if i["id"].get("videoId")]
    asked = [query(r.url)["videoId"] for r in requests if r.meta.get("kind") == "threads"]
    assert asked == list(dict.fromkeys(videos)) and asked
