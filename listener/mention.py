"""The Mention: the one contract between the crawl, enrichment and the index.

A source plugin builds Mentions with :func:`Mention.create`, which derives the
stable id, the domain and the canonical URL. Enrichment fills language, brands,
entities and sentiment. The Elasticsearch mapping in ``index_templates/`` holds
exactly these fields (a test keeps the two equal, and the mapping is strict).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

SentimentLabel = Literal["negative", "neutral", "positive"]


class SourceKind(StrEnum):
    """What kind of place a mention comes from."""

    NEWS = "news"
    BLOG = "blog"
    FORUM = "forum"
    SOCIAL = "social"
    REVIEW = "review"
    VIDEO = "video"


#: Every source kind's value, in one place (analytics, the CLI and the API use this).
SOURCE_KINDS: tuple[str, ...] = tuple(kind.value for kind in SourceKind)


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"datetime {value.isoformat()} has no time zone; "
            "sources must give timezone-aware datetimes (use UTC when the source says nothing)"
        )
    return value.astimezone(UTC)


def _require_absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"URL {value!r} is not an absolute http(s) URL")
    return value


#: How far past the current time a publication date may lie (clocks and time zones
#: disagree by hours). Later dates are typos or traps (9999-12-31): such mentions are
#: dropped with the reason ``future_date`` and never move a checkpoint.
FUTURE_TOLERANCE = timedelta(days=1)


def is_future(value: datetime, now: datetime | None = None) -> bool:
    """Whether ``value`` lies beyond now plus :data:`FUTURE_TOLERANCE`."""
    limit = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    return value.astimezone(UTC) > limit


AwareDatetime = Annotated[datetime, AfterValidator(_require_aware)]
# Terminal escape sequences (colours, OSC-8 hyperlinks, window titles) and other
# C0/C1 control characters: a crawled title must not drive the terminal that prints it.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|[\x1b\x9d]\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: hyperlinks, titles
    r"|\x1b[@-Z\\-_]"  # other two-character escapes
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(value: str) -> str:
    """``value`` without escape sequences and C0/C1 controls (newline and tab are kept)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", value))


#: Text as stored: control characters are stripped at ingestion.
CleanText = Annotated[str, AfterValidator(strip_controls)]
AbsoluteURL = Annotated[str, AfterValidator(_require_absolute_url)]

# Query parameters that only track campaigns: dropped from canonical URLs so
# the same article shared with different tracking tags is one mention.
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "igshid", "mc_cid", "mc_eid", "ref", "ref_src", "spm", "cmpid"}
)


_GOOGLE_HOST = re.compile(r"^(?:www\.|news\.)?google\.(?:com?\.)?[a-z]{2,3}$")

#: Redirect links whose target is in their query: (host test, path, parameters tried in order).
#: Google Alerts and Google search results (``google.*/url?url=`` / ``?q=``), Facebook's and
#: Instagram's link shims, YouTube's and LinkedIn's redirects, Slack's, Bing News' click links,
#: Reddit's outbound links and Tumblr's. (FeedBurner's ``feedproxy.google.com`` links carry no
#: target: feeds give it as ``feedburner:origLink``, which the rss source uses.)
_REDIRECTORS: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (_GOOGLE_HOST.match, "/url", ("url", "q")),
    (re.compile(r"^(?:l|lm|m|www)\.facebook\.com$").match, "/l.php", ("u",)),
    ("l.instagram.com".__eq__, "/", ("u",)),
    (re.compile(r"^(?:www\.|m\.)?youtube\.com$").match, "/redirect", ("q",)),
    (re.compile(r"^(?:www\.)?linkedin\.com$").match, "/redir/redirect", ("url",)),
    ("slack-redir.net".__eq__, "/link", ("url",)),
    (re.compile(r"^(?:www\.)?bing\.com$").match, "/news/apiclick.aspx", ("url",)),
    ("out.reddit.com".__eq__, "*", ("url",)),
    ("t.umblr.com".__eq__, "/redirect", ("z",)),
)


def unwrap_redirect(url: str) -> str:
    """The target of a known redirect link (Google Alerts' ``google.com/url?url=…``), else ``url``.

    Applied before the id, canonical URL and domain are derived, so an alert
    counts for the article's site, not for google.com. Nested redirects are
    followed a few levels deep; a target that is not an absolute http(s) URL
    leaves the link as it is.
    """
    for _ in range(3):
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        target = None
        for matches, path, names in _REDIRECTORS:
            if matches(host) and (path == "*" or parts.path == path):
                params = parse_qs(parts.query)
                target = next((params[n][0] for n in names if params.get(n)), None)
                break
        if not target:
            return url
        target_parts = urlsplit(target.strip())
        if target_parts.scheme.lower() not in ("http", "https") or not target_parts.netloc:
            return url
        url = target.strip()
    return url


def canonicalize_url(url: str, *, keep_fragment: bool = False) -> str:
    """Normalise a URL: lower-case host, no default port, tracking parameters or fragment.

    ``keep_fragment``: sources giving one item per anchor of a page (reviews) pass an explicit
    ``canonical_url`` with a fragment, which is kept.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not key.lower().startswith("utm_") and key.lower() not in _TRACKING_PARAMS
        ]
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, parts.fragment if keep_fragment else ""))


def domain_of(url: str) -> str:
    """The host of a URL without a leading ``www.``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def mention_id(source: str, canonical_url: str) -> str:
    """Stable id: a re-crawl of the same item updates the stored mention instead of adding one."""
    return hashlib.sha1(f"{source}\n{canonical_url}".encode()).hexdigest()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Author(_Model):
    """Who wrote the mention, as far as the source says."""

    name: CleanText | None = None
    handle: CleanText | None = None
    url: AbsoluteURL | None = None
    followers: int | None = Field(default=None, ge=0)


class Engagement(_Model):
    """Interactions the source reports; ``None`` where the source gives no figure."""

    likes: int | None = Field(default=None, ge=0)
    comments: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    views: int | None = Field(default=None, ge=0)
    score: int | None = None
    total: int = Field(default=0, ge=0, description="likes + comments + shares: the interactions")

    @model_validator(mode="after")
    def _sum_total(self) -> Engagement:
        total = sum(v for v in (self.likes, self.comments, self.shares) if v)
        if self.total != total:
            object.__setattr__(self, "total", total)
        return self


class Rating(_Model):
    """A review rating: the raw value on its scale and the value normalised to 0..1."""

    value: float = Field(ge=0.0, le=1.0)
    raw: float
    scale_min: float = 0.0
    scale_max: float

    @classmethod
    def from_raw(cls, raw: float, scale_max: float, scale_min: float = 0.0) -> Rating:
        if scale_max <= scale_min:
            raise ValueError(f"rating scale {scale_min}..{scale_max} is empty")
        clipped = min(max(raw, scale_min), scale_max)
        value = (clipped - scale_min) / (scale_max - scale_min)
        return cls(value=value, raw=raw, scale_min=scale_min, scale_max=scale_max)


class Sentiment(_Model):
    """Sentiment as a score in -1..1 and a three-way label."""

    score: float = Field(ge=-1.0, le=1.0)
    label: SentimentLabel


class Span(_Model):
    """Character offsets of a match in ``Mention.text`` (end exclusive)."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class BrandMatch(_Model):
    """One brand a mention belongs to, why, where, and how the text feels about it."""

    brand: str
    keyword: str
    positions: list[Span] = Field(default_factory=list)
    sentiment: Sentiment | None = None
    owned: bool = False


class Entity(_Model):
    """A named entity found in the text."""

    text: str
    label: str


class Dedupe(_Model):
    """Fingerprints for duplicate detection (see :mod:`listener.crawl.dedupe`)."""

    exact: str
    signature: str
    bands: list[str] = Field(default_factory=list)


class Mention(_Model):
    """One public post, comment, article or review that may mention a brand."""

    id: str
    source: str = Field(description="name of the source plugin that found it")
    source_label: str | None = Field(
        default=None,
        description="the [[sources]] entry that found it: its name, else its plugin's name",
    )
    source_kind: SourceKind
    url: AbsoluteURL
    canonical_url: AbsoluteURL
    domain: str
    title: CleanText | None = None
    text: CleanText
    language: str | None = None
    country: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country, where the source reports one",
    )
    published_at: AwareDatetime
    crawled_at: AwareDatetime
    author: Author = Field(default_factory=Author)
    engagement: Engagement = Field(default_factory=Engagement)
    audience: int | None = Field(
        default=None,
        ge=0,
        description="estimated audience of the place it was published (the project's "
        "[audience] figure for its domain), set only where the author's followers are unknown",
    )
    rating: Rating | None = None
    thread_id: str | None = None
    parent_id: str | None = None
    brands: list[BrandMatch] = Field(default_factory=list)
    brand_names: list[str] = Field(
        default_factory=list, description="the matched brands' names, flat, for filters and counts"
    )
    entities: list[Entity] = Field(
        default_factory=list,
        description="names: organisations, products, people, places, works, events",
    )
    values: list[Entity] = Field(
        default_factory=list,
        description="dates, times, numbers, money, percentages and quantities (typed like"
        " entities, kept out of entity analytics)",
    )
    phrases: list[str] = Field(
        default_factory=list, description="normalised key phrases, for trending terms"
    )
    sentiment: Sentiment | None = None
    unsupported: list[str] = Field(
        default_factory=list,
        description="enrichment steps with no model for this mention's language"
        ' ("sentiment", "entities"): their fields are empty because they were not run',
    )
    cluster_id: str | None = Field(
        default=None, description="id of the first mention with the same or nearly the same text"
    )
    duplicate: bool = Field(
        default=False, description="True when an earlier mention of the cluster exists"
    )
    dedupe: Dedupe | None = None

    @classmethod
    def create(
        cls,
        *,
        source: str,
        source_kind: SourceKind | str,
        url: str,
        text: str,
        published_at: datetime,
        canonical_url: str | None = None,
        crawled_at: datetime | None = None,
        keep_fragment: bool = False,
        **fields: Any,
    ) -> Mention:
        """Build a Mention, deriving id, canonical URL and domain from the URL.

        Known redirect links (Google Alerts, link shims) are unwrapped first:
        see :func:`unwrap_redirect`.

        ``keep_fragment``: the canonical URL keeps its ``#fragment`` (for sources
        giving one item per anchor of a page, such as reviews).
        """
        url = unwrap_redirect(url)
        canonical = canonicalize_url(
            unwrap_redirect(canonical_url) if canonical_url else url, keep_fragment=keep_fragment
        )
        return cls(
            id=mention_id(source, canonical),
            source=source,
            source_kind=SourceKind(source_kind),
            url=url,
            canonical_url=canonical,
            domain=domain_of(canonical),
            text=text,
            published_at=published_at,
            crawled_at=crawled_at or datetime.now(UTC),
            **fields,
        )

    def to_document(self) -> dict[str, Any]:
        """The JSON document stored in the index (``_id`` is :attr:`id`)."""
        return self.model_dump(mode="json")
