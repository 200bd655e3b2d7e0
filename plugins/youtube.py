"""The ``youtube`` source: comments on videos matching the keywords, on listed channels or videos.

Uses the YouTube Data API v3 with an API key read from the environment variable
named by ``api_key_env`` (``YOUTUBE_API_KEY`` unless set otherwise); the key is
sent in the ``X-Goog-Api-Key`` header, so it never appears in URLs or logs.

- Keyword search (``search = true``): the newest videos per distinct keyword,
  ``GET {base_url}/search?part=snippet&type=video&order=date&q=TERM&maxResults=N``
  (``publishedAfter`` on later runs), then the comments of every video found.
- Listed videos: ``GET {base_url}/commentThreads?part=snippet,replies&videoId=ID
  &order=time&maxResults=100&textFormat=plainText``.
- Listed channels: the same with ``allThreadsRelatedToChannelId=ID`` (comments
  on all of the channel's videos).
- Replies beyond the (at most five) a thread carries:
  ``GET {base_url}/comments?part=snippet&parentId=ID&maxResults=100``.

Pages follow ``nextPageToken`` up to ``max_pages``. The formats: a list answer is
``{"kind", "nextPageToken"?, "pageInfo", "items": [...]}``; a search result has
``id.videoId`` and ``snippet`` (``title`` HTML-escaped, ``publishedAt``,
``channelTitle``); a comment thread has ``id`` and ``snippet.topLevelComment``
and ``snippet.totalReplyCount``, and ``replies.comments``; a comment has ``id``
and ``snippet`` (``textOriginal``, ``textDisplay``, ``authorDisplayName``,
``authorChannelUrl``, ``authorChannelId.value``, ``likeCount``,
``publishedAt``, ``updatedAt``, ``videoId``, ``parentId`` for replies). An error is
``{"error": {"code", "message", "errors": [{"reason"}]}}``. A comment or video
without a readable ``publishedAt`` is dated by its ``updatedAt`` (when it was
last edited, never before it was published), and the page's log says which.

Ids: ``thread_id`` is the video id; ``parent_id`` is the video id for a
top-level comment and the top-level comment's id for a reply. The URL is the
comment's public link, ``https://www.youtube.com/watch?v=VIDEO&lc=COMMENT``.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import Field, field_validator, model_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    guarded,
    html_to_text,
    http_url,
    parse_time,
    search_terms,
    secret_from_env,
    to_count,
    to_int,
)

log = logging.getLogger(__name__)

__all__ = [
    "YouTubeOptions",
    "YouTubeSource",
    "comment_to_mention",
    "listener_register_sources",
]

WATCH_URL = "https://www.youtube.com/watch?v={video}"
COMMENT_URL = "https://www.youtube.com/watch?v={video}&lc={comment}"
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
_MARKUP = re.compile(r"<(?:br|a|b|i|s|span)\b", re.IGNORECASE)


class YouTubeOptions(SourceOptions):
    """Options of the ``youtube`` source."""

    base_url: AbsoluteURL = Field(
        default="https://www.googleapis.com/youtube/v3",
        description="where the YouTube Data API v3 lives (a mirror or a test server)",
    )
    api_key_env: str = Field(
        default="YOUTUBE_API_KEY",
        min_length=1,
        description="environment variable holding the API key (required)",
    )
    search: bool = Field(default=True, description="search videos for the brands' keywords")
    channels: list[str] = Field(
        default_factory=list, description="channel ids (UC…) whose videos' comments to read"
    )
    videos: list[str] = Field(default_factory=list, description="video ids whose comments to read")
    videos_per_search: int = Field(default=25, ge=1, le=50, description="videos per search page")
    comments_per_page: int = Field(default=100, ge=1, le=100, description="threads per page")
    replies: bool = Field(
        default=True, description="fetch every reply when a thread carries only some"
    )
    region_code: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="search: videos viewable in a country"
    )
    relevance_language: str | None = Field(
        default=None, description="search: prefer videos in this language (ISO 639-1)"
    )

    @field_validator("videos")
    @classmethod
    def _video_ids(cls, videos: list[str]) -> list[str]:
        for video in videos:
            if not _VIDEO_ID.match(video):
                raise ValueError(f"{video!r} is not a video id (11 characters, as in watch?v=ID)")
        return videos

    @field_validator("channels")
    @classmethod
    def _channel_ids(cls, channels: list[str]) -> list[str]:
        for channel in channels:
            if not _CHANNEL_ID.match(channel):
                raise ValueError(
                    f"{channel!r} is not a channel id (UC followed by 22 characters; "
                    "a @handle is not accepted)"
                )
        return channels

    @model_validator(mode="after")
    def _something_to_read(self) -> YouTubeOptions:
        if not (self.search or self.channels or self.videos):
            raise ValueError("nothing to read: set search = true or list channels or videos")
        return self


# --------------------------------------------------------------------------- field readers


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(snippet: Mapping[str, Any]) -> datetime | None:
    """When a comment or video was published: ``publishedAt``, else ``updatedAt``.

    ``updatedAt`` is the last edit (the same as ``publishedAt`` for an unedited
    comment), so a missing publication time is replaced by a time at or after it.
    """
    published = parse_time(snippet.get("publishedAt"))
    return published if published is not None else parse_time(snippet.get("updatedAt"))


def _dated_by_update(item: object) -> bool:
    """Whether a comment (or a thread's top-level comment) was dated by its ``updatedAt``."""
    snippet = item.get("snippet") if isinstance(item, Mapping) else None
    top = snippet.get("topLevelComment") if isinstance(snippet, Mapping) else None
    if isinstance(top, Mapping):
        snippet = top.get("snippet")
    if not isinstance(snippet, Mapping):
        return False
    return parse_time(snippet.get("publishedAt")) is None and _date(snippet) is not None


def _text(snippet: Mapping[str, Any]) -> str:
    original = snippet.get("textOriginal")
    if isinstance(original, str) and original.strip():
        return original.strip()
    display = snippet.get("textDisplay")
    if not isinstance(display, str) or not display.strip():
        return ""
    # textFormat=plainText gives plain text; html (the API default) gives markup.
    return html_to_text(display) if _MARKUP.search(display) else html.unescape(display).strip()


def _author(snippet: Mapping[str, Any]) -> Author:
    name = snippet.get("authorDisplayName")
    name = name.strip() if isinstance(name, str) and name.strip() else None
    url = http_url(snippet.get("authorChannelUrl"))
    handle = name if name and name.startswith("@") else None
    if handle is None and url:
        last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        handle = last if last.startswith("@") else None
    return Author(name=name, handle=handle, url=url)


def comment_to_mention(
    comment: Mapping[str, Any],
    video_id: str | None = None,
    video_title: str | None = None,
    replies: int | None = None,
    source: str = "youtube",
) -> Mention | str:
    """A comment (top-level or reply) as a Mention, or the reason it cannot be one.

    ``video_id`` stands in when the comment does not name its video (replies
    from ``comments.list``); ``replies`` is the thread's reply count, for a
    top-level comment.
    """
    comment_id = comment.get("id")
    snippet = comment.get("snippet")
    if not isinstance(comment_id, str) or not comment_id or not isinstance(snippet, dict):
        return "without an id or a snippet"
    video = snippet.get("videoId") or video_id
    if not isinstance(video, str) or not video:
        return "without a video (a channel discussion comment)"
    published = _date(snippet)
    if published is None:
        return "without a date"
    text = _text(snippet)
    if not text:
        return "without text"
    parent = snippet.get("parentId")
    is_reply = isinstance(parent, str) and bool(parent)
    url = COMMENT_URL.format(video=quote(video), comment=quote(comment_id))
    return Mention.create(
        source=source,
        source_kind=SourceKind.VIDEO,
        url=url,
        canonical_url=url,
        title=f"Re: {video_title}" if video_title else None,
        text=text,
        published_at=published,
        author=_author(snippet),
        engagement=Engagement(
            likes=to_count(snippet.get("likeCount")),
            comments=None if is_reply else replies,
        ),
        thread_id=video,
        parent_id=parent if is_reply else video,
    )


def _api_error(data: object) -> str | None:
    if not isinstance(data, dict) or "error" not in data:
        return None
    error = data["error"]
    if not isinstance(error, dict):
        return str(error)
    reasons = [str(e.get("reason")) for e in error.get("errors") or [] if isinstance(e, dict)] or [
        str(error.get("status") or "")
    ]
    message = html_to_text(str(error.get("message") or ""))
    return f"{error.get('code')} {', '.join(r for r in reasons if r)}: {message}".strip()


class YouTubeSource(Source[YouTubeOptions]):
    """Reads comments on YouTube videos: found by keyword, on listed channels, or listed."""

    name = "youtube"
    kind = SourceKind.VIDEO
    api_version = 1
    # The API meters a daily quota (10,000 units by default; a search costs
    # 100, a page of comments 1) rather than a request rate; two requests at a
    # time keep the crawl quick without bursts.
    download_delay = 0.2
    concurrency = 2
    # A documented API used with a key under Google's API terms, not web pages.
    obey_robots_txt = False
    # plugins check fills the variables *_env options name with a placeholder (replay only).
    example_options = {"base_url": "{base_url}", "api_key_env": "LISTENER_CHECK_YOUTUBE_API_KEY"}
    #: A small recorded site shipped in the package, for ``listener plugins check youtube``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "youtube"

    def __init__(self, options: YouTubeOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        key = secret_from_env(
            "youtube",
            "api_key_env",
            options.api_key_env,
            hint="the API key is required: a YouTube Data API v3 key from the Google Cloud console",
        )
        self.headers = {"Accept": "application/json", "X-Goog-Api-Key": key}
        #: Items left out so far, by reason.
        self.skipped: Counter[str] = Counter()
        #: Items dated by their ``updatedAt`` because they had no ``publishedAt``, so far.
        self.dated_by_update = 0
        self._videos_requested: set[str] = set()

    # -- requests --------------------------------------------------------------------------

    def _url(self, method: str, params: list[tuple[str, str]]) -> str:
        base = self.options.base_url.rstrip("/")
        return f"{base}/{method}?{urlencode(params, quote_via=quote, safe=',')}"

    def search_url(self, term: str, page_token: str | None = None) -> str:
        """One page of the newest videos matching ``term``."""
        params = [
            ("part", "snippet"),
            ("type", "video"),
            ("order", "date"),
            ("q", term),
            ("maxResults", str(self.options.videos_per_search)),
        ]
        newer = self.newer_than(f"search:{term}")
        if newer is not None:
            params.append(("publishedAfter", _rfc3339(newer)))
        if self.options.region_code:
            params.append(("regionCode", self.options.region_code))
        if self.options.relevance_language:
            params.append(("relevanceLanguage", self.options.relevance_language))
        if page_token:
            params.append(("pageToken", page_token))
        return self._url("search", params)

    def threads_url(self, scope: str, ident: str, page_token: str | None = None) -> str:
        """One page of the comment threads of a video (``scope`` "video") or a channel."""
        params = [
            ("part", "snippet,replies"),
            ("videoId" if scope == "video" else "allThreadsRelatedToChannelId", ident),
            ("order", "time"),
            ("maxResults", str(self.options.comments_per_page)),
            ("textFormat", "plainText"),
        ]
        if page_token:
            params.append(("pageToken", page_token))
        return self._url("commentThreads", params)

    def replies_url(self, parent: str, page_token: str | None = None) -> str:
        """One page of the replies to a top-level comment."""
        params = [
            ("part", "snippet"),
            ("parentId", parent),
            ("maxResults", "100"),
            ("textFormat", "plainText"),
        ]
        if page_token:
            params.append(("pageToken", page_token))
        return self._url("comments", params)

    def _threads_request(
        self,
        scope: str,
        ident: str,
        title: str | None = None,
        page: int = 1,
        token: str | None = None,
    ) -> Request:
        return Request(
            url=self.threads_url(scope, ident, token),
            headers=dict(self.headers),
            meta={"kind": "threads", "scope": scope, "id": ident, "title": title, "page": page},
            priority=1,
        )

    def start_requests(self) -> Iterable[Request]:
        """Searches for every distinct term, then the listed channels and videos."""
        if self.options.search:
            for term in search_terms(self.brands):
                yield Request(
                    url=self.search_url(term),
                    headers=dict(self.headers),
                    meta={"kind": "search", "term": term, "page": 1},
                )
        for channel in self.options.channels:
            yield self._threads_request("channel", channel)
        for video in self.options.videos:
            if video not in self._videos_requested:
                self._videos_requested.add(video)
                yield self._threads_request("video", video)

    # -- responses -------------------------------------------------------------------------

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Search pages give comment requests; thread and reply pages give Mentions."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        error = _api_error(data)
        if error:
            raise ValueError(f"{response.url} answered with a YouTube API error {error}")
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError(
                f"{response.url} is not a YouTube Data API list: the JSON has no 'items' list"
            )
        kind = response.meta.get("kind")
        shape = _page_kind(items)
        if kind not in ("search", "threads", "replies") or (
            {kind, shape} == {"threads", "replies"}
        ):
            # A page handed over without this source's request, or comments where
            # threads were expected (or back): read as what its items are.
            kind = shape or "replies"
            response = _with_meta(response, _meta_of(response, kind, items))
        if kind == "search":
            return self._parse_search(response, data, items)
        if kind == "threads":
            return self._parse_threads(response, data, items)
        return self._parse_replies(response, data, items)

    def _next_page(
        self, response: Response, data: Mapping[str, Any], url: Callable[[str], str]
    ) -> Request | None:
        """The request for the page after this one, if there is one and the limit allows."""
        token = data.get("nextPageToken")
        page = to_int(response.meta.get("page")) or 1
        if not isinstance(token, str) or not token or page >= self.options.max_pages:
            return None
        return Request(
            url=url(token),
            headers=dict(self.headers),
            meta={**response.meta, "page": page + 1},
            priority=response.request.priority,
        )

    def _parse_search(
        self, response: Response, data: Mapping[str, Any], items: list[Any]
    ) -> list[Mention | Request]:
        term: str = response.meta["term"]
        key = f"search:{term}"
        results: list[Mention | Request] = []
        dated: list[str] = []
        for item in items:
            ident = item.get("id") if isinstance(item, dict) else None
            video = ident.get("videoId") if isinstance(ident, dict) else None
            if isinstance(ident, str) and item.get("kind") == "youtube#video":
                video = ident  # a videos.list item: its id is the video id itself
            if not isinstance(video, str) or not video:
                self.skipped["search results that are not videos"] += 1
                continue
            snippet = item.get("snippet") if isinstance(item.get("snippet"), dict) else {}
            published = _date(snippet)
            if published is not None:
                self.checkpoint.advance(key, published)
            if _dated_by_update(item):
                dated.append(f"video {video}")
            if video in self._videos_requested:
                continue
            self._videos_requested.add(video)
            title = snippet.get("title")
            title = " ".join(html.unescape(title).split()) if isinstance(title, str) else None
            results.append(self._threads_request("video", video, title or None))
        self._report(SkipReport(), dated, response.url, len(items))
        following = self._next_page(response, data, lambda token: self.search_url(term, token))
        if following is not None and items:
            results.append(following)
        return results

    def _parse_threads(
        self, response: Response, data: Mapping[str, Any], items: list[Any]
    ) -> list[Mention | Request]:
        meta = response.meta
        key = f"{meta['scope']}:{meta['id']}"
        newer = self.newer_than(key)
        title: str | None = meta.get("title")
        video: str | None = meta["id"] if meta["scope"] == "video" else None
        results: list[Mention | Request] = []
        skips = SkipReport()
        dated: list[str] = []
        reached_older = False
        for thread in items:
            snippet = thread.get("snippet") if isinstance(thread, dict) else None
            top = snippet.get("topLevelComment") if isinstance(snippet, dict) else None
            if not isinstance(snippet, dict) or not isinstance(top, dict):
                skips.skip("threads without a top-level comment", _ref(thread))
                continue
            total = to_count(snippet.get("totalReplyCount"))
            thread_video = snippet.get("videoId") or video
            outcome = guarded(comment_to_mention, top, thread_video, title, total, self.name)
            if isinstance(outcome, str):
                skips.skip(outcome, _ref(thread))
                continue
            if newer is not None and outcome.published_at <= newer:
                reached_older = True
                continue
            self.checkpoint.advance(key, outcome.published_at)
            results.append(outcome)
            if _dated_by_update(thread):
                dated.append(_ref(thread))
            replies = thread.get("replies")
            listed = replies.get("comments") if isinstance(replies, dict) else None
            embedded: list[Any] = listed if isinstance(listed, list) else []
            if self.options.replies and total and total > len(embedded):
                # The thread carries only some replies: ask for all of them instead.
                results.append(
                    Request(
                        url=self.replies_url(str(top["id"])),
                        headers=dict(self.headers),
                        meta={
                            "kind": "replies",
                            "key": key,
                            "video": outcome.thread_id,
                            "title": title,
                            "parent": top["id"],
                            "page": 1,
                        },
                        priority=2,
                    )
                )
                continue
            for reply in embedded:
                if not isinstance(reply, dict):
                    skips.skip("not an object")
                    continue
                answer = guarded(
                    comment_to_mention, reply, outcome.thread_id, title, None, self.name
                )
                if isinstance(answer, str):
                    skips.skip(answer, _ref(reply))
                elif newer is None or answer.published_at > newer:
                    self.checkpoint.advance(key, answer.published_at)
                    results.append(answer)
                    if _dated_by_update(reply):
                        dated.append(_ref(reply))
        self._report(skips, dated, response.url, len(items))
        if not reached_older and items:
            following = self._next_page(
                response, data, lambda token: self.threads_url(meta["scope"], meta["id"], token)
            )
            if following is not None:
                results.append(following)
        return results

    def _parse_replies(
        self, response: Response, data: Mapping[str, Any], items: list[Any]
    ) -> list[Mention | Request]:
        meta = response.meta
        key: str = meta["key"]
        newer = self.newer_than(key)
        results: list[Mention | Request] = []
        skips = SkipReport()
        dated: list[str] = []
        for reply in items:
            if not isinstance(reply, dict):
                skips.skip("not an object")
                continue
            outcome = guarded(
                comment_to_mention, reply, meta.get("video"), meta.get("title"), None, self.name
            )
            if isinstance(outcome, str):
                skips.skip(outcome, _ref(reply))
            elif newer is None or outcome.published_at > newer:
                self.checkpoint.advance(key, outcome.published_at)
                results.append(outcome)
                if _dated_by_update(reply):
                    dated.append(_ref(reply))
        self._report(skips, dated, response.url, len(items))
        following = self._next_page(
            response, data, lambda token: self.replies_url(meta["parent"], token)
        )
        if following is not None and items:
            results.append(following)
        return results

    def _report(self, skips: SkipReport, dated: list[str], url: str, total: int) -> None:
        """A page's skipped items, and at INFO its items dated by their last edit."""
        if dated:
            self.dated_by_update += len(dated)
            log.info(
                "%s: %d items of %s have no publishedAt and are dated by their updatedAt "
                "(their last edit) (%s)",
                self.label,
                len(dated),
                url,
                ", ".join(dated[:5]),
            )
        skips.log(log, self.label, url, total, into=self.skipped)


#: The page an item's ``kind`` belongs to.
_PAGE_OF_KIND = {
    "youtube#commentThread": "threads",
    "youtube#comment": "replies",
    "youtube#searchResult": "search",
    "youtube#video": "search",
}


def _page_kind(items: list[Any]) -> str | None:
    """What a page holds, by its first item with a known ``kind``."""
    for item in items:
        kind = item.get("kind") if isinstance(item, dict) else None
        if isinstance(kind, str) and kind in _PAGE_OF_KIND:
            return _PAGE_OF_KIND[kind]
    return None


def _first_snippet_value(items: list[Any], name: str) -> str | None:
    for item in items:
        snippet = item.get("snippet") if isinstance(item, dict) else None
        value = snippet.get(name) if isinstance(snippet, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def _meta_of(response: Response, kind: str, items: list[Any]) -> dict[str, Any]:
    """The request meta a page would have had, from its URL and items, over what it has."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(response.url).query).items()}
    meta: dict[str, Any] = {"page": 1, **response.meta, "kind": kind}
    if kind == "search":
        meta.setdefault("term", query.get("q", ""))
    elif kind == "threads":
        if "scope" not in meta or "id" not in meta:
            channel = query.get("allThreadsRelatedToChannelId")
            video = query.get("videoId") or _first_snippet_value(items, "videoId")
            if channel:
                meta.update(scope="channel", id=channel)
            else:
                meta.update(scope="video", id=video or "")
        meta.setdefault("title", None)
    else:
        parent = meta.get("parent") or query.get("parentId")
        meta["parent"] = parent or _first_snippet_value(items, "parentId") or ""
        if not meta.get("video"):
            own = meta.get("id") if meta.get("scope") == "video" else None
            meta["video"] = own or query.get("videoId") or _first_snippet_value(items, "videoId")
        if "key" not in meta:  # a video's replies count with its threads, as asked for
            meta["key"] = f"video:{meta['video']}" if meta["video"] else f"replies:{meta['parent']}"
    return meta


def _with_meta(response: Response, meta: dict[str, Any]) -> Response:
    return dataclasses.replace(response, request=dataclasses.replace(response.request, meta=meta))


def _ref(item: object) -> str:
    """How a log line names a comment or thread: ``id Ugz…``, else what it is."""
    item_id = item.get("id") if isinstance(item, dict) else None
    return f"id {item_id}" if isinstance(item_id, str) and item_id else "no id"


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``youtube`` source."""
    return [YouTubeSource]
