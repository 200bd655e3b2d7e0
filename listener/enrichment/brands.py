"""Brand matching: keywords and exclusions compiled to a spaCy PhraseMatcher.

Matching works on *units* rather than raw tokens. A unit is one token, or a
``#`` token glued to the word after it (the English tokenizer splits ``#acme``
into ``#`` + ``acme`` but keeps ``@acme`` whole); extra spaces are skipped,
line breaks are not. Each unit has

- a normalised body: case-folded, accents stripped (NFKD without combining
  marks, plus a few letters NFKD does not decompose such as ``ø`` and ``ł``),
  curly apostrophes straightened, and the leading ``#``/``@`` removed;
- a marker: ``"#"`` for a hashtag, ``"@"`` for a handle, ``""`` otherwise.

Keywords and exclusions are tokenised with the same tokenizer and turned into
units the same way, and the PhraseMatcher runs over a shadow document holding
the unit bodies, so matching is whole-unit ("acme" never matches "acmeville"
or "#acmeville"). Markers are checked afterwards:

- a plain keyword unit (``acme``) matches ``acme``, ``#acme`` and ``@acme``;
- a hashtag keyword (``#acme``) matches only the hashtag, a handle keyword
  (``@acme``) only the handle;
- a multi-word keyword (``acme corp``) also matches its joined forms as a
  hashtag or handle (``#AcmeCorp``, ``@acme_corp``).

An exclusion removes the keyword matches of its brand that lie inside one of
its matches (keyword ``acme`` inside exclusion ``acme anvil``); a brand whose
matches are all excluded is not matched. Overlapping matches of one brand are
resolved longest-first ("acme corp" wins over "acme"); different brands may
overlap.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from listener.config import BrandConfig
from listener.enrichment.language import LANGUAGE_EXTENSION
from listener.rules import Rule, RuleInput, parse_rule

BRANDS_EXTENSION = "listener_brands"
#: ``doc.user_data`` key for what a brand rule needs besides the text (plain, picklable).
META_KEY = "listener_meta"

HASHTAG = "#"
HANDLE = "@"

# Letters that NFKD leaves alone but readers treat as accented forms.
_FOLD = str.maketrans(
    {
        "\u00f8": "o",  # o with stroke
        "\u00d8": "o",
        "\u0142": "l",  # l with stroke
        "\u0141": "l",
        "\u0111": "d",  # d with stroke
        "\u0110": "d",
        "\u00f0": "d",  # eth
        "\u0131": "i",  # dotless i
        "\u00e6": "ae",
        "\u00c6": "ae",
        "\u0153": "oe",
        "\u0152": "oe",
        "\u2019": "'",  # curly apostrophes, as in "Macy\u2019s"
        "\u2018": "'",
        "\u02bc": "'",
    }
)


def register_extensions() -> None:
    """Register ``doc._.listener_brands`` once (guarded)."""
    if not Doc.has_extension(BRANDS_EXTENSION):
        Doc.set_extension(BRANDS_EXTENSION, default=None)


def fold(text: str) -> str:
    """Case-fold and strip accents: ``"Café"`` → ``"cafe"``, ``"Straße"`` → ``"strasse"``."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


#: :func:`fold` for tokens, cached: the same words come back all the time.
normalize = functools.lru_cache(maxsize=200_000)(fold)


def _is_word_start(text: str) -> bool:
    first = text[0]
    return first.isalnum() or first == "_"


@dataclass(frozen=True, slots=True)
class Units:
    """A document seen as matching units: bodies, markers and the token range of each unit."""

    bodies: list[str]
    markers: list[str]
    token_starts: list[int]
    token_ends: list[int]


def units_of(doc: Doc) -> Units:
    """Split a tokenised document into matching units (see the module docstring)."""
    bodies: list[str] = []
    markers: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    n = len(doc)
    i = 0
    while i < n:
        token = doc[i]
        text = token.text
        end = i + 1
        if token.is_space and "\n" not in text:
            # "Acme  Corp" is still "acme corp"; a line break (as after a title) is not.
            i = end
            continue
        marker = ""
        if text[0] in "#@":
            if len(text) > 1:
                if _is_word_start(text[1:]):
                    marker, text = text[0], text[1:]
            elif not token.whitespace_ and end < n and _is_word_start(doc[end].text):
                marker, text = token.text, doc[end].text
                end += 1
        bodies.append(normalize(text) or text)
        markers.append(marker)
        starts.append(i)
        ends.append(end)
        i = end
    return Units(bodies, markers, starts, ends)


@dataclass(frozen=True, slots=True)
class _Term:
    """One compiled keyword or exclusion: which brand, and the markers each unit must carry."""

    brand: int
    term: str
    excluded: bool
    # Per unit: None accepts any marker, otherwise the set of accepted markers.
    markers: tuple[frozenset[str] | None, ...]


class BrandMatcher:
    """spaCy component: sets ``doc._.listener_brands`` to a list of plain dicts, one per brand.

    Each dict is ``{"brand": name, "keyword": first matching keyword,
    "matches": [{"start", "end", "token_start", "token_end", "keyword"}],
    "sentiment": None}`` with character offsets into ``doc.text`` (end
    exclusive). Brands appear in project-file order; unmatched brands are absent.
    """

    def __init__(self, nlp: Language, name: str, brands: Sequence[dict[str, Any]]) -> None:
        self.name = name
        self.vocab = nlp.vocab
        self.brand_names = [str(brand["name"]) for brand in brands]
        self.matcher = PhraseMatcher(nlp.vocab, attr="ORTH")
        self.terms: dict[int, _Term] = {}
        self._first_words: set[str] = set()
        self._prefilter: re.Pattern[str] | None = None
        #: Brands with a boolean rule (``query``), by brand index.
        self.rules: dict[int, Rule] = {}
        for index, brand in enumerate(brands):
            if brand.get("query"):
                self.rules[index] = parse_rule(str(brand["query"]))
            terms = list(brand.get("keywords") or [])
            if not terms and index not in self.rules:
                terms = [str(brand["name"])]
            for term in terms:
                self._add(nlp, index, term, excluded=False)
            for term in brand.get("exclude") or []:
                self._add(nlp, index, term, excluded=True)

    def _add(self, nlp: Language, brand: int, term: str, *, excluded: bool) -> None:
        units = units_of(nlp.make_doc(term))
        if not units.bodies:
            return
        requirements = tuple(frozenset({m}) if m else None for m in units.markers)
        self._add_pattern(brand, term, excluded, units.bodies, requirements)
        if len(units.bodies) > 1 and not any(units.markers):
            # "acme corp" also matches #acmecorp, @acmecorp and @acme_corp.
            tagged = frozenset({HASHTAG, HANDLE})
            for joiner in ("", "_"):
                word = joiner.join(units.bodies)
                self._add_pattern(brand, term, excluded, [word], (tagged,))

    def _add_pattern(
        self,
        brand: int,
        term: str,
        excluded: bool,
        bodies: list[str],
        markers: tuple[frozenset[str] | None, ...],
    ) -> None:
        kind = "exclude" if excluded else "keyword"
        key = f"listener_brand:{brand}:{kind}:{term}:{'|'.join(bodies)}"
        key_id = self.vocab.strings.add(key)
        if key_id in self.terms:
            return
        self.terms[key_id] = _Term(brand=brand, term=term, excluded=excluded, markers=markers)
        self.matcher.add(key, [Doc(self.vocab, words=bodies)])
        if not excluded:
            self._first_words.add(bodies[0])
            longest_first = sorted(self._first_words, key=len, reverse=True)
            self._prefilter = re.compile("|".join(re.escape(word) for word in longest_first))

    def could_match(self, text: str) -> bool:
        """Cheap test: False when no keyword can match ``text`` (its folded form lacks them all).

        Sound because a unit body is the folded token text, so every keyword
        match is a substring of the folded document text.
        """
        return self._prefilter is not None and self._prefilter.search(fold(text)) is not None

    def find(self, doc: Doc) -> list[dict[str, Any]]:
        """Match the brands in one document; the plain-dict result of :class:`BrandMatcher`."""
        keyword_results = self._find_keywords(doc)
        if not self.rules or not len(doc):
            return keyword_results
        by_brand = {entry["brand"]: entry for entry in keyword_results}
        document = self._rule_input(doc)
        for index, rule in self.rules.items():
            name = self.brand_names[index]
            if name in by_brand:
                continue  # keywords already put the mention in this brand
            match = rule.matches(document)
            if match is None:
                continue
            offset = len(doc.text) - len(document.text)
            matches = []
            for position in match.positions:
                span = doc.char_span(
                    position.start + offset, position.end + offset, alignment_mode="expand"
                )
                if span is None:
                    continue
                matches.append(
                    {
                        "start": position.start + offset,
                        "end": position.end + offset,
                        "token_start": span.start,
                        "token_end": span.end,
                        "keyword": match.keyword,
                    }
                )
            by_brand[name] = {
                "brand": name,
                "keyword": match.keyword,
                "matches": matches,
                "sentiment": None,
            }
        return [by_brand[name] for name in self.brand_names if name in by_brand]

    def _rule_input(self, doc: Doc) -> RuleInput:
        """What a rule looks at: the mention's text (without its title) and metadata."""
        meta: dict[str, Any] = doc.user_data.get(META_KEY) or {}
        offset = int(meta.get("offset", 0))
        return RuleInput(
            text=doc.text[offset:],
            title=meta.get("title"),
            domain=meta.get("domain"),
            author_name=meta.get("author_name"),
            author_handle=meta.get("author_handle"),
            language=doc._.get(LANGUAGE_EXTENSION),
            source=meta.get("source"),
        )

    def _find_keywords(self, doc: Doc) -> list[dict[str, Any]]:
        """The keyword (phrase matcher) part of :meth:`find`."""
        if not len(doc) or not self.could_match(doc.text):
            return []
        units = units_of(doc)
        shadow = Doc(self.vocab, words=units.bodies)
        found: dict[int, list[tuple[int, int, str]]] = {}
        excluded: dict[int, list[tuple[int, int]]] = {}
        markers = units.markers
        for key_id, start, end in self.matcher(shadow):
            compiled = self.terms[key_id]
            if not all(
                wanted is None or markers[start + offset] in wanted
                for offset, wanted in enumerate(compiled.markers)
            ):
                continue
            if compiled.excluded:
                excluded.setdefault(compiled.brand, []).append((start, end))
            else:
                found.setdefault(compiled.brand, []).append((start, end, compiled.term))
        results = []
        for brand in sorted(found):
            kept = _resolve(found[brand], excluded.get(brand, ()))
            if not kept:
                continue
            matches = []
            for start, end, term in kept:
                first = doc[units.token_starts[start]]
                last = doc[units.token_ends[end - 1] - 1]
                matches.append(
                    {
                        "start": first.idx,
                        "end": last.idx + len(last.text),
                        "token_start": first.i,
                        "token_end": last.i + 1,
                        "keyword": term,
                    }
                )
            results.append(
                {
                    "brand": self.brand_names[brand],
                    "keyword": matches[0]["keyword"],
                    "matches": matches,
                    "sentiment": None,
                }
            )
        return results

    def __call__(self, doc: Doc) -> Doc:
        """Set ``doc._.listener_brands``."""
        doc._.set(BRANDS_EXTENSION, self.find(doc))
        return doc


def _resolve(
    matches: list[tuple[int, int, str]], exclusions: Iterable[tuple[int, int]]
) -> list[tuple[int, int, str]]:
    """Drop excluded matches, then keep the longest of overlapping ones, in text order."""
    spans = list(exclusions)
    candidates = sorted(
        (
            match
            for match in matches
            if not any(xs <= match[0] and match[1] <= xe for xs, xe in spans)
        ),
        key=lambda match: (match[0], match[0] - match[1]),
    )
    kept: list[tuple[int, int, str]] = []
    for match in candidates:
        if kept and match[0] < kept[-1][1]:
            continue
        kept.append(match)
    return kept


def brand_settings(brands: Iterable[BrandConfig]) -> list[dict[str, Any]]:
    """The brands as the plain, serialisable config the ``listener_brands`` factory takes."""
    return [
        {
            "name": brand.name,
            "keywords": list(brand.keywords),
            "query": brand.query,
            "exclude": list(brand.exclude),
        }
        for brand in brands
    ]


@Language.factory("listener_brands", default_config={"brands": []})
def make_brand_matcher(nlp: Language, name: str, brands: list[dict[str, Any]]) -> BrandMatcher:
    """Build the brand matcher component from plain brand settings (see :func:`brand_settings`)."""
    register_extensions()
    return BrandMatcher(nlp, name, brands)


class OwnedRule:
    """Decides whether a mention sits on a brand's own domains or accounts."""

    def __init__(self, brand: BrandConfig) -> None:
        self.domains = tuple(d for d in brand.owned_domains if d)
        self.accounts = frozenset(
            account.strip().removeprefix("@").casefold() for account in brand.owned_accounts
        )

    def owns(self, domain: str | None, handle: str | None) -> bool:
        """Whether ``domain`` is (under) an owned domain or ``handle`` is an owned account."""
        if domain and self.domains:
            host = domain.lower().rstrip(".").removeprefix("www.")
            if any(host == d or host.endswith("." + d) for d in self.domains):
                return True
        if handle and self.accounts:
            return handle.strip().removeprefix("@").casefold() in self.accounts
        return False
