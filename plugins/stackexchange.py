"""The ``stackexchange`` source: questions and answers matching the keywords on Stack Exchange.

For every site and distinct keyword, the questions most recently active first::

    GET {base_url}/2.3/search/advanced?order=desc&sort=activity&q=TERM&site=SITE
        &filter=withbody&pagesize=100&page=N[&min=UNIX][&key=KEY]

then the answers of the questions found (up to 100 question ids a request)::

    GET {base_url}/2.3/questions/ID;ID;…/answers?order=desc&sort=creation&site=SITE
        &filter=withbody&pagesize=100&page=N[&fromdate=UNIX][&key=KEY]

following ``has_more`` up to ``max_pages`` pages each. Answers are not
filtered by keyword here (the API's search matches questions): the enrichment
stage drops those that mention no brand.

The format (https://api.stackexchange.com/docs/wrapper): every answer is a
wrapper ``{"items": [...], "has_more": bool, "quota_max": int,
"quota_remaining": int, "backoff": int (sometimes)}``; an error is
``{"error_id", "error_name", "error_message"}`` (HTTP 400). Responses are
gzip-compressed; the crawler decompresses them (``Content-Encoding: gzip``), and
a compressed body without that header is decompressed here. A question has
``question_id``, ``title`` and ``body`` (HTML, with ``filter=withbody``),
``owner`` (``user_id``, ``display_name``, ``link``, ``reputation``,
``user_type``), ``creation_date`` (Unix seconds), ``score``, ``view_count``,
``answer_count`` and ``link``; an answer has ``answer_id``, ``question_id``,
``body``, ``owner``, ``creation_date``, ``score`` and ``is_accepted``. Titles,
bodies and display names are HTML-encoded. Custom filters may add
``body_markdown``, ``up_vote_count``, ``comment_count``, the question's
``answers`` (used directly, without asking for them again) and the ``comments``
of questions and answers (read as replies, see below).

Items of two more endpoints are read wherever they are handed over: ``/posts``
(questions and answers mixed: ``post_id``, ``post_type`` "question"|"answer",
``title`` for questions, ``body`` with ``filter=withbody``, ``link``, ``owner``,
``creation_date``, ``score``, ``comment_count``; an answer's question is read from
its link ``/questions/QID/SLUG/AID``) and ``/comments`` (``comment_id``, ``post_id``,
``post_type`` of the commented post, ``body`` only with ``filter=withbody``,
``link``, ``owner``, ``creation_date``, ``score``). A comment's canonical URL is
``https://HOST/posts/comments/ID``; its ``parent_id`` is the question id for a
comment on a question and ``a/ANSWER`` for a comment on an answer.

Incremental crawling: the search asks only for questions active since the
newest item of the previous run (``min``), and the answers request only for
answers created since then (``fromdate``); questions created earlier are not
yielded again. ``backoff`` is obeyed per API method: no further request goes
to a method that asked for it during this crawl (the next run continues).
When ``quota_remaining`` reaches 0, no further request is sent.
"""

from __future__ import annotations

import gzip
import html
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pydantic import Field, field_validator

from listener import hookimpl
from listener.config import BrandConfig
from listener.mention import AbsoluteURL, Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import (
    SkipReport,
    from_timestamp,
    guarded,
    html_to_text,
    http_url,
    one_line,
    search_terms,
    secret_from_env,
    to_count,
    to_int,
)

log = logging.getLogger(__name__)

__all__ = [
    "StackExchangeOptions",
    "StackExchangeSource",
    "comment_to_mention",
    "item_to_mention",
    "listener_register_sources",
    "site_host",
]

API_VERSION = "2.3"
SEARCH_METHOD = "search/advanced"
ANSWERS_METHOD = "questions/{ids}/answers"
#: Question ids per answers request (the API's limit for vectorised ids).
IDS_PER_REQUEST = 100

# Sites whose web address is not SITE.stackexchange.com.
_HOSTS = {
    "stackoverflow": "stackoverflow.com",
    "serverfault": "serverfault.com",
    "superuser": "superuser.com",
    "askubuntu": "askubuntu.com",
    "stackapps": "stackapps.com",
    "mathoverflow": "mathoverflow.net",
    "mathoverflow.net": "mathoverflow.net",
    "meta": "meta.stackexchange.com",
}


def site_host(site: str) -> str:
    """The web host of a site given as the API's ``site`` parameter or as a domain.

    ``stackoverflow`` → stackoverflow.com, ``pt.stackoverflow`` →
    pt.stackoverflow.com, ``math`` → math.stackexchange.com, a domain stays.
    """
    site = site.strip().lower()
    if site in _HOSTS:
        return _HOSTS[site]
    if site.endswith((".com", ".net")):
        return site
    if site.endswith(".stackoverflow"):
        return f"{site}.com"
    return f"{site}.stackexchange.com"


class StackExchangeOptions(SourceOptions):
    """Options of the ``stackexchange`` source."""

    base_url: AbsoluteURL = Field(
        default="https://api.stackexchange.com",
        description="where the Stack Exchange API lives (a mirror or a test server)",
    )
    sites: list[str] = Field(
        default=["stackoverflow"],
        min_length=1,
        description="sites by API name (stackoverflow, superuser, math, …) or domain",
    )
    api_key_env: str | None = Field(
        default=None,
        description="environment variable holding an app key (raises the quota from 300 "
        "to 10,000 requests a day); optional",
    )
    page_size: int = Field(default=100, ge=1, le=100, description="items per page")
    answers: bool = Field(default=True, description="also fetch the answers of questions found")
    filter: str = Field(
        default="withbody",
        min_length=1,
        description="API filter; the default adds bodies to the default fields",
    )

    @field_validator("sites")
    @classmethod
    def _sites_not_blank(cls, sites: list[str]) -> list[str]:
        cleaned = [site.strip() for site in sites]
        if any(not site or "/" in site for site in cleaned):
            raise ValueError("sites are API site names or domains, e.g. stackoverflow")
        return cleaned


# --------------------------------------------------------------------------- field readers


def _author(owner: object) -> Author:
    if not isinstance(owner, dict):
        return Author()
    user_id = to_int(owner.get("user_id"))
    return Author(
        name=one_line(owner.get("display_name")),
        # Stack Exchange has no @handles; the user id is the stable one.
        handle=str(user_id) if user_id is not None else None,
        url=http_url(owner.get("link")),
    )


def _body(item: Mapping[str, Any]) -> str:
    body = item.get("body")
    if isinstance(body, str) and body.strip():
        return html_to_text(body)
    markdown = item.get("body_markdown")
    if isinstance(markdown, str) and markdown.strip():
        lines = [
            line.rstrip() for line in html.unescape(markdown).replace("\r\n", "\n").split("\n")
        ]
        return "\n".join(lines).strip()
    return ""


#: An answer's link: ``/questions/QUESTION/SLUG/ANSWER`` (``#ANSWER`` after it).
_ANSWER_LINK = re.compile(r"/questions/(\d+)/[^/?#]*/(\d+)")
#: Why a comment has no text: the API sends comment bodies only with a body filter.
NO_COMMENT_BODY = "without text (comment bodies come only with filter=withbody)"


def _question_of(item: Mapping[str, Any], answer_id: int) -> int | None:
    """An answer's question id: its own field, else from its link."""
    question_id = to_int(item.get("question_id"))
    if question_id is not None:
        return question_id
    link = item.get("link")
    match = _ANSWER_LINK.search(link) if isinstance(link, str) else None
    if match and int(match.group(2)) == answer_id:
        return int(match.group(1))
    return None


def _from_posts(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ``/posts`` item (``post_id`` + ``post_type``) in the fields of a question or answer."""
    post_id = to_int(item.get("post_id"))
    kind = item.get("post_type")
    if post_id is None or "comment_id" in item:
        return item
    if kind == "question" and item.get("question_id") is None:
        return {**item, "question_id": post_id}
    if kind == "answer" and item.get("answer_id") is None:
        return {**item, "answer_id": post_id, "question_id": _question_of(item, post_id)}
    return item


def comment_to_mention(
    item: Mapping[str, Any],
    site: str,
    titles: Mapping[str, str] | None = None,
    source: str = "stackexchange",
) -> Mention | str:
    """A comment (``/comments``, or embedded by a custom filter) as a Mention, or why not.

    ``titles`` maps question ids to titles: a comment on a question is titled
    ``Re: <question title>`` when the title is known.
    """
    comment_id = to_int(item.get("comment_id"))
    post_id = to_int(item.get("post_id"))
    kind = item.get("post_type")
    if comment_id is None or post_id is None:
        return "a comment without its id or its post's id"
    published = from_timestamp(item.get("creation_date"))
    if published is None:
        return "without a date"
    text = _body(item)
    if not text:
        return NO_COMMENT_BODY
    link = http_url(item.get("link"))
    host = (urlsplit(link).hostname if link else None) or site_host(site)
    canonical = f"https://{host}/posts/comments/{comment_id}"
    question_id: int | None
    if kind == "answer":
        question_id = _question_of(item, post_id)
        parent = f"a/{post_id}"
    else:
        question_id = to_int(item.get("question_id")) or post_id
        parent = str(post_id)
    question_title = (titles or {}).get(str(question_id)) if question_id is not None else None
    return Mention.create(
        source=source,
        source_kind=SourceKind.FORUM,
        url=link or canonical,
        canonical_url=canonical,
        title=f"Re: {question_title}" if question_title else None,
        text=text,
        published_at=published,
        author=_author(item.get("owner")),
        engagement=Engagement(score=to_int(item.get("score"))),
        thread_id=str(question_id) if question_id is not None else None,
        parent_id=parent,
    )


def item_to_mention(
    item: Mapping[str, Any],
    site: str,
    titles: Mapping[str, str] | None = None,
    source: str = "stackexchange",
) -> Mention | str:
    """A question, an answer or a comment as a Mention, or the reason it cannot be one.

    ``titles`` maps question ids (as strings) to titles, for answers whose
    filter leaves their question's title out. ``/posts`` items are read as the
    question or answer they are; ``/comments`` items by :func:`comment_to_mention`.
    """
    if "comment_id" in item:
        return comment_to_mention(item, site, titles, source)
    item = _from_posts(item)
    question_id = to_int(item.get("question_id"))
    answer_id = to_int(item.get("answer_id"))
    if question_id is None and answer_id is None:
        return "not a question or an answer"
    published = from_timestamp(item.get("creation_date"))
    if published is None:
        return "without a date"
    link = http_url(item.get("link"))
    host = (urlsplit(link).hostname if link else None) or site_host(site)
    own_title = one_line(item.get("title"))
    if answer_id is None:
        canonical = f"https://{host}/questions/{question_id}"
        title = own_title
        text = _body(item) or own_title or ""
        comments = to_count(item.get("answer_count"))
        if comments is None and item.get("post_type") == "question":
            comments = to_count(item.get("comment_count"))  # /posts gives no answer_count
        parent = None
    else:
        canonical = f"https://{host}/a/{answer_id}"
        question_title = own_title or (titles or {}).get(str(question_id))
        title = f"Re: {question_title}" if question_title else None
        text = _body(item)
        comments = to_count(item.get("comment_count"))
        parent = str(question_id) if question_id is not None else None
    if not text:
        return "without text"
    engagement = Engagement(
        likes=to_count(item.get("up_vote_count")),
        comments=comments,
        views=to_count(item.get("view_count")),
        score=to_int(item.get("score")),
    )
    return Mention.create(
        source=source,
        source_kind=SourceKind.FORUM,
        url=link or canonical,
        canonical_url=canonical,
        title=title,
        text=text,
        published_at=published,
        author=_author(item.get("owner")),
        engagement=engagement,
        thread_id=str(question_id) if question_id is not None else None,
        parent_id=parent,
    )


def _ref(item: Mapping[str, Any]) -> str:
    """How a log line names an item: ``answer 123``, ``question 45``, else its keys."""
    if item.get("post_id") is not None and "comment_id" not in item:
        return f"{item.get('post_type') or 'post'} {item['post_id']}"
    for key in ("answer_id", "comment_id", "question_id"):
        if item.get(key) is not None:
            return f"{key.removesuffix('_id')} {item[key]}"
    return "no id (" + ", ".join(sorted(map(str, item))[:5]) + ")"


def _decode(response: Response) -> Any:
    """The JSON of an API answer, gunzipping a compressed body the crawler left alone."""
    body = response.body
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as error:
            raise ValueError(f"{response.url} sent a broken gzip body: {error}") from None
    return Response(
        url=response.url,
        status=response.status,
        headers=response.headers,
        body=body,
        request=response.request,
    ).json()


class StackExchangeSource(Source[StackExchangeOptions]):
    """Searches Stack Exchange sites for questions, then fetches their answers."""

    name = "stackexchange"
    kind = SourceKind.FORUM
    api_version = 1
    # The API throttles an address sending more than 30 requests a second and
    # allows 300 requests a day without a key, 10,000 with one; it may ask to
    # back off (obeyed, see the module docstring). Two requests a second at
    # most keep far from the first limit; the quota is what really binds.
    download_delay = 0.5
    concurrency = 1
    # A documented API with its own terms, quotas and throttling (above), not
    # web pages: robots.txt is for crawlers of the sites' pages.
    obey_robots_txt = False
    example_options = {"base_url": "{base_url}", "sites": ["stackoverflow"]}
    #: A small recorded site shipped in the package, for ``listener plugins check stackexchange``.
    fixtures_dir = Path(__file__).parent / "fixtures" / "stackexchange"

    def __init__(self, options: StackExchangeOptions, brands: list[BrandConfig]) -> None:
        super().__init__(options, brands)
        self.api_key = secret_from_env(
            "stackexchange",
            "api_key_env",
            options.api_key_env or None,
            hint="the key is optional: without it the daily quota is 300 requests",
        )
        #: Items left out so far, by reason.
        self.skipped: Counter[str] = Counter()
        #: The quota the API last reported (None until a response arrived).
        self.quota_remaining: int | None = None
        self._backoff_until: dict[str, float] = {}

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def key(site: str, term: str) -> str:
        """The checkpoint key of one search."""
        return f"{site} {term}"

    def _url(self, method: str, params: list[tuple[str, str]]) -> str:
        if self.api_key:
            params = [*params, ("key", self.api_key)]
        base = self.options.base_url.rstrip("/")
        return f"{base}/{API_VERSION}/{method}?{urlencode(params, quote_via=quote)}"

    def search_url(self, site: str, term: str, page: int = 1) -> str:
        """One page of the questions matching ``term`` on ``site``, most recently active first."""
        params = [
            ("order", "desc"),
            ("sort", "activity"),
            ("q", term),
            ("site", site),
            ("filter", self.options.filter),
            ("pagesize", str(self.options.page_size)),
            ("page", str(page)),
        ]
        newer = self.newer_than(self.key(site, term))
        if newer is not None:
            params.append(("min", str(int(newer.timestamp()))))
        return self._url(SEARCH_METHOD, params)

    def answers_url(self, site: str, term: str, question_ids: list[str], page: int = 1) -> str:
        """One page of the answers to these questions, newest first."""
        params = [
            ("order", "desc"),
            ("sort", "creation"),
            ("site", site),
            ("filter", self.options.filter),
            ("pagesize", str(self.options.page_size)),
            ("page", str(page)),
        ]
        newer = self.newer_than(self.key(site, term))
        if newer is not None:
            params.append(("fromdate", str(int(newer.timestamp()))))
        return self._url(ANSWERS_METHOD.format(ids=";".join(question_ids)), params)

    def start_requests(self) -> Iterable[Request]:
        """The first search page of every site and distinct term."""
        for site in self.options.sites:
            for term in search_terms(self.brands):
                yield Request(
                    url=self.search_url(site, term),
                    headers={"Accept": "application/json"},
                    meta={"kind": "search", "site": site, "term": term, "page": 1},
                )

    def _may_ask(self, method: str, url: str) -> bool:
        """Whether a request may go to ``method`` now (quota left, no backoff running)."""
        if self.quota_remaining == 0:
            self.skipped["requests not sent: quota exhausted"] += 1
            return False
        until = self._backoff_until.get(method)
        if until is not None and time.monotonic() < until:
            self.skipped["requests not sent: backoff"] += 1
            log.warning(
                "%s: the API asked to back off from %s; not requesting %s in this crawl",
                self.label,
                method,
                url,
            )
            return False
        return True

    # -- responses -------------------------------------------------------------------------

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        """Questions (and answer requests) from search pages; answers from answer pages."""
        if response.status >= 400:
            raise ValueError(f"{response.url} answered HTTP {response.status}")
        data = _decode(response)
        if isinstance(data, dict) and "error_id" in data:
            raise ValueError(
                f"{response.url} answered with Stack Exchange error {data.get('error_id')} "
                f"{data.get('error_name')}: {data.get('error_message')}"
            )
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ValueError(
                f"{response.url} is not a Stack Exchange API response: the JSON has no 'items' list"
            )
        kind = response.meta.get("kind")
        method = SEARCH_METHOD if kind == "search" else ANSWERS_METHOD
        self._read_wrapper(data, method, response.url)
        if kind == "search":
            return self._parse_search(response, data, items)
        return self._parse_answers(response, data, items)

    def _read_wrapper(self, data: Mapping[str, Any], method: str, url: str) -> None:
        remaining = to_int(data.get("quota_remaining"))
        if remaining is not None:
            self.quota_remaining = remaining
            if remaining == 0:
                log.error(
                    "%s: the Stack Exchange quota is used up (quota_max %s); no further "
                    "requests in this crawl. It resets at midnight UTC; an app key "
                    "(api_key_env) raises it",
                    self.label,
                    data.get("quota_max"),
                )
        backoff = to_int(data.get("backoff"))
        if backoff is not None and backoff > 0:
            self._backoff_until[method] = time.monotonic() + backoff
            log.warning("%s: %s asked to back off %d s from %s", self.label, url, backoff, method)

    def _mentions(
        self, items: list[Any], site: str, key: str, titles: Mapping[str, str], url: str
    ) -> list[Mention]:
        """The items newer than the checkpoint as Mentions; the rest counted as skipped."""
        mentions: list[Mention] = []
        skips = SkipReport()
        for item in items:
            if not isinstance(item, dict):
                skips.skip("not an object")
                continue
            outcome = guarded(item_to_mention, item, site, titles, self.name)
            if isinstance(outcome, str):
                skips.skip(outcome, _ref(item))
            elif self.is_new(key, outcome):  # newer, or a late one no run has had
                self.checkpoint.advance(key, outcome.published_at, outcome.id)
                mentions.append(outcome)
        skips.log(log, self.label, url, len(items), into=self.skipped)
        return mentions

    def _parse_search(
        self, response: Response, data: Mapping[str, Any], items: list[Any]
    ) -> list[Mention | Request]:
        meta = response.meta
        site: str = meta["site"]
        term: str = meta["term"]
        key = self.key(site, term)
        questions = [item for item in items if isinstance(item, dict)]
        titles = {
            str(item["question_id"]): title
            for item in questions
            if "question_id" in item and (title := one_line(item.get("title")))
        }
        results: list[Mention | Request] = []
        results.extend(self._mentions(items, site, key, titles, response.url))
        embedded = [
            {"question_id": item.get("question_id"), **answer}
            for item in questions
            if isinstance(item.get("answers"), list)
            for answer in item["answers"]
            if isinstance(answer, dict)
        ]
        results.extend(self._mentions(embedded, site, key, titles, response.url))
        comments = _embedded_comments([*questions, *embedded])
        if comments:
            results.extend(self._mentions(comments, site, key, titles, response.url))

        if self.options.answers:
            wanted = [
                str(item["question_id"])
                for item in questions
                if to_int(item.get("question_id")) is not None
                and not isinstance(item.get("answers"), list)
                and (to_count(item.get("answer_count")) or 0) > 0
            ]
            for start in range(0, len(wanted), IDS_PER_REQUEST):
                ids = wanted[start : start + IDS_PER_REQUEST]
                url = self.answers_url(site, term, ids)
                if self._may_ask(ANSWERS_METHOD, url):
                    results.append(
                        Request(
                            url=url,
                            headers=dict(response.request.headers),
                            meta={
                                "kind": "answers",
                                "site": site,
                                "term": term,
                                "questions": ids,
                                "titles": {i: titles[i] for i in ids if i in titles},
                                "page": 1,
                            },
                            priority=1,
                        )
                    )
        page = to_int(meta.get("page")) or 1
        if items and data.get("has_more") is True and page < self.options.max_pages:
            url = self.search_url(site, term, page + 1)
            if self._may_ask(SEARCH_METHOD, url):
                results.append(
                    Request(
                        url=url,
                        headers=dict(response.request.headers),
                        meta={**meta, "page": page + 1},
                    )
                )
        return results

    def _parse_answers(
        self, response: Response, data: Mapping[str, Any], items: list[Any]
    ) -> list[Mention | Request]:
        meta = response.meta
        site = _site_of(response)
        term = str(meta.get("term") or "")
        titles: dict[str, str] = dict(meta.get("titles") or {})
        results: list[Mention | Request] = list(
            self._mentions(items, site, self.key(site, term), titles, response.url)
        )
        comments = _embedded_comments([item for item in items if isinstance(item, dict)])
        if comments:
            results.extend(
                self._mentions(comments, site, self.key(site, term), titles, response.url)
            )
        page = to_int(meta.get("page")) or 1
        questions = list(meta.get("questions") or [])
        # A page this source did not ask for (/posts, /comments) has no next page to build.
        if questions and items and data.get("has_more") is True and page < self.options.max_pages:
            url = self.answers_url(site, term, questions, page + 1)
            if self._may_ask(ANSWERS_METHOD, url):
                results.append(
                    Request(
                        url=url,
                        headers=dict(response.request.headers),
                        meta={**meta, "page": page + 1},
                        priority=1,
                    )
                )
        return results


def _embedded_comments(posts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``comments`` a filter embeds in questions and answers, naming their question."""
    return [
        {"question_id": post.get("question_id"), **comment}
        for post in posts
        if isinstance(post.get("comments"), list)
        for comment in post["comments"]
        if isinstance(comment, dict)
    ]


def _site_of(response: Response) -> str:
    """The site a page answers for: the request's, else the URL's ``site`` parameter."""
    site = response.meta.get("site")
    if isinstance(site, str) and site:
        return site
    named = parse_qs(urlsplit(response.url).query).get("site")
    return named[-1] if named else "stackoverflow"


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    """The built-in ``stackexchange`` source."""
    return [StackExchangeSource]
