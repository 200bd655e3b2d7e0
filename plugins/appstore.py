"""The ``appstore`` source: App Store customer reviews for listed apps and countries.

Reads Apple's public customer-reviews feed, newest first, one storefront at a time::

    GET {base_url}/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json

Every review becomes a Mention of kind ``review`` with its star rating
normalised to 0..1 (``Rating.from_raw(stars, scale_max=5, scale_min=1)``).
Reviews are not filtered by keyword: the apps are the brands' own (or their
competitors'), and the enrichment stage matches brands as for every source.

The format (the feed generator's JSON rendering of Atom): ``{"feed": {"entry":
[...], "link": [{"attributes": {"rel": "last", "href": ".../page=10/..."}}, …],
"updated": {"label": ...}, ...}}``. Every value is wrapped as ``{"label":
"..."}``. A review entry has ``id``, ``title``, ``content`` (``attributes.type``
``text``), ``im:rating`` ("1".."5"), ``im:version``, ``im:voteSum`` (helpful
votes), ``im:voteCount`` (all votes), ``updated`` (ISO 8601 with offset) and
``author`` (``name``, ``uri``). Quirks handled: a page with one review gives
``entry`` as an object, not a list; a page past the last has no ``entry``; older
feeds start with an entry describing the app itself (no ``im:rating``), which
is skipped. Apple serves at most 10 pages of 50 reviews per app and storefront.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import Field, field_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, Rating, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    guarded_object,
    html_to_text,
    http_url,
    parse_time,
    to_float,
    to_int,
)

log = logging.getLogger(__name__)

__all__ = [
    "AppStoreOptions",
    "AppStoreSource",
    "entry_to_mention",
    "listener_register_sources",
]

#: Apple serves no more pages than this per app and storefront.
LAST_PAGE = 10
FEED_PATH = "/{country}/rss/customerreviews/page={page}/id={app}/sortby=mostrecent/json"
#: The app's reviews page: Apple gives reviews no page of their own (see the docs).
REVIEW_URL = "https://apps.apple.com/{country}/app/id{app}?see-all=reviews&reviewId={review}"
_APP_ID = re.compile(r"(?:^|/id|^id)(\d{4,12})(?:[/?#]|$)")
_LAST_PAGE = re.compile(r"/page=(\d+)/")


def app_id(value: str) -> str:
    """The numeric id of an app given as ``123456789``, ``id123456789`` or an App Store URL."""
    match = _APP_ID.search(value.strip())
    if not match:
        raise ValueError(
            f"{value!r} is not an App Store app id (digits, as in apps.apple.com/…/id123456789)"
        )
    return match.group(1)


class AppStoreOptions(SourceOptions):
    """Options of the ``appstore`` source."""

    base_url: AbsoluteURL = Field(
        default="https://itunes.apple.com",
        description="where the customer-reviews feeds live (a mirror or a test server)",
    )
    apps: list[str] = Field(min_length=1, description="app ids (digits), id123… or App Store URLs")
    countries: list[str] = Field(
        default=["us"], min_length=1, description="storefronts: ISO 3166-1 alpha-2 codes"
    )

    @field_validator("apps")
    @classmethod
    def _app_ids(cls, apps: list[str]) -> list[str]:
        return [app_id(app) for app in apps]

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, countries: list[str]) -> list[str]:
        codes = [country.strip().lower() for country in countries]
        for code in codes:
            if not re.fullmatch(r"[a-z]{2}", code):
                raise ValueError(f"{code!r} is not a two-letter country code such as us or gb")
        return codes


# --------------------------------------------------------------------------- field readers


def _label(node: object) -> str | None:
    """The text of a ``{"label": ...}`` node, stripped; None when absent or blank."""
    if isinstance(node, dict):
        node = node.get("label")
    if isinstance(node, (str, int, float)) and not isinstance(node, bool):
        text = str(node).strip()
        return text or None
    return None


def _attributes(node: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = node.get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _content(node: object) -> str:
    """The review text: the plain-text content when several are given."""
    nodes = node if isinstance(node, list) else [node]
    texts = [
        (str(_attributes(n).get("type") or "text"), _label(n) or "")
        for n in nodes
        if isinstance(n, dict)
    ]
    plain = [text for kind, text in texts if kind == "text" and text]
    if plain:
        chosen = plain[0]
    else:  # only markup (type "html"): its text, never its tags or entities
        chosen = next((text for _, text in texts if text), "")
        chosen = html_to_text(chosen) if chosen else ""
    lines = [line.strip() for line in chosen.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip()


def _rating(node: object) -> Rating | None:
    stars = to_float(_label(node))
    if stars is None or not 1 <= stars <= 5:
        return None
    return Rating.from_raw(stars, scale_max=5, scale_min=1)


def entries_of(feed: Mapping[str, Any]) -> list[Any]:
    """The feed's entries as a list (one entry comes as an object, none as nothing)."""
    entries = feed.get("entry")
    if entries is None:
        return []
    return entries if isinstance(entries, list) else [entries]


def entry_to_mention(
    entry: Mapping[str, Any], app: str, country: str, source: str = "appstore"
) -> Mention | str:
    """One feed entry as a review Mention, or the reason it cannot be one (a string)."""
    if "im:rating" not in entry and ("im:name" in entry or "im:artist" in entry):
        return "the app's own entry, not a review"
    review = _label(entry.get("id"))
    if review is None:
        return "without an id"
    published = parse_time(_label(entry.get("updated")))
    if published is None:
        return "without a date"
    title = _label(entry.get("title"))
    text = _content(entry.get("content")) or title or ""
    if not text:
        return "without text"
    found = entry.get("author")
    author: Mapping[str, Any] = found if isinstance(found, dict) else {}
    url = REVIEW_URL.format(country=country, app=app, review=quote(review))
    extra: dict[str, Any] = {}
    if "country" in Mention.model_fields:
        extra["country"] = country.upper()
    votes = to_int(_label(entry.get("im:voteSum")))
    return Mention.create(
        source=source,
        source_kind=SourceKind.REVIEW,
        url=url,
        canonical_url=url,
        title=title,
        text=text,
        published_at=published,
        author=Author(name=_label(author.get("name")), url=http_url(_label(author.get("uri")))),
        engagement=Engagement(likes=votes if votes is not None and votes >= 0 else None),
        rating=_rating(entry.get("im:rating")),
        thread_id=app,
        **extra,
    )


def _last_page(feed: Mapping[str, Any]) -> int | None:
    links = feed.get("link")
    for link in links if isinstance(links, list) else [links]:
        attributes = link.get("attributes") if isinstance(link, dict) else None
        if isinstance(attributes, dict) and attributes.get("rel") == "last":
            match = _LAST_PAGE.search(str(attributes.get("href") or ""))
            if match:
                return int(match.group(1))
    return None


class AppStoreSource(Source[AppStoreOptions]):
    """Reads the App Store's customer reviews of listed apps, newest first."""

    name = "appstore"
    kind = SourceKind.REVIEW
    api_version = 1
    # Apple publishes no limit for these feeds; its iTunes Search API asks for
    # about 20 calls a minute, which this follows: one request every 3 seconds.
    download_delay = 3.0
    concurrency = 1
    example_options = {"base_url": "{base_url}", "apps": ["1500000001"], "countries": ["us"]}
    #: A small recorded site shipped in the package, for ``listener plugins check appstore``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "appstore"

    def __init__(self, options: AppStoreOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        #: Entries left out so far, by reason.
        self.skipped: Counter[str] = Counter()

    @staticmethod
    def key(app: str, country: str) -> str:
        """The checkpoint key of one app in one storefront."""
        return f"{app}/{country}"

    def feed_url(self, app: str, country: str, page: int = 1) -> str:
        """The URL of one page of an app's reviews in one storefront."""
        path = FEED_PATH.format(country=country, page=page, app=app)
        return f"{self.options.base_url.rstrip('/')}{path}"

    def start_requests(self) -> Iterable[Request]:
        """The first page of every app in every storefront."""
        for app in self.options.apps:
            for country in self.options.countries:
                yield Request(
                    url=self.feed_url(app, country),
                    headers={"Accept": "application/json"},
                    meta={"app": app, "country": country, "page": 1},
                )

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """The page's reviews newer than the checkpoint, then the next page while useful."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        feed = data.get("feed") if isinstance(data, dict) else None
        if not isinstance(feed, dict):
            raise ValueError(
                f"{response.url} is not an App Store customer-reviews feed: the JSON has no 'feed'"
            )
        meta = response.meta
        app, country = _feed_of(response, feed)
        if not app or not country:
            raise ValueError(
                f"{response.url} names no app and storefront: neither its request nor its "
                "URL or feed id has /COUNTRY/rss/customerreviews/…/id=APP"
            )
        key = self.key(app, country)
        newer = self.newer_than(key)
        entries = entries_of(feed)
        results: list[Mention | Request] = []
        skips = SkipReport("entries")
        reviews = 0
        reached_older = False
        for entry in entries:
            outcome = guarded_object(entry_to_mention, entry, app, country, self.name)
            if isinstance(outcome, str):
                review = _label(entry.get("id")) if isinstance(entry, dict) else None
                skips.skip(outcome, f"id {review}" if review else "no id")
                continue
            reviews += 1
            if newer is not None and outcome.published_at <= newer:
                reached_older = True
                if not self.is_new(key, outcome):
                    continue  # an earlier run had it (a late, unseen one is kept)
            self.checkpoint.advance(key, outcome.published_at, outcome.id)
            results.append(outcome)
        own_entry_only = skips.only("the app's own entry, not a review")
        skips.log(
            log,
            self.label,
            response.url,
            len(entries),
            into=self.skipped,
            level=logging.DEBUG if own_entry_only else logging.WARNING,
        )
        page = to_int(meta.get("page")) or _feed_page(response.url) or 1
        last = min(_last_page(feed) or LAST_PAGE, LAST_PAGE, self.options.max_pages)
        if reviews and not reached_older and page < last:
            results.append(
                Request(
                    url=self.feed_url(app, country, page + 1),
                    headers=dict(response.request.headers),
                    meta={**meta, "app": app, "country": country, "page": page + 1},
                )
            )
        return results


#: A customer-reviews feed URL: its storefront, page and app.
_FEED_URL = re.compile(r"/([A-Za-z]{2})/rss/customerreviews/(?:page=(\d+)/)?id=(\d+)")


def _feed_page(url: str) -> int | None:
    match = _FEED_URL.search(url)
    return int(match.group(2)) if match and match.group(2) else None


def _feed_of(response: Response, feed: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The app and storefront of a feed page: its request's, else from its URL or feed id.

    A feed handed over without this source's request still names both: in its
    URL and in ``feed.id.label`` (``…/us/rss/customerreviews/page=1/id=APP/…``).
    """
    app, country = response.meta.get("app"), response.meta.get("country")
    if isinstance(app, str) and app and isinstance(country, str) and country:
        return app, country
    for url in (response.url, _label(feed.get("id")) or ""):
        match = _FEED_URL.search(url)
        if match:
            return match.group(3), match.group(1).lower()
    return None, None


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``appstore`` source."""
    return [AppStoreSource]
