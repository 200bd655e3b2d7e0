"""The ``telegram`` source: own t.me/s pages through the real crawler and the page parser."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_FIXTURES, RecordedSite
from pydantic import ValidationError

from listener import testing
from listener.mention import SourceKind, mention_id
from listener.plugins import telegram
from listener.plugins.telegram import (
    TelegramOptions,
    TelegramSource,
    channel_name,
    parse_count,
    read_channel_page,
)
from listener.sdk.replay import Route
from listener.source import Checkpoint, Response
from listener.testing import ReplayResult, make_source, replay_crawl, split

DATA = RecordedSite("telegram")
RECORDED = SHARED_FIXTURES / "api_responses"
RECORDED = RECORDED / "telegram"
BASE = "https://tg.example"
ACME = {"name": "Acme", "keywords": ["acme"]}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def page(name: str) -> bytes:
    return (DATA / name).read_bytes()


def source(**options: Any) -> TelegramSource:
    settings: dict[str, Any] = {"base_url": BASE, "channels": ["acmenews"], **options}
    return make_source(TelegramSource, **settings)


def page_response(
    src: TelegramSource, payload: bytes, channel: str = "acmenews", before: int | None = None
) -> Response:
    url = src.page_url(channel, before)
    meta = {"channel": channel, "page": 1 if before is None else 2}
    return testing.respond(url, payload, content_type="text/html; charset=utf-8", meta=meta)


def remembered(tmp_path: Path, key: str, when: datetime) -> Checkpoint:
    """A checkpoint as a later run loads it: ``key`` was last seen at ``when``."""
    earlier = Checkpoint(tmp_path / "checkpoint.json")
    earlier.advance(key, when)
    earlier.save()
    return Checkpoint(tmp_path / "checkpoint.json")


# --------------------------------------------------------------------------- options, counts


@pytest.mark.parametrize(
    "spelling",
    [
        "acmenews",
        "@acmenews",
        "https://t.me/acmenews",
        "https://t.me/s/acmenews",
        "t.me/s/acmenews/",
    ],
)
def test_channels_can_be_written_several_ways(spelling: str) -> None:
    assert channel_name(spelling) == "acmenews"


def test_options_reject_what_is_not_a_public_channel() -> None:
    assert TelegramOptions(plugin="telegram", channels=["@AcmeNews"]).channels == ["AcmeNews"]
    for bad in ([], ["ab"], ["https://t.me/+AbCdEfGh"], ["acme news"]):
        with pytest.raises(ValidationError):
            TelegramOptions(plugin="telegram", channels=bad)


@pytest.mark.parametrize(
    ("shown", "count"),
    [("987", 987), ("1.2K", 1200), ("15.3M", 15_300_000), ("8K", 8000), ("12 345", 12345),
     ("1,5K", 1500), ("—", None), ("", None), (None, None)],
)  # fmt: skip
def test_counts_as_telegram_shows_them(shown: str | None, count: int | None) -> None:
    assert parse_count(shown) == count


def test_start_requests_one_page_per_channel() -> None:
    requests = list(source(channels=["acmenews", "globexnews"]).start_requests())
    assert [r.url for r in requests] == [f"{BASE}/s/acmenews", f"{BASE}/s/globexnews"]
    assert requests[0].meta == {"channel": "acmenews", "page": 1}


# --------------------------------------------------------------------------- parsing


def test_a_channel_page_becomes_mentions_and_a_request_for_older_posts() -> None:
    src = source()
    mentions, requests = split(src.parse(page_response(src, page("acmenews.html"))))
    assert src.skipped == {"without text (media only)": 1, "a service message": 1}
    assert [m.url for m in mentions] == [f"https://t.me/acmenews/{n}" for n in (101, 102, 103, 106)]
    launch, lab, reply, forwarded = mentions

    assert launch.canonical_url == "https://t.me/acmenews/101"
    assert launch.id == mention_id("telegram", "https://t.me/acmenews/101")
    assert (launch.source_kind, launch.domain) == (SourceKind.SOCIAL, "t.me")
    assert launch.text == "The Acme Rocket 14 ships today 🚀\nOrder: acme.example/rocket14"
    assert launch.published_at == datetime(2026, 11, 18, 9, tzinfo=UTC)
    assert launch.author.model_dump() == {
        "name": "Acme News", "handle": "acmenews", "url": "https://t.me/acmenews",
        "followers": 12300,
    }  # fmt: skip
    assert (launch.engagement.views, launch.engagement.likes) == (1200, 60)
    assert (launch.thread_id, launch.parent_id) == ("acmenews/101", None)

    assert lab.author.name == "Maria Lopez"  # a signed post
    assert lab.engagement.likes is None
    # A reply: its own text only, not the quoted post.
    assert reply.text == (
        "Update: the first batch sold out in 3 hours. A second batch ships on Monday."
    )
    assert (reply.thread_id, reply.parent_id) == ("acmenews/101", "acmenews/101")
    assert (reply.engagement.views, reply.engagement.likes) == (2500, 1100)
    assert forwarded.text.endswith("We are not worried & neither should you be.")

    assert [r.url for r in requests] == [f"{BASE}/s/acmenews?before=101"]
    assert requests[0].meta == {"channel": "acmenews", "page": 2}


def test_the_first_posts_of_a_channel_and_max_pages_end_pagination() -> None:
    src = source()
    mentions, requests = split(
        src.parse(page_response(src, page("acmenews_before_101.html"), before=101))
    )
    assert [m.url.rsplit("/", 1)[1] for m in mentions] == ["98", "99", "100"]
    assert requests == []  # no link to older posts
    limited = source(max_pages=1)
    assert split(limited.parse(page_response(limited, page("acmenews.html"))))[1] == []


def test_posts_at_or_before_the_checkpoint_stop_pagination(tmp_path: Path) -> None:
    src = source()
    src.checkpoint = remembered(
        tmp_path, "acmenews", datetime(2026, 11, 20, 17, 45, 30, tzinfo=UTC)
    )
    mentions, requests = split(src.parse(page_response(src, page("acmenews_after.html"))))
    assert [m.url for m in mentions] == ["https://t.me/acmenews/107"]
    assert requests == []
    backfill = source()
    backfill.since = datetime(2026, 11, 18, 12, tzinfo=UTC)
    mentions, requests = split(backfill.parse(page_response(backfill, page("acmenews.html"))))
    assert [m.url.rsplit("/", 1)[1] for m in mentions] == ["102", "103", "106"]
    assert requests == []


def test_an_empty_channel_gives_nothing() -> None:
    src = source(channels=["globexnews"])
    response = page_response(src, page("globexnews_empty.html"), channel="globexnews")
    assert split(src.parse(response)) == ([], [])
    parsed = read_channel_page(page("globexnews_empty.html").decode(), response.url)
    assert (parsed.title, parsed.subscribers) == ("Globex News", 1_050_000)


def test_a_changed_post_degrades_alone() -> None:
    src = source(channels=["changedchan"])
    response = page_response(src, page("changedchan.html"), channel="changedchan")
    (only,) = split(src.parse(response))[0]
    assert only.text == "Initech roadmap leaked?"
    assert only.engagement.views is None and only.author.followers is None
    assert src.skipped == {"without a date": 2}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (page("initechhq_not_preview.html"), "without a public preview"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "not a public channel preview"),
        (b'{"ok": false, "error_code": 429, "description": "Too Many Requests"}',
         "Bot API error 429: Too Many Requests"),
        (b'{"error": "not found"}', "not a public channel preview"),
    ],
)  # fmt: skip
def test_pages_that_are_not_previews_raise_value_error_naming_the_url(
    payload: bytes, message: str
) -> None:
    src = source()
    response = page_response(src, payload)
    with pytest.raises(ValueError, match=re.escape(response.url) + ".*" + message):
        list(src.parse(response))


def test_the_plugin_registers_the_source() -> None:
    assert telegram.listener_register_sources() == [TelegramSource]
    assert TelegramSource.kind is SourceKind.SOCIAL
    assert (TelegramSource.concurrency, TelegramSource.download_delay) == (1, 2.0)
    assert TelegramSource.obey_robots_txt is True


def test_recorded_bot_api_updates_of_private_groups_are_skipped_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The recorded Telegram data is Bot API JSON (getUpdates) from groups without a
    username: no public address exists for those messages, so each is skipped, by name."""
    path = RECORDED / "perceval_bot_getUpdates.json"
    if not path.is_file():
        pytest.skip(f"recorded fixture {path} is not available")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["ok"] is True and data["result"]
    src = source()
    with caplog.at_level("WARNING"):
        assert split(src.parse(page_response(src, path.read_bytes()))) == ([], [])
    assert src.skipped == {"not in a public chat (the chat has no username)": len(data["result"])}
    assert f"update {data['result'][0]['update_id']}" in caplog.text


def test_recorded_bot_api_updates_of_public_chats_become_mentions() -> None:
    """The recorded updates, changed into what a bot in a public channel and a public group
    receives: channel posts (with a caption, a signature, an edit, a reply) and messages."""
    path = RECORDED / "perceval_bot_getUpdates.json"
    if not path.is_file():
        pytest.skip(f"recorded fixture {path} is not available")
    data = json.loads(path.read_text(encoding="utf-8"))
    group, other, third = (u["message"] for u in data["result"])
    group["chat"].update(type="supergroup", username="acme_users")
    other["chat"].update(type="private", username="sdd_private", title=None)
    del other["chat"]["username"]
    channel = {
        **third,
        "chat": {"id": -100, "type": "channel", "title": "Acme News", "username": "acmenews"},
        "message_id": 7,
    }
    del channel["from"], channel["text"]
    channel.update(caption="Acme  Rocket 14 photo", author_signature="Jo")
    edited = {
        **channel,
        "message_id": 8,
        "caption": None,
        "text": "Edited: Acme",
        "edit_date": third["date"] + 60,
        "author_signature": None,
        "reply_to_message": {"message_id": 7, "chat": channel["chat"], "date": 1},
    }
    data["result"] += [
        {"update_id": 9, "channel_post": channel},
        {"update_id": 10, "edited_channel_post": edited},
        {"update_id": 11, "my_chat_member": {"chat": channel["chat"]}},
    ]
    src = source()
    mentions, requests = split(src.parse(page_response(src, json.dumps(data).encode())))
    assert requests == []
    by_url = {m.url: m for m in mentions}
    assert set(by_url) == {
        f"https://t.me/acme_users/{group['message_id']}",
        "https://t.me/acmenews/7",
        "https://t.me/acmenews/8",
    }
    said = by_url[f"https://t.me/acme_users/{group['message_id']}"]
    assert (said.text, said.author.name, said.author.handle) == (group["text"], "Santi", "sdd")
    assert said.published_at == datetime.fromtimestamp(group["date"], UTC)
    post = by_url["https://t.me/acmenews/7"]
    assert (post.text, post.author.name, post.author.handle) == (
        "Acme  Rocket 14 photo",
        "Jo",
        "acmenews",
    )
    assert post.id == mention_id("telegram", "https://t.me/acmenews/7")  # as a preview page's
    reply = by_url["https://t.me/acmenews/8"]
    assert (reply.author.name, reply.parent_id, reply.thread_id) == (
        "Acme News",
        "acmenews/7",
        "acmenews/7",
    )
    assert src.skipped == {
        "not in a public chat (the chat has no username)": 2,
        "not a message or channel post": 1,
    }


# --------------------------------------------------------------------------- real crawls


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("telegram-home")


@pytest.fixture(scope="module")
def first_run(home: Path) -> ReplayResult:
    options = {"base_url": "{base_url}", "channels": ["acmenews"]}
    return replay_crawl("telegram", options, DATA.routes(), brands=[ACME], home=home)


@pytest.fixture(scope="module")
def second_run(first_run: ReplayResult, home: Path) -> ReplayResult:
    options = {"base_url": "{base_url}", "channels": ["acmenews", "umbrellacorp"]}
    routes = [
        Route("/robots.txt", body=b"User-agent: *\nDisallow: /s/umbrellacorp\n"),
        Route("/s/acmenews", headers=HTML, body=page("acmenews_after.html")),
        Route("/s/umbrellacorp", headers=HTML, body=page("globexnews_empty.html")),
    ]
    return replay_crawl("telegram", options, routes, brands=[ACME], home=home)


def test_crawl_reads_a_channel_back_to_its_first_post(first_run: ReplayResult) -> None:
    summary = first_run.source
    assert (summary["health"], summary["parse_errors"], summary["fetch_errors"]) == (
        "healthy",
        0,
        0,
    )
    numbers = sorted(int(m.url.rsplit("/", 1)[1]) for m in first_run.mentions)
    assert numbers == [98, 99, 100, 101, 102, 103, 106]
    assert all(m.author.followers == 12300 for m in first_run.mentions)
    pages = [(r.path, r.param("before")) for r in first_run.requests if r.path != "/robots.txt"]
    assert pages == [("/s/acmenews", None), ("/s/acmenews", "101")]
    assert first_run.requests[0].path == "/robots.txt"  # robots.txt is asked first


def test_second_crawl_stops_at_posts_already_seen(second_run: ReplayResult) -> None:
    assert [m.url for m in second_run.mentions] == ["https://t.me/acmenews/107"]
    assert second_run.mentions[0].author.followers == 12400
    pages = [(r.path, r.param("before")) for r in second_run.requests if r.path != "/robots.txt"]
    assert pages == [("/s/acmenews", None)]  # the link to older posts is not followed


def test_crawl_obeys_robots_txt(second_run: ReplayResult) -> None:
    assert not [r for r in second_run.requests if r.path == "/s/umbrellacorp"]
    assert second_run.source["fetch_errors"] == 1  # counted, with the reason in the log
    assert "Forbidden by robots.txt" in second_run.log


def test_crawl_survives_rate_limits_and_errors(tmp_path: Path) -> None:
    options = {"base_url": "{base_url}", "channels": ["globexnews", "initechhq", "changedchan"]}
    routes = [
        Route("/s/globexnews", status=429, times=1, headers={"Retry-After": "1"}),
        Route("/s/globexnews", headers=HTML, body=page("globexnews_empty.html")),
        Route("/s/initechhq", headers=HTML, body=page("initechhq_not_preview.html")),
        Route("/s/changedchan", headers=HTML, body=page("changedchan.html")),
    ]
    result = replay_crawl("telegram", options, routes, brands=[ACME], home=tmp_path)
    assert [m.url for m in result.mentions] == ["https://t.me/changedchan/2"]
    summary = result.source
    assert (summary["parse_errors"], summary["fetch_errors"]) == (1, 0)
    assert "initechhq is a channel or user page without a public preview" in (
        summary["last_error"] or ""
    )
    assert [r.status for r in result.requests if r.path == "/s/globexnews"] == [429, 200]


def test_robots_txt_is_obeyed_for_every_channel_of_a_crawl(tmp_path: Path) -> None:
    # Scrapy 2.19's own RobotsTxtMiddleware let the third and later requests that
    # waited for robots.txt through unchecked; listener.crawl.middlewares replaces it.
    channels = ["globexnews", "acmenews", "umbrellacorp", "changedchan", "initechhq"]
    routes = [
        Route("/robots.txt", body=b"User-agent: *\nDisallow: /s/umbrellacorp\n"),
        *(
            Route(f"/s/{name}", headers=HTML, body=page("globexnews_empty.html"))
            for name in channels
        ),
    ]
    options = {"base_url": "{base_url}", "channels": channels}
    result = replay_crawl("telegram", options, routes, brands=[ACME], home=tmp_path)
    assert not [r for r in result.requests if r.path == "/s/umbrellacorp"]


def test_a_post_that_cannot_be_read_is_named_and_the_rest_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    html = page("acmenews.html").decode()
    undated = '<time datetime="2026-11-19T08:15:00+00:00" class="time">'
    assert html.count(undated) == 1
    html = html.replace(undated, '<time class="time">')  # post 103 loses its date
    src = source()
    with caplog.at_level("INFO"):
        mentions, _ = split(src.parse(page_response(src, html.encode())))
    before = split(source().parse(page_response(source(), page("acmenews.html"))))[0]
    assert [m.url for m in mentions] == [m.url for m in before if not m.url.endswith("/103")]
    assert src.skipped["without a date"] == 1
    warning = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1 and "1 without a date (acmenews/103)" in warning[0].getMessage()
    assert "(acmenews/104)" in warning[0].getMessage()  # the photo without caption, named too


def test_a_preview_page_handed_over_without_its_request_names_its_channel() -> None:
    """The channel page handed to the source with no request meta: the channel comes from
    the URL (/s/NAME), else from its posts' links; older posts are asked for under it."""
    expected, _ = split(source().parse(page_response(source(), page("acmenews.html"))))
    for url in (f"{BASE}/s/acmenews", f"{BASE}/cache/page.html"):
        src = source()
        answer = testing.respond(url, page("acmenews.html"), content_type="text/html", meta={})
        mentions, requests = split(src.parse(answer))
        assert [m.url for m in mentions] == [m.url for m in expected]
        assert [(r.url, r.meta["channel"]) for r in requests] == [
            (f"{BASE}/s/acmenews?before=101", "acmenews")
        ]
