"""The REST API's routes: search, analytics, source health and crawls.

Every route is a thin wrapper: it validates its parameters, calls the function
the CLI calls (:mod:`listener.analytics`, :mod:`listener.crawl.health`,
:mod:`listener.web.search`) with the server's one Elasticsearch client, and
returns a typed model. Routes are plain ``def`` functions, so FastAPI runs
them in its thread pool and a slow query does not block the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from listener import __version__
from listener.analytics.measures import (
    EARNED_NOTE,
    EMV_FORMULA,
    NET_SENTIMENT_FORMULA,
    SOV_FORMULA,
    earned_media,
    sentiment,
    share_of_voice,
    top_earned_mentions,
    weighted_formula,
)
from listener.analytics.scope import Filters, check_source_names
from listener.analytics.settings import DEFAULT_SINCE
from listener.analytics.spikes import detect_spikes
from listener.analytics.top import AUTHORS_NOTE, top_authors, top_domains
from listener.analytics.trending import TRENDING_FORMULA, trending_terms
from listener.config import ProjectConfig
from listener.crawl.health import load_runs, schedule_status, source_health
from listener.errors import ConfigError, ListenerError
from listener.store.indexer import mentions_alias
from listener.store.queries import parse_time, parse_zone
from listener.web import search as mention_search
from listener.web.auth import bearer_scheme
from listener.web.batch import SearchBatcher
from listener.web.crawls import CrawlJob, CrawlManager
from listener.web.models import (
    AuthorRow,
    BrandOut,
    BrandVolume,
    Count,
    CrawlList,
    CrawlOut,
    CrawlRequest,
    DataRange,
    DomainRow,
    EarnedOut,
    EarnedRow,
    FacetValue,
    HealthOut,
    LastRun,
    MentionOut,
    MentionRow,
    ProjectOut,
    ScheduleOut,
    ScheduleRow,
    SearchOut,
    SentimentResult,
    SentimentRow,
    SourceHealthOut,
    SourceOut,
    SovOut,
    SovRow,
    SpikeOut,
    SpikePoint,
    SpikeSettingsOut,
    SpikesOut,
    TopAuthorsOut,
    TopDomainsOut,
    TrendingOut,
    TrendingRow,
)
from listener.web.search import SearchInputError, safe_url

MAX_LIST_VALUES = 20
MAX_VALUE_CHARS = 200


class BadInput(SearchInputError):
    """A parameter the API rejects (422), naming the parameter."""


@dataclass
class WebState:
    """What the routes share: the project, the one client, the crawls and the auth guard."""

    project: ProjectConfig
    client: Elasticsearch
    crawls: CrawlManager
    auth: bool
    batcher: SearchBatcher | None = None  # first pages of concurrent searches share a request


def get_state(request: Request) -> WebState:
    """The server's shared state."""
    state: WebState = request.app.state.listener
    return state


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """Reject the request (401) unless it carries the server's token, when there is one."""
    request.app.state.token_guard(request, credentials)


State = Annotated[WebState, Depends(get_state)]

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
open_router = APIRouter(prefix="/api")

# -- shared parameters ----------------------------------------------------------------

_TIME_HELP = "ISO date (2024-05-01), ISO datetime, or relative: 30m, 12h, 7d, 2w before now"


def _values(name: str, values: Iterable[str] | None) -> list[str]:
    cleaned = [v.strip() for v in values or () if v and v.strip()]
    if len(cleaned) > MAX_LIST_VALUES:
        raise BadInput(name, f"at most {MAX_LIST_VALUES} values of {name} are allowed")
    for value in cleaned:
        if len(value) > MAX_VALUE_CHARS:
            raise BadInput(name, f"a value of {name} is longer than {MAX_VALUE_CHARS} characters")
    return cleaned


def _zone(tz: str) -> str:
    try:
        parse_zone(tz)
    except ValueError as error:
        raise BadInput("tz", str(error)) from None
    return tz


def _since(value: str | None, tz: str) -> Any:
    """``since`` of the analytics routes: the last 30 days when absent, ``all``: everything."""
    if value is not None and value.strip().lower() == "all":
        return None
    return _time("since", value or DEFAULT_SINCE, tz)


def _time(name: str, value: str | None, tz: str) -> Any:
    if not value:
        return None
    try:
        return parse_time(value, tz=tz)
    except ValueError as error:
        raise BadInput(name, str(error)) from None


@dataclass
class ScopeParams:
    """The time range, zone, brands and filters every analytics route takes."""

    since: Any
    until: Any
    tz: str
    brands: list[str] | None
    filters: Filters

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the analytics functions."""
        return {
            "since": self.since,
            "until": self.until,
            "tz": self.tz,
            "brands": self.brands,
            "filters": self.filters,
        }


def scope_params(
    state: State,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description=f"start (default {DEFAULT_SINCE}; all: everything stored); " + _TIME_HELP,
        ),
    ] = None,
    until: Annotated[
        str | None, Query(max_length=64, description="end, exclusive; " + _TIME_HELP)
    ] = None,
    tz: Annotated[
        str, Query(max_length=64, description="IANA zone, UTC or +02:00 for periods")
    ] = "UTC",
    brand: Annotated[list[str] | None, Query(description="only these brands (repeat)")] = None,
    source: Annotated[
        list[str] | None, Query(description="only these source plugins (repeat)")
    ] = None,
    kind: Annotated[list[str] | None, Query(description="only these source kinds (repeat)")] = None,
    language: Annotated[list[str] | None, Query(description="only these languages")] = None,
    country: Annotated[list[str] | None, Query(description="only these countries")] = None,
    unique: Annotated[bool, Query(description="leave out duplicate copies of a text")] = False,
) -> ScopeParams:
    """Validate the shared analytics parameters."""
    zone = _zone(tz)
    start = _since(since, zone)
    end = _time("until", until, zone)
    if start is not None and end is not None and start >= end:
        raise BadInput("until", "until must be after since")
    try:
        names = [state.project.brand(name).name for name in _values("brand", brand)]
    except ConfigError as error:
        raise BadInput("brand", str(error)) from None
    try:
        check_source_names(state.project, _values("source", source), state.client)
    except ValueError as error:
        raise BadInput("source", str(error)) from None
    try:
        filters = Filters.of(
            sources=_values("source", source),
            source_kinds=_values("kind", kind),
            languages=_values("language", language),
            countries=_values("country", country),
            unique=unique,
        )
    except ValueError as error:
        raise BadInput("kind", str(error)) from None
    return ScopeParams(start, end, zone, names or None, filters)


Scope = Annotated[ScopeParams, Depends(scope_params)]
Interval = Annotated[
    str | None,
    Query(pattern="^(hour|day|week|month)$", description="break the figures down per period"),
]


def _reason(error: ApiError) -> str:
    """The engine's own reason for refusing a request (its root cause), else its error type."""
    body: dict[str, Any] = error.body if isinstance(error.body, dict) else {}
    found = body.get("error")
    details: dict[str, Any] = found if isinstance(found, dict) else {}
    causes = details.get("root_cause") or [details]
    first: dict[str, Any] = causes[0] if causes and isinstance(causes[0], dict) else {}
    return str(first.get("reason") or details.get("reason") or error.message)


def _mention_row(row: dict[str, Any]) -> MentionRow:
    fields: dict[str, Any] = {key: row.get(key) for key in MentionRow.model_fields if key in row}
    fields["url"] = safe_url(row.get("url"))
    fields["title"] = str(row.get("title") or "")
    fields["engagement"] = int(row.get("engagement") or 0)
    return MentionRow(**fields)


# -- routes ---------------------------------------------------------------------------


@open_router.get("/healthz", tags=["server"], summary="Liveness (no token needed)")
def healthz(state: State) -> dict[str, Any]:
    """Whether the server is up and its Elasticsearch answers."""
    return {"status": "ok", "engine": bool(state.client.ping())}


@router.get("/project", tags=["server"], summary="The project: brands, sources, stored data")
def project_info(state: State) -> ProjectOut:
    """Brands and sources of the project file, how much is stored, and the filter values."""
    project = state.project
    # One engine request, not three: the embedded engine runs one search at a time and each
    # one reads every stored mention, so the date range comes from top_hits (it has no
    # min/max on dates) inside the same aggregation request.
    bound = {"size": 1, "_source": {"includes": ["published_at"]}}
    response = state.client.search(
        index=mentions_alias(project.elasticsearch.index_prefix),
        size=0,
        track_total_hits=True,
        aggs={
            "source": {"terms": {"field": "source", "size": 100}},
            "kind": {"terms": {"field": "source_kind", "size": 20}},
            "language": {"terms": {"field": "language", "size": 100}},
            "first": {"top_hits": {**bound, "sort": [{"published_at": {"order": "asc"}}]}},
            "last": {"top_hits": {**bound, "sort": [{"published_at": {"order": "desc"}}]}},
        },
        ignore_unavailable=True,
        allow_no_indices=True,
    ).body
    total = response.get("hits", {}).get("total", {})
    count = int(total.get("value", 0) if isinstance(total, dict) else total or 0)
    bounds: list[str | None] = []
    for name in ("first", "last"):
        found = ((response.get("aggregations") or {}).get(name) or {}).get("hits", {}).get("hits")
        bounds.append(str(found[0]["_source"]["published_at"]) if found else None)
    aggregations = response.get("aggregations") or {}
    facets = {
        name: [
            FacetValue(value=str(bucket["key"]), count=int(bucket["doc_count"]))
            for bucket in (aggregations.get(name) or {}).get("buckets") or []
        ]
        for name in ("source", "kind", "language")
    }
    return ProjectOut(
        version=__version__,
        project_file=str(project.path) if project.path else None,
        engine="elasticsearch" if project.elasticsearch.url else "embedded",
        auth=state.auth,
        brands=[
            BrandOut(name=b.name, keywords=b.keywords, query=b.query, owned_domains=b.owned_domains)
            for b in project.brands
        ],
        sources=[SourceOut(label=s.label, plugin=s.plugin) for s in project.sources],
        data=DataRange(mentions=count, first=bounds[0], last=bounds[1]),
        facets=facets,
    )


def _check_sources(state: WebState, source: list[str] | None) -> None:
    """422 for a source that is no plugin, no [[sources]] entry and on no stored mention."""
    try:
        check_source_names(state.project, _values("source", source), state.client)
    except ValueError as error:
        raise BadInput("source", str(error)) from None


@router.get("/mentions", tags=["mentions"], summary="Search mentions (full text or brand rule)")
def search_mentions(
    state: State,
    q: Annotated[
        str | None,
        Query(
            max_length=mention_search.MAX_QUERY_CHARS,
            description='full text in title and text: all words must match; "a phrase", '
            "-word, a | b, prefix*",
        ),
    ] = None,
    rule: Annotated[
        str | None,
        Query(
            max_length=mention_search.MAX_RULE_CHARS,
            description="a brand rule (docs/rules.md), e.g. acme NEAR/5 (price OR cost)",
        ),
    ] = None,
    brand: Annotated[list[str] | None, Query(description="any of these brands")] = None,
    source: Annotated[list[str] | None, Query(description="any of these source plugins")] = None,
    kind: Annotated[list[str] | None, Query(description="any of these source kinds")] = None,
    language: Annotated[list[str] | None, Query(description="any of these languages")] = None,
    sentiment_label: Annotated[
        list[str] | None,
        Query(
            alias="sentiment",
            description="positive, neutral, negative (per brand when brand is given)",
        ),
    ] = None,
    since: Annotated[str | None, Query(max_length=64, description=_TIME_HELP)] = None,
    until: Annotated[str | None, Query(max_length=64, description="exclusive")] = None,
    tz: Annotated[str, Query(max_length=64, description="zone for dates without one")] = "UTC",
    unique: Annotated[bool, Query(description="leave out duplicate copies")] = False,
    sort: Annotated[
        str, Query(description="newest, oldest, engagement, relevance (with q)")
    ] = "newest",
    size: Annotated[int, Query(ge=1, le=mention_search.MAX_PAGE_SIZE)] = 25,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="next_cursor of the previous page")
    ] = None,
    full: Annotated[bool, Query(description="whole texts instead of excerpts")] = False,
) -> SearchOut:
    """Mentions matching the search and filters, one page at a time (``search_after`` cursor)."""
    _check_sources(state, source)
    request = mention_search.build_request(
        state.project,
        query=q,
        rule=rule,
        brands=_values("brand", brand),
        sources=_values("source", source),
        kinds=_values("kind", kind),
        languages=_values("language", language),
        sentiments=_values("sentiment", sentiment_label),
        since=since,
        until=until,
        tz=_zone(tz),
        unique=unique,
        sort=sort,
        size=size,
        cursor=cursor,
        full=full,
    )
    try:
        return mention_search.search(state.client, state.project, request, state.batcher)
    except BadRequestError as error:
        # The engine parses the search text and the rule's query; a 400 means they are bad.
        if q is None and rule is None:
            raise
        raise BadInput(
            "q" if q else "rule", f"the search engine cannot run this search: {_reason(error)}"
        ) from None


@router.get(
    "/mentions/{mention_id}",
    tags=["mentions"],
    summary="One mention with its full text",
    responses={404: {"description": "no such mention"}},
)
def mention(
    state: State,
    mention_id: Annotated[str, Path(pattern="^[0-9a-f]{40}$")],
    q: Annotated[str | None, Query(max_length=mention_search.MAX_QUERY_CHARS)] = None,
    rule: Annotated[str | None, Query(max_length=mention_search.MAX_RULE_CHARS)] = None,
) -> MentionOut:
    """The mention with this id, its whole text highlighted for ``q``/``rule``."""
    request = mention_search.build_request(state.project, query=q, rule=rule)
    found = mention_search.get_mention(
        state.client, state.project, mention_id, query=request.query, rule=request.rule
    )
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no mention {mention_id}")
    return found


@router.get("/share-of-voice", tags=["analytics"], summary="Share of voice per brand")
def share_of_voice_route(
    state: State,
    scope: Scope,
    interval: Interval = None,
    by: Annotated[str, Query(pattern="^(mentions|engagement|reach)$")] = "mentions",
) -> SovOut:
    """Each brand's share of mentions, engagement or reach, overall or per period."""
    rows = share_of_voice(state.client, state.project, interval=interval, by=by, **scope.kwargs())
    zone = parse_zone(scope.tz)
    return SovOut(
        interval=interval,
        by=by,
        tz=scope.tz,
        formula=SOV_FORMULA.format(by=by),
        rows=[SovRow(**row.record(zone)) for row in rows],
    )


@router.get("/sentiment", tags=["analytics"], summary="Sentiment per brand")
def sentiment_route(state: State, scope: Scope, interval: Interval = None) -> SentimentResult:
    """Positive, neutral and negative mentions per brand, net sentiment, weighted share."""
    rows = sentiment(state.client, state.project, interval=interval, **scope.kwargs())
    zone = parse_zone(scope.tz)
    return SentimentResult(
        interval=interval,
        tz=scope.tz,
        formulas=[
            NET_SENTIMENT_FORMULA,
            weighted_formula(state.project.analytics.sentiment_weights),
        ],
        rows=[SentimentRow(**row.record(zone)) for row in rows],
    )


@router.get("/earned-media", tags=["analytics"], summary="Earned media per brand")
def earned_media_route(
    state: State,
    scope: Scope,
    interval: Interval = None,
    top: Annotated[int, Query(ge=0, le=100, description="top earned mentions per brand")] = 5,
    top_by: Annotated[str, Query(pattern="^(engagement|reach|recent)$")] = "engagement",
) -> EarnedOut:
    """Owned vs earned mentions per brand, earned media value (with the project's rates)."""
    rows = earned_media(state.client, state.project, interval=interval, **scope.kwargs())
    zone = parse_zone(scope.tz)
    notes = [EARNED_NOTE]
    if state.project.earned_media.has_rates:
        notes.append(EMV_FORMULA)
    else:
        notes.append(
            "earned media value: not computed; set rates in the project file's "
            "[earned_media] section"
        )
    best = (
        top_earned_mentions(state.client, state.project, by=top_by, limit=top, **scope.kwargs())
        if top
        else []
    )
    return EarnedOut(
        interval=interval,
        tz=scope.tz,
        notes=notes,
        rows=[EarnedRow(**row.record(zone)) for row in rows],
        top=[_mention_row(row) for row in best],
    )


_By = Annotated[str, Query(pattern="^(mentions|engagement|reach)$")]
_Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/top/authors", tags=["analytics"], summary="Top authors")
def top_authors_route(
    state: State, scope: Scope, by: _By = "mentions", limit: _Limit = 10
) -> TopAuthorsOut:
    """Authors of the brands' mentions ranked by mentions, engagement or reach."""
    result = top_authors(state.client, state.project, by=by, limit=limit, **scope.kwargs())
    rows = [AuthorRow(**{**row, "url": safe_url(row.get("url"))}) for row in result.rows]
    return TopAuthorsOut(
        by=by,
        note=AUTHORS_NOTE,
        truncated=result.truncated,
        total_mentions=result.total_mentions,
        rows=rows,
    )


@router.get("/top/domains", tags=["analytics"], summary="Top domains")
def top_domains_route(
    state: State, scope: Scope, by: _By = "mentions", limit: _Limit = 10
) -> TopDomainsOut:
    """Domains carrying the brands' mentions ranked by mentions, engagement or reach."""
    result = top_domains(state.client, state.project, by=by, limit=limit, **scope.kwargs())
    return TopDomainsOut(
        by=by,
        truncated=result.truncated,
        total_mentions=result.total_mentions,
        rows=[DomainRow(**row) for row in result.rows],
    )


@router.get("/trending", tags=["analytics"], summary="Trending terms")
def trending_route(
    state: State,
    scope: Scope,
    field: Annotated[str, Query(pattern="^(auto|phrases|entities)$")] = "auto",
    limit: _Limit = 10,
    min_count: Annotated[int | None, Query(ge=1)] = None,
) -> TrendingOut:
    """Each brand's terms that rose most in [since, until) against the window before it.

    ``since`` defaults to 30 days ago (as every analytics route), ``until`` to now.
    """
    arguments = scope.kwargs()
    if arguments["since"] is None:
        raise BadInput("since", "trending compares a range with the one before it: give a start")
    result = trending_terms(
        state.client, state.project, field=field, limit=limit, min_count=min_count, **arguments
    )
    return TrendingOut(
        field=result.field,
        current=(result.current[0].isoformat(), result.current[1].isoformat()),
        previous=(result.previous[0].isoformat(), result.previous[1].isoformat()),
        formula=TRENDING_FORMULA,
        mentions={
            name: BrandVolume(now=now, before=before)
            for name, (now, before) in result.mentions.items()
        },
        terms=[TrendingRow(**row) for row in result.records()],
    )


@router.get("/spikes", tags=["analytics"], summary="Spikes with their explanation")
def spikes_route(
    state: State,
    scope: Scope,
    interval: Annotated[str, Query(pattern="^(hour|day|week|month)$")] = "day",
    metric: Annotated[str, Query(pattern="^(mentions|negative)$")] = "mentions",
    k: Annotated[float | None, Query(gt=0, le=100)] = None,
    window: Annotated[int | None, Query(ge=2, le=366)] = None,
    min_count: Annotated[int | None, Query(ge=1)] = None,
    explain: Annotated[bool, Query(description="explain each spike (terms, sources…)")] = True,
) -> SpikesOut:
    """Periods where a brand's (negative) mentions exceed mean + k·sd of the trailing window."""
    analysis = detect_spikes(
        state.client,
        state.project,
        interval=interval,
        metric=metric,
        k=k,
        window=window,
        min_count=min_count,
        explain_spikes=explain,
        **scope.kwargs(),
    )
    zone = parse_zone(scope.tz)
    spikes = []
    for spike in analysis.spikes:
        record = spike.record(zone)
        why = spike.explanation
        spikes.append(
            SpikeOut(
                period=record["period"],
                brand=spike.brand,
                metric=spike.metric,
                start=spike.start.isoformat(),
                end=spike.end.isoformat(),
                count=spike.count,
                mean=record["mean"],
                std=record["std"],
                threshold=record["threshold"],
                z=record["z"],
                explanation=why.summary(),
                terms=[Count(name=t.term, count=t.count) for t in why.terms],
                sources=[Count(name=s, count=n) for s, n in why.sources],
                domains=[Count(name=d, count=n) for d, n in why.domains],
                samples=[_mention_row(sample) for sample in why.samples],
            )
        )
    return SpikesOut(
        metric=analysis.metric,
        interval=analysis.interval,
        tz=analysis.tz,
        formula=analysis.formula,
        settings=SpikeSettingsOut(**analysis.settings.model_dump()),
        series=[SpikePoint(**point.record(zone)) for point in analysis.series],
        spikes=spikes,
    )


@router.get("/sources/health", tags=["sources"], summary="Source health over the last runs")
def sources_health(
    state: State, runs: Annotated[int, Query(ge=1, le=100, description="runs to look at")] = 5
) -> HealthOut:
    """healthy / degraded / broken per source from the recorded run summaries."""
    recorded = load_runs(state.project, runs)  # in Redis when the project is clustered
    report = {entry.source: entry for entry in source_health(recorded)}
    configured = [source.label for source in state.project.sources]
    rows = []
    for name in [*configured, *(n for n in report if n not in configured)]:
        entry = report.get(name)
        if entry is None:
            rows.append(
                SourceHealthOut(
                    source=name,
                    status="never run",
                    configured=True,
                    runs=0,
                    history=[],
                    last_run_mentions=0,
                    last_run_errors=0,
                )
            )
            continue
        rows.append(
            SourceHealthOut(
                source=entry.source,
                status=entry.status,
                configured=name in configured,
                runs=entry.runs,
                history=entry.history,
                last_run_mentions=entry.last_run_mentions,
                last_run_errors=entry.last_run_errors,
                last_success=entry.last_success,
                last_error=entry.last_error,
            )
        )
    last = recorded[-1] if recorded else None
    return HealthOut(
        runs=len(recorded),
        last_run=LastRun(
            finished_at=last.get("finished_at"),
            elapsed_seconds=last.get("elapsed_seconds"),
            found=int(last.get("found") or 0),
            indexed=int(last.get("indexed") or 0),
            errors=int(last.get("errors") or 0),
        )
        if last
        else None,
        sources=rows,
    )


@router.get("/sources/schedule", tags=["sources"], summary="listener run: next run per source")
def sources_schedule(state: State) -> ScheduleOut:
    """Next run, lag, the crawl in progress and the last result of each entry (listener run)."""
    rows = schedule_status(state.project, scheduled=True)
    return ScheduleOut(
        scheduled=bool(rows),
        clustered=bool(state.project.cluster.redis_url),
        sources=[ScheduleRow(**asdict(row)) for row in rows],
    )


@router.post(
    "/crawls",
    tags=["crawls"],
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a crawl in the background",
    responses={
        409: {"description": "a crawl is already running"},
        415: {"description": "the body is not JSON"},
    },
)
def start_crawl(state: State, request: Request, body: CrawlRequest | None = None) -> CrawlOut:
    """Start ``listener crawl`` for the project in a subprocess; poll GET /api/crawls/{id}.

    The body must be JSON (``{}`` or ``{"since": "7d"}``), which also keeps other
    web sites from starting crawls through a form.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send a JSON body (Content-Type: application/json), e.g. {}",
        )
    since = body.since if body else None
    if since:
        _time("since", since, "UTC")
    try:
        job = state.crawls.start(since)
    except ListenerError as error:  # CrawlBusy, or a project without a file
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    return job.view()


@router.get("/crawls", tags=["crawls"], summary="Crawls started by this server")
def list_crawls(state: State) -> CrawlList:
    """Crawls started since the server started, newest first."""
    return CrawlList(crawls=[job.view() for job in state.crawls.jobs()])


def _job(state: WebState, crawl_id: str) -> CrawlJob:
    job = state.crawls.get(crawl_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no crawl {crawl_id}")
    return job


_CrawlId = Annotated[str, Path(pattern="^[0-9a-f]{12}$")]


@router.get("/crawls/{crawl_id}", tags=["crawls"], summary="A crawl's state and progress")
def get_crawl(state: State, crawl_id: _CrawlId) -> CrawlOut:
    """running / succeeded / failed / cancelled, counters, summary and the last output lines."""
    return _job(state, crawl_id).view()


@router.post("/crawls/{crawl_id}/cancel", tags=["crawls"], summary="Stop a running crawl")
def cancel_crawl(state: State, crawl_id: _CrawlId) -> CrawlOut:
    """Ask the crawl to stop; it closes cleanly (what it fetched so far is indexed)."""
    job = _job(state, crawl_id)
    state.crawls.cancel(job)
    return job.view()
