"""Duplicate detection: exact (normalised text) and near-duplicates (MinHash over word shingles).

Each mention's normalised text becomes a set of words and word pairs; a
64-value MinHash signature estimates the Jaccard similarity of two such sets,
and two texts are near-duplicates when it is at least ``THRESHOLD``. To find
candidates without comparing against every stored mention, the signature is
cut into ``BANDS`` bands of ``ROWS`` values (locality-sensitive hashing): two
texts at similarity 0.7 share a band with probability 0.99, at 0.3 with 0.12.
The bands are stored as keywords, so a plain ``terms`` query finds candidates
on any engine; the signature decides.

The first mention of a cluster (already stored, or earlier in the same crawl)
gives the cluster its id; later copies get ``duplicate = True`` so share of
voice can count unique mentions. Measured by ``bench/eval_dedupe.py``.

A :class:`Deduplicator` remembers the last :data:`WINDOW` mentions it
assigned (about 5.5 KB each), so a crawl's memory stays bounded however many
items it finds; older ones have been indexed by then and are found through
``lookup`` like any stored mention. Measured by ``bench/crawl_memory.py``.

A band keeps at most :data:`MENTIONS_PER_BAND` candidates (the earliest),
and :class:`BandRecord` keeps band → candidates in a record beside the
checkpoints (:mod:`listener.store.bands`: SQLite under ``LISTENER_HOME``, or
Redis when clustered), not in the engine: a search for the bands over the
mentions returned more hits with every stored copy (13.2 s a batch at 20,000
similar documents), and a band index in the engine answered more slowly as it
grew (6.9 s), as did confirming the chosen candidates in it by id. A batch
reads its bands from the record, and its mentions become candidates once the
index has accepted them (:meth:`Deduplicator.stored`). Measured by
``bench/dedupe_lookup.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from listener.mention import Dedupe, Mention

if TYPE_CHECKING:
    from listener.store.bands import BandStore, Head
    from listener.store.indexer import Indexer

log = logging.getLogger(__name__)

PERMUTATIONS = 64
BANDS = 16
ROWS = PERMUTATIONS // BANDS
THRESHOLD = 0.6
#: Mentions of a crawl a Deduplicator compares with directly (the most recent ones).
WINDOW = 10_000
#: Mentions a band remembers as candidates (the first ones seen): bounds the lookup's cost.
MENTIONS_PER_BAND = 4
_PRIME = np.uint64(4294967311)  # > 2**32: a universal hash family on 32-bit values
_generator = np.random.default_rng(20261123)
_A = _generator.integers(1, 2**32 - 1, size=PERMUTATIONS, dtype=np.uint64)
_B = _generator.integers(0, 2**32 - 1, size=PERMUTATIONS, dtype=np.uint64)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Boilerplate that syndication adds and that should not make copies look different.
_NOISE = re.compile(r"https?://\S+|(?:^|\s)(?:via|rt)\s+@\w+|@\w+\s*:", re.IGNORECASE)


def normalise(text: str) -> list[str]:
    """Lower-cased, accent-free words, without URLs and 'via @site' syndication tags."""
    cleaned = _NOISE.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", cleaned.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORD.findall(plain)


def exact_key(words: Sequence[str]) -> str:
    """The same for texts equal after normalisation."""
    return hashlib.sha1(" ".join(words).encode()).hexdigest()


def signature(words: Sequence[str]) -> list[int]:
    """MinHash of the set of words and adjacent word pairs (empty text: all zeros)."""
    features = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
    if not features:
        return [0] * PERMUTATIONS
    values = np.fromiter(
        (int.from_bytes(hashlib.blake2b(f.encode(), digest_size=4).digest(), "big")
         for f in features),
        dtype=np.uint64,
        count=len(features),
    )  # fmt: skip
    hashed = (_A[:, None] * values[None, :] + _B[:, None]) % _PRIME
    return [int(v) for v in hashed.min(axis=1)]


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / PERMUTATIONS


def bands(values: Sequence[int]) -> list[str]:
    """The band keys stored with a mention: ``band:hash``."""
    keys = []
    for band in range(BANDS):
        chunk = ",".join(str(v) for v in values[band * ROWS : (band + 1) * ROWS])
        keys.append(f"{band}:{hashlib.blake2b(chunk.encode(), digest_size=6).hexdigest()}")
    return keys


def encode(values: Sequence[int]) -> str:
    """A signature as stored: fixed-width hex."""
    return "".join(f"{v:09x}" for v in values)


def decode(text: str) -> list[int]:
    """The inverse of :func:`encode`."""
    return [int(text[i : i + 9], 16) for i in range(0, len(text), 9)]


_HEX = np.full(256, 255, dtype=np.uint8)
for _digit in "0123456789abcdef":
    _HEX[ord(_digit)] = int(_digit, 16)
_SHIFTS = np.arange(32, -1, -4, dtype=np.uint64)  # the 9 hex digits of a value, first the highest


def decode_many(texts: Sequence[str]) -> tuple[Any, list[bool]]:
    """:func:`decode` for many signatures at once: an array of the well-formed ones (a row
    each), and which of ``texts`` those are."""
    width = PERMUTATIONS * 9
    valid = [len(text) == width and text.isascii() for text in texts]
    raw = np.frombuffer(
        "".join(t for t, ok in zip(texts, valid, strict=True) if ok).encode(), np.uint8
    )
    digits = _HEX[raw].reshape(-1, PERMUTATIONS, 9)
    rows = (digits != 255).all(axis=(1, 2))  # hex digits only
    if not rows.all():
        kept = iter(rows.tolist())
        valid = [ok and next(kept) for ok in valid]
        digits = digits[rows]
    values = (digits.astype(np.uint64) << _SHIFTS).sum(axis=2, dtype=np.uint64)
    return values, valid


def fingerprint(mention: Mention) -> tuple[str, list[int]]:
    """The exact key and MinHash signature of a mention's title and text."""
    words = normalise(f"{mention.title or ''}\n{mention.text}")
    return exact_key(words), signature(words)


def index_lookup(client: Any, alias: str, limit: int = 1000) -> Any:
    """A ``lookup`` for :class:`Deduplicator` that asks the index; failures mean 'none found'."""

    def lookup(keys: list[str]) -> list[dict[str, Any]]:
        try:
            response = client.options(ignore_status=404).search(
                index=alias,
                query={"terms": {"dedupe.bands": keys}},
                size=limit,
                source_includes=["id", "cluster_id", "dedupe"],
                sort=[{"crawled_at": "asc"}, {"id": "asc"}],
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            body = response.body if hasattr(response, "body") else response
            hits = body.get("hits", {}).get("hits", [])
            return [hit["_source"] for hit in hits if isinstance(hit.get("_source"), dict)]
        except Exception:  # an unreachable index, or an answer that is not Elasticsearch's
            return []  # (a proxy's page): the crawl goes on, comparing within itself only

    return lookup


def _head(mention_id: str, cluster_id: str | None, exact: str, signature: str, index: str) -> Head:
    from listener.store.bands import Head

    return Head(mention_id, cluster_id or mention_id, exact, signature, index)


def old_bands_index(prefix: str) -> str:
    """Where listener kept band → heads in the engine before the record moved out of it."""
    return f"{prefix}-dedupe-bands"


class BandRecord:
    """A :class:`Deduplicator` lookup reading band → cluster heads from the band record.

    The record (:mod:`listener.store.bands`: a SQLite file under
    ``LISTENER_HOME``, or Redis when clustered) answers without a round trip
    to the engine. Candidates are added when :meth:`record` is given the
    mentions the index accepted (through :meth:`Deduplicator.stored`), so a
    batch spooled or rejected names no candidate; retention and ``listener
    forget`` take dropped and erased mentions out of the record. The first use fills
    the record from the stored mentions when it was not filled against this
    engine (new, lost, another engine, or an older listener's band index,
    which is then deleted). Failures mean "none found": the crawl then
    compares within itself only.
    """

    def __init__(
        self,
        indexer: Indexer,
        store: BandStore | None = None,
        *,
        unreachable_reported: bool = False,
    ) -> None:
        """``unreachable_reported``: the caller has already told the user the engine is
        unreachable, so a lookup failing on it is logged at debug level only (one line per
        condition)."""
        self.indexer = indexer
        self.client = indexer.client
        self.alias = indexer.alias
        self._store = store
        self._ready = False
        self._failed = unreachable_reported
        #: From the last lookup: its bands that were full, and the heads they named.
        self._full: set[str] = set()
        self._named: set[str] = set()

    @property
    def store(self) -> BandStore:
        """The project's band record, opened on first use."""
        if self._store is None:
            from listener.store.bands import bands_for

            self._store = bands_for(self.indexer.config, MENTIONS_PER_BAND)
        return self._store

    def __call__(self, keys: list[str]) -> list[dict[str, Any]]:
        try:
            self._ensure()
            members = self.store.members(keys)
            ids = list(dict.fromkeys(i for key in keys for i in members.get(key, ())))
            heads = self.store.heads_of(ids)
        except Exception as error:  # an unreachable engine or record
            # Once per lookup: while the engine is down every batch would say the same.
            (log.debug if self._failed else log.warning)(
                "could not look up duplicates (%s); comparing within this crawl only", error
            )
            self._failed = True
            return []
        # What record() may skip: a band full now stays full (only retention and erasure
        # make room), and a mention already a head here may need its entry updated.
        self._full = {key for key, named in members.items() if len(named) >= MENTIONS_PER_BAND}
        self._named = set(ids)
        return [
            {
                "id": head.id,
                "cluster_id": head.cluster_id or head.id,
                "dedupe": {"exact": head.exact, "signature": head.signature},
            }
            for head in heads
        ]

    def record(self, mentions: Sequence[Mention]) -> None:
        """Add ``mentions`` to their bands as candidates (up to the limit per band)."""
        entries = []
        for mention in mentions:
            if mention.dedupe is None:
                continue
            if mention.id not in self._named and self._full.issuperset(mention.dedupe.bands):
                continue  # no room in any of its bands: a fifth or later copy of a text
            index = self.indexer.index_name_for(mention)  # the monthly index it is written to
            dedupe = mention.dedupe
            head = _head(mention.id, mention.cluster_id, dedupe.exact, dedupe.signature, index)
            entries.append((head, dedupe.bands))
        try:
            self.store.add(entries)
        except Exception as error:
            (log.debug if self._failed else log.warning)(
                "could not record %d duplicate candidate(s): %s", len(entries), error
            )
            self._failed = True

    def _ensure(self) -> None:
        """Fill the record from the stored mentions unless it was filled against this engine."""
        if self._ready:
            return
        token = self.indexer.engine_token()
        if self.store.token() != token:
            self.rebuild(token)
        self._ready = True

    def rebuild(self, token: str) -> int:
        """Refill the record from every stored mention, earliest first; returns how many were read.

        Also deletes the band index an older listener kept in the engine.
        """
        from elasticsearch.helpers import scan

        store = self.store
        store.clear()
        quiet = self.client.options(ignore_status=404)
        quiet.indices.delete(index=old_bands_index(self.indexer.prefix))
        read = 0
        if self.client.indices.exists_alias(name=self.alias):
            self.indexer.refresh()  # searches see only refreshed writes
            query = {
                "query": {"match_all": {}},
                "sort": [{"crawled_at": "asc"}, {"id": "asc"}],
                "_source": ["id", "cluster_id", "dedupe"],
            }
            hits = scan(self.client, index=self.alias, query=query, size=1000, preserve_order=True)
            while chunk := list(itertools.islice(hits, 1000)):
                entries = []
                for hit in chunk:
                    source = hit.get("_source") or {}
                    dedupe = source.get("dedupe") or {}
                    if not dedupe.get("signature"):
                        continue
                    head = _head(
                        source["id"],
                        source.get("cluster_id"),
                        dedupe.get("exact", ""),
                        dedupe["signature"],
                        hit["_index"],
                    )
                    entries.append((head, dedupe.get("bands") or []))
                store.add(entries)
                read += len(chunk)
        store.set_token(token)
        if read:
            log.info(
                "recorded the duplicate bands of %d stored mention(s) in %s",
                read,
                store.where,
            )
        return read


@dataclass
class _Known:
    id: str
    cluster_id: str
    exact: str
    signature: list[int]


@dataclass
class Deduplicator:
    """Links mentions to clusters within a crawl and, through ``lookup``, against the index.

    ``lookup(band_keys)`` returns stored documents (``id``, ``cluster_id``,
    ``dedupe``) sharing any band; pass None to compare within the crawl only.
    A lookup with a ``record(mentions)`` method (:class:`BandRecord`) is given
    the mentions passed to :meth:`stored`, to remember them as candidates.
    """

    lookup: Any = None
    seen: dict[str, list[_Known]] = field(default_factory=dict)
    exact_seen: dict[str, _Known] = field(default_factory=dict)
    #: How many of the last assigned mentions are remembered (see the module docstring).
    window: int = WINDOW
    _order: deque[tuple[_Known, list[str]]] = field(default_factory=deque, repr=False)

    def assign(self, mentions: Sequence[Mention]) -> list[Mention]:
        """Copies of ``mentions`` with ``cluster_id``, ``duplicate`` and ``dedupe`` set."""
        prints = [fingerprint(m) for m in mentions]
        keyed = [bands(values) for _, values in prints]
        chosen = self._stored_matches(mentions, prints, keyed)
        result = []
        for mention, (exact, values), keys, stored_match in zip(
            mentions, prints, keyed, chosen, strict=True
        ):
            known = stored_match or self._match(mention.id, exact, values, keys, [])
            if known is None:
                cluster, duplicate = mention.id, False
            else:
                cluster, duplicate = known.cluster_id, True
            entry = _Known(mention.id, cluster, exact, values)
            self.exact_seen.setdefault(exact, entry)
            # Copies are candidates too (an edit of an edit is found through the copy it
            # resembles), but a band keeps only its first few: a popular band cannot make
            # every later mention compare with thousands.
            for key in keys:
                members = self.seen.setdefault(key, [])
                if len(members) < MENTIONS_PER_BAND:
                    members.append(entry)
            result.append(
                mention.model_copy(
                    update={
                        "cluster_id": cluster,
                        "duplicate": duplicate,
                        "dedupe": Dedupe(exact=exact, signature=encode(values), bands=keys),
                    }
                )
            )
            self._order.append((entry, keys))
        self._forget_oldest()
        return result

    def stored(self, mentions: Sequence[Mention]) -> None:
        """Tell the lookup that the index accepted ``mentions`` (as :meth:`assign` returned
        them): they become candidates for later crawls. Never raises."""
        record = getattr(self.lookup, "record", None)
        if record is not None and mentions:
            record(mentions)

    def _forget_oldest(self) -> None:
        """Drop what is remembered of mentions beyond the window, oldest first."""
        while len(self._order) > self.window:
            entry, keys = self._order.popleft()
            if self.exact_seen.get(entry.exact) is entry:
                del self.exact_seen[entry.exact]
            for key in keys:
                kept = [known for known in self.seen.get(key, ()) if known is not entry]
                if kept:
                    self.seen[key] = kept
                else:
                    self.seen.pop(key, None)

    def _stored_matches(
        self,
        mentions: Sequence[Mention],
        prints: list[tuple[str, list[int]]],
        keyed: list[list[str]],
    ) -> list[_Known | None]:
        """Per mention, the earliest stored mention it copies, among those sharing a band.

        Each mention is compared only with the stored candidates of its own
        bands (at most 16 bands x :data:`MENTIONS_PER_BAND`), not with every
        candidate of the batch.
        """
        stored, table = self._stored_candidates(keyed)
        if not stored:
            return [None] * len(mentions)
        # Every mention against every candidate at once: equal values per permutation give
        # the similarity, a band shared is one whose ROWS values are all equal (what equal
        # band keys mean, without hashing each candidate's bands again).
        chosen: list[_Known | None] = []
        for mention, (exact, values) in zip(mentions, prints, strict=True):
            equal = table == np.array(values, dtype=np.uint64)
            shared = equal.reshape(len(stored), BANDS, ROWS).all(axis=2).any(axis=1)
            close = equal.sum(axis=1) / PERMUTATIONS >= THRESHOLD
            chosen.append(
                next(
                    (
                        stored[p]
                        for p in np.flatnonzero(shared)
                        if stored[p].id != mention.id
                        and stored[p].cluster_id != mention.id  # it heads that cluster
                        and (close[p] or stored[p].exact == exact)
                    ),
                    None,
                )
            )
        return chosen

    def _stored_candidates(self, keyed: Iterable[list[str]]) -> tuple[list[_Known], Any]:
        """The lookup's candidates, and their signatures as one array (a row each)."""
        if self.lookup is None:
            return [], None
        keys = sorted({key for keys in keyed for key in keys})
        if not keys:
            return [], None
        documents = [d for d in self.lookup(keys) if (d.get("dedupe") or {}).get("signature")]
        table, valid = decode_many([d["dedupe"]["signature"] for d in documents])
        found = [
            _Known(
                id=document["id"],
                cluster_id=document.get("cluster_id") or document["id"],
                exact=document["dedupe"].get("exact", ""),
                signature=[],  # in ``table``: decoding one value at a time cost more than the rest
            )
            for document, ok in zip(documents, valid, strict=True)
            if ok
        ]
        return found, table

    def _match(
        self,
        own_id: str,
        exact: str,
        values: list[int],
        keys: list[str],
        stored: list[_Known],
        *,
        own: bool = True,
    ) -> _Known | None:
        """The earliest known mention this one copies (``stored`` first, then, with ``own``,
        this crawl's), if any."""

        def copies(candidate: _Known) -> bool:
            # Not itself (a re-crawl), and not a copy of itself (it heads that cluster).
            if candidate.id == own_id or candidate.cluster_id == own_id:
                return False
            return candidate.exact == exact or similarity(candidate.signature, values) >= THRESHOLD

        for candidate in stored:
            if copies(candidate):
                return candidate
        if not own:
            return None
        same = self.exact_seen.get(exact)
        if same is not None and copies(same):
            return same
        for key in keys:
            for candidate in self.seen.get(key, ()):
                if copies(candidate):
                    return candidate
        return None
