"""The ``bluesky`` source: posts matching the keywords, from ``app.bsky.feed.searchPosts``.

One search per distinct brand term, newest first (``sort=latest``), following
``cursor`` up to ``max_pages`` pages::

    GET {base_url}/xrpc/app.bsky.feed.searchPosts?q=TERM&sort=latest&limit=100[&since=…]

Incremental runs pass the checkpoint as ``since`` (the API filters on the
post's sort time, inclusive), skip posts at or before it and stop paginating
when they reach one.

Credentials: the public AppView (``https://public.api.bsky.app``) has answered
search without a login at times and refused it (HTTP 403) at others. With an
account, searches go through its PDS (default ``https://bsky.social``), which
proxies them to the AppView: either an app password (``identifier_env`` and
``app_password_env``; the source logs in with
``com.atproto.server.createSession`` when the crawl starts) or a ready access
token (``token_env``).

The response format (checked against recorded bskyr cassettes and the lexicon
``app.bsky.feed.defs#postView``): ``{"posts": [...], "cursor": "…",
"hitsTotal": n}``; a post has ``uri`` (``at://DID/app.bsky.feed.post/RKEY``),
``cid``, ``author`` (``did``, ``handle``, ``displayName``; no follower count in
search results), ``record`` (``text``, ``createdAt``, ``langs``, ``reply``
with ``root``/``parent`` strong refs, ``embed``), ``replyCount``,
``repostCount``, ``likeCount``, ``quoteCount`` and ``indexedAt``. Errors are
``{"error": "Name", "message": "…"}``. Pages of the other post-view endpoints are
read the same way: a feed (``{"feed": [{"post": …, "reason": …}]}``, getAuthorFeed;
a repost is the reposted post) and a thread (getPostThread: the post, its parents
and its replies; deleted and blocked posts left out). A post without text is read
from its embed: image or video descriptions, else a link card's title and description.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field, model_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    guarded_object,
    parse_time,
    search_terms,
    secret_from_env,
    to_count,
)

log = logging.getLogger(__name__)

__all__ = [
    "BlueskyOptions",
    "BlueskySource",
    "listener_register_sources",
    "post_to_mention",
]

PUBLIC_APPVIEW = "https://public.api.bsky.app"
DEFAULT_PDS = "https://bsky.social"
WEB_URL = "https://bsky.app"
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
LOGIN = "/xrpc/com.atproto.server.createSession"
POST_COLLECTION = "app.bsky.feed.post"


class BlueskyOptions(SourceOptions):
    """Options of the ``bluesky`` source."""

    base_url: AbsoluteURL | None = Field(
        default=None,
        description=(
            "XRPC service; default https://bsky.social with credentials, "
            "https://public.api.bsky.app without"
        ),
    )
    identifier_env: str | None = Field(
        default=None, description="environment variable with the account's handle or e-mail"
    )
    app_password_env: str | None = Field(
        default=None, description="environment variable with an app password of that account"
    )
    token_env: str | None = Field(
        default=None, description="environment variable with a ready access token (JWT)"
    )
    sort: Literal["latest", "top"] = Field(default="latest", description="latest or top posts")
    lang: str | None = Field(default=None, description="only posts in this language (ISO code)")
    limit: int = Field(default=100, ge=1, le=100, description="posts per page")

    @model_validator(mode="after")
    def _one_login(self) -> BlueskyOptions:
        if bool(self.identifier_env) != bool(self.app_password_env):
            raise ValueError("identifier_env and app_password_env go together")
        if self.token_env and self.identifier_env:
            raise ValueError("give token_env or identifier_env/app_password_env, not both")
        return self


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a JSON object, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _segment(value: str) -> str:
    """A URL path segment; DIDs keep their colons, as bsky.app writes them."""
    return quote(value, safe=":")


def _split_uri(uri: object) -> tuple[str, str] | None:
    """``(did, rkey)`` of an ``at://DID/app.bsky.feed.post/RKEY`` URI."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    parts = uri[len("at://") :].split("/")
    if len(parts) != 3 or parts[1] != POST_COLLECTION or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def _ref_uri(reply: Mapping[str, Any], name: str) -> str | None:
    ref = reply.get(name)
    uri = ref.get("uri") if isinstance(ref, dict) else None
    return uri if isinstance(uri, str) and uri.startswith("at://") else None


def _line(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _alt_texts(embed: object) -> list[str]:
    """What a post without text shows: image and video descriptions, else a link card.

    Images (``app.bsky.embed.images``), a video's ``alt`` (``app.bsky.embed.video``), or
    those of a record with media; else the title and description of a link card
    (``app.bsky.embed.external``), which is all a link-only post says.
    """
    if not isinstance(embed, dict):
        return []
    media = embed.get("media") if isinstance(embed.get("media"), dict) else embed
    if not isinstance(media, dict):
        return []
    images = media.get("images")
    texts = [
        _line(image.get("alt"))
        for image in (images if isinstance(images, list) else [])
        if isinstance(image, dict) and _line(image.get("alt"))
    ]
    if _line(media.get("alt")):
        texts.append(_line(media["alt"]))
    card = media.get("external")
    if not texts and isinstance(card, dict):
        texts = [
            line for line in (_line(card.get("title")), _line(card.get("description"))) if line
        ]
    return texts


def post_to_mention(post: Mapping[str, Any], source: str = "bluesky") -> Mention | str:
    """A post view as a Mention, or the reason it cannot be one.

    The publication time is the post's sort time, as Bluesky defines it: the
    author's ``createdAt``, unless that lies after ``indexedAt`` (clients may
    backdate a post, not post-date it).
    """
    uri = post.get("uri")
    ids = _split_uri(uri)
    if ids is None:
        return "without a post URI"
    did, rkey = ids
    record = post.get("record")
    if not isinstance(record, dict):
        return "without a record"
    created = parse_time(record.get("createdAt"))
    indexed = parse_time(post.get("indexedAt"))
    published = min(created, indexed) if created and indexed else created or indexed
    if published is None:
        return "without a date"
    text = record.get("text")
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        text = "\n".join(_alt_texts(record.get("embed")))
    if not text:
        return "without text"
    author_data = _object(post, "author")
    handle = author_data.get("handle")
    if not isinstance(handle, str) or not handle.strip() or handle == "handle.invalid":
        handle = None
    display = author_data.get("displayName")
    author = Author(
        name=display.strip() if isinstance(display, str) and display.strip() else handle,
        handle=handle,
        url=f"{WEB_URL}/profile/{_segment(handle or did)}",
        followers=to_count(author_data.get("followersCount")),
    )
    reposts = to_count(post.get("repostCount"))
    quotes = to_count(post.get("quoteCount"))
    engagement = Engagement(
        likes=to_count(post.get("likeCount")),
        comments=to_count(post.get("replyCount")),
        shares=None if reposts is None and quotes is None else (reposts or 0) + (quotes or 0),
    )
    reply = _object(record, "reply")
    return Mention.create(
        source=source,
        source_kind=SourceKind.SOCIAL,
        # Handles change; the DID in the canonical URL does not.
        url=f"{WEB_URL}/profile/{_segment(handle or did)}/post/{_segment(rkey)}",
        canonical_url=f"{WEB_URL}/profile/{_segment(did)}/post/{_segment(rkey)}",
        text=text,
        published_at=published,
        author=author,
        engagement=engagement,
        thread_id=_ref_uri(reply, "root") or str(uri),
        parent_id=_ref_uri(reply, "parent"),
    )


class BlueskySource(Source[BlueskyOptions]):
    """Searches Bluesky posts through the AppView's searchPosts."""

    name = "bluesky"
    kind = SourceKind.SOCIAL
    api_version = 1
    # The AppView allows 3000 requests per 5 minutes per address (RateLimit-Policy
    # 3000;w=300); logging in is limited to 30 per 5 minutes and is done once a crawl.
    download_delay = 0.1
    concurrency = 2
    example_options = {"base_url": "{base_url}", "limit": 3}
    #: A small recorded site shipped in the package, for ``listener plugins check bluesky``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "bluesky"

    def __init__(self, options: BlueskyOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        self._identifier = secret_from_env("bluesky", "identifier_env", options.identifier_env)
        self._password = secret_from_env("bluesky", "app_password_env", options.app_password_env)
        self._token = secret_from_env("bluesky", "token_env", options.token_env)
        default = DEFAULT_PDS if (self._identifier or self._token) else PUBLIC_APPVIEW
        self.api = (options.base_url or default).rstrip("/")
        #: Posts left out so far, by reason.
        self.skipped: Counter[str] = Counter()

    def search_url(self, term: str, cursor: str | None = None) -> str:
        """The search URL for one term (and page cursor)."""
        params = [("q", term), ("sort", self.options.sort), ("limit", str(self.options.limit))]
        newer_than = self.newer_than(term)
        if newer_than is not None:
            stamp = newer_than.astimezone(UTC).isoformat(timespec="milliseconds")
            params.append(("since", stamp.replace("+00:00", "Z")))
        if self.options.lang:
            params.append(("lang", self.options.lang))
        if cursor:
            params.append(("cursor", cursor))
        return f"{self.api}{SEARCH}?{urlencode(params, quote_via=quote)}"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def searches(self) -> list[Request]:
        """The first page of one search per distinct term."""
        return [
            Request(
                url=self.search_url(term),
                headers=self._headers(),
                meta={"kind": "search", "term": term, "brands": brands, "page": 0},
            )
            for term, brands in search_terms(self.brands).items()
        ]

    def start_requests(self) -> Iterable[Request]:
        """A login first when an app password is configured, else the searches."""
        if self._identifier and self._password:
            body = json.dumps({"identifier": self._identifier, "password": self._password})
            return [
                Request(
                    url=f"{self.api}{LOGIN}",
                    method="POST",
                    headers={"Accept": "application/json", "Content-Type": "application/json"},
                    body=body.encode(),
                    meta={"kind": "login"},
                )
            ]
        return self.searches()

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Mentions and the next page from a search, or the searches after a login."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        if isinstance(data, dict) and "error" in data:
            message = data.get("message")
            raise ValueError(
                f"{response.url} answered with an XRPC error: {data['error']}"
                + (f" ({message})" if message else "")
            )
        if response.meta.get("kind") == "login":
            token = data.get("accessJwt") if isinstance(data, dict) else None
            if not isinstance(token, str) or not token:
                raise ValueError(f"{response.url} returned no accessJwt")
            self._token = token
            return self.searches()
        posts = _post_views(data)
        if posts is None:
            raise ValueError(f"{response.url} is not a searchPosts response (no 'posts' list)")
        term: str = response.meta.get("term", "")
        newer_than = self.newer_than(term)
        results: list[Mention | Request] = []
        skips = SkipReport("posts")
        reached_older = False
        for post in posts:
            outcome = guarded_object(post_to_mention, post, self.name)
            if isinstance(outcome, str):
                uri = post.get("uri") if isinstance(post, dict) else None
                skips.skip(outcome, str(uri) if uri else "no uri")
                continue
            if newer_than is not None and outcome.published_at <= newer_than:
                reached_older = True
                if not self.is_new(term, outcome):
                    continue  # an earlier run had it (a late, unseen one is kept)
            self.checkpoint.advance(term, outcome.published_at, outcome.id)
            results.append(outcome)
        skips.log(log, self.label, response.url, len(posts), into=self.skipped)
        cursor = data.get("cursor")
        page = response.meta.get("page", 0)
        # Only newest-first results end where earlier runs left off.
        done = reached_older and self.options.sort == "latest"
        more = isinstance(cursor, str) and bool(cursor) and bool(posts)
        if more and not done and page + 1 < self.options.max_pages:
            results.append(
                Request(
                    url=_with_cursor(response.request.url, cursor),
                    headers=dict(response.request.headers),
                    meta={**response.meta, "page": page + 1},
                )
            )
        return results


def _post_views(data: object) -> list[Any] | None:
    """The post views of a page: ``posts`` (searchPosts, getPosts, getQuotes), the ``post`` of
    each ``feed`` item (getAuthorFeed, getFeed: a repost is the reposted post), or every post
    of a ``thread`` (getPostThread: its parents, itself and its replies); None for none of these.

    In feeds and threads a deleted or blocked post (``#notFoundPost``, ``#blockedPost``) has no
    ``post``: it is left out.
    """
    if not isinstance(data, dict):
        return None
    posts = data.get("posts")
    if isinstance(posts, list):
        return posts
    feed = data.get("feed")
    if isinstance(feed, list):
        return [item["post"] for item in feed if isinstance(item, dict) and "post" in item]
    thread = data.get("thread")
    if isinstance(thread, dict):
        found: list[Any] = []
        parent = thread.get("parent")
        while isinstance(parent, dict) and len(found) < 1000:
            if "post" in parent:
                found.insert(0, parent["post"])
            parent = parent.get("parent")
        pending = [thread]
        while pending and len(found) < 10000:
            node = pending.pop(0)
            if "post" in node:
                found.append(node["post"])
            replies = node.get("replies")
            pending.extend(
                r for r in (replies if isinstance(replies, list) else []) if isinstance(r, dict)
            )
        return found
    return None


def _with_cursor(url: str, cursor: str) -> str:
    base, _, query = url.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("cursor=")]
    params.append(urlencode({"cursor": cursor}, quote_via=quote))
    return f"{base}?{'&'.join(params)}"


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``bluesky`` source."""
    return [BlueskySource]
