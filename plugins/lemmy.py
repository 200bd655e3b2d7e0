"""The ``lemmy`` source: posts and comments matching the keywords on Lemmy instances.

For every listed instance (and, when ``communities`` are given, every listed
community of it) one search per distinct brand term, newest first::

    GET {instance}/api/v3/search?q=TERM&type_=All&sort=New&listing_type=All&page=1&limit=50

following ``page`` while a page comes back full, up to ``max_pages`` pages.
Lemmy's search has no "newer than" parameter: incremental runs skip items at
or before the checkpoint and stop paginating at the first of them.

A post or comment federated to several instances is one mention: its
canonical URL is its ActivityPub id (``ap_id``), the page on the server it was
written on. Thread and parent ids are the ids of the instance it was fetched
from (``post/123``, ``comment/456``): Lemmy's search reports the parent of a
comment only as a local id in the comment's ``path``.

The response format (API v3, Lemmy 0.18 and 0.19, checked against lemmy-js-client
and go-lemmy's generated types): ``{"type_": "All", "posts": [PostView],
"comments": [CommentView], "communities": [...], "users": [...]}``. A PostView
has ``post`` (``id``, ``name``, ``body`` Markdown, ``url``, ``ap_id``,
``published``, ``deleted``, ``removed``), ``creator`` (``name``,
``display_name``, ``actor_id``), ``community`` (``name``, ``actor_id``) and
``counts`` (``score``, ``upvotes``, ``downvotes``, ``comments``). A
CommentView has ``comment`` (``id``, ``content``, ``ap_id``, ``path``
``0.<ancestors>.<id>``, ``published``, ``deleted``, ``removed``), ``post``,
``creator``, ``community`` and ``counts`` (``score``, ``upvotes``,
``child_count``). ``published`` is ISO 8601 with ``Z`` since 0.19 and without a
zone (UTC) before. Errors are ``{"error": "…"}``.
"""

from __future__ import annotations

import html
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import Field, field_validator, model_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    guarded_object,
    host_of,
    http_url,
    parse_time,
    search_terms,
    secret_from_env,
    to_count,
    to_int,
)

log = logging.getLogger(__name__)

__all__ = [
    "LemmyOptions",
    "LemmySource",
    "comment_to_mention",
    "listener_register_sources",
    "post_to_mention",
]

SEARCH = "/api/v3/search"
_COMMUNITY = re.compile(r"^[a-z0-9_]{1,255}(@[a-z0-9.-]+(:\d+)?)?$")


class LemmyOptions(SourceOptions):
    """Options of the ``lemmy`` source."""

    instances: list[AbsoluteURL] = Field(
        default_factory=lambda: ["https://lemmy.world"],
        min_length=1,
        description="Lemmy servers to search (their base URLs)",
    )
    communities: list[str] = Field(
        default_factory=list,
        description="only search these communities (name or name@server); empty: everywhere",
    )
    search_type: Literal["All", "Posts", "Comments"] = Field(
        default="All", description="what to search: All (posts and comments), Posts, Comments"
    )
    listing_type: Literal["All", "Local"] = Field(
        default="All", description="All: everything the instance knows; Local: its own"
    )
    limit: int = Field(default=50, ge=1, le=50, description="results per page")
    token_env: str | None = Field(
        default=None,
        description="environment variable with a login token (only with a single instance)",
    )
    tokens: dict[str, str] = Field(
        default_factory=dict,
        description="instance host -> environment variable with that instance's login token",
    )

    @field_validator("communities")
    @classmethod
    def _community_names(cls, names: list[str]) -> list[str]:
        cleaned = []
        for name in names:
            bare = name.strip().removeprefix("!").lower()
            if not _COMMUNITY.match(bare):
                raise ValueError(f"{name!r} is not a community name (name or name@server)")
            cleaned.append(bare)
        return list(dict.fromkeys(cleaned))

    @field_validator("tokens")
    @classmethod
    def _token_hosts(cls, tokens: dict[str, str]) -> dict[str, str]:
        return {(host_of(k) if "://" in k else k.strip().lower()): v for k, v in tokens.items()}

    @model_validator(mode="after")
    def _tokens_name_instances(self) -> LemmyOptions:
        if self.token_env and len(self.instances) > 1:
            raise ValueError(
                "token_env works with a single instance (a token belongs to one server); "
                "use tokens = { host = ENV_VAR } for several"
            )
        unknown = sorted(set(self.tokens) - {host_of(url) for url in self.instances})
        if unknown:
            raise ValueError(f"tokens names hosts that are not in instances: {', '.join(unknown)}")
        return self


def _object(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a JSON object, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _markdown(value: object) -> str:
    """Lemmy's Markdown with its whitespace tidied (kept as Markdown: it reads as text).

    Entities are decoded, as Markdown renders them: Lemmy 0.18.3 and 0.18.4 stored
    ``&``, ``<`` and ``>`` of titles, bodies and comments as ``&amp;``, ``&lt;``, ``&gt;``.
    """
    if not isinstance(value, str):
        return ""
    value = html.unescape(value)
    lines = [line.rstrip() for line in value.replace("\r\n", "\n").strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _author(person: object) -> Author:
    if not isinstance(person, dict):
        return Author()
    name = person.get("name")
    actor = http_url(person.get("actor_id")) or http_url(
        person.get("ap_id")
    )  # ap_id from Lemmy 1.0
    handle = None
    if isinstance(name, str) and name.strip():
        name = name.strip()
        handle = f"{name}@{host_of(actor)}" if actor else name
    else:
        name = None
    display = person.get("display_name")
    shown = display.strip() if isinstance(display, str) and display.strip() else name
    return Author(name=shown, handle=handle, url=actor)


def _gone(item: Mapping[str, Any]) -> bool:
    return item.get("deleted") is True or item.get("removed") is True


def _published(item: Mapping[str, Any]) -> datetime | None:
    """``published`` (0.18, 0.19), else ``published_at`` (the name Lemmy 1.0 gives it)."""
    return parse_time(item.get("published")) or parse_time(item.get("published_at"))


def _counts(view: Mapping[str, Any], item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The view's ``counts``; Lemmy 1.0 keeps the counts on the post or comment itself."""
    counts = view.get("counts")
    return counts if isinstance(counts, dict) else item


def post_to_mention(view: Mapping[str, Any], instance: str, source: str = "lemmy") -> Mention | str:
    """A PostView as a Mention, or the reason it cannot be one."""
    post = view.get("post")
    if not isinstance(post, dict):
        return "without a post"
    post_id = to_int(post.get("id"))
    if post_id is None:
        return "without an id"
    if _gone(post):
        return "deleted or removed"
    published = _published(post)
    if published is None:
        return "without a date"
    url = http_url(post.get("ap_id")) or f"{instance}/post/{post_id}"
    title = " ".join(_markdown(post.get("name")).split())
    text = _markdown(post.get("body")) or title
    if not text:
        return "without text"
    counts = _counts(view, post)
    engagement = Engagement(
        likes=to_count(counts.get("upvotes")),
        comments=to_count(counts.get("comments")),
        score=to_int(counts.get("score")),
    )
    return Mention.create(
        source=source,
        source_kind=SourceKind.FORUM,
        url=url,
        canonical_url=url,
        title=title or None,
        text=text,
        published_at=published,
        author=_author(view.get("creator")),
        engagement=engagement,
        thread_id=f"post/{post_id}",
    )


def comment_to_mention(
    view: Mapping[str, Any], instance: str, source: str = "lemmy"
) -> Mention | str:
    """A CommentView as a Mention, or the reason it cannot be one."""
    comment = view.get("comment")
    if not isinstance(comment, dict):
        return "without a comment"
    comment_id = to_int(comment.get("id"))
    if comment_id is None:
        return "without an id"
    if _gone(comment):
        return "deleted or removed"
    published = _published(comment)
    if published is None:
        return "without a date"
    text = _markdown(comment.get("content"))
    if not text:
        return "without text"
    url = http_url(comment.get("ap_id")) or f"{instance}/comment/{comment_id}"
    post = _object(view, "post")
    post_id = to_int(post.get("id")) or to_int(comment.get("post_id"))
    # path is "0.<ancestor ids>.<own id>": the parent is the id before its own.
    path = [p for p in str(comment.get("path") or "").split(".") if p and p != "0"]
    parent = f"comment/{path[-2]}" if len(path) >= 2 else None
    if parent is None and post_id is not None:
        parent = f"post/{post_id}"
    story = " ".join(_markdown(post.get("name")).split())
    counts = _counts(view, comment)
    engagement = Engagement(
        likes=to_count(counts.get("upvotes")),
        comments=to_count(counts.get("child_count")),
        score=to_int(counts.get("score")),
    )
    return Mention.create(
        source=source,
        source_kind=SourceKind.FORUM,
        url=url,
        canonical_url=url,
        title=f"Re: {' '.join(story.split())}"
        if isinstance(story, str) and story.strip()
        else None,
        text=text,
        published_at=published,
        author=_author(view.get("creator")),
        engagement=engagement,
        thread_id=f"post/{post_id}" if post_id is not None else None,
        parent_id=parent,
    )


def _ref(view: object) -> str:
    """How a log line names a post or comment view: ``post 12``, ``comment 34``."""
    if isinstance(view, dict):
        for kind in ("comment", "post"):
            item = view.get(kind)
            if isinstance(item, dict):
                return f"{kind} {item.get('id')}"
    return f"a {type(view).__name__}"


class LemmySource(Source[LemmyOptions]):
    """Searches posts and comments on Lemmy instances (API v3)."""

    name = "lemmy"
    kind = SourceKind.FORUM
    api_version = 1
    # Lemmy's default rate limit for search is 60 requests per 600 seconds per
    # address (local_site_rate_limit.search / search_per_second): one every 10 s.
    download_delay = 10.0
    concurrency = 1
    example_options = {"instances": ["{base_url}"], "limit": 2}
    #: A small recorded site shipped in the package, for ``listener plugins check lemmy``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "lemmy"

    def __init__(self, options: LemmyOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        self.instances = [url.rstrip("/") for url in options.instances]
        #: Login token per instance host (read when the source starts).
        self.tokens: dict[str, str] = {}
        if options.token_env:
            self.tokens[host_of(self.instances[0])] = secret_from_env(
                "lemmy", "token_env", options.token_env
            )
        for host, variable in options.tokens.items():
            self.tokens[host] = secret_from_env("lemmy", f"tokens.{host}", variable)
        #: Items left out so far, by reason.
        self.skipped: Counter[str] = Counter()

    def search_url(self, instance: str, term: str, community: str | None, page: int) -> str:
        """The search URL for one instance, term, community (or None) and page (from 1)."""
        params = [
            ("q", term),
            ("type_", self.options.search_type),
            ("sort", "New"),
            ("listing_type", self.options.listing_type),
            ("page", str(page)),
            ("limit", str(self.options.limit)),
        ]
        if community:
            params.append(("community_name", community))
        return f"{instance}{SEARCH}?{urlencode(params, quote_via=quote)}"

    def start_requests(self) -> Iterator[Request]:
        """Page 1 of every (instance, community, term) search."""
        communities: list[str | None] = list(self.options.communities) or [None]
        for instance in self.instances:
            host = host_of(instance)
            headers = {"Accept": "application/json"}
            if host in self.tokens:
                headers["Authorization"] = f"Bearer {self.tokens[host]}"
            for community in communities:
                for term, brands in search_terms(self.brands).items():
                    key = f"{host}/{('c/' + community + '/') if community else ''}{term}"
                    yield Request(
                        url=self.search_url(instance, term, community, 1),
                        headers=headers,
                        meta={
                            "key": key,
                            "instance": instance,
                            "term": term,
                            "community": community,
                            "brands": brands,
                            "page": 1,
                        },
                    )

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """The page's posts and comments as Mentions, then the next page when this one was full."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        if isinstance(data, dict) and data.get("error"):
            raise ValueError(f"{response.url} answered with a Lemmy error: {data['error']}")
        if not isinstance(data, dict) or not (
            isinstance(data.get("posts"), list) or isinstance(data.get("comments"), list)
        ):
            raise ValueError(
                f"{response.url} is not a Lemmy search response (no posts or comments list)"
            )
        meta = response.meta
        instance: str = meta.get("instance") or response.url.split("/api/", 1)[0]
        key: str = meta.get("key", response.url)
        newer_than = self.newer_than(key)
        posts: list[Any] = data["posts"] if isinstance(data.get("posts"), list) else []
        comments: list[Any] = data["comments"] if isinstance(data.get("comments"), list) else []
        results: list[Mention | Request] = []
        skips = SkipReport()
        # Posts and comments are two lists, each newest first: page on while either is
        # full and has not yet reached what earlier runs saw.
        wants_more = False
        for convert, views in ((post_to_mention, posts), (comment_to_mention, comments)):
            reached_older = False
            for view in views:
                outcome = guarded_object(convert, view, instance, self.name)
                if isinstance(outcome, str):
                    skips.skip(outcome, _ref(view))
                    continue
                if newer_than is not None and outcome.published_at <= newer_than:
                    reached_older = True
                    if not self.is_new(key, outcome):
                        continue  # an earlier run had it (a late, unseen one is kept)
                self.checkpoint.advance(key, outcome.published_at, outcome.id)
                results.append(outcome)
            wants_more = wants_more or (len(views) >= self.options.limit and not reached_older)
        skips.log(log, self.label, response.url, len(posts) + len(comments), into=self.skipped)
        # A page handed over without this source's request: its term, community and
        # page are in its URL's query.
        query = {k: v[-1] for k, v in parse_qs(urlsplit(response.url).query).items()}
        term = meta.get("term") or query.get("q")
        page = to_int(meta.get("page")) or to_int(query.get("page")) or 1
        if wants_more and term and page < self.options.max_pages:
            community = meta.get("community") or query.get("community_name")
            results.append(
                Request(
                    url=self.search_url(instance, term, community, page + 1),
                    headers=dict(response.request.headers),
                    meta={
                        **meta,
                        "key": key,
                        "instance": instance,
                        "term": term,
                        "community": community,
                        "page": page + 1,
                    },
                )
            )
        return results


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``lemmy`` source."""
    return [LemmySource]
