"""The REST API's request and response models (they make the OpenAPI description).

Every string in a response that came from the internet (titles, text, author
names, URLs) is plain data: the dashboard renders it as text. URLs are only
returned when they are absolute ``http``/``https`` URLs (``None`` otherwise),
so a client cannot be tricked into following a ``javascript:`` link.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CrawlState = Literal["running", "succeeded", "failed", "cancelled"]


class _Out(BaseModel):
    # Rows are built from the analytics' plain dicts: a figure they add later is left out
    # here (until this model names it) instead of failing the request.
    model_config = ConfigDict(extra="ignore")


class Problem(_Out):
    """An error: what was wrong and, for bad input, which parameter."""

    detail: str
    param: str | None = None


# -- project -----------------------------------------------------------------------


class BrandOut(_Out):
    """A project brand as configured."""

    name: str
    keywords: list[str]
    query: str | None = None
    owned_domains: list[str]


class SourceOut(_Out):
    """A configured source."""

    label: str
    plugin: str


class FacetValue(_Out):
    """One value of a field in the stored mentions and how many mentions have it."""

    value: str
    count: int


class DataRange(_Out):
    """How many mentions are stored and when the first and the last were published."""

    mentions: int
    first: str | None = None
    last: str | None = None


class ProjectOut(_Out):
    """The project behind the server: brands, sources, stored data, filter values."""

    version: str
    project_file: str | None
    engine: Literal["embedded", "elasticsearch"]
    auth: bool = Field(description="whether requests need a bearer token")
    brands: list[BrandOut]
    sources: list[SourceOut]
    data: DataRange
    facets: dict[str, list[FacetValue]] = Field(
        description="values of source, kind and language in the stored mentions"
    )


# -- mentions ----------------------------------------------------------------------


class Segment(_Out):
    """A piece of text; ``match`` is True where the search matched (to be highlighted)."""

    text: str
    match: bool = False


class AuthorOut(_Out):
    """Who wrote a mention."""

    name: str | None = None
    handle: str | None = None
    url: str | None = Field(default=None, description="only absolute http(s) URLs")
    followers: int | None = None


class EngagementOut(_Out):
    """Interactions as the source reports them; ``total`` is likes + comments + shares."""

    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    views: int | None = None
    total: int = 0


class SentimentOut(_Out):
    """A sentiment label and its score in -1..1."""

    label: str
    score: float


class MentionBrand(_Out):
    """A brand the mention belongs to, with the sentiment for that brand."""

    brand: str
    sentiment: str | None = None
    owned: bool = False


class MentionOut(_Out):
    """One mention as the dashboard shows it, with highlight segments for title and text."""

    id: str
    url: str | None = Field(description="the mention's address; only absolute http(s) URLs")
    title: str | None = None
    title_segments: list[Segment] = Field(default_factory=list)
    text_segments: list[Segment] = Field(
        description="the text (an excerpt around the first match unless full=true), split "
        "into matched and unmatched pieces"
    )
    text_truncated: bool = False
    source: str
    source_kind: str
    domain: str
    language: str | None = None
    country: str | None = None
    published_at: str
    author: AuthorOut
    engagement: EngagementOut
    brands: list[MentionBrand]
    sentiment: SentimentOut | None = None
    rating: float | None = Field(default=None, description="review rating normalised to 0..1")
    duplicate: bool = False


class SearchOut(_Out):
    """One page of mentions and the cursor for the next page."""

    total: int = Field(description="mentions matching (a lower bound when total_relation='gte')")
    total_relation: Literal["eq", "gte"]
    exact: bool = Field(
        description="False when a brand rule can only be pre-filtered by the engine: then "
        "pages are confirmed by the rule matcher and total is an upper bound"
    )
    sort: str
    size: int
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null at end")
    took_ms: int
    mentions: list[MentionOut]


# -- analytics ---------------------------------------------------------------------


class SovRow(_Out):
    """A brand's share of voice in one period (``period`` null: the whole range)."""

    period: str | None = None
    brand: str
    mentions: int
    engagement: int
    reach: int
    reach_known: int
    measure: str
    value: int
    total: int
    share: float


class SovOut(_Out):
    """Share of voice per brand, overall or per period."""

    interval: str | None
    by: str
    tz: str
    formula: str
    rows: list[SovRow]


class SentimentRow(_Out):
    """A brand's sentiment counts and net sentiment in one period."""

    period: str | None = None
    brand: str
    mentions: int
    positive: int
    neutral: int
    negative: int
    unknown: int
    net_sentiment: float
    weighted: float
    weighted_share: float


class SentimentResult(_Out):
    """Sentiment per brand, overall or per period, with the formulas used."""

    interval: str | None
    tz: str
    formulas: list[str]
    rows: list[SentimentRow]


class EarnedRow(_Out):
    """A brand's owned and earned mentions and earned media value (only with rates)."""

    period: str | None = None
    brand: str
    mentions: int
    owned: int
    earned: int
    earned_share: float
    earned_engagement: int
    earned_reach: int
    earned_reach_known: int
    emv: float | None = None
    currency: str | None = None
    formula: str | None = None


class MentionRow(_Out):
    """A mention in a ranked list (top earned mentions, spike samples)."""

    rank: int | None = None
    brand: str | None = None
    id: str | None = None
    published_at: str | None = None
    source: str | None = None
    source_kind: str | None = None
    domain: str | None = None
    author: str | None = None
    followers: int | None = None
    engagement: int = 0
    sentiment: str | None = None
    title: str = ""
    url: str | None = Field(default=None, description="only absolute http(s) URLs")


class EarnedOut(_Out):
    """Earned media per brand (and period), the notes explaining it, and top earned mentions."""

    interval: str | None
    tz: str
    notes: list[str]
    rows: list[EarnedRow]
    top: list[MentionRow]


class AuthorRow(_Out):
    """An author ranked by mentions, engagement or reach."""

    rank: int
    author: str
    handle: str | None = None
    sources: list[str]
    mentions: int
    engagement: int
    reach: int | None = None
    brands: dict[str, int]
    url: str | None = Field(default=None, description="only absolute http(s) URLs")


class TopAuthorsOut(_Out):
    """Top authors; ``truncated`` when the ranking saw only the most frequent authors."""

    by: str
    note: str
    truncated: bool
    total_mentions: int
    rows: list[AuthorRow]


class DomainRow(_Out):
    """A domain ranked by mentions, engagement or reach."""

    rank: int
    domain: str
    mentions: int
    share: float
    engagement: int
    reach: int
    authors: int
    brands: dict[str, int]


class TopDomainsOut(_Out):
    """Top domains; ``share`` is of all mentions in scope."""

    by: str
    truncated: bool
    total_mentions: int
    rows: list[DomainRow]


class TrendingRow(_Out):
    """A term that rose for a brand against the window before."""

    rank: int
    brand: str
    term: str
    count: int
    previous: int
    expected: float
    ratio: float
    score: float


class BrandVolume(_Out):
    """A brand's mentions in the current and in the previous window."""

    now: int
    before: int


class TrendingOut(_Out):
    """Rising terms per brand, the windows compared and the field the terms came from."""

    field: str
    current: tuple[str, str]
    previous: tuple[str, str]
    formula: str
    mentions: dict[str, BrandVolume]
    terms: list[TrendingRow]


class SpikePoint(_Out):
    """A brand's count in one period and its trailing baseline (null: not judged)."""

    period: str
    brand: str
    count: int
    mean: float | None = None
    std: float | None = None
    threshold: float | None = None
    spike: bool


class Count(_Out):
    """A name and how many mentions it has."""

    name: str
    count: int


class SpikeOut(_Out):
    """A spike with what explains it: rising terms, sources, domains and sample mentions."""

    period: str
    brand: str
    metric: str
    start: str
    end: str
    count: int
    mean: float
    std: float
    threshold: float
    z: float | None = None
    explanation: str
    terms: list[Count]
    sources: list[Count]
    domains: list[Count]
    samples: list[MentionRow]


class SpikeSettingsOut(_Out):
    """The spike rule's parameters."""

    k: float
    window: int
    min_count: int


class SpikesOut(_Out):
    """Per-brand series with baselines and the spikes found in them."""

    metric: str
    interval: str
    tz: str
    formula: str
    settings: SpikeSettingsOut
    series: list[SpikePoint]
    spikes: list[SpikeOut]


# -- sources and crawls ------------------------------------------------------------


class SourceHealthOut(_Out):
    """How a source did over the last runs."""

    source: str
    status: str = Field(description="healthy, degraded, broken, or never run")
    configured: bool
    runs: int
    history: list[str]
    last_run_mentions: int
    last_run_errors: int
    last_success: str | None = None
    last_error: str | None = None


class LastRun(_Out):
    """Totals of the newest recorded run."""

    finished_at: str | None = None
    elapsed_seconds: float | None = None
    found: int = 0
    indexed: int = 0
    errors: int = 0


class HealthOut(_Out):
    """Source health over the last runs recorded under the project's home."""

    runs: int
    last_run: LastRun | None
    sources: list[SourceHealthOut]


class ScheduleRow(_Out):
    """Where one source entry stands in ``listener run``'s schedule."""

    source: str
    every_seconds: float = Field(description="crawl interval")
    next_run: str | None = Field(default=None, description="when it is crawled next")
    lag_seconds: float = Field(default=0.0, description="how far past due it is (0: on time)")
    running: str | None = Field(default=None, description="the process or worker crawling it")
    last_started: str | None = None
    last_finished: str | None = None
    last_result: str | None = Field(default=None, description="the last crawl's outcome")


class ScheduleOut(_Out):
    """The schedule of ``listener run`` (empty until it has run)."""

    scheduled: bool = Field(description="whether listener run has scheduled this project")
    clustered: bool = Field(description="whether the state lives in Redis (listener worker)")
    sources: list[ScheduleRow]


class CrawlRequest(BaseModel):
    """What to crawl: every configured source, optionally backfilling from ``since``."""

    model_config = ConfigDict(extra="forbid")

    since: str | None = Field(
        default=None,
        max_length=64,
        description="backfill: ask sources for items since this time (ISO or relative, 7d)",
        examples=["7d"],
    )


class CrawlProgress(_Out):
    """The crawl's counters as of its latest progress line."""

    pages: int = 0
    found: int = 0
    indexed: int = 0
    dropped: int = 0
    errors: int = 0
    #: From the end-of-crawl summary: what went to the spool, and (a stopped crawl) what
    #: was taken but not kept, which the next crawl fetches again.
    spooled: int = 0
    left_for_next_run: int = 0


class CrawlOut(_Out):
    """A crawl started from the API: its state, progress and output."""

    id: str
    state: CrawlState
    since: str | None = None
    started_at: str
    finished_at: str | None = None
    elapsed_seconds: float
    exit_code: int | None = None
    progress: CrawlProgress
    summary: list[str] = Field(description="the crawl's end-of-run summary lines")
    error: str | None = None
    log_tail: list[str] = Field(description="the last lines the crawl printed")


class CrawlList(_Out):
    """Crawls started since the server started, newest first."""

    crawls: list[CrawlOut]
