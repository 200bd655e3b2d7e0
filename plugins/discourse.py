"""The ``discourse`` source: topics and posts matching the keywords on listed Discourse forums.

For every forum and distinct keyword, the forum's search is asked for the newest
posts first::

    GET {forum}/search.json?q=TERM order:latest[ after:YYYY-MM-DD]&page=N

A search hit carries only a blurb (about 200 characters), so with ``full_text``
(the default) the topic of each hit is then fetched for the posts' full text::

    GET {forum}/t/TOPIC_ID.json                          (first 20 posts and the topic)
    GET {forum}/t/TOPIC_ID/posts.json?post_ids[]=ID&…    (hits beyond the first 20)

The formats (checked against Discourse's serializers and recorded responses):
``/search.json`` answers ``{"posts": [...], "topics": [...], "users": [...],
"grouped_search_result": {"more_full_page_results": bool, "post_ids": [...],
"error": str|null, ...}}``; a post has ``id``, ``topic_id``, ``post_number``,
``username``, ``name``, ``created_at`` (ISO 8601), ``like_count`` and ``blurb``;
a topic has ``id``, ``title``, ``fancy_title``, ``slug``, ``posts_count``,
``reply_count``, ``created_at``. Very old forums answer a list of groups
(``[{"type": "topic", "results": [{"id", "title", "url"}]}]``); their topics are
fetched and their opening posts yielded. A topic page handed to the source
without being asked for (no posts named in its request) is read whole: every
post of its ``post_stream``. ``/t/ID.json`` answers the topic
(``id``, ``title``, ``slug``, ``views``, ``like_count``, ``posts_count``, …) with
``post_stream: {"posts": [...], "stream": [post ids]}``; a post there adds
``cooked`` (HTML), ``reply_to_post_number``, ``reply_count``, ``reads``,
``score`` and ``actions_summary`` (likes are action id 2). Older forums give no
``like_count`` on posts; the ``actions_summary`` count is used then. The forum's
latest posts (``/posts.json``: ``{"latest_posts": [...]}``, each post naming its
``topic_title`` and ``topic_slug``) are read as a page of posts too, and a topic
list (``/latest.json``, ``/top.json``, ``/c/SLUG/ID.json``: ``{"topic_list":
{"topics": [...], "more_topics_url": "/latest?page=1"}}``, each topic with ``id``,
``title``, ``slug``, ``created_at``, ``bumped_at`` but no post text) as a page of
topics: each topic is fetched (``/t/ID.json``) once for its opening post, which is
what the list shows, and ``more_topics_url`` is followed up to ``max_pages``. A
search answered with a topic list is still an error: it names the ``forums``
option, which takes each forum's base URL.

Ids: ``thread_id`` is the topic id; a post's own id within the thread is the
topic id for the opening post and ``TOPIC/POST_NUMBER`` for the others, so
``parent_id`` is the topic id for a reply to the opening post (or to nothing in
particular) and ``TOPIC/N`` for a reply to post N.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import Field, field_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.errors import ConfigError
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    guarded,
    guarded_object,
    html_to_text,
    one_line,
    parse_time,
    search_terms,
    secret_from_env,
    to_count,
    to_float,
    to_int,
)

log = logging.getLogger(__name__)

__all__ = [
    "DiscourseOptions",
    "DiscourseSource",
    "listener_register_sources",
    "post_to_mention",
]

#: Discourse's action type id for a like in ``actions_summary``.
LIKE_ACTION = 2
#: Discourse's post type for "closed this topic"-style notices.
SMALL_ACTION = 3
#: Posts per ``/t/ID/posts.json`` request (Discourse serves at most 20 at a time).
POSTS_PER_REQUEST = 20


class DiscourseOptions(SourceOptions):
    """Options of the ``discourse`` source."""

    forums: list[AbsoluteURL] = Field(
        min_length=1,
        description="base URLs of the forums, e.g. https://meta.discourse.org (sub-folders work)",
    )
    full_text: bool = Field(
        default=True,
        description="fetch each hit's topic for the posts' full text (else keep search blurbs)",
    )
    api_key_env: str | None = Field(
        default=None,
        description="environment variable holding an API key (for private forums; optional)",
    )
    api_username_env: str | None = Field(
        default=None, description="environment variable holding the API key's user name"
    )

    @field_validator("forums")
    @classmethod
    def _no_trailing_slash(cls, forums: list[str]) -> list[str]:
        return [forum.rstrip("/") for forum in forums]


# --------------------------------------------------------------------------- field readers


def _likes(post: Mapping[str, Any]) -> int | None:
    likes = to_count(post.get("like_count"))
    if likes is not None:
        return likes
    actions = post.get("actions_summary")
    for action in actions if isinstance(actions, list) else []:
        if isinstance(action, dict) and to_int(action.get("id")) == LIKE_ACTION:
            return to_count(action.get("count"))
    return None


def _topic_title(topic: Mapping[str, Any]) -> str | None:
    return one_line(topic.get("title")) or one_line(topic.get("fancy_title"))


def _score(value: object) -> int | None:
    """Discourse reports a post's score as a float (``58.2``): rounded to the nearest integer."""
    score = to_float(value)
    return round(score) if score is not None else None


def post_to_mention(
    post: Mapping[str, Any],
    topic: Mapping[str, Any],
    forum: str,
    source: str = "discourse",
) -> Mention | str:
    """One Discourse post (from a topic or a search) as a Mention, or why it cannot be one.

    ``topic`` is what is known of the post's topic (``title``, ``slug``,
    ``views``, ``posts_count``); ``forum`` the forum's base URL.
    """
    topic_id = to_int(post.get("topic_id"))
    if topic_id is None:
        topic_id = to_int(topic.get("id"))
    number = to_int(post.get("post_number"))
    if topic_id is None or number is None:
        return "without a topic id or post number"
    published = parse_time(post.get("created_at"))
    if published is None:
        return "without a date"
    if post.get("deleted_at") or post.get("user_deleted"):
        return "deleted"
    if to_int(post.get("post_type")) == SMALL_ACTION:
        return "a moderator action, not a post"
    cooked = post.get("cooked")
    if isinstance(cooked, str) and cooked.strip():
        text = html_to_text(cooked)
    else:
        raw = post.get("raw") if isinstance(post.get("raw"), str) else None
        blurb = post.get("blurb") if isinstance(post.get("blurb"), str) else None
        text = (raw or "").strip() or (html_to_text(blurb) if blurb else "")
    if not text:
        return "without text"

    title = _topic_title(topic) or one_line(post.get("topic_title"))
    if number > 1 and title:
        title = f"Re: {title}"
    slug = post.get("topic_slug") or topic.get("slug")
    path = (
        f"/t/{quote(str(slug))}/{topic_id}" if isinstance(slug, str) and slug else f"/t/{topic_id}"
    )
    url = f"{forum}{path}/{number}" if number > 1 else f"{forum}{path}"
    canonical = f"{forum}/t/{topic_id}/{number}"

    username = post.get("username")
    author = Author()
    if isinstance(username, str) and username.strip():
        handle = username.strip()
        name = one_line(post.get("name")) or one_line(post.get("display_username")) or handle
        author = Author(name=name, handle=handle, url=f"{forum}/u/{quote(handle)}")

    likes = _likes(post)
    if number == 1:
        posts = to_count(topic.get("posts_count"))
        comments = posts - 1 if posts else to_count(post.get("reply_count"))
        views = to_count(topic.get("views"))
        views = views if views is not None else to_count(post.get("reads"))
    else:
        comments = to_count(post.get("reply_count"))
        views = to_count(post.get("reads"))
    engagement = Engagement(
        likes=likes, comments=comments, views=views, score=_score(post.get("score"))
    )

    parent: str | None = None
    if number > 1:
        reply_to = to_int(post.get("reply_to_post_number"))
        parent = f"{topic_id}/{reply_to}" if reply_to and reply_to > 1 else str(topic_id)
    return Mention.create(
        source=source,
        source_kind=SourceKind.FORUM,
        url=url,
        canonical_url=canonical,
        title=title,
        text=text,
        published_at=published,
        author=author,
        engagement=engagement,
        thread_id=str(topic_id),
        parent_id=parent,
    )


def _error_of(data: object) -> str | None:
    """The error a Discourse JSON answer reports, if any."""
    if not isinstance(data, dict):
        return None
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        kind = data.get("error_type")
        return "; ".join(str(e) for e in errors) + (f" ({kind})" if kind else "")
    grouped = data.get("grouped_search_result")
    if isinstance(grouped, dict) and grouped.get("error"):
        return str(grouped["error"])
    return None


class DiscourseSource(Source[DiscourseOptions]):
    """Searches Discourse forums and yields the matching posts with their full text."""

    name = "discourse"
    kind = SourceKind.FORUM
    api_version = 1
    # Discourse limits requests per address (200 a minute by default) and,
    # much more tightly, anonymous searches per address per second and per
    # minute (site settings rate_limit_search_anon_user_per_*). One request at
    # a time, a second apart, stays under the first; topic fetches go first
    # (higher priority), which spaces the searches out, and a search over the
    # limit is answered 429 with Retry-After, which the crawler honours.
    download_delay = 1.0
    concurrency = 1
    # The documented JSON API (docs.discourse.org), used as its documentation
    # says. Discourse's default robots.txt disallows /search for crawlers of
    # its pages, which would leave this source nothing to read.
    obey_robots_txt = False
    example_options = {"forums": ["{base_url}"]}
    #: A small recorded site shipped in the package, for ``listener plugins check discourse``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "discourse"

    def __init__(self, options: DiscourseOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        self.headers = {"Accept": "application/json"}
        if options.api_key_env:
            self.headers["Api-Key"] = secret_from_env(
                "discourse", "api_key_env", options.api_key_env
            )
        if options.api_username_env:
            if not options.api_key_env:
                raise ConfigError(
                    "discourse: api_username_env is set but api_key_env is not; "
                    "an API user name is only sent with an API key"
                )
            self.headers["Api-Username"] = secret_from_env(
                "discourse", "api_username_env", options.api_username_env
            )
        #: Items left out so far, by reason.
        self.skipped: Counter[str] = Counter()
        self._topics_requested: set[tuple[str, int]] = set()
        self._posts_requested: set[tuple[str, int]] = set()

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def key(forum: str, term: str) -> str:
        """The checkpoint key of one search: the forum's host and path, and the term.

        Scheme and port are left out, so moving a forum to https (or a test
        server to another port) keeps its checkpoint.
        """
        parts = urlsplit(forum)
        return f"{(parts.hostname or '').lower()}{parts.path.rstrip('/')} {term}"

    def search_url(self, forum: str, term: str, page: int = 1) -> str:
        """The search URL for one forum, term and page (newest posts first)."""
        query = f"{term} order:latest"
        newer = self.newer_than(self.key(forum, term))
        if newer is not None:
            # Discourse filters by day; the day itself is filtered here, by time.
            query += f" after:{newer.astimezone(UTC).date().isoformat()}"
        params = [("q", query)]
        if page > 1:
            params.append(("page", str(page)))
        return f"{forum}/search.json?{urlencode(params, quote_via=quote)}"

    def start_requests(self) -> Iterable[Request]:
        """The first search page of every forum and distinct term."""
        for forum in self.options.forums:
            for term in search_terms(self.brands):
                yield Request(
                    url=self.search_url(forum, term),
                    headers=dict(self.headers),
                    meta={"kind": "search", "forum": forum, "term": term, "page": 1},
                )

    # -- responses -------------------------------------------------------------------------

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Search pages give topic requests (or Mentions from blurbs); topics give Mentions."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        error = _error_of(data)
        if error:
            raise ValueError(f"{response.url} answered with a Discourse error: {error}")
        if response.meta.get("kind") != "search" and _is_search(data):
            # A search page handed over without this source's request: its forum, term
            # and page are in its URL (and the term in the answer itself).
            response = _as_search(response, data)
        if response.meta.get("kind") == "search":
            return self._parse_search(response, data)
        if isinstance(data, dict) and isinstance(data.get("topic_list"), dict):
            return self._parse_topic_list(response, data["topic_list"])
        return self._parse_topic(response, data)

    def _parse_search(self, response: Response, data: Any) -> list[Mention | Request]:
        meta = response.meta
        forum: str = meta["forum"]
        if isinstance(data, list):
            return self._parse_legacy_search(response, data)
        if isinstance(data, dict) and isinstance(data.get("topic_list"), dict):
            # A search request answered with a topic list: a forum URL that points
            # at a page (…/latest) rather than at the forum, or a proxy in between.
            raise ValueError(
                f"{response.url} is not a Discourse search response: it answered a topic "
                "list (as /latest.json does). List each forum's base URL under 'forums' "
                "(e.g. https://meta.discourse.org, not …/latest); the source searches it "
                "for the brands' keywords"
            )
        if not isinstance(data, dict) or not (
            isinstance(data.get("posts"), list) or "grouped_search_result" in data
        ):
            raise ValueError(
                f"{response.url} is not a Discourse search response: "
                "the JSON has neither 'posts' nor 'grouped_search_result'"
            )
        posts = data.get("posts")
        if not isinstance(posts, list):
            posts = []  # a search without hits leaves 'posts' out
        topics = {
            to_int(topic.get("id")): topic
            for topic in data.get("topics") or []
            if isinstance(topic, dict)
        }
        key = self.key(forum, meta["term"])
        newer = self.newer_than(key)
        results: list[Mention | Request] = []
        skips = SkipReport("posts")
        wanted: dict[int, list[int]] = {}
        reached_older = False
        for post in posts:
            if not isinstance(post, dict):
                skips.skip("not an object")
                continue
            created = parse_time(post.get("created_at"))
            if newer is not None and created is not None and created <= newer:
                reached_older = True
                continue
            topic_id = to_int(post.get("topic_id"))
            post_id = to_int(post.get("id"))
            if not self.options.full_text or topic_id is None or post_id is None:
                outcome = guarded(
                    post_to_mention, post, topics.get(topic_id) or {}, forum, self.name
                )
                if isinstance(outcome, Mention):
                    self.checkpoint.advance(key, outcome.published_at)
                    results.append(outcome)
                else:
                    skips.skip(outcome, _ref(post))
                continue
            if created is not None:
                self.checkpoint.advance(key, created)
            if (forum, post_id) in self._posts_requested:
                continue  # another search already asked for it
            self._posts_requested.add((forum, post_id))
            wanted.setdefault(topic_id, []).append(post_id)
        skips.log(log, self.label, response.url, len(posts), into=self.skipped)

        for topic_id, post_ids in wanted.items():
            results.extend(
                self._topic_requests(forum, meta["term"], topic_id, post_ids, topics.get(topic_id))
            )
        grouped = data.get("grouped_search_result")
        more = isinstance(grouped, dict) and bool(grouped.get("more_full_page_results"))
        page = to_int(meta.get("page")) or 1
        if posts and more and not reached_older and page < self.options.max_pages:
            results.append(
                Request(
                    url=self.search_url(forum, meta["term"], page + 1),
                    headers=dict(self.headers),
                    meta={**meta, "page": page + 1},
                )
            )
        return results

    def _parse_legacy_search(
        self, response: Response, groups: list[Any]
    ) -> list[Mention | Request]:
        """The grouped search format of old Discourse versions: fetch the topics found."""
        forum: str = response.meta["forum"]
        results: list[Mention | Request] = []
        for group in groups:
            if not isinstance(group, dict) or group.get("type") != "topic":
                continue
            for hit in group.get("results") or []:
                topic_id = to_int(hit.get("id")) if isinstance(hit, dict) else None
                if topic_id is None:
                    continue
                topic = {"id": topic_id, "title": hit.get("title")}
                results.extend(
                    self._topic_requests(forum, response.meta["term"], topic_id, [], topic)
                )
        return results

    def _topic_requests(
        self,
        forum: str,
        term: str,
        topic_id: int,
        post_ids: list[int],
        topic: Mapping[str, Any] | None,
    ) -> list[Request]:
        """Fetch a topic once per crawl; later hits in it through ``posts.json``."""
        meta = {
            "kind": "topic",
            "forum": forum,
            "term": term,
            "topic": dict(topic or {"id": topic_id}),
            # No post ids (an old-style search): the topic's opening post.
            "posts": post_ids,
        }
        if (forum, topic_id) not in self._topics_requested:
            self._topics_requested.add((forum, topic_id))
            return [
                Request(
                    url=f"{forum}/t/{topic_id}.json",
                    headers=dict(self.headers),
                    meta=meta,
                    priority=1,
                )
            ]
        return self._posts_requests(forum, topic_id, post_ids, meta)

    def _posts_requests(
        self, forum: str, topic_id: int, post_ids: list[int], meta: dict[str, Any]
    ) -> list[Request]:
        requests = []
        for start in range(0, len(post_ids), POSTS_PER_REQUEST):
            chunk = post_ids[start : start + POSTS_PER_REQUEST]
            query = urlencode([("post_ids[]", str(post_id)) for post_id in chunk])
            requests.append(
                Request(
                    url=f"{forum}/t/{topic_id}/posts.json?{query}",
                    headers=dict(self.headers),
                    meta={**meta, "posts": chunk},
                    priority=1,
                )
            )
        return requests

    def _parse_topic_list(
        self, response: Response, topic_list: Mapping[str, Any]
    ) -> list[Mention | Request]:
        """A topic list (``/latest.json`` and alike): fetch each topic for its opening post.

        A listed topic carries no post text (at most an excerpt of a pinned
        topic), so its topic is asked for as an old-style search hit is: the
        opening post is yielded, dated and checked against the checkpoint then.
        """
        meta = response.meta
        forum = _forum_of(response)
        term = str(meta.get("term") or "")
        topics = topic_list.get("topics")
        if not isinstance(topics, list):
            raise ValueError(
                f"{response.url} is not a Discourse topic list: 'topic_list.topics' is not a list"
            )
        newer = self.newer_than(self.key(forum, term))
        results: list[Mention | Request] = []
        skips = SkipReport("topics")
        reached_older = False
        for topic in topics:
            topic_id = to_int(topic.get("id")) if isinstance(topic, dict) else None
            if not isinstance(topic, dict) or topic_id is None:
                reason = "not an object" if not isinstance(topic, dict) else "without a topic id"
                skips.skip(
                    reason,
                    f"topic {one_line(topic.get('title')) or '?'}"
                    if isinstance(topic, dict)
                    else "?",
                )
                continue
            bumped = parse_time(topic.get("bumped_at")) or parse_time(topic.get("last_posted_at"))
            if newer is not None and bumped is not None and bumped <= newer:
                reached_older = True  # lists are ordered by activity: the rest is older
            known = {
                k: topic[k]
                for k in ("id", "title", "fancy_title", "slug", "views", "posts_count")
                if topic.get(k) is not None
            }
            results.extend(self._topic_requests(forum, term, topic_id, [], known))
        skips.log(log, self.label, response.url, len(topics), into=self.skipped)
        following = topic_list.get("more_topics_url")
        page = to_int(meta.get("page")) or 1
        if (
            isinstance(following, str)
            and following.strip()
            and topics
            and not reached_older
            and page < self.options.max_pages
        ):
            parts = urlsplit(following.strip())
            path = parts.path if parts.path.endswith(".json") else f"{parts.path}.json"
            base = forum if not parts.netloc else f"{parts.scheme or 'https'}://{parts.netloc}"
            if not parts.netloc and path.startswith(urlsplit(forum).path + "/"):
                base = forum[: len(forum) - len(urlsplit(forum).path)]  # already has the folder
            url = f"{base}{path}" + (f"?{parts.query}" if parts.query else "")
            results.append(
                Request(
                    url=url,
                    headers=dict(self.headers),
                    meta={**meta, "kind": "topics", "forum": forum, "term": term, "page": page + 1},
                )
            )
        return results

    def _parse_topic(self, response: Response, data: Any) -> list[Mention | Request]:
        meta = response.meta
        forum = _forum_of(response)
        stream = data.get("post_stream") if isinstance(data, dict) else None
        posts = stream.get("posts") if isinstance(stream, dict) else None
        if isinstance(data, dict) and isinstance(data.get("latest_posts"), list):
            return self._parse_latest(response, data["latest_posts"])
        if not isinstance(posts, list):
            raise ValueError(
                f"{response.url} is not a Discourse topic: the JSON has no 'post_stream.posts' list"
            )
        topic: dict[str, Any] = dict(meta.get("topic") or {})
        if isinstance(data, dict) and ("title" in data or "fancy_title" in data):
            topic.update({k: v for k, v in data.items() if k != "post_stream" and v is not None})
        wanted: list[int] = list(meta.get("posts") or [])
        by_id = {to_int(p.get("id")): p for p in posts if isinstance(p, dict)}
        if "posts" not in meta:  # a topic this source did not ask for: every post in it
            wanted = [post_id for post_id in by_id if post_id is not None]
        elif not wanted:  # an old-style search hit or a listed topic: the opening post
            opening = next((p for p in by_id.values() if to_int(p.get("post_number")) == 1), None)
            wanted = [to_int(opening.get("id")) or 0] if opening else []
        key = self.key(forum, meta.get("term", ""))
        results: list[Mention | Request] = []
        skips = SkipReport("posts")
        missing: list[int] = []
        for post_id in wanted:
            post = by_id.get(post_id)
            if post is None:
                missing.append(post_id)
                continue
            outcome = guarded(post_to_mention, post, topic, forum, self.name)
            if isinstance(outcome, str):
                skips.skip(outcome, _ref(post))
            elif self.is_new(key, outcome):  # newer, or a late one no run has had
                self.checkpoint.advance(key, outcome.published_at, outcome.id)
                results.append(outcome)
        skips.log(log, self.label, response.url, len(wanted), into=self.skipped)
        if missing and "/posts.json" not in response.url:
            topic_id = to_int(topic.get("id")) or to_int(data.get("id"))
            if topic_id is not None:
                results.extend(self._posts_requests(forum, topic_id, missing, meta))
        elif missing:
            self.skipped["not returned by posts.json (deleted or hidden)"] += len(missing)
        return results

    def _parse_latest(self, response: Response, posts: list[Any]) -> list[Mention | Request]:
        """``/posts.json`` (the forum's latest posts, each naming its topic): every post."""
        meta = response.meta
        forum = _forum_of(response)
        key = self.key(forum, meta.get("term", ""))
        results: list[Mention | Request] = []
        skips = SkipReport("posts")
        for post in posts:
            outcome = guarded_object(post_to_mention, post, {}, forum, self.name)
            if isinstance(outcome, str):
                skips.skip(outcome, _ref(post) if isinstance(post, dict) else "?")
            elif self.is_new(key, outcome):
                self.checkpoint.advance(key, outcome.published_at, outcome.id)
                results.append(outcome)
        skips.log(log, self.label, response.url, len(posts), into=self.skipped)
        return results


#: The first path segment of Discourse's own pages, where a forum's base URL ends.
_FORUM_PAGES = re.compile(
    r"/(?:latest|top|new|hot|posts|t|c|tag|tags|categories|search|u|users)(?:[/.?]|$)"
)


def _is_search(data: object) -> bool:
    """Whether an answer is a search page: ``grouped_search_result``, or the old groups."""
    if isinstance(data, dict):
        return "grouped_search_result" in data
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(group, dict) and "results" in group for group in data)
    )


def _as_search(response: Response, data: object) -> Response:
    """``response`` with the meta of this source's search request filled in from the page."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(response.url).query).items()}
    grouped = data.get("grouped_search_result") if isinstance(data, dict) else None
    said = grouped.get("term") if isinstance(grouped, dict) else None
    asked = query.get("q") or query.get("term") or (said if isinstance(said, str) else "")
    # The words of the query without its filters (order:latest, after:2026-11-19, …).
    term = " ".join(word for word in asked.split() if ":" not in word)
    meta = {
        **response.meta,
        "kind": "search",
        "forum": _forum_of(response),
        "term": term,
        "page": to_int(response.meta.get("page")) or to_int(query.get("page")) or 1,
    }
    request = dataclasses.replace(response.request, meta=meta)
    return dataclasses.replace(response, request=request)


def _forum_of(response: Response) -> str:
    """The forum a response belongs to: the request's, else its URL up to Discourse's pages."""
    forum = response.meta.get("forum")
    if isinstance(forum, str) and forum:
        return forum
    parts = urlsplit(response.url)
    folder = _FORUM_PAGES.split(parts.path, maxsplit=1)[0].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{folder}"


def _ref(post: Mapping[str, Any]) -> str:
    """How a log line names a post: ``post 123``, else its topic and number."""
    if post.get("id") is not None:
        return f"post {post['id']}"
    return f"topic {post.get('topic_id')} #{post.get('post_number')}"


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``discourse`` source."""
    return [DiscourseSource]
