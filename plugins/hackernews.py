"""The ``hackernews`` source: stories and comments from the public Algolia HN search API.

One search per distinct keyword of the project's brands, newest first::

    GET {base_url}/api/v1/search_by_date?query=TERM&tags=(story,comment)&hitsPerPage=N&page=P

following ``page``/``nbPages`` up to ``max_pages`` pages. A hit found by two
terms is yielded twice (same mention id); the pipeline's dedupe stage keeps one.

The response format (checked against published clients and the API page at
https://hn.algolia.com/api): ``{"hits": [...], "page": 0, "nbPages": 3,
"nbHits": 123, "hitsPerPage": 50, ...}``. A hit has ``objectID`` (string),
``author``, ``created_at`` (ISO 8601, UTC) and ``created_at_i`` (Unix seconds),
``_tags`` (``story``/``comment``/…); stories add ``title``, ``url`` (absent for
Ask HN), ``story_text`` (HTML, absent or null for link stories), ``points`` and
``num_comments``; comments add ``comment_text`` (HTML), ``story_id``,
``parent_id``, ``story_title``, ``story_url`` and ``points`` (usually null). Older
responses carry every field with null where it does not apply; both shapes are
read. Items of the official Firebase API (``/v0/item/ID.json``: ``id``, ``by``,
``time``, ``type``, ``text``, ``score``, ``descendants``, ``parent``) and of
Algolia's ``/api/v1/items/ID`` (the item with its ``children`` replies) are read
as hits too; deleted and dead items are skipped. A Firebase story list
(``/v0/topstories.json``, ``newstories``, ``askstories``…: a JSON list of item ids)
is read as requests for its first ``hits_per_page`` items (``/v0/item/ID.json``).
A single Firebase item's replies (``kids``, ids only) are asked for in turn and read
as comments of its story's thread (``Re:`` its title): the first ``hits_per_page``
of an item, and at most ``hits_per_page * max_pages`` replies a thread, as many as a
search could yield.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import Field

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    from_timestamp,
    guarded_object,
    html_to_text,
    parse_time,
    search_terms,
    to_int,
)

log = logging.getLogger(__name__)

__all__ = [
    "HackerNewsOptions",
    "HackerNewsSource",
    "hit_to_mention",
    "listener_register_sources",
]

ITEM_URL = "https://news.ycombinator.com/item?id={}"
USER_URL = "https://news.ycombinator.com/user?id={}"
SEARCH_PATH = "/api/v1/search_by_date"


class HackerNewsOptions(SourceOptions):
    """Options of the ``hackernews`` source."""

    base_url: AbsoluteURL = Field(
        default="https://hn.algolia.com",
        description="where the Algolia HN API lives (a mirror or a test server)",
    )
    hits_per_page: int = Field(default=50, ge=1, le=1000, description="hits per page")
    tags: str = Field(
        default="(story,comment)",
        min_length=1,
        description="Algolia tag filter: story, comment, (story,comment), ask_hn, …",
    )


def _created(hit: Mapping[str, Any]) -> datetime | None:
    # Unix seconds first; the ISO string is UTC when it names no zone (the API speaks UTC).
    return from_timestamp(hit.get("created_at_i")) or parse_time(hit.get("created_at"))


def _text(value: object) -> str:
    return html_to_text(value) if isinstance(value, str) and value.strip() else ""


def _as_hit(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """An item of the official Firebase API or of Algolia's ``/items/ID`` as a search hit.

    Firebase: ``id``, ``by``, ``time`` (Unix seconds), ``type``, ``title``, ``text``,
    ``score``, ``descendants``, ``parent``. Algolia's items: ``id``, ``author``,
    ``created_at(_i)``, ``type``, ``title``, ``text``, ``points``, ``parent_id``,
    ``story_id``. A search hit (``objectID``) is returned as it is.
    """
    if "objectID" in item or "id" not in item:
        return item
    kind = item.get("type")
    text_key = "comment_text" if kind == "comment" else "story_text"
    return {
        "objectID": item.get("id"),
        "author": item.get("by", item.get("author")),
        "created_at_i": item.get("time", item.get("created_at_i")),
        "created_at": item.get("created_at"),
        "_tags": [kind] if isinstance(kind, str) else [],
        "title": item.get("title"),
        text_key: item.get("text"),
        "points": item.get("score", item.get("points")),
        "num_comments": item.get("descendants"),
        # A poll option names its poll ("poll"), which is its thread and its parent.
        "parent_id": item.get("parent", item.get("parent_id", item.get("poll"))),
        "story_id": item.get("story_id", item.get("poll")),
        "story_title": item.get("story_title"),
    }


def hit_to_mention(hit: Mapping[str, Any], source: str = "hackernews") -> Mention | str:
    """One search hit (or API item) as a Mention, or the reason it cannot be one (a string)."""
    if hit.get("deleted") is True or hit.get("dead") is True:
        return "deleted or dead"
    hit = _as_hit(hit)
    object_id = hit.get("objectID")
    if object_id is None or not str(object_id).strip():
        return "without an objectID"
    object_id = str(object_id).strip()
    raw_tags = hit.get("_tags")
    tags: list[Any] = raw_tags if isinstance(raw_tags, list) else []
    is_comment = "comment" in tags or (not tags and hit.get("comment_text") is not None)
    published = _created(hit)
    if published is None:
        return "without a date"

    story_title = " ".join(str(hit.get("story_title") or "").split())
    own_title = " ".join(str(hit.get("title") or "").split())
    if is_comment:
        title = f"Re: {story_title}" if story_title else None
        text = _text(hit.get("comment_text"))
    else:
        title = own_title or None
        text = _text(hit.get("story_text")) or _text(hit.get("job_text")) or own_title
    if not text:
        return "without text (deleted or empty)"

    author_handle = hit.get("author")
    author = Author()
    if isinstance(author_handle, str) and author_handle.strip():
        handle = author_handle.strip()
        author = Author(name=handle, handle=handle, url=USER_URL.format(quote(handle)))

    points = to_int(hit.get("points"))
    comments = to_int(hit.get("num_comments"))
    engagement = Engagement(
        likes=points if points is not None and points >= 0 else None,
        score=points,
        comments=comments if comments is not None and comments >= 0 else None,
    )
    story_id = to_int(hit.get("story_id"))
    parent_id = to_int(hit.get("parent_id"))
    thread = str(story_id) if story_id is not None else (None if is_comment else object_id)
    url = ITEM_URL.format(quote(object_id))
    return Mention.create(
        source=source,
        source_kind=SourceKind.FORUM,
        url=url,
        canonical_url=url,
        title=title,
        text=text,
        published_at=published,
        author=author,
        engagement=engagement,
        thread_id=thread,
        parent_id=str(parent_id) if parent_id is not None else None,
    )


def _hits(data: object) -> list[Any] | None:
    """A search page's ``hits``; an API item (Firebase or Algolia ``/items/ID``) with its
    ``children`` replies, depth first; a list of items; None for anything else."""
    if isinstance(data, dict) and isinstance(data.get("hits"), list):
        return list(data["hits"])
    if isinstance(data, dict) and "id" in data and "hits" not in data:
        found: list[Any] = []
        pending: list[Any] = [data]
        while pending and len(found) < 100_000:
            item = pending.pop()
            found.append(item)
            children = item.get("children") if isinstance(item, dict) else None
            if isinstance(children, list):
                pending.extend(reversed(children))
        return found
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return data
    return None


#: Where the official Firebase API serves items, when a list's URL does not say.
FIREBASE_API = "https://hacker-news.firebaseio.com/v0"


def _item_ids(data: object) -> list[int] | None:
    """A Firebase story list (``/v0/topstories.json`` and alike): its item ids, else None."""
    if not isinstance(data, list) or not data:
        return None
    ids = [to_int(item) for item in data if not isinstance(item, (dict, list))]
    if len(ids) != len(data) or any(item is None for item in ids):
        return None
    return [item for item in ids if item is not None]


def _with_page(url: str, page: int) -> str:
    """``url`` with its ``page`` query parameter set to ``page``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    query.append(("page", str(page)))
    return urlunsplit(parts._replace(query=urlencode(query, safe="(),", quote_via=quote)))


class HackerNewsSource(Source[HackerNewsOptions]):
    """Searches Hacker News (stories and comments) through the Algolia HN API."""

    name = "hackernews"
    kind = SourceKind.FORUM
    api_version = 1
    example_options = {"base_url": "{base_url}"}
    #: A small recorded site shipped in the package, for ``listener plugins check hackernews``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "hackernews"
    # The public API allows about 10,000 requests an hour per address.
    download_delay = 0.25
    concurrency = 2

    def __init__(self, options: HackerNewsOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        #: Hits left out so far, by reason.
        self.skipped: Counter[str] = Counter()
        #: Replies (Firebase ``kids``) asked for so far, by thread (story id).
        self._replies: Counter[str] = Counter()

    def search_url(self, term: str, page: int = 0) -> str:
        """The search URL for one term and page (only hits newer than the last run's newest)."""
        parameters = [
            ("query", term),
            ("tags", self.options.tags),
            ("hitsPerPage", str(self.options.hits_per_page)),
            ("page", str(page)),
        ]
        newer_than = self.newer_than(term)
        if newer_than is not None:
            parameters.append(("numericFilters", f"created_at_i>{int(newer_than.timestamp())}"))
        query = urlencode(
            parameters,
            safe="(),>",
            quote_via=quote,
        )
        return f"{self.options.base_url.rstrip('/')}{SEARCH_PATH}?{query}"

    def start_requests(self) -> Iterable[Request]:
        """The first page of one search per distinct term."""
        for term, brands in search_terms(self.brands).items():
            yield Request(
                url=self.search_url(term),
                headers={"Accept": "application/json"},
                meta={"term": term, "brands": brands, "page": 0},
            )

    def _item_requests(self, response: Response, ids: list[int]) -> list[Mention | Request]:
        """A Firebase story list: its first ``hits_per_page`` items, each asked for once."""
        url = response.url
        api = url.split("/v0/", 1)[0] + "/v0" if "/v0/" in url else FIREBASE_API
        wanted = list(dict.fromkeys(ids))[: self.options.hits_per_page]
        if len(wanted) < len(ids):
            log.info(
                "%s: %s lists %d items; reading the first %d (hits_per_page)",
                self.label,
                url,
                len(ids),
                len(wanted),
            )
        return [
            Request(url=f"{api}/item/{item}.json", meta={**response.meta, "item": item})
            for item in wanted
        ]

    def _reply_requests(self, response: Response, item: Mapping[str, Any]) -> list[Request]:
        """A Firebase item's ``kids``: each reply asked for as an item of the same thread,
        the first ``hits_per_page`` of the item, ``hits_per_page * max_pages`` a thread."""
        kids = item.get("kids")
        if not isinstance(kids, list):
            return []
        meta = response.meta
        is_comment = item.get("type") == "comment"
        story = meta.get("story") if is_comment else item.get("id")
        title = meta.get("story_title") if is_comment else item.get("title")
        thread = str(story) if story is not None else f"item {item.get('id')}"
        ids = [kid for kid in map(to_int, kids) if kid is not None][: self.options.hits_per_page]
        room = self.options.hits_per_page * self.options.max_pages - self._replies[thread]
        if len(ids) > room:
            log.info(
                "%s: thread %s has more replies than hits_per_page * max_pages (%d); "
                "%d of %s's are not asked for",
                self.label,
                thread,
                self.options.hits_per_page * self.options.max_pages,
                len(ids) - max(room, 0),
                response.url,
            )
            ids = ids[: max(room, 0)]
        self._replies[thread] += len(ids)
        api = response.url.split("/item/", 1)[0] if "/item/" in response.url else FIREBASE_API
        return [
            Request(
                url=f"{api}/item/{kid}.json",
                meta={**meta, "item": kid, "story": story, "story_title": title},
            )
            for kid in ids
        ]

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """The page's hits as Mentions, then the next page's request when there is one (or,
        for a Firebase item, the requests for its replies)."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        ids = _item_ids(data)
        if ids is not None:
            return self._item_requests(response, ids)
        replies: list[Request] = []
        if isinstance(data, dict) and "id" in data and not {"children", "hits"} & data.keys():
            replies = self._reply_requests(response, data)  # a Firebase item: its kids
            story = response.meta.get("story")
            if data.get("type") == "comment" and story is not None and "story_id" not in data:
                data = {**data, "story_id": story, "story_title": response.meta.get("story_title")}
        hits = _hits(data)
        if hits is None:
            raise ValueError(
                f"{response.url} is not an Algolia HN search response: the JSON has no 'hits' list"
            )
        results: list[Mention | Request] = []
        skips = SkipReport("hits")
        for hit in hits:
            outcome = guarded_object(hit_to_mention, hit, self.name)
            if isinstance(outcome, Mention):
                results.append(outcome)
                self.checkpoint.advance(str(response.meta.get("term", "")), outcome.published_at)
            else:
                ref = hit.get("objectID", hit.get("id")) if isinstance(hit, dict) else None
                skips.skip(outcome, f"id {ref}" if ref is not None else "no id")
        skips.log(log, self.label, response.url, len(hits), into=self.skipped)
        if not isinstance(data, dict) or "hits" not in data:
            return [*results, *replies]  # an item (and its replies), not a search page
        page = to_int(data.get("page"))
        if page is None:
            page = to_int(response.meta.get("page")) or 0
        pages = to_int(data.get("nbPages")) or 0
        following = page + 1
        if hits and following < pages and following < self.options.max_pages:
            meta = {**response.meta, "page": following}
            results.append(
                Request(
                    url=_with_page(response.request.url, following),
                    headers=dict(response.request.headers),
                    meta=meta,
                )
            )
        return results


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``hackernews`` source."""
    return [HackerNewsSource]
