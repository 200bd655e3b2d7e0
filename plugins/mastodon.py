"""The ``mastodon`` source: statuses from hashtag timelines and keyword search on Mastodon.

For every listed instance:

- **hashtag timelines** (no account needed): ``GET /api/v1/timelines/tag/TAG``
  for every hashtag, newest first, paginated with ``max_id``. The hashtags are
  the ``hashtags`` option, or else derived from the brands' terms (``#acme``
  and ``acme`` give ``acme``; ``acme corp`` gives ``acmecorp``; ``@handles``
  are no hashtags and are left out).
- **keyword search** (with an access token for that instance):
  ``GET /api/v2/search?q=TERM&type=statuses``, paginated with ``offset``.
  Mastodon only searches statuses whose authors opted in to search, and only
  when the instance runs its optional Elasticsearch.

Incremental runs: Mastodon status ids are time-based ("snowflakes": the
millisecond the instance received the status, shifted left 16 bits), so the
next run asks for ``since_id``/``min_id`` computed from the checkpoint minus a
minute of slack. The server then returns only statuses it received after that,
including ones written earlier on slow-federating servers; the few statuses
inside the slack are yielded again, which updates the same stored mention.
For servers whose ids are not Mastodon snowflakes (GoToSocial, Pleroma …) set
``snowflake_ids = false``: statuses at or before the checkpoint are then
skipped locally and pagination stops at the first of them.

The response format (checked against recorded Mastodon.py/rtoot cassettes and
docs.joinmastodon.org): a Status has ``id`` (string, local to the instance),
``created_at`` (ISO 8601, UTC), ``url`` (the web page on the author's server;
null for some remote software) and ``uri`` (the ActivityPub id),
``content`` (HTML), ``spoiler_text``, ``visibility``, ``language``,
``in_reply_to_id``, ``replies_count``, ``reblogs_count``, ``favourites_count``,
``quotes_count`` (Mastodon 4.4+), ``reblog`` (the boosted Status or null),
``media_attachments`` (``description`` is the alt text) and ``account``
(``username``, ``acct`` — ``user`` for local, ``user@domain`` for remote
accounts —, ``display_name``, ``url``, ``followers_count``). Errors are
``{"error": "…"}``. A thread (``/statuses/ID/context``: ``ancestors`` and
``descendants``) and a single status (``/statuses/ID``) are read as a page of
statuses too, never paged on.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import Field, field_validator, model_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    guarded_object,
    host_of,
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
    "MastodonOptions",
    "MastodonSource",
    "hashtags_for",
    "listener_register_sources",
    "snowflake_at",
    "status_to_mention",
]

_NOT_TAG_CHARACTERS = re.compile(r"[^\w]+", re.UNICODE)
_PUBLIC = frozenset({"public", "unlisted"})
#: How far before the checkpoint incremental requests reach (id/clock skew).
SNOWFLAKE_SLACK = timedelta(minutes=1)


class MastodonOptions(SourceOptions):
    """Options of the ``mastodon`` source."""

    instances: list[AbsoluteURL] = Field(
        default_factory=lambda: ["https://mastodon.social"],
        min_length=1,
        description="Mastodon servers to read (their base URLs)",
    )
    hashtags: list[str] | None = Field(
        default=None, description="hashtag timelines to read; default: derived from the brands"
    )
    search: bool = Field(
        default=True, description="also run keyword searches on instances with a token"
    )
    token_env: str | None = Field(
        default=None,
        description="environment variable with an access token (only with a single instance)",
    )
    tokens: dict[str, str] = Field(
        default_factory=dict,
        description="instance host -> environment variable with that instance's access token",
    )
    local_only: bool = Field(
        default=False, description="hashtag timelines: only statuses of the instance's own users"
    )
    limit: int = Field(default=40, ge=1, le=40, description="statuses per page")
    snowflake_ids: bool = Field(
        default=True, description="the servers use Mastodon's time-based ids (since_id from time)"
    )

    @field_validator("hashtags")
    @classmethod
    def _bare_hashtags(cls, tags: list[str] | None) -> list[str] | None:
        if tags is None:
            return None
        cleaned = [_NOT_TAG_CHARACTERS.sub("", tag.strip().lstrip("#")) for tag in tags]
        for tag, given in zip(cleaned, tags, strict=True):
            if not tag:
                raise ValueError(f"{given!r} is not a hashtag")
        return list(dict.fromkeys(cleaned))

    @field_validator("tokens")
    @classmethod
    def _token_hosts(cls, tokens: dict[str, str]) -> dict[str, str]:
        return {(host_of(k) if "://" in k else k.strip().lower()): v for k, v in tokens.items()}

    @model_validator(mode="after")
    def _tokens_name_instances(self) -> MastodonOptions:
        hosts = {host_of(url) for url in self.instances}
        if self.token_env and len(self.instances) > 1:
            raise ValueError(
                "token_env works with a single instance (a token belongs to one server); "
                "use tokens = { host = ENV_VAR } for several"
            )
        unknown = sorted(set(self.tokens) - hosts)
        if unknown:
            raise ValueError(f"tokens names hosts that are not in instances: {', '.join(unknown)}")
        return self


def hashtags_for(brands: Iterable[BrandConfig]) -> list[str]:
    """Hashtags derived from the brands' terms: ``#acme``/``acme`` → ``acme``, no ``@handles``."""
    tags: dict[str, str] = {}
    for brand in brands:
        for term in brand.terms:
            term = term.strip()
            if term.startswith("@"):
                continue
            tag = _NOT_TAG_CHARACTERS.sub("", term.lstrip("#"))
            if tag and not tag.isdigit():
                tags.setdefault(tag.casefold(), tag)
    return list(tags.values())


def snowflake_at(moment: datetime) -> int:
    """The smallest Mastodon id a status received at ``moment`` can have."""
    return int(moment.timestamp() * 1000) << 16


def _author(account: object) -> Author:
    if not isinstance(account, dict):
        return Author()
    username = account.get("username")
    acct = account.get("acct")
    url = http_url(account.get("url"))
    handle = None
    if isinstance(acct, str) and acct.strip():
        handle = acct.strip()
        if "@" not in handle and url:
            handle = f"{handle}@{host_of(url)}"  # a local account: add its server
    display = account.get("display_name")
    name = display.strip() if isinstance(display, str) and display.strip() else None
    if name is None and isinstance(username, str) and username.strip():
        name = username.strip()
    return Author(
        name=name, handle=handle, url=url, followers=to_count(account.get("followers_count"))
    )


def _status_text(status: Mapping[str, Any]) -> str:
    """The status as plain text: content warning, then content, else the media descriptions."""
    parts = []
    spoiler = status.get("spoiler_text")
    if isinstance(spoiler, str) and spoiler.strip():
        parts.append(" ".join(spoiler.split()))
    content = status.get("content")
    text = html_to_text(content) if isinstance(content, str) and content.strip() else ""
    if not text:
        descriptions = [
            " ".join(media["description"].split())
            for media in status.get("media_attachments") or []
            if isinstance(media, dict)
            and isinstance(media.get("description"), str)
            and media["description"].strip()
        ]
        text = "\n".join(descriptions)
    if not text:  # a poll without a question: its options are what it says
        poll = status.get("poll")
        choices = poll.get("options") if isinstance(poll, dict) else None
        text = "\n".join(
            " ".join(option["title"].split())
            for option in (choices if isinstance(choices, list) else [])
            if isinstance(option, dict)
            and isinstance(option.get("title"), str)
            and option["title"].strip()
        )
    if text:
        parts.append(text)
    return "\n\n".join(parts) if text else ""


def status_to_mention(status: Mapping[str, Any], source: str = "mastodon") -> Mention | str:
    """A Status as a Mention (a boost becomes the boosted status), or why it cannot be one."""
    reblog = status.get("reblog")
    if isinstance(reblog, dict):
        status = reblog
    status_id = status.get("id")
    if status_id is None or not str(status_id).strip():
        return "without an id"
    visibility = status.get("visibility")
    if visibility is not None and (not isinstance(visibility, str) or visibility not in _PUBLIC):
        return "not public"
    published = parse_time(status.get("created_at"))
    if published is None:
        return "without a date"
    url = http_url(status.get("url")) or http_url(status.get("uri"))
    if url is None:
        return "without a URL"
    text = _status_text(status)
    if not text:
        return "without text"
    reblogs = to_count(status.get("reblogs_count"))
    quotes = to_count(status.get("quotes_count"))
    shares = None if reblogs is None and quotes is None else (reblogs or 0) + (quotes or 0)
    engagement = Engagement(
        likes=to_count(status.get("favourites_count")),
        comments=to_count(status.get("replies_count")),
        shares=shares,
    )
    in_reply_to = status.get("in_reply_to_id")
    parent = str(in_reply_to) if in_reply_to is not None and str(in_reply_to).strip() else None
    return Mention.create(
        source=source,
        source_kind=SourceKind.SOCIAL,
        url=url,
        canonical_url=url,
        text=text,
        published_at=published,
        author=_author(status.get("account")),
        engagement=engagement,
        # Mastodon names only the parent; a status that replies to nothing starts a thread.
        thread_id=None if parent else str(status_id).strip(),
        parent_id=parent,
    )


def _other_statuses(data: object) -> list[Any] | None:
    """The statuses of a context (ancestors, then descendants), a search result or one
    status; None when ``data`` is none of these."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("ancestors"), list) or isinstance(data.get("descendants"), list):
        parts = [data.get("ancestors"), data.get("descendants")]
        return [status for part in parts if isinstance(part, list) for status in part]
    if isinstance(data.get("statuses"), list):
        return list(data["statuses"])
    if "id" in data and ("content" in data or "reblog" in data):
        return [data]
    return None


def _ref(status: object) -> str:
    """How a log line names a status: ``id 1234``, else what it is."""
    if not isinstance(status, dict):
        return f"a {type(status).__name__}"
    status_id = status.get("id")
    return f"id {status_id}" if status_id is not None else "no id"


class MastodonSource(Source[MastodonOptions]):
    """Reads hashtag timelines (and, with a token, keyword searches) on Mastodon servers."""

    name = "mastodon"
    kind = SourceKind.SOCIAL
    api_version = 1
    # Mastodon allows 300 API requests per 5 minutes per account or address.
    download_delay = 1.0
    concurrency = 1
    example_options = {"instances": ["{base_url}"], "limit": 3}
    #: A small recorded site shipped in the package, for ``listener plugins check mastodon``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "mastodon"

    def __init__(self, options: MastodonOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        self.instances = [url.rstrip("/") for url in options.instances]
        #: Access token per instance host (tokens are read when the source starts).
        self.tokens: dict[str, str] = {}
        if options.token_env:
            self.tokens[host_of(self.instances[0])] = secret_from_env(
                "mastodon", "token_env", options.token_env
            )
        for host, variable in options.tokens.items():
            self.tokens[host] = secret_from_env("mastodon", f"tokens.{host}", variable)
        self.hashtags = options.hashtags if options.hashtags is not None else hashtags_for(brands)
        #: Statuses left out so far, by reason.
        self.skipped: Counter[str] = Counter()

    def _headers(self, instance: str) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.tokens.get(host_of(instance))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _since_id(self, key: str) -> str | None:
        newer_than = self.newer_than(key)
        if newer_than is None or not self.options.snowflake_ids:
            return None
        return str(snowflake_at(newer_than - SNOWFLAKE_SLACK))

    def start_requests(self) -> Iterator[Request]:
        """One hashtag timeline per tag and instance, one search per term where a token is set."""
        limit = str(self.options.limit)
        for instance in self.instances:
            host = host_of(instance)
            for tag in self.hashtags:
                key = f"{host}/tags/{tag}"
                params = [("limit", limit)]
                if self.options.local_only:
                    params.append(("local", "true"))
                since_id = self._since_id(key)
                if since_id:
                    params.append(("since_id", since_id))
                url = f"{instance}/api/v1/timelines/tag/{quote(tag)}?{urlencode(params)}"
                yield self._request(url, instance, key, "timeline")
            if not (self.options.search and host in self.tokens):
                continue
            for term in search_terms(self.brands):
                key = f"{host}/search/{term}"
                params = [("q", term), ("type", "statuses"), ("resolve", "false")]
                params.append(("limit", limit))
                since_id = self._since_id(key)
                if since_id:
                    params.append(("min_id", since_id))
                params.append(("offset", "0"))
                url = f"{instance}/api/v2/search?{urlencode(params, quote_via=quote)}"
                yield self._request(url, instance, key, "search")

    def _request(self, url: str, instance: str, key: str, kind: str) -> Request:
        return Request(
            url=url,
            headers=self._headers(instance),
            meta={"kind": kind, "key": key, "page": 0, "instance": instance},
        )

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """The page's statuses as Mentions, then the next page's request when there is one."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = response.json()
        if isinstance(data, dict) and "error" in data:
            raise ValueError(f"{response.url} answered with a Mastodon error: {data['error']}")
        meta = response.meta
        # A page is a timeline (a list), a search result ({"statuses": [...]}), and, read
        # the same way, a thread ({"ancestors": [...], "descendants": [...]}) or one status.
        paged = True
        if meta.get("kind") == "search":
            statuses = data.get("statuses") if isinstance(data, dict) else None
            if not isinstance(statuses, list):
                raise ValueError(f"{response.url} is not a Mastodon search result (no statuses)")
        elif isinstance(data, list):
            statuses = data
        else:
            statuses = _other_statuses(data)
            paged = False
            if statuses is None:
                raise ValueError(f"{response.url} is not a Mastodon timeline (not a JSON list)")
        key: str = meta.get("key", response.url)
        # With snowflake ids the server already left out what is older (since_id).
        newer_than = None if self.options.snowflake_ids else self.newer_than(key)
        results: list[Mention | Request] = []
        skips = SkipReport("statuses")
        reached_older = False
        for status in statuses:
            outcome = guarded_object(status_to_mention, status, self.name)
            if isinstance(outcome, str):
                skips.skip(outcome, _ref(status))
                continue
            if newer_than is not None and outcome.published_at <= newer_than:
                reached_older = True
                if not self.is_new(key, outcome):
                    continue  # an earlier run had it (a late, unseen one is kept)
            self.checkpoint.advance(key, outcome.published_at, outcome.id)
            results.append(outcome)
        skips.log(log, self.label, response.url, len(statuses), into=self.skipped)
        page = to_int(meta.get("page")) or 0
        full = paged and len(statuses) >= self.options.limit
        if full and not reached_older and page + 1 < self.options.max_pages:
            following = self._next_url(response, statuses, page)
            if following:
                results.append(
                    Request(
                        url=following,
                        headers=dict(response.request.headers),
                        meta={**meta, "page": page + 1},
                    )
                )
        return results

    def _next_url(self, response: Response, statuses: list[Any], page: int) -> str | None:
        request_url = response.request.url
        base, _, query = request_url.partition("?")
        params = [p for p in query.split("&") if p and not p.startswith(("max_id=", "offset="))]
        if response.meta.get("kind") == "search":
            params.append(f"offset={(page + 1) * self.options.limit}")
        else:
            last = statuses[-1] if isinstance(statuses[-1], dict) else {}
            last_id = last.get("id")
            if last_id is None:
                return None
            params.append(urlencode({"max_id": str(last_id)}))
        return f"{base}?{'&'.join(params)}"


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``mastodon`` source."""
    return [MastodonSource]
