"""The ``reviews`` source: schema.org Reviews in JSON-LD, microdata and RDFa.

Own fixtures in ``tests/data/reviews`` with the pages shipped in
``plugins/fixtures/reviews`` form a small recorded shop: a product page with
JSON-LD (``@graph``, ``@id`` references, a second review page), one with
microdata, a software page with RDFa, a product with only an AggregateRating
and a "404" page served with status 200. Real product pages from extruct's
test samples are parsed directly when the shared fixtures exist.
"""

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
from listener.config import BrandConfig
from listener.mention import Mention, SourceKind, mention_id
from listener.plugins import reviews
from listener.plugins.reviews import (
    ReviewsOptions,
    ReviewsSource,
    extract_reviews,
    rating_from,
)
from listener.source import Checkpoint, Request, Response
from listener.sourcekit import parse_date
from listener.testing import make_source

DATA = RecordedSite("reviews")
EXTRUCT = SHARED_FIXTURES / "product_pages" / "extruct"
TRUSTPILOT = SHARED_FIXTURES / "news_articles" / "trafilatura" / "uk.trustpilot.com.reviews.html"
BASE = "http://127.0.0.1:8999"
BRANDS = [BrandConfig(name="Acme", keywords=["acme"]), BrandConfig(name="Initech")]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes().replace(b"{base_url}", BASE.encode())


def source(*paths: str, **options: Any) -> ReviewsSource:
    urls = [f"{BASE}{path}" for path in paths] or [f"{BASE}/shop/rocket-14"]
    return make_source(ReviewsSource, brands=BRANDS, urls=urls, **options)


HTML = "text/html; charset=utf-8"


def respond(url: str, body: bytes, content_type: str = HTML, status: int = 200) -> Response:
    meta = {"origin": url, "page": 1}
    return testing.respond(url, body, status=status, content_type=content_type or None, meta=meta)


def parse(src: ReviewsSource, path: str, name: str) -> list[Mention | Request]:
    return list(src.parse(respond(f"{BASE}{path}", fixture(name))))


def mentions_of(results: list[Mention | Request]) -> list[Mention]:
    return [result for result in results if isinstance(result, Mention)]


def by_author(mentions: list[Mention]) -> dict[str | None, Mention]:
    return {mention.author.name: mention for mention in mentions}


def previous_run(folder: Path, newest: dict[str, str]) -> Checkpoint:
    """A checkpoint as an earlier run saved it."""
    path = folder / "checkpoint.json"
    path.write_text(json.dumps({"newest": newest}), encoding="utf-8")
    return Checkpoint(path)


# --------------------------------------------------------------------------- JSON-LD


def test_json_ld_graph_reviews_become_review_mentions() -> None:
    results = parse(source(), "/shop/rocket-14", "rocket-14.html")
    mentions = by_author(mentions_of(results))

    assert sorted(a or "" for a in mentions) == ["Jonas Weber", "Lee", "Mia K.", "Priya R."]
    jonas = mentions["Jonas Weber"]
    assert jonas.source == "reviews"
    assert jonas.source_kind is SourceKind.REVIEW
    assert jonas.title == "Quiet and quick (review of Acme Rocket 14)"
    assert jonas.text.startswith("Fans stay silent while compiling.")
    assert jonas.published_at == utc(2026, 3, 2, 17, 45)
    assert jonas.author.url == "https://people.example/jonas"
    assert jonas.engagement.likes == 17
    assert jonas.rating is not None
    assert (jonas.rating.value, jonas.rating.raw) == (0.75, 4.0)
    assert (jonas.rating.scale_min, jonas.rating.scale_max) == (1.0, 5.0)
    assert jonas.thread_id == f"{BASE}/shop/rocket-14#product"
    assert jonas.canonical_url.startswith(f"{BASE}/shop/rocket-14#review-")
    assert jonas.id == mention_id("reviews", jonas.canonical_url)


def test_a_review_referenced_by_id_keeps_its_own_url_headline_and_language() -> None:
    mentions = by_author(mentions_of(parse(source(), "/shop/rocket-14", "rocket-14.html")))
    priya = mentions["Priya R."]

    assert priya.canonical_url == f"{BASE}/reviews/9001"
    assert priya.url == f"{BASE}/reviews/9001"
    assert priya.title == "The best keyboard Acme has made (review of Acme Rocket 14)"
    assert priya.published_at == utc(2026, 3, 5, 9, 15)
    assert priya.language == "en"
    assert priya.rating is not None and priya.rating.value == 1.0


def test_missing_fields_degrade_the_mention() -> None:
    mentions = by_author(mentions_of(parse(source(), "/shop/rocket-14", "rocket-14.html")))

    bare = mentions["Mia K."]  # a bare rating: no headline, no text, a day-only date
    assert bare.title == "Review of Acme Rocket 14"
    assert bare.text == "Rated 3 out of 5."
    assert bare.published_at == utc(2026, 2, 27)
    assert bare.rating is not None and bare.rating.value == 0.5
    lee = mentions["Lee"]  # HTML body, a 10-point scale
    assert lee.text == "Seven out of ten.\n\nThe & key sticks a little."
    assert lee.rating is not None
    assert (lee.rating.raw, lee.rating.scale_max) == (7.0, 10.0)
    assert lee.rating.value == pytest.approx(6 / 9)


def test_undated_reviews_are_skipped_counted_and_named(caplog: pytest.LogCaptureFixture) -> None:
    src = source()
    with caplog.at_level("INFO", logger=reviews.log.name):
        parse(src, "/shop/rocket-14", "rocket-14.html")
    assert src.skipped["without a date"] == 1
    assert "skipped 1 of 5 reviews" in caplog.text
    assert "1 without a date (by Anonymous)" in caplog.text  # its author names it


def test_a_skipped_review_without_an_author_is_named_by_its_place_on_the_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The recorded page with its undated review's author taken out."""
    body = fixture("rocket-14.html")
    assert body.count(b'"Anonymous"') == 1
    body = body.replace(b'"Anonymous"', b'""')
    src = source()
    with caplog.at_level("INFO", logger=reviews.log.name):
        list(src.parse(respond(f"{BASE}/shop/rocket-14", body)))
    assert src.skipped["without a date"] == 1
    assert re.search(r"1 without a date \(review \d\)", caplog.text), caplog.text


def test_the_next_review_page_is_followed_and_keeps_the_thread() -> None:
    src = source()
    [following] = [
        r for r in parse(src, "/shop/rocket-14", "rocket-14.html") if isinstance(r, Request)
    ]
    assert following.url == f"{BASE}/shop/rocket-14?page=2"
    assert following.meta == {"origin": f"{BASE}/shop/rocket-14", "page": 2}

    response = Response(
        url=following.url,
        status=200,
        headers={"content-type": "text/html"},
        body=fixture("rocket-14-page2.html"),
        request=following,
    )
    [ana] = mentions_of(list(src.parse(response)))
    assert ana.author.name == "Ana Souza"
    assert ana.published_at == utc(2026, 2, 11, 13, 0)
    assert ana.thread_id == f"{BASE}/shop/rocket-14#product"
    assert ana.canonical_url.startswith(f"{BASE}/shop/rocket-14#review-")
    assert ana.url.startswith(f"{BASE}/shop/rocket-14?page=2#review-")


def test_max_pages_one_reads_only_the_listed_page() -> None:
    results = parse(source(max_pages=1), "/shop/rocket-14", "rocket-14.html")
    assert not [r for r in results if isinstance(r, Request)]


def test_ids_are_stable_across_runs_and_when_new_reviews_arrive() -> None:
    first = {
        m.author.name: m.id
        for m in mentions_of(parse(source(), "/shop/rocket-14", "rocket-14.html"))
    }
    again = {
        m.author.name: m.id
        for m in mentions_of(parse(source(), "/shop/rocket-14", "rocket-14.html"))
    }
    assert first == again
    newer = fixture("rocket-14.html").replace(
        b'"review": [',
        b'"review": [{"@type": "Review", "author": "Newcomer", "datePublished": "2026-03-20",'
        b' "reviewBody": "Just arrived.", "reviewRating": {"ratingValue": "5"}},',
    )
    url = f"{BASE}/shop/rocket-14"
    later = {m.author.name: m.id for m in mentions_of(list(source().parse(respond(url, newer))))}
    assert set(later) == set(first) | {"Newcomer"}
    assert {name: later[name] for name in first} == first


def test_a_broken_json_ld_block_does_not_hide_the_others(caplog: pytest.LogCaptureFixture) -> None:
    body = fixture("rocket-14.html").replace(
        b"<head>", b'<head><script type="application/ld+json">{ "@type": "Product", </script>', 1
    )
    page = extract_reviews(body, f"{BASE}/shop/rocket-14", "text/html")
    assert len(page.reviews) == 5
    assert page.syntaxes["json-ld broken"] == 1
    assert "JSON-LD block is not valid JSON" in caplog.text


# --------------------------------------------------------------------------- microdata and RDFa


def test_microdata_reviews_are_read() -> None:
    mentions = by_author(mentions_of(parse(source(), "/shop/anvil-50", "anvil.html")))

    assert sorted(a or "" for a in mentions) == ["Grace", "Tom Becker"]
    tom = mentions["Tom Becker"]
    assert tom.title == "Solid as a rock (review of Acme Classic Anvil 50 kg)"
    assert (
        tom.text
        == "Heavy, flat face, and the horn is well shaped. Exactly what a small forge needs."
    )
    assert tom.published_at == utc(2026, 1, 20)
    assert tom.rating is not None and tom.rating.value == 1.0
    grace = mentions["Grace"]
    assert grace.text == "Great anvil, but the mounting bracket cracked after a month."
    assert grace.published_at == utc(2026, 1, 28, 14, 5)
    assert grace.rating is not None and grace.rating.value == 0.75
    assert grace.thread_id == f"{BASE}/shop/anvil-50"


def test_rdfa_reviews_are_read_with_their_resource_urls() -> None:
    mentions = by_author(mentions_of(parse(source(), "/apps/tps-cloud", "tps-cloud.html")))

    sam = mentions["Sam Ortiz"]
    assert sam.title == "Per-seat pricing is a dealbreaker (review of Initech TPS Cloud)"
    assert sam.text == "Initech moved us to per-seat pricing and our bill tripled."
    assert sam.published_at == utc(2026, 2, 3, 11, 30)  # from <time datetime>
    assert sam.rating is not None and sam.rating.value == 0.0
    assert sam.canonical_url == f"{BASE}/apps/tps-cloud#review-77"
    assert sam.thread_id == f"{BASE}/apps/tps-cloud#app"
    kim = mentions["Kim"]
    assert kim.published_at == utc(2026, 2, 5)
    assert kim.canonical_url == f"{BASE}/apps/tps-cloud#review-78"


def test_the_same_reviews_in_json_ld_and_microdata_are_merged() -> None:
    html = b"""<html><head><script type="application/ld+json">
      {"@context": "https://schema.org", "@type": "Product", "name": "Rocket 14",
       "review": [{"@type": "Review", "author": "Ann", "datePublished": "2026-01-02",
                   "reviewBody": "Good   stuff!"}]}
    </script></head><body>
    <div itemscope itemtype="https://schema.org/Product"><span itemprop="name">Rocket 14</span>
      <div itemprop="review" itemscope itemtype="https://schema.org/Review">
        <span itemprop="name">Solid</span> by <span itemprop="author">Ann</span>
        <time itemprop="datePublished" datetime="2026-01-02T10:00:00Z">2 January</time>
        <div itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">
          <meta itemprop="ratingValue" content="4"></div>
        <p itemprop="reviewBody">Good stuff!</p>
      </div></div></body></html>"""
    page = extract_reviews(html, "https://shop.example/p/1")

    [review] = page.reviews
    assert review.syntax == "json-ld"
    assert review.title == "Solid"
    assert review.published == utc(2026, 1, 2, 10, 0)
    assert review.rating is not None and review.rating.raw == 4.0


def test_loose_reviews_attach_to_the_item_they_review() -> None:
    html = b"""<html><head><script type="application/ld+json">
      [{"@context": "https://schema.org", "@type": "Review", "itemReviewed":
          {"@type": "LocalBusiness", "name": "Acme Diner", "url": "https://diner.example/"},
        "author": {"@type": "Person", "givenName": "Jo", "familyName": "Lin"},
        "datePublished": "2026-01-05", "reviewBody": "Best pancakes in town.",
        "reviewRating": {"@type": "Rating", "ratingValue": "9", "bestRating": "10",
                         "worstRating": "0"}},
       {"@context": "https://schema.org", "@type": "ClaimReview", "datePublished": "2026-01-05",
        "reviewBody": "A fact check, not a product review."}]
    </script></head><body></body></html>"""
    page = extract_reviews(html, "https://reviews.example/acme-diner")

    [review] = page.reviews
    assert review.item is not None and review.item.name == "Acme Diner"
    assert review.item.url == "https://diner.example/"
    assert review.author_name == "Jo Lin"
    assert review.rating is not None and review.rating.value == 0.9


# --------------------------------------------------------------------------- incremental


def test_reviews_older_than_the_checkpoint_are_skipped_same_day_ones_reread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{BASE}/shop/rocket-14"
    src = source()
    src.checkpoint = previous_run(tmp_path, {url: "2026-02-27T00:00:00+00:00"})
    with caplog.at_level("INFO", logger=reviews.log.name):
        results = parse(src, "/shop/rocket-14", "rocket-14.html")

    authors = sorted(m.author.name or "" for m in mentions_of(results))
    assert authors == ["Jonas Weber", "Mia K.", "Priya R."]  # Lee (Feb 20) is older
    assert src.skipped["older than the checkpoint"] == 1
    assert "1 older than the checkpoint (by Lee, 2026-02-20)" in caplog.text
    assert src.checkpoint.values[url] == "2026-03-05T09:15:00+00:00"


def test_the_next_page_is_not_read_when_a_page_has_nothing_new(tmp_path: Path) -> None:
    src = source()
    src.checkpoint = previous_run(tmp_path, {f"{BASE}/shop/rocket-14": "2026-03-30T00:00:00+00:00"})
    results = parse(src, "/shop/rocket-14", "rocket-14.html")
    assert results == []


# --------------------------------------------------------------------------- AggregateRating only


def test_a_page_with_only_an_aggregate_rating_yields_nothing_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = source()
    assert parse(src, "/shop/gift-card", "gift-card.html") == []
    assert src.empty_pages == 1
    assert "carries no schema.org review (only an AggregateRating" in caplog.text


def test_aggregate_ratings_option_yields_a_daily_snapshot() -> None:
    [snapshot] = mentions_of(
        parse(source(aggregate_ratings=True), "/shop/gift-card", "gift-card.html")
    )

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert snapshot.published_at == today
    assert snapshot.canonical_url == f"{BASE}/shop/gift-card#aggregate-rating-{today:%Y-%m-%d}"
    assert snapshot.title == "Average rating of Acme gift card"
    assert snapshot.text == "Acme gift card: rated 4.8 out of 5 from 89 ratings."
    assert snapshot.rating is not None and snapshot.rating.value == pytest.approx(0.95)


# --------------------------------------------------------------------------- failures


def test_an_html_error_page_raises_value_error_naming_the_url() -> None:
    with pytest.raises(ValueError, match="is an error page \\('404 Not Found'\\)") as error:
        parse(source(), "/shop/rocket-13", "discontinued.html")
    assert f"{BASE}/shop/rocket-13" in str(error.value)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b'{"reviews": []}',
            "application/json",
            "not an HTML page \\(Content-Type application/json",
        ),
        (b"%PDF-1.4 ...", "application/pdf", "not an HTML page"),
        (b"%PDF-1.4 ...", "text/html", "its body is pdf"),
        (b'[{"a": 1}]', "", "not an HTML page"),
        (b"<?xml version='1.0'?><rss/>", "application/rss+xml", "not an HTML page"),
        (b"", "text/html", "empty body"),
    ],
)
def test_a_body_that_is_not_html_raises_value_error_naming_the_url(
    body: bytes, content_type: str, message: str
) -> None:
    url = f"{BASE}/shop/rocket-14"
    with pytest.raises(ValueError, match=message) as error:
        list(source().parse(respond(url, body, content_type)))
    assert url in str(error.value)


def test_an_http_error_status_raises_value_error() -> None:
    url = f"{BASE}/shop/rocket-14"
    with pytest.raises(ValueError, match="answered HTTP 503"):
        list(source().parse(respond(url, b"<html></html>", status=503)))


def test_a_page_without_structured_data_yields_nothing() -> None:
    src = source()
    url = f"{BASE}/blog/hello"
    html = b"<html><head><title>Hello</title></head><body><p>No reviews here.</p></body></html>"
    assert list(src.parse(respond(url, html))) == []
    assert src.empty_pages == 1


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "best", "worst", "expected"),
    [
        ("4", None, None, (0.75, 1.0, 5.0)),
        ("4,5", "5", "1", (0.875, 1.0, 5.0)),
        ("8", None, None, (7 / 9, 1.0, 10.0)),
        ("80%", None, None, (79 / 99, 1.0, 100.0)),
        ("0", None, None, (0.0, 0.0, 5.0)),
        ("0.8", "1", None, (0.8, 0.0, 1.0)),
        (4.5, 5, 0, (0.9, 0.0, 5.0)),
        ("6", "5", "1", (1.0, 1.0, 5.0)),  # above the scale: clipped, raw kept
    ],
)
def test_ratings_are_normalised(
    value: object, best: object, worst: object, expected: tuple[float, float, float]
) -> None:
    rating = rating_from(value, best, worst)
    assert rating is not None
    assert (rating.value, rating.scale_min, rating.scale_max) == pytest.approx(expected)
    assert rating.raw == pytest.approx(float(str(value).rstrip("%").replace(",", ".")))


@pytest.mark.parametrize(
    ("value", "best", "worst"),
    [("", None, None), ("n/a", None, None), ("3", "2", "2"), ("5000", None, None)],
)
def test_unusable_ratings_are_none(value: str, best: object, worst: object) -> None:
    assert rating_from(value, best, worst) is None


@pytest.mark.parametrize(
    ("text", "expected", "has_time"),
    [
        ("2026-03-05", utc(2026, 3, 5), False),
        ("2026-03", utc(2026, 3, 1), False),
        ("2026-03-05T10:00:00Z", utc(2026, 3, 5, 10), True),
        ("2026-03-05T10:00:00+0200", utc(2026, 3, 5, 8), True),
        ("2026-03-05 10:00", utc(2026, 3, 5, 10), True),
        ("Thu, 05 Mar 2026 10:00:00 GMT", utc(2026, 3, 5, 10), True),
        ("March 5, 2026", utc(2026, 3, 5), False),
    ],
)
def test_dates_become_aware_utc(text: str, expected: datetime, has_time: bool) -> None:
    assert parse_date(text) == (expected, has_time)


@pytest.mark.parametrize("text", ["", "5 March", "yesterday", "2026-13-45"])
def test_unusable_dates_are_none(text: str) -> None:
    assert parse_date(text) is None


# --------------------------------------------------------------------------- options, registration


def test_options_need_absolute_urls_and_forbid_typos() -> None:
    with pytest.raises(ValidationError):
        ReviewsOptions(plugin="reviews", urls=[])
    with pytest.raises(ValidationError, match="not an absolute http"):
        ReviewsOptions(plugin="reviews", urls=["shop.example/p"])
    with pytest.raises(ValidationError):
        ReviewsOptions.model_validate({"plugin": "reviews", "urls": [BASE], "url": BASE})
    options = ReviewsOptions(plugin="reviews", urls=[BASE])
    assert (options.item_in_title, options.aggregate_ratings, options.max_pages) == (True, False, 5)


def test_start_requests_is_one_html_request_per_url() -> None:
    src = source("/a", "/b")
    requests = list(src.start_requests())
    assert [r.url for r in requests] == [f"{BASE}/a", f"{BASE}/b"]
    assert all("text/html" in r.headers["Accept"] for r in requests)


def test_item_in_title_can_be_turned_off() -> None:
    mentions = mentions_of(parse(source(item_in_title=False), "/shop/anvil-50", "anvil.html"))
    assert sorted(m.title or "" for m in mentions) == ["Bracket cracked", "Solid as a rock"]


def test_the_plugin_registers_the_source_with_polite_defaults() -> None:
    assert reviews.listener_register_sources() == [ReviewsSource]
    assert ReviewsSource.name == "reviews"
    assert ReviewsSource.download_delay >= 1.0
    assert ReviewsSource.concurrency == 1


# --------------------------------------------------------------------------- a replayed crawl


@pytest.mark.slow
def test_a_replayed_crawl_of_the_shop(replay_crawl: Any) -> None:
    paths = ["/shop/rocket-14", "/shop/anvil-50", "/apps/tps-cloud", "/shop/gift-card"]
    urls = ["{base_url}" + path for path in [*paths, "/shop/rocket-13"]]
    brands = [{"name": "Acme", "keywords": ["acme"]}, {"name": "Initech"}]
    result = replay_crawl("reviews", {"urls": urls}, DATA.routes(), brands=brands)

    authors = sorted(m.author.name or "" for m in result.mentions)
    assert authors == [
        "Ana Souza",  # page 2, through rel=next
        "Grace",  # microdata
        "Jonas Weber",
        "Kim",  # RDFa
        "Lee",
        "Mia K.",
        "Priya R.",
        "Sam Ortiz",
        "Tom Becker",
    ]
    assert all(m.source_kind is SourceKind.REVIEW and m.rating for m in result.mentions)
    assert len({m.id for m in result.mentions}) == 9
    fetched = [request.target for request in result.requests]
    assert "/shop/rocket-14?page=2" in fetched
    summary = result.source
    assert summary["parse_errors"] == 1  # the "404 Not Found" page served with 200
    assert "shop/rocket-13 is an error page" in summary["last_error"]
    assert summary["fetch_errors"] == 0


# --------------------------------------------------------------------------- real pages


requires_extruct_pages = pytest.mark.skipif(
    not EXTRUCT.is_dir(), reason="the shared extruct fixtures are absent"
)


@requires_extruct_pages
@pytest.mark.parametrize(
    "name", ["schemaorg_product_aggregaterating.html", "product_microdata.html"]
)
def test_real_microdata_aggregate_ratings_are_read(name: str) -> None:
    page = extract_reviews((EXTRUCT / name).read_bytes(), f"https://shop.example/{name}")

    [item] = page.items
    assert (item.name, item.brand) == ("Executive Anvil", "ACME")
    assert item.aggregate is not None
    assert (item.aggregate.value, item.aggregate.review_count) == (4.4, 89)
    assert item.aggregate.rating is not None
    assert item.aggregate.rating.value == pytest.approx(0.85)
    assert page.reviews == []


@requires_extruct_pages
def test_a_real_shop_page_without_reviews_gives_none() -> None:
    name = "monsterpetsupplies_product_microdata.html"
    src = source()
    url = f"https://www.monsterpetsupplies.co.uk/{name}"
    assert list(src.parse(respond(url, (EXTRUCT / name).read_bytes()))) == []
    assert src.empty_pages == 1
    page = extract_reviews((EXTRUCT / name).read_bytes(), url)
    expected = json.loads((EXTRUCT / name.replace(".html", ".expected.json")).read_text())
    assert [item.name for item in page.items] == []  # no rating, no review: not a reviewed item
    assert expected[0]["properties"]["name"] == "Johnsons 4 Fleas Cats & Kittens Tablets"


@pytest.mark.skipif(not TRUSTPILOT.is_file(), reason="the shared trafilatura fixtures are absent")
def test_a_real_review_page_without_schema_org_reviews_is_not_an_error() -> None:
    page = extract_reviews(
        TRUSTPILOT.read_bytes(), "https://uk.trustpilot.com/reviews/581cf1892ae760087cadbf17"
    )
    assert page.reviews == []
    assert page.error_title is None


@requires_extruct_pages
def test_microdata_reviews_added_to_a_real_shop_page_are_all_read_with_their_dates() -> None:
    """monsterpetsupplies' real Product microdata, with reviews as shops write them.

    The dates are written as European and US shops write them; the 12-hour clock
    was read as 07:45 and the dotted date as 3 May before, and the German one
    was no date at all (the review was skipped).
    """
    name = "monsterpetsupplies_product_microdata.html"
    product = b'<div class="product-page" itemscope itemtype="http://schema.org/Product">'
    written = [
        ("Jo", "05.03.2024", "5", "Worked within a day on both our cats."),
        ("Sam K.", "Mar 5, 2024 7:45 PM", "2", "The tablets are hard to give."),
        ("Birgit", "5. März 2024", "4", "Gut verträglich."),
    ]
    reviews_html = "".join(
        '<div itemprop="review" itemscope itemtype="http://schema.org/Review">'
        f'<span itemprop="author">{author}</span> <span itemprop="datePublished">{date}</span>'
        '<div itemprop="reviewRating" itemscope itemtype="http://schema.org/Rating">'
        f'<span itemprop="ratingValue">{stars}</span>/<span itemprop="bestRating">5</span></div>'
        f'<p itemprop="reviewBody">{text}</p></div>'
        for author, date, stars, text in written
    )
    body = (EXTRUCT / name).read_bytes().replace(product, product + reviews_html.encode(), 1)
    url = "https://www.monsterpetsupplies.co.uk/cats/johnsons-4-fleas-cats-kittens-tablets"
    src = make_source(ReviewsSource, urls=[url])
    mentions = mentions_of(list(src.parse(respond(url, body))))

    assert src.skipped == {}
    assert [(m.author.name, m.published_at, m.text) for m in mentions] == [
        ("Jo", utc(2024, 3, 5), "Worked within a day on both our cats."),
        ("Sam K.", utc(2024, 3, 5, 19, 45), "The tablets are hard to give."),
        ("Birgit", utc(2024, 3, 5), "Gut verträglich."),
    ]
    assert [m.rating.raw if m.rating else None for m in mentions] == [5.0, 2.0, 4.0]
    assert all("Johnsons 4 Fleas Cats & Kittens Tablets" in (m.title or "") for m in mentions)


@requires_extruct_pages
def test_older_review_markup_added_to_a_real_shop_page_is_read() -> None:
    """monsterpetsupplies' real page with review markup older shops still carry.

    Google's data-vocabulary.org Review (reviewer, dtreviewed, rating, summary,
    itemreviewed) had no date as schema.org reads it, so the review was skipped;
    a review whose itemscope has no itemtype was not found at all.
    """
    name = "monsterpetsupplies_product_microdata.html"
    markup = (
        '<div itemscope itemtype="http://data-vocabulary.org/Review">'
        '<span itemprop="itemreviewed">Johnsons 4 Fleas</span> by <span itemprop="reviewer">Ann'
        '</span> <time itemprop="dtreviewed" datetime="2019-05-02">2 May</time>'
        '<span itemprop="summary">Does the job</span>'
        '<span itemprop="rating" itemscope itemtype="http://data-vocabulary.org/Rating">'
        '<span itemprop="value">8</span>/<span itemprop="best">10</span></span>'
        '<span itemprop="description">Fleas gone in a day.</span></div>'
    )
    product = b'<div class="product-page" itemscope itemtype="http://schema.org/Product">'
    untyped = (
        '<div itemprop="review" itemscope><span itemprop="author">Bo</span>'
        '<meta itemprop="datePublished" content="2019-05-03">'
        '<p itemprop="reviewBody">Fine.</p></div>'
    )
    body = (EXTRUCT / name).read_bytes()
    body = body.replace(product, product + untyped.encode(), 1)
    body = body.replace(b"</body>", markup.encode() + b"</body>", 1)
    page = extract_reviews(body, f"https://www.monsterpetsupplies.co.uk/{name}")

    found = {r.author_name: r for r in page.reviews}
    assert set(found) == {"Ann", "Bo"}
    ann = found["Ann"]
    assert (ann.title, ann.text, ann.published) == (
        "Does the job",
        "Fleas gone in a day.",
        utc(2019, 5, 2),
    )
    assert ann.rating is not None and (ann.rating.raw, ann.rating.scale_max) == (8.0, 10.0)
    assert ann.item is not None and ann.item.name == "Johnsons 4 Fleas"
    bo = found["Bo"]
    assert (bo.text, bo.published) == ("Fine.", utc(2019, 5, 3))
    assert bo.item is not None and bo.item.name == "Johnsons 4 Fleas Cats & Kittens Tablets"


@requires_extruct_pages
def test_review_dates_given_as_unix_timestamps_are_read_with_their_time() -> None:
    """schema.org's real Executive Anvil page with reviews dated as review widgets date them.

    Unix seconds and milliseconds, as JSON numbers or strings (JavaScript-rendered
    JSON-LD, ``<meta itemprop=datePublished content=…>``), were no date: every
    such review was skipped.
    """
    name = "schemaorg_product_aggregaterating.html"
    jsonld = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": "Executive Anvil",
        "review": [
            {"@type": "Review", "author": "Ann", "datePublished": 1481044620, "reviewBody": "A"},
            {"@type": "Review", "author": "Bo", "datePublished": 1481044620123, "reviewBody": "B"},
            {"@type": "Review", "author": "Cy", "datePublished": "1481044620", "reviewBody": "C"},
            {"@type": "Review", "author": "Di", "datePublished": 1481044620.5, "reviewBody": "D"},
        ],
    }
    microdata = (
        '<div itemprop="review" itemscope itemtype="http://schema.org/Review">'
        '<span itemprop="author">Ed</span><meta itemprop="datePublished" content="1481044620000">'
        '<p itemprop="reviewBody">E</p></div>'
    )
    product = b'<span itemprop="name">Executive Anvil</span>'
    body = (EXTRUCT / name).read_bytes()
    body = body.replace(product, product + microdata.encode(), 1).replace(
        b"</head>",
        f'<script type="application/ld+json">{json.dumps(jsonld)}</script></head>'.encode(),
    )
    page = extract_reviews(body, "https://shop.example/anvil")

    moment = utc(2016, 12, 6, 17, 17)
    assert {(r.author_name, r.published, r.has_time) for r in page.reviews} == {
        ("Ann", moment, True),
        ("Bo", moment.replace(microsecond=123000), True),
        ("Cy", moment, True),
        ("Di", moment.replace(microsecond=500000), True),
        ("Ed", moment, True),
    }
    assert all(r.item is not None and r.item.name == "Executive Anvil" for r in page.reviews)


@pytest.mark.parametrize("written", ["20161206", "2016", "12345", "1481044620 stars"])
def test_numbers_that_are_no_timestamp_are_read_as_dates_or_not_at_all(written: str) -> None:
    assert reviews._review_date(written) == parse_date(written)


# hReview and hReview-aggregate as Google's rich-snippet documentation wrote them
# (value-title dates), with a vcard reviewer and a permalink, and a microformats2 h-review.
HREVIEWS = """
<div class="hreview-aggregate">
  <span class="item"><span class="fn">Johnsons 4 Fleas Tablets</span></span>
  Rating: <span class="rating"><span class="average">3.5</span> out of <span class="best">5</span>
  </span> based on <span class="count">11</span> reviews.
</div>
<div class="hreview">
  <span class="item"><span class="fn">Johnsons 4 Fleas Tablets</span></span>
  Reviewed by <span class="reviewer">Ulysses Grant</span> on
  <span class="dtreviewed">Jan 6<span class="value-title" title="2019-01-06"></span></span>.
  <span class="summary">Fleas gone overnight</span>
  <span class="description">Gave one to each cat in the evening; none by morning.</span>
  Rating: <span class="rating">4.5</span>
</div>
<div class="hreview">
  <span class="item"><span class="fn">Johnsons 4 Fleas Tablets</span></span>
  <span class="reviewer vcard"><a class="url fn" href="/users/ann">Ann</a></span>
  <abbr class="dtreviewed" title="2019-01-07T18:30:00+01:00">7 January</abbr>
  <abbr class="rating" title="2">**</abbr>
  <div class="description"><p>Hard to give.</p><p>Our cat spat it out twice.</p></div>
  <a rel="self bookmark" href="/reviews/2">Permalink</a>
</div>
<article class="h-review">
  <span class="p-name">Works</span> by <a class="p-author h-card" href="https://bo.example/">Bo</a>
  <time class="dt-published" datetime="2019-01-08T09:00:00Z">8 Jan</time>
  <data class="p-rating" value="5">5 stars</data> <div class="e-content">Simple and quick.</div>
</article>
"""


@requires_extruct_pages
def test_hreview_microformats_added_to_a_real_shop_page_are_read_as_reviews() -> None:
    """monsterpetsupplies' real page with hReview markup: it was not read at all."""
    name = "monsterpetsupplies_product_microdata.html"
    body = (EXTRUCT / name).read_bytes().replace(b"</body>", HREVIEWS.encode() + b"</body>", 1)
    url = "https://www.monsterpetsupplies.co.uk/cats/johnsons-4-fleas-cats-kittens-tablets"
    src = make_source(ReviewsSource, urls=[url])
    mentions = mentions_of(list(src.parse(respond(url, body))))

    assert src.skipped == {}
    assert [
        (m.author.name, m.published_at, m.rating.raw if m.rating else None, m.text)
        for m in mentions
    ] == [
        (
            "Ulysses Grant",
            utc(2019, 1, 6),
            4.5,
            "Gave one to each cat in the evening; none by morning.",
        ),
        ("Ann", utc(2019, 1, 7, 17, 30), 2.0, "Hard to give.\n\nOur cat spat it out twice."),
        ("Bo", utc(2019, 1, 8, 9), 5.0, "Simple and quick."),
    ]
    assert [m.title for m in mentions] == [
        "Fleas gone overnight (review of Johnsons 4 Fleas Tablets)",
        "Review of Johnsons 4 Fleas Tablets",
        "Works (review of Johnsons 4 Fleas Tablets)",
    ]
    assert mentions[1].author.url == "https://www.monsterpetsupplies.co.uk/users/ann"
    assert mentions[1].url == "https://www.monsterpetsupplies.co.uk/reviews/2"
    assert mentions[2].author.url == "https://bo.example/"
    page = extract_reviews(body, url)
    [item] = [item for item in page.items if item.aggregate]
    assert item.aggregate is not None
    assert (item.name, item.aggregate.value, item.aggregate.review_count) == (
        "Johnsons 4 Fleas Tablets",
        3.5,
        11,
    )
    assert all(review.item is item for review in page.reviews)


@requires_extruct_pages
def test_h_reviews_inside_an_h_product_review_that_product() -> None:
    """A microformats2 h-product on the real Executive Anvil page, its reviews nested."""
    markup = (
        '<div class="h-product"><h2 class="p-name">Executive Anvil</h2>'
        '<span class="p-brand">ACME</span><div class="h-review-aggregate">'
        '<data class="p-rating" value="4.2">4.2</data> from <span class="p-votes">30</span></div>'
        '<div class="h-review"><span class="p-author">Cy</span> '
        '<time class="dt-published" datetime="2019-02-01">1 Feb</time>'
        '<data class="p-rating" value="4">4</data><p class="e-content">Heavy.</p></div></div>'
    )
    name = "schemaorg_product_aggregaterating.html"
    body = (EXTRUCT / name).read_bytes().replace(b"</body>", markup.encode() + b"</body>", 1)
    page = extract_reviews(body, "https://shop.example/anvil")

    [review] = page.reviews
    assert (review.author_name, review.published, review.text) == ("Cy", utc(2019, 2, 1), "Heavy.")
    assert review.item is not None and review.item.display_name == "ACME Executive Anvil"
    assert review.item.aggregate is not None
    assert (review.item.aggregate.value, review.item.aggregate.rating_count) == (4.2, 30)
