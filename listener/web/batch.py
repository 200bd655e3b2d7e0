"""Different mention searches in flight at the same time share one engine request.

The embedded engine runs one search at a time, and each search reads every
stored mention: about 0.2 s of engine CPU per search on 3,500 mentions,
whatever the query (measured with ``bench/api_concurrency.py --engine``). Ten
clients searching ten different words therefore got no more searches per
second than one client. One engine request holding the ten searches as
``filters`` buckets, each with its own ``top_hits`` page, reads the mentions
once: 10 searches cost about 0.65 s of engine CPU instead of 2.2 s. The pages'
mentions are then read by id in one ``_mget`` (a few milliseconds).

:class:`SearchBatcher` does that without delaying anyone: a search that finds
the engine idle runs at once, alone, as before. Searches arriving while it runs
wait, and when it ends all of them go to the engine in one request (at most
:data:`MAX_BATCH`). Nothing is cached: every search is computed by the engine
after it arrived. If the combined request fails, each search of the batch runs
on its own, so each gets its own answer or error. A search that found nothing
in the combined request also runs again on its own: the engine answers a query
it cannot run with no hits inside an aggregation, but with an error when searched.

Only first pages sorted by date are combined (``top_hits`` has no
``search_after`` and no relevance scores in a ``filters`` bucket); the API
combines only on the embedded engine, since a real Elasticsearch cluster runs
searches in parallel.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

MAX_BATCH = 16
SORTABLE = ("newest", "oldest")  # sorts whose cursor values can be read from the mention


@dataclass(eq=False)
class Page:
    """One search: what to ask, and (once run) its hits and total."""

    query: dict[str, Any]
    sort: list[dict[str, Any]]
    size: int  # hits wanted (the caller asks one more than it shows, to know if more follow)
    track_total: int
    hits: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    relation: str = "eq"
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False


def sort_values(source: dict[str, Any], sort: list[dict[str, Any]]) -> list[Any]:
    """The ``sort`` values the engine gives a hit sorted by ``published_at`` then ``id``.

    Dates sort as epoch milliseconds, as Elasticsearch reports them.
    """
    values: list[Any] = []
    for clause in sort:
        (name,) = clause
        value = source.get(name)
        if name == "published_at":
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            value = (moment - epoch) // (datetime(1970, 1, 1, 0, 0, 0, 1000, UTC) - epoch)
        values.append(value)
    return values


class SearchBatcher:
    """Runs searches on one index; those that wait for the engine go in one request."""

    def __init__(
        self,
        client: Elasticsearch,
        index: str,
        *,
        source_excludes: list[str] | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.client = client
        self.index = index
        self.source_excludes = source_excludes or []
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[Page] = []
        self._busy = False
        self.combined = 0  # searches answered by a combined request (for tests and benches)

    def run(self, page: Page) -> Page:
        """Run ``page`` (alone, or with the searches waiting beside it); returns it filled."""
        with self._lock:
            if self._busy:
                self._queue.append(page)
            else:
                self._busy = True
                page.lead = True
        if not page.lead:
            page.done.wait()
            if not page.lead:  # answered by another search's request
                return self._outcome(page)
        with self._lock:
            batch = [page, *self._queue[: self.max_batch - 1]]
            del self._queue[: self.max_batch - 1]
        try:
            self._execute(batch)
        finally:
            for other in batch[1:]:  # never leave a search waiting (an interrupted request)
                if not other.done.is_set():
                    other.error = other.error or RuntimeError("the combined search was interrupted")
                    other.done.set()
            self._hand_over()
        return self._outcome(page)

    def _hand_over(self) -> None:
        """The engine is free: the first waiting search sends the next request."""
        with self._lock:
            if self._queue:
                following = self._queue.pop(0)
                following.lead = True
                following.done.set()
            else:
                self._busy = False

    def waiting(self) -> int:
        """How many searches wait for the engine right now."""
        with self._lock:
            return len(self._queue)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Act as if a search were running: searches started meanwhile wait, then go together.

        For tests and benches that need a batch of a known size.
        """
        with self._lock:
            if self._busy:
                raise RuntimeError("a search is running; hold the batcher while it is idle")
            self._busy = True
        try:
            yield
        finally:
            self._hand_over()

    @staticmethod
    def _outcome(page: Page) -> Page:
        if page.error is not None:
            raise page.error
        return page

    def _execute(self, batch: list[Page]) -> None:
        alone = batch
        if len(batch) > 1:
            try:
                alone = self._combined(batch)
            except Exception:  # e.g. the engine is unreachable
                alone = batch  # each search runs on its own and gets its own answer or error
            self.combined += len(batch) - len(alone)
        again = {id(page) for page in alone}
        for page in batch[1:]:
            if id(page) not in again:
                page.done.set()
        for page in alone:
            try:
                self._alone(page)
            except Exception as error:  # handed to the search's own request
                page.error = error
            finally:
                if page is not batch[0]:
                    page.done.set()

    def _alone(self, page: Page) -> None:
        response = self.client.search(
            index=self.index,
            query=page.query,
            sort=page.sort,
            size=page.size,
            track_total_hits=page.track_total,
            source_excludes=self.source_excludes,
            ignore_unavailable=True,
            allow_no_indices=True,
        ).body
        total = response.get("hits", {}).get("total", 0)
        if isinstance(total, dict):
            page.total, page.relation = int(total.get("value", 0)), str(total.get("relation"))
        else:
            page.total = int(total or 0)
        page.hits = list(response["hits"]["hits"])

    def _combined(self, batch: list[Page]) -> list[Page]:
        """Fill the pages from one request; returns those that must run on their own."""
        # top_hits drops nested fields (a mention's brands) from _source on the embedded
        # engine: the buckets give ids only, and one _mget (no search: about 10 ms for 260
        # mentions) fetches the documents as a search would return them.
        buckets: dict[str, Any] = {
            str(i): {
                "filter": page.query,
                "aggs": {
                    "page": {"top_hits": {"size": page.size, "sort": page.sort, "_source": False}}
                },
            }
            for i, page in enumerate(batch)
        }
        response = self.client.search(
            index=self.index,
            size=0,
            track_total_hits=False,
            aggs=buckets,
            ignore_unavailable=True,
            allow_no_indices=True,
        ).body
        found = response.get("aggregations") or {}
        pages: list[list[dict[str, Any]]] = []
        wanted: dict[tuple[str, str], dict[str, Any] | None] = {}
        for i, page in enumerate(batch):
            bucket = found.get(str(i)) or {}
            count = int(bucket.get("doc_count", 0))
            page.total = min(count, page.track_total)
            page.relation = "gte" if count > page.track_total else "eq"
            hits = list(((bucket.get("page") or {}).get("hits") or {}).get("hits") or [])
            pages.append(hits)
            wanted.update({(hit["_index"], hit["_id"]): None for hit in hits})
        if wanted:
            documents = self.client.mget(
                docs=[{"_index": index, "_id": id_} for index, id_ in wanted],
                source_excludes=self.source_excludes,
            ).body["docs"]
            for document in documents:
                if document.get("found"):
                    wanted[(document["_index"], document["_id"])] = document.get("_source") or {}
        alone: list[Page] = []
        for page, hits in zip(batch, pages, strict=True):
            if not page.total:
                # The engine answers a query it cannot run with no hits inside an
                # aggregation (an error when searched): an empty page is asked again alone.
                alone.append(page)
                continue
            page.hits = []
            for hit in hits:
                source = wanted.get((hit["_index"], hit["_id"]))
                if source is None:  # deleted between the two requests
                    continue
                page.hits.append({**hit, "_source": source, "sort": sort_values(source, page.sort)})
        return alone
