"""``GET /api/export``: every mention matching the search filters, as NDJSON or CSV, streamed.

The same parameters as ``GET /api/mentions`` (without paging): the first page
is read before the response starts, so a bad search is a 422 and not a broken
download; the rest is read page by page (``search_after``) while the client
downloads, so an export of any size holds one page in memory. Rows are what
``listener export`` writes: every Mention field, nested values as JSON in CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from elasticsearch import BadRequestError
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from listener.rules import RuleInput
from listener.store.exporting import EXPORT_COLUMNS, csv_cells
from listener.store.indexer import mentions_alias
from listener.web import search as mention_search
from listener.web.api import (
    _TIME_HELP,
    BadInput,
    State,
    _check_sources,
    _reason,
    _values,
    _zone,
    require_token,
)

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

#: Mentions read per engine request while streaming.
PAGE = 500

_MEDIA = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/export",
    tags=["mentions"],
    summary="Export the mentions a search matches (NDJSON or CSV, streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {_MEDIA["ndjson"]: {}, _MEDIA["csv"]: {}}}},
)
def export_mentions(
    state: State,
    output_format: Annotated[
        Literal["ndjson", "csv"], Query(alias="format", description="ndjson (default) or csv")
    ] = "ndjson",
    q: Annotated[
        str | None,
        Query(max_length=mention_search.MAX_QUERY_CHARS, description="full text, as for search"),
    ] = None,
    rule: Annotated[
        str | None,
        Query(max_length=mention_search.MAX_RULE_CHARS, description="a brand rule"),
    ] = None,
    brand: Annotated[list[str] | None, Query(description="any of these brands")] = None,
    source: Annotated[
        list[str] | None, Query(description="any of these source plugins or entry names")
    ] = None,
    kind: Annotated[list[str] | None, Query(description="any of these source kinds")] = None,
    language: Annotated[list[str] | None, Query(description="any of these languages")] = None,
    sentiment_label: Annotated[
        list[str] | None,
        Query(alias="sentiment", description="positive, neutral, negative"),
    ] = None,
    since: Annotated[str | None, Query(max_length=64, description=_TIME_HELP)] = None,
    until: Annotated[str | None, Query(max_length=64, description="exclusive")] = None,
    tz: Annotated[str, Query(max_length=64, description="zone for dates without one")] = "UTC",
    unique: Annotated[bool, Query(description="leave out duplicate copies")] = False,
    sort: Annotated[
        Literal["newest", "oldest"], Query(description="newest (default) or oldest first")
    ] = "newest",
) -> StreamingResponse:
    """Every matching mention with all its fields, newest first, as a download."""
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
    )
    common: dict[str, Any] = {
        "index": mentions_alias(state.project.elasticsearch.index_prefix),
        "query": mention_search.build_query(request),
        "sort": mention_search.SORTS[sort],
        "size": PAGE,
        "track_total_hits": False,
        "ignore_unavailable": True,
        "allow_no_indices": True,
    }
    try:
        first = state.client.search(**common).body["hits"]["hits"]
    except BadRequestError as error:
        if q is None and rule is None:
            raise
        raise BadInput(
            "q" if q else "rule", f"the search engine cannot run this search: {_reason(error)}"
        ) from None

    def pages() -> Iterator[list[dict[str, Any]]]:
        hits = first
        while hits:
            yield hits
            if len(hits) < PAGE:
                return
            hits = state.client.search(**common, search_after=hits[-1]["sort"]).body["hits"]["hits"]

    # A rule the engine can only pre-filter is confirmed by the matcher, as in search.
    confirm = (
        request.rule if request.rule is not None and not request.rule.exact_in_engine else None
    )

    def documents() -> Iterator[dict[str, Any]]:
        for hits in pages():
            for hit in hits:
                document = hit["_source"]
                if confirm is None or confirm.matches(RuleInput.from_document(document)):
                    yield document

    filename = f"mentions.{output_format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    body = _csv(documents()) if output_format == "csv" else _ndjson(documents())
    return StreamingResponse(body, media_type=_MEDIA[output_format], headers=headers)


def _ndjson(documents: Iterator[dict[str, Any]]) -> Iterator[str]:
    for document in documents:
        yield json.dumps(document, ensure_ascii=False) + "\n"


def _csv(documents: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for document in documents:
        writer.writerow(csv_cells(document))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
