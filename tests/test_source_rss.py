"""The ``rss`` source: RSS, Atom and JSON Feed on the demo site, own fixtures and real feeds."""

# The demo texts use typographic apostrophes (U+2019) on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SHARED_FIXTURES
from pydantic import ValidationError

from listener import demo_site, testing
from listener.mention import Mention, SourceKind
from listener.plugins import rss
from listener.plugins.rss import RssOptions, RssSource, read_feed
from listener.source import Response
from listener.sourcekit import html_to_text
from listener.testing import make_source

DATA = Path(__file__).resolve().parent / "data"
SITE = demo_site.DIRECTORY
FIXTURES = SHARED_FIXTURES / "feeds"
BASE = "http://127.0.0.1:8999"

RSS_TYPE = "application/rss+xml; charset=UTF-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_TYPE = "application/feed+json; charset=utf-8"


def source(*feeds: str, **options: object) -> RssSource:
    return make_source(RssSource, feeds=list(feeds) or [f"{BASE}/f"], **options)


def respond(body: bytes, url: str, content_type: str = "", status: int = 200) -> Response:
    return testing.respond(url, body, status=status, content_type=content_type or None)


def parse(src: RssSource, response: Response) -> list[Mention]:
    results = list(src.parse(response))
    assert all(isinstance(result, Mention) for result in results)
    return [result for result in results if isinstance(result, Mention)]


def site_response(path: str, content_type: str) -> Response:
    body = (SITE / path).read_bytes().replace(b"{base_url}", BASE.encode())
    return respond(body, f"{BASE}/{path}", content_type)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def assert_aware_utc(mentions: Iterable[Mention]) -> None:
    for mention in mentions:
        assert mention.published_at.tzinfo is not None
        assert mention.published_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# --------------------------------------------------------------------------- demo site: RSS 2.0

TECHWIRE = "https://www.techwire.example"
# title -> (published, author, slash:comments, path)
RSS_EXPECTED = {
    "Acme Corp unveils Rocket 14 laptop at its developer conference": (
        utc(2026, 10, 9, 13, 15), "Priya Raman", 14,
        "/2026/10/09/acme-rocket-14-unveiled"),
    "Globex raises cold storage prices by 30 percent": (
        utc(2026, 10, 13, 20, 40), "Daniel Kowalski", 42,
        "/2026/10/13/globex-cold-storage-price-rise"),
    "Initech to acquire analytics startup Penwise for $120 million": (
        utc(2026, 10, 16, 15, 5), "Priya Raman", None,
        "/2026/10/16/initech-acquires-penwise"),
    "EU agrees right-to-repair rules for laptops and phones": (
        utc(2026, 10, 20, 8, 0), "Elena Moretti", 8,
        "/2026/10/20/eu-right-to-repair-deal"),
    "Review: the Acme Rocket 14 is the developer laptop to beat": (
        utc(2026, 10, 23, 14, 30), "Sam Okafor", 67,
        "/2026/10/23/review-acme-rocket-14"),
    "Survey: customers praise Acme support, Globex trails the field": (
        utc(2026, 10, 28, 17, 0), "Daniel Kowalski", 23,
        "/2026/10/28/cloud-support-survey"),
    "Initech moves TPS Cloud to per-seat pricing, angering small firms": (
        utc(2026, 11, 2, 14, 45), "Elena Moretti", 31,
        "/2026/11/02/initech-tps-cloud-per-seat-pricing"),
    "How the Acme anvil became cartoon shorthand for disaster": (
        utc(2026, 11, 6, 20, 20), "Sam Okafor", None,
        "/2026/11/06/history-of-the-cartoon-anvil"),
    "Globex storage outage takes thousands of websites offline": (
        utc(2026, 11, 12, 16, 52), "Daniel Kowalski", 128,
        "/2026/11/12/globex-storage-outage"),
    "Globex blames faulty configuration push for nine-hour outage": (
        utc(2026, 11, 13, 23, 10), "Daniel Kowalski", 56,
        "/2026/11/13/globex-incident-report"),
    "After the outage, Globex customers weigh Acme and Initech": (
        utc(2026, 11, 16, 12, 30), "Priya Raman", 19,
        "/2026/11/16/globex-customers-weigh-alternatives"),
    "Acme Corp beats expectations as Rocket laptops sell out": (
        utc(2026, 11, 19, 21, 5), "Elena Moretti", 12,
        "/2026/11/19/acme-corp-q3-results"),
}  # fmt: skip


def test_demo_rss_feed_gives_every_item_with_its_fields() -> None:
    mentions = parse(source(), site_response("technews/feed.xml", RSS_TYPE))

    assert len(mentions) == 12
    assert {m.title for m in mentions} == set(RSS_EXPECTED)
    for mention in mentions:
        published, author, comments, path = RSS_EXPECTED[mention.title or ""]
        assert mention.published_at == published
        assert mention.author.name == author
        assert mention.engagement.comments == comments
        assert mention.canonical_url == TECHWIRE + path
        assert mention.source == "rss"
        assert mention.source_kind is SourceKind.NEWS
        assert mention.domain == "techwire.example"
        assert mention.thread_id is None
        assert "<" not in mention.text and "&#" not in mention.text
    assert_aware_utc(mentions)
    assert len({m.id for m in mentions}) == 12


def test_demo_rss_text_prefers_full_content_and_keeps_paragraphs() -> None:
    by_title = {m.title: m for m in parse(source(), site_response("technews/feed.xml", RSS_TYPE))}

    review = by_title["Review: the Acme Rocket 14 is the developer laptop to beat"]
    # content:encoded has three paragraphs; the description only the first.
    assert review.text.count("\n\n") == 2
    assert review.text.endswith("Otherwise, Acme has built a superb machine. Score: 9/10.")
    survey = by_title["Survey: customers praise Acme support, Globex trails the field"]
    assert survey.text.startswith("Acme’s support was great, unlike Globex’s")
    # No content:encoded: the description is the text.
    results = by_title["Acme Corp beats expectations as Rocket laptops sell out"]
    assert results.text.startswith("Acme Corp reported third-quarter revenue of $4.2 billion")
    assert "\n" not in results.text


def test_demo_rss_tracking_parameters_leave_the_canonical_url() -> None:
    by_title = {m.title: m for m in parse(source(), site_response("technews/feed.xml", RSS_TYPE))}

    outage = by_title["Globex storage outage takes thousands of websites offline"]
    assert "utm_source=rss" in outage.url
    assert outage.canonical_url == f"{TECHWIRE}/2026/11/12/globex-storage-outage"


# --------------------------------------------------------------------------- demo site: Atom

DEVNOTES = "https://devnotes.example/posts/2026/"
ATOM_EXPECTED = {
    "First week with the Acme Rocket 14": (
        utc(2026, 10, 11, 17, 20), "10/first-week-with-the-rocket-14/"),
    "Migrating our backups off Globex": (
        utc(2026, 10, 18, 8, 5), "10/migrating-backups-off-globex/"),
    "Notes on SQLite WAL mode": (
        utc(2026, 10, 25, 14, 0), "10/notes-on-sqlite-wal-mode/"),
    "J’ai testé le support d’Acme (et celui de Globex)": (
        utc(2026, 10, 30, 8, 40), "10/support-acme-et-globex/"),
    "Initech Ledger has a surprisingly good API": (
        utc(2026, 11, 4, 17, 0), "11/initech-ledger-api/"),
    "Live notes: the Globex outage": (
        utc(2026, 11, 12, 15, 30), "11/globex-outage-live-notes/"),
    "A week of #acme hype, and why I’m not buying it yet": (
        utc(2026, 11, 15, 10, 15), "11/acme-hype/"),
    # No date of its own: the feed's <updated>.
    "Year-end tooling roundup: what stayed, what went": (
        utc(2026, 11, 18, 21, 30), "11/year-end-tooling-roundup/"),
}  # fmt: skip


def test_demo_atom_feed_resolves_links_and_inherits_author_and_date() -> None:
    mentions = parse(source(kind="blog"), site_response("devnotes/atom.xml", ATOM_TYPE))

    assert len(mentions) == 8
    assert {m.title for m in mentions} == set(ATOM_EXPECTED)
    for mention in mentions:
        published, path = ATOM_EXPECTED[mention.title or ""]
        assert mention.published_at == published
        assert mention.canonical_url == DEVNOTES + path  # relative href + xml:base
        assert mention.source_kind is SourceKind.BLOG
        assert mention.engagement.comments is None
        if mention.title == "Initech Ledger has a surprisingly good API":
            assert (mention.author.name, mention.author.url) == (
                "Tomasz Nowak",
                "https://tnowak.example/",
            )
        else:  # the feed's author applies to entries without one
            assert (mention.author.name, mention.author.url) == (
                "Marie Lefèvre",
                "https://devnotes.example/about/",
            )
    assert_aware_utc(mentions)


def test_demo_atom_xhtml_content_and_french_text() -> None:
    by_title = {m.title: m for m in parse(source(), site_response("devnotes/atom.xml", ATOM_TYPE))}

    wal = by_title["Notes on SQLite WAL mode"]
    assert wal.text.startswith("Write-ahead logging is the single most useful SQLite setting")
    assert "With PRAGMA journal_mode=WAL, readers" in wal.text
    assert wal.text.count("\n\n") == 1
    french = by_title["J’ai testé le support d’Acme (et celui de Globex)"]
    assert "Le support d’Acme m’a répondu en dix minutes" in french.text


# --------------------------------------------------------------------------- demo site: JSON Feed

JSON_EXPECTED = {
    "Acme: the Rocket 14 is now shipping": (
        utc(2026, 10, 22, 14, 0), "Acme Newsroom", "https://acme.example/newsroom/rocket-14-now-shipping"),
    "Initech übernimmt Penwise: Was Kunden jetzt wissen müssen": (
        utc(2026, 10, 24, 5, 30), "Jana Becker",
        "https://stackweekly.example/de/2026/10/initech-uebernimmt-penwise"),
    "What people said about the Globex outage": (
        utc(2026, 11, 12, 22, 0), "Stack Weekly",
        "https://stackweekly.example/2026/11/globex-outage-reactions"),
    "Globex storage outage takes thousands of websites offline": (
        utc(2026, 11, 12, 16, 52), "Daniel Kowalski",
        "https://www.techwire.example/2026/11/12/globex-storage-outage"),
    "Tool of the week: Acme CLI 3.0": (
        utc(2026, 11, 17, 17, 0), "Stack Weekly",
        "https://stackweekly.example/2026/11/tool-of-the-week-acme-cli"),
    "Reader mail: Initech or Globex for a five-person team?": (
        utc(2026, 11, 19, 12, 0), "Stack Weekly",
        "https://stackweekly.example/2026/11/reader-mail-initech-or-globex"),
}  # fmt: skip


def test_demo_json_feed_gives_every_item() -> None:
    mentions = parse(source(), site_response("weekly/feed.json", JSON_TYPE))

    assert len(mentions) == 6
    assert {m.title for m in mentions} == set(JSON_EXPECTED)
    for mention in mentions:
        published, author, canonical = JSON_EXPECTED[mention.title or ""]
        assert mention.published_at == published
        assert mention.author.name == author
        assert mention.canonical_url == canonical
    assert_aware_utc(mentions)
    by_title = {m.title: m for m in mentions}
    tool = by_title["Tool of the week: Acme CLI 3.0"]  # content_text only
    assert tool.text.endswith("give it another go. #acme #devtools")
    assert tool.text.count("\n\n") == 1
    reactions = by_title["What people said about the Globex outage"]
    assert "@globex your status page has been green" in reactions.text
    assert reactions.text.count("\n\n") == 3


def test_demo_syndicated_item_is_the_same_mention_in_both_feeds() -> None:
    rss_outage = {
        m.title: m for m in parse(source(), site_response("technews/feed.xml", RSS_TYPE))
    }["Globex storage outage takes thousands of websites offline"]
    json_outage = {
        m.title: m for m in parse(source(), site_response("weekly/feed.json", JSON_TYPE))
    }["Globex storage outage takes thousands of websites offline"]

    assert rss_outage.url != json_outage.url  # different tracking parameters
    assert rss_outage.id == json_outage.id
    assert rss_outage.text == json_outage.text
    assert rss_outage.published_at == json_outage.published_at


def test_the_json_feed_is_parsed_without_a_content_type() -> None:
    body = (SITE / "weekly" / "feed.json").read_bytes()
    feed = read_feed(body, f"{BASE}/weekly/feed.json")
    assert feed.format == "json1.1"
    assert feed.title == "Stack Weekly"
    assert len(feed.entries) == 6


# --------------------------------------------------------------------------- own fixtures


def test_relative_links_resolve_against_the_feed_url_and_undated_entries_take_the_feed_date() -> (
    None
):
    url = "https://harbour.example/feeds/all.rss"
    src = source(url)
    mentions = parse(src, respond((DATA / "relative_links.rss").read_bytes(), url, RSS_TYPE))

    by_title = {m.title: m for m in mentions}
    assert set(by_title) == {
        "Relative link, dated",
        "No date of its own",
        "Only a permalink guid",
        "Title only",
    }
    dated = by_title["Relative link, dated"]
    assert dated.url == "https://harbour.example/posts/relative-dated.html?utm_source=feed&id=7#top"
    assert dated.canonical_url == "https://harbour.example/posts/relative-dated.html?id=7"
    assert dated.published_at == utc(2026, 11, 13, 22, 30)
    assert dated.author.name == "Ines Alvarez"  # the e-mail address is not a name
    assert dated.engagement.comments == 3
    assert dated.engagement.total == 3
    assert dated.text == "First paragraph about Acme.\n\nSecond paragraph & more."

    undated = by_title["No date of its own"]
    assert undated.url == "https://harbour.example/feeds/posts/undated.html"
    assert undated.published_at == utc(2026, 11, 14, 5, 0)
    assert undated.author.name == "Ola Berg"

    assert by_title["Only a permalink guid"].url == "https://harbour.example/posts/guid-only.html"
    assert by_title["Title only"].text == "Title only"
    assert src.skipped == {"without a link": 1}


def test_entries_without_any_date_are_skipped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    url = "https://undated.example/feed.atom"
    src = source(url)
    mentions = parse(
        src, respond((DATA / "undated.atom").read_bytes(), url, "application/atom+xml")
    )

    assert [m.title for m in mentions] == ["Dated entry"]
    assert mentions[0].published_at == utc(2026, 11, 1, 15, 0)
    assert mentions[0].text == "Line one\nLine two\n\nNew paragraph."
    assert src.skipped == {"without a date (nor a feed date)": 1}
    assert url in caplog.text and "skipped 1 of 2 entries" in caplog.text


def test_a_truncated_feed_raises_value_error_naming_the_url() -> None:
    url = "https://cutoff.example/feed.rss"
    with pytest.raises(ValueError, match=re.escape(url)) as error:
        list(source(url).parse(respond((DATA / "truncated.rss").read_bytes(), url, RSS_TYPE)))
    assert "malformed" in str(error.value)


def test_a_partly_truncated_feed_keeps_the_complete_entries() -> None:
    url = "https://cutoff.example/feed.rss"
    src = source(url)
    body = (DATA / "partly_truncated.rss").read_bytes()
    mentions = parse(src, respond(body, url, RSS_TYPE))

    assert [(m.title, m.text) for m in mentions] == [
        ("The complete item", "This one arrived whole.")
    ]
    assert src.skipped == {"without a link": 1}


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/rss+xml", ""])
def test_an_html_error_page_instead_of_a_feed_raises_value_error(content_type: str) -> None:
    url = "https://news.example/feed.xml"
    body = (DATA / "error_page.html").read_bytes()
    with pytest.raises(ValueError, match=re.escape(url)) as error:
        list(source(url).parse(respond(body, url, content_type)))
    assert "HTML page" in str(error.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b'{"error": "rate limited"}', "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": 3}', "without an 'items' list"),
        (b"{not json", "not valid JSON"),
        (b"plain text, not a feed", "not an RSS, Atom or JSON feed"),
    ],
)
def test_bodies_that_are_not_feeds_raise_value_error(body: bytes, message: str) -> None:
    url = "https://broken.example/feed"
    with pytest.raises(ValueError, match=re.escape(url)) as error:
        list(source(url).parse(respond(body, url)))
    assert message in str(error.value)


def test_an_http_error_status_raises_value_error() -> None:
    url = "https://broken.example/feed"
    with pytest.raises(ValueError, match="HTTP 503"):
        list(source(url).parse(respond(b"<rss/>", url, status=503)))


def test_an_empty_but_valid_feed_gives_nothing() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    assert parse(source(), respond(body, f"{BASE}/quiet.xml", "application/rss+xml")) == []


# --------------------------------------------------------------------------- requests and options


def test_start_requests_is_one_request_per_feed() -> None:
    feeds = [f"{BASE}/a.xml", f"{BASE}/b.json", "https://example.org/feed"]
    requests = list(source(*feeds).start_requests())

    assert [r.url for r in requests] == feeds
    assert all(r.method == "GET" for r in requests)
    assert all("application/rss+xml" in r.headers["Accept"] for r in requests)
    assert [r.meta["feed"] for r in requests] == feeds


def test_options_need_at_least_one_absolute_feed_url() -> None:
    with pytest.raises(ValidationError):
        RssOptions(plugin="rss", feeds=[])
    with pytest.raises(ValidationError, match="not an absolute http"):
        RssOptions(plugin="rss", feeds=["feed.xml"])
    with pytest.raises(ValidationError):
        RssOptions(plugin="rss", feeds=[f"{BASE}/f"], kind="podcast")
    with pytest.raises(ValidationError):
        RssOptions.model_validate({"plugin": "rss", "feeds": [f"{BASE}/f"], "feed": "typo"})
    assert RssOptions(plugin="rss", feeds=[f"{BASE}/f"]).kind is SourceKind.NEWS


def test_the_plugin_registers_the_source() -> None:
    assert rss.listener_register_sources() == [RssSource]
    assert RssSource.name == "rss"
    assert RssSource.Options is RssOptions


# --------------------------------------------------------------------------- HTML to text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("First<p>Second", "First\n\nSecond"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<ul><li>x</li><li>y</li></ul>after", "x\ny\n\nafter"),
        ("  lots   of\n\tspace  ", "lots of space"),  # HTML: newlines are spaces
        ("AT&amp;T &#x27;quoted&#x27; &lt;tag&gt; &nbsp;x", "AT&T 'quoted' <tag> x"),
        ("<script>alert(1)</script><style>p{}</style>kept", "kept"),
        ("<pre><code>def f():\n    return 1\n</code></pre>", "def f():\n    return 1"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("plain\r\n\r\n\r\ntext", "plain text"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


# --------------------------------------------------------------------------- real feeds


def fixture(path: str) -> bytes:
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    return (FIXTURES / path).read_bytes()


def count_entries(body: bytes) -> int:
    """Items/entries counted without feedparser: XML elements, or tags in broken XML."""
    try:
        root = ET.fromstring(body.lstrip())
    except ET.ParseError:
        return len(re.findall(rb"<(?:item|entry)[\s>]", body))
    return sum(1 for el in root.iter() if el.tag.rsplit("}", 1)[-1] in ("item", "entry"))


REAL_XML = [
    "feedjira/AmazonWebServicesBlog.xml",
    "feedjira/FeedBurnerXHTML.xml",
    "feedjira/InvalidDateFormat.xml",
    "feedjira/RSSWithComments.xml",
    "feedjira/TypePadNews.xml",
    "feedjira/itunes.xml",
    "feedjira/youtube_atom.xml",
    "feedparser/large_atom_feed_touchnokia_ru.xml",
    "perceval/couchbase_blog_rss.xml",
]


@pytest.mark.parametrize("path", REAL_XML)
def test_real_xml_feeds_give_one_mention_per_entry(path: str) -> None:
    body = fixture(path)
    url = f"https://fixtures.example/{path}"
    mentions = parse(source(url), respond(body, url))

    expected = count_entries(body)
    assert expected > 0
    assert len(mentions) == expected
    assert_aware_utc(mentions)
    for mention in mentions:
        assert mention.text.strip()
        assert mention.canonical_url.startswith(("http://", "https://"))


@pytest.mark.parametrize(
    "path", ["feedjira/json_feed.json", "trafilatura/npr_technology_feed.json"]
)
def test_real_json_feeds_give_one_mention_per_item(path: str) -> None:
    body = fixture(path)
    data = json.loads(body)
    url = f"https://fixtures.example/{path}"
    mentions = parse(source(url), respond(body, url, "application/json"))

    assert len(mentions) == len(data["items"])
    assert [m.title for m in mentions] == [item.get("title") for item in data["items"]]
    assert_aware_utc(mentions)
    first = data["items"][0]
    assert mentions[0].url == first["url"]
    expected_date = datetime.fromisoformat(first["date_published"]).astimezone(UTC)
    assert mentions[0].published_at == expected_date


def test_real_json_feed_authors() -> None:
    npr = json.loads(fixture("trafilatura/npr_technology_feed.json"))
    url = "https://feeds.npr.org/1019/feed.json"
    mentions = parse(source(url), respond(json.dumps(npr).encode(), url))
    for item, mention in zip(npr["items"], mentions, strict=True):
        expected = (item.get("author") or npr["author"])["name"]
        assert mention.author.name == expected

    blog = fixture("feedjira/json_feed.json")
    mentions = parse(source(url), respond(blog, url))
    assert {m.author.name for m in mentions} == {"Brent Simmons"}  # inherited from the feed


def test_json_feed_spec_example_has_no_dates_so_its_items_are_skipped() -> None:
    body = fixture("feedparser/jsonfeed_example.json")
    feed = read_feed(body, "https://example.org/feed.json")
    assert [e.title for e in feed.entries] == ["post 2", None]
    assert feed.entries[1].text == "Hello, world!"  # the <script> is gone
    assert feed.entries[1].author_name == "you"

    src = source("https://example.org/feed.json")
    assert parse(src, respond(body, "https://example.org/feed.json")) == []
    assert src.skipped == {"without a date (nor a feed date)": 2}


def test_real_feed_with_an_invalid_secondary_date_keeps_the_valid_one() -> None:
    body = fixture("feedjira/InvalidDateFormat.xml")
    url = "http://example.com/feed"
    mentions = parse(source(url), respond(body, url, "application/rss+xml"))

    assert [(m.title, m.published_at) for m in mentions] == [
        ("Item 0 with an invalid date", utc(2017, 10, 16, 15, 10)),
        ("Item 1 with all valid dates", utc(2017, 10, 17, 12, 17)),
    ]
    assert mentions[0].text == "Item 0 with an invalid date"  # no description: the title


def test_real_feedburner_feed_uses_the_original_link_as_canonical() -> None:
    body = fixture("feedjira/FeedBurnerXHTML.xml")
    mentions = parse(source(), respond(body, "http://feeds.feedburner.com/RotoAuthority"))
    first = mentions[0]
    assert first.url.startswith("http://feedproxy.google.com/")
    assert (
        first.canonical_url == "http://www.rotoauthority.com/2014/04/stock-watch-aprils-finest.html"
    )
    assert first.author.name == "Alex Steers McCrum"
    assert first.engagement.comments == 0  # thr:count on the replies link


def test_real_rss_feed_fields() -> None:
    body = fixture("perceval/couchbase_blog_rss.xml")
    root = ET.fromstring(body)
    first_item = root.find("channel/item")
    assert first_item is not None
    mentions = parse(source(), respond(body, "http://blog.couchbase.com/feed"))

    assert mentions[0].title == first_item.findtext("title")
    assert mentions[0].url == first_item.findtext("link")
    assert mentions[0].author.name == "Matthew Groves"
    assert mentions[0].published_at == utc(2016, 12, 6, 17, 17)


@pytest.mark.parametrize(
    ("path", "codec"),
    [
        ("feedparser/chardet_koi8r.xml", "koi8-r"),
        ("feedparser/chardet_shiftjis.xml", "shift_jis"),
        ("feedparser/chardet_windows1255.xml", "cp1255"),
        ("feedparser/chardet_big5.xml", "big5"),
    ],
)
def test_real_feeds_in_undeclared_legacy_encodings_are_decoded(path: str, codec: str) -> None:
    body = fixture(path)
    feed = read_feed(body, f"https://fixtures.example/{path}")
    expected = count_entries(body)
    assert len(feed.entries) == expected

    decoded = body.decode(codec)
    for entry in feed.entries:
        # Whatever text came out is the document's own, properly decoded.
        assert entry.text and entry.text[:20] in " ".join(decoded.split())
        match = re.search(r"<title>(.*?)</title>", decoded)
        if entry.title and match:
            assert entry.title == match.group(1)
    # These tiny test feeds have no links, so no entry can become a mention.
    src = source()
    assert parse(src, respond(body, f"https://fixtures.example/{path}")) == []
    assert src.skipped.total() == expected


def test_real_podcast_feed_takes_the_episode_summary_over_a_shorter_content() -> None:
    """itunes.xml: episode 3's content:encoded is one line; its itunes:summary says more.

    (The file uses the undeclared prefix ``content:``, so it is not well-formed XML.)
    """
    body = fixture("feedjira/itunes.xml")
    items = re.findall(r"<item>(.*?)</item>", body.decode(), re.DOTALL)
    summaries = [re.findall(r"<itunes:summary>(.*?)</itunes:summary>", i)[0] for i in items]
    mentions = parse(source(), respond(body, "http://example.com/podcasts/everything.xml"))

    assert [m.text for m in mentions] == summaries
    assert "Gooseneck" not in mentions[0].text


def test_real_hacker_news_feed_items_are_their_titles_not_a_comments_link() -> None:
    """RSSWithComments.xml: every description is <a href=…>Comments</a>, a label, not text."""
    body = fixture("feedjira/RSSWithComments.xml")
    mentions = parse(source(), respond(body, "https://news.ycombinator.com/rss"))

    assert len(mentions) == 30
    assert [m.text for m in mentions] == [m.title for m in mentions]


def test_a_link_is_text_when_the_description_says_more_than_its_label() -> None:
    body = fixture("feedjira/RSSWithComments.xml").replace(
        b'">Comments</a>]]>', b'">Comments</a> on a new Lambda feature]]>', 1
    )
    mentions = parse(source(), respond(body, "https://news.ycombinator.com/rss"))
    assert mentions[0].text == "Comments on a new Lambda feature"


def test_a_real_feed_after_a_bom_and_blank_lines_is_not_reported_malformed() -> None:
    """A UTF-8 BOM then blank lines before <?xml (a template's stray output)."""
    body = b"\xef\xbb\xbf\n\n" + fixture("perceval/couchbase_blog_rss.xml")
    src = source()
    mentions = parse(src, respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len(mentions) == 30
    assert src.problems == []


@pytest.mark.parametrize(
    "written",
    [
        "Di, 06 Dez 2016 17:17:00 +0000",  # German names (RFC 822 wants English; CMSs localise)
        "mar, 06 déc 2016 17:17:00 +0000",  # French
        "Tuesday, December 06, 2016 17:17:00",
        "Tue, 06 Dec 2016 05:17:00 PM +0000",  # feedparser read 05:17
        "2016/12/06 17:17:00",  # feedparser read 1 December
        "Tue, 06 Dec 2016 18:17:00 CET",  # feedparser read 18:17 UTC
        "Tue, 06 Dec 2016 20:17:00 MSK",
        "1481044620",  # Unix seconds: feedparser read the year 1481
        # ISO 8601 basic format: feedparser kept the day and lost the time and zone
        "20161206T171700Z",
        "20161206T1817+0100",
        "20161206T121700-0500",
    ],
)
def test_feed_dates_written_in_the_wild_are_read_with_their_zone(written: str) -> None:
    """The real Couchbase feed with its first pubDate written as other feeds write dates."""
    body = fixture("perceval/couchbase_blog_rss.xml").replace(
        b"Tue, 06 Dec 2016 17:17:00 +0000", written.encode(), 1
    )
    feed = read_feed(body, "http://blog.couchbase.com/feed", RSS_TYPE)

    assert feed.entries[0].published == utc(2016, 12, 6, 17, 17)
    assert feed.entries[1].published == utc(2016, 12, 5, 16, 24)  # untouched


def _couchbase_links(replace: Callable[[re.Match[bytes]], bytes]) -> bytes:
    body = fixture("perceval/couchbase_blog_rss.xml")
    return re.sub(rb"<link>http://blog\.couchbase\.com/2016/(\w+)/([^<]+)</link>", replace, body)


def test_entries_that_are_anchors_of_one_page_keep_their_own_ids() -> None:
    """The real Couchbase feed as a changelog or live blog writes it: one page, an anchor each.

    Without the fragment every entry had the same id and the crawl dropped all
    but one as duplicates.
    """
    body = _couchbase_links(
        lambda m: b"<link>http://blog.couchbase.com/updates#" + m[2] + b"</link>"
    )
    mentions = parse(source(), respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len({m.id for m in mentions}) == len(mentions) == 30
    assert mentions[0].canonical_url == (
        "http://blog.couchbase.com/updates#connect-2016-developer-workshop"
    )


def test_entries_sharing_one_link_are_told_apart_by_their_guids() -> None:
    """The real Couchbase feed with every item linking to the home page, as some feeds do."""
    count = iter(range(1000))
    body = _couchbase_links(
        lambda m: (
            b"<link>http://blog.couchbase.com/</link>"
            + f'<guid isPermaLink="false">post-{next(count)}</guid>'.encode()
        )
    )
    mentions = parse(source(), respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len({m.id for m in mentions}) == len(mentions) == 30
    assert mentions[0].canonical_url == "http://blog.couchbase.com/"  # the first keeps it
    again = parse(source(), respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))
    assert [m.id for m in again] == [m.id for m in mentions]


def test_tracking_fragments_do_not_change_an_entry_id() -> None:
    plain = parse(source(), respond(fixture("perceval/couchbase_blog_rss.xml"), BASE, RSS_TYPE))
    body = _couchbase_links(lambda m: m[0].replace(b"</link>", b"#xtor=RSS-1</link>"))
    tracked = parse(source(), respond(body, BASE, RSS_TYPE))

    assert [m.id for m in tracked] == [m.id for m in plain]


def test_json_feed_titles_with_html_entities_are_decoded() -> None:
    """The real inessential.com JSON Feed with titles as WordPress' JSON Feed plugin writes them.

    (``Here&#8217;s``, ``&amp;``: the specification allows HTML in content_html only,
    and a brand named with an ampersand would not be found in ``Procter &amp; Gamble``.)
    """
    data = json.loads(fixture("feedjira/json_feed.json"))
    titles = [item.get("title") for item in data["items"]]
    for item in data["items"]:
        if item.get("title"):
            item["title"] = item["title"].replace("&", "&amp;").replace("’", "&#8217;")
    data["items"][0]["title"] = "Procter &amp; Gamble&#8217;s results"
    url = "http://inessential.com/feed.json"
    mentions = parse(source(url), respond(json.dumps(data).encode(), url, JSON_TYPE))

    assert [m.title for m in mentions] == ["Procter & Gamble’s results", *titles[1:]]
    assert any("’" in (title or "") for title in titles[1:])  # the test changes something


def test_a_json_feed_item_whose_html_is_only_an_image_keeps_its_plain_text() -> None:
    data = json.loads(fixture("trafilatura/npr_technology_feed.json"))
    first = data["items"][0]
    summary = first.pop("summary")
    first["content_text"] = summary
    first["content_html"] = f'<img src="{first["image"]}">'
    url = "https://feeds.npr.org/1019/feed.json"
    mentions = parse(source(url), respond(json.dumps(data).encode(), url, JSON_TYPE))

    assert mentions[0].text == summary


def test_html_entities_in_a_real_feed_are_read_and_not_reported_malformed() -> None:
    """The real Couchbase feed with HTML entities XML does not define, as templates write them.

    ``&nbsp;`` or ``&mdash;`` made the document not well-formed: the feed was
    reported malformed on every crawl and read whole by the loose parser.
    """
    body = fixture("perceval/couchbase_blog_rss.xml").replace(
        b"<title>Connect 2016 Developer Workshop</title>",
        b"<title>Connect&nbsp;2016 &mdash; Developer Workshop &amp; more</title>",
        1,
    )
    src = source()
    mentions = parse(src, respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert src.problems == []
    assert len(mentions) == 30
    assert mentions[0].title == "Connect 2016 — Developer Workshop & more"


@pytest.mark.parametrize(
    ("declaration", "content_type"),
    [
        (b'encoding="ISO-8859-1"', "application/rss+xml"),  # a template's old declaration
        (b'encoding="UTF-8"', "text/xml; charset=ISO-8859-1"),  # a server's default charset
        (b'encoding="UTF-8"', "text/xml; charset=windows-1252"),
    ],
)
def test_a_real_utf8_feed_declared_as_latin1_is_read_as_utf8(
    declaration: bytes, content_type: str
) -> None:
    """feedparser reads these as UTF-8 (its quotes would be mojibake, 'developerâ€™s', read
    as declared); kept as a guard for the servers' and templates' wrong declarations."""
    body = fixture("perceval/couchbase_blog_rss.xml").replace(b'encoding="UTF-8"', declaration, 1)
    feed = read_feed(body, "http://blog.couchbase.com/feed", content_type)

    assert "full-day developer’s workshop" in feed.entries[0].text
    assert not any("â€" in (entry.text + (entry.title or "")) for entry in feed.entries)


def test_a_real_feed_truly_in_windows_1252_is_still_read_as_declared() -> None:
    body = fixture("perceval/couchbase_blog_rss.xml").decode("utf-8")
    body = body.replace('encoding="UTF-8"', 'encoding="windows-1252"', 1)
    feed = read_feed(body.encode("cp1252", "replace"), "http://blog.couchbase.com/feed")

    assert "full-day developer’s workshop" in feed.entries[0].text


def test_podcast_episodes_without_a_link_or_permalink_guid_point_at_their_audio() -> None:
    """The real iTunes podcast feed with guids that are no URLs (as many hosts write them).

    Its items have no <link>, so every episode was skipped "without a link".
    """
    body = fixture("feedjira/itunes.xml")
    count = iter(range(100))
    body = re.sub(
        rb"<guid>[^<]*</guid>",
        lambda _: f'<guid isPermaLink="false">episode-{next(count)}</guid>'.encode(),
        body,
    )
    src = source()
    mentions = parse(src, respond(body, "http://example.com/podcasts/everything.xml"))

    enclosures = re.findall(r'<enclosure url="([^"]+)"', body.decode())
    assert [m.url for m in mentions] == enclosures
    assert src.skipped == {}


def test_an_impossible_basic_format_date_is_no_date() -> None:
    """'20161345T171700Z' in the real Couchbase feed: feedparser read it as 13 May."""
    body = fixture("perceval/couchbase_blog_rss.xml").replace(
        b"Tue, 06 Dec 2016 17:17:00 +0000", b"20161345T171700Z", 1
    )
    src = source()
    mentions = parse(src, respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len(mentions) == 29
    assert src.skipped == {"without a date (nor a feed date)": 1}


def test_a_skipped_entry_is_named_by_its_link_else_its_guid_else_its_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real Couchbase feed with three entries made unreadable, each named in the log.

    Its items carry no guid; the second gets one that is no URL, as many hosts write them.
    """
    body = fixture("perceval/couchbase_blog_rss.xml").decode("utf-8")
    items = re.findall(r"<item>.*?</item>", body, re.DOTALL)
    link = re.findall(r"<link>([^<]+)</link>", items[0])[0]
    guid = "couchbase-blog-post-2"
    undated = re.sub(r"<pubDate>[^<]*</pubDate>", "", items[0])
    no_link = re.sub(r"<link>[^<]*</link>", f'<guid isPermaLink="false">{guid}</guid>', items[1])
    bare = re.sub(r"<link>[^<]*</link>", "", items[2])
    body = body.replace(items[0], undated).replace(items[1], no_link).replace(items[2], bare)
    src = source()
    mentions = parse(src, respond(body.encode(), "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len(mentions) == len(items) - 3
    assert src.skipped == {"without a date (nor a feed date)": 1, "without a link": 2}
    assert f"1 without a date (nor a feed date) ({link})" in caplog.text
    assert f"2 without a link ({guid}, entry 3)" in caplog.text


def test_a_feed_date_that_is_only_a_time_is_no_date() -> None:
    """'T00:00:00-05:00' (a static site generator's empty date): feedparser dated it today."""
    body = fixture("perceval/couchbase_blog_rss.xml").replace(
        b"Tue, 06 Dec 2016 17:17:00 +0000", b"T00:00:00-05:00", 1
    )
    src = source()
    mentions = parse(src, respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len(mentions) == 29
    assert src.skipped == {"without a date (nor a feed date)": 1}


def _as_google_news(body: bytes) -> bytes:
    """The real Couchbase feed in the shape of a Google News search feed.

    Google News links every item to its own opaque redirect, appends the
    publisher to the title, describes the item as the linked headline then the
    publisher, and names the publisher in ``<source url="…">``.
    """

    def item(match: re.Match[bytes]) -> bytes:
        title = re.search(rb"<title>(.*?)</title>", match[0])
        date = re.search(rb"<pubDate>(.*?)</pubDate>", match[0])
        assert title is not None and date is not None
        token = b"CBMi" + hashlib.sha1(title[1]).hexdigest().encode()
        link = b"https://news.google.com/rss/articles/" + token + b"?oc=5"
        description = (
            b'&lt;a href="' + link + b'" target="_blank"&gt;' + title[1] + b"&lt;/a&gt;"
            b'&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;Couchbase Blog&lt;/font&gt;'
        )
        return (
            b"<item><title>" + title[1] + b" - Couchbase Blog</title><link>" + link + b"</link>"
            b'<guid isPermaLink="false">' + token + b"</guid><pubDate>" + date[1] + b"</pubDate>"
            b"<description>" + description + b"</description>"
            b'<source url="https://blog.couchbase.com">Couchbase Blog</source></item>'
        )

    return re.sub(rb"<item>.*?</item>", item, body, flags=re.S)


def test_google_news_items_are_the_publishers_mentions() -> None:
    """Each item names its publisher: the mention's domain and author, not news.google.com."""
    real = fixture("perceval/couchbase_blog_rss.xml")
    feed_url = "https://news.google.com/rss/search?q=couchbase&hl=en-US&gl=US&ceid=US:en"
    mentions = parse(source(), respond(_as_google_news(real), feed_url, RSS_TYPE))
    direct = parse(source(), respond(real, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert len(mentions) == len(direct) == 30
    assert {m.domain for m in mentions} == {"blog.couchbase.com"}
    assert {(m.author.name, m.author.url) for m in mentions} == {
        ("Couchbase Blog", "https://blog.couchbase.com")
    }
    # Titles and texts without the " - Couchbase Blog" Google appends to both.
    assert [m.title for m in mentions] == [m.title for m in direct]
    assert [m.text for m in mentions] == [m.title for m in direct]
    assert mentions[0].url.startswith("https://news.google.com/rss/articles/CBMi")
    assert len({m.id for m in mentions}) == 30


def test_a_source_element_in_another_feed_changes_nothing() -> None:
    """``<source>`` in a feed linking to the articles themselves (an aggregator's feed)."""
    real = fixture("perceval/couchbase_blog_rss.xml")
    body = real.replace(
        b"</item>", b'<source url="https://planet.example/feed">Planet Couchbase</source></item>'
    )
    mentions = parse(source(), respond(body, "http://blog.couchbase.com/feed", RSS_TYPE))
    direct = parse(source(), respond(real, "http://blog.couchbase.com/feed", RSS_TYPE))

    assert [(m.domain, m.author, m.title, m.text) for m in mentions] == [
        (m.domain, m.author, m.title, m.text) for m in direct
    ]
