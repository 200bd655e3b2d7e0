"""Language identification (py3langid) and the gate that keeps English-only steps on English text.

The detector runs on every document. Its answer is an ISO 639-1 code where one
exists (``en``, ``fr``, ``de``; dialect labels such as ``arz`` fold into their
macrolanguage ``ar``), the detector's own ISO 639-3 label for the few languages
without a two-letter code (``pcm``, ``ceb``...), or ``None`` when it cannot tell:
no letters at all (emoji, links, numbers), or a normalised probability below
``min_confidence``. Very short posts ("lol", "Thanks Acme!") usually land in
``None``: a guess of Nigerian Pidgin or Sesotho for a three-word English tweet
is worse than no answer.

English-specific steps (the English NER model, VADER sentiment) run on English
documents and on undetermined ones (see :func:`runs_english_steps`); documents
confidently in another language get brand matching only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import lzma
import os
import re
import shutil
import tempfile
import time
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

log = logging.getLogger(__name__)

LANGUAGE_EXTENSION = "listener_language"
LANGUAGE_SCORE_EXTENSION = "listener_language_score"

#: Languages the bundled English models serve; ``None`` stands for "undetermined".
ENGLISH_STEP_LANGUAGES: frozenset[str | None] = frozenset({"en", None})

# py3langid labels that are dialects or variants of a language with an
# ISO 639-1 code: stored as that code so filters see one language.
_TO_ISO_639_1 = {
    "ary": "ar",  # Moroccan Arabic
    "arz": "ar",  # Egyptian Arabic
    "uzs": "uz",  # Southern Uzbek
    "gug": "gn",  # Paraguayan Guaraní
    "fuv": "ff",  # Nigerian Fulfulde
    "kik": "ki",  # Gikuyu
    "sdh": "ku",  # Southern Kurdish
    "yue": "zh",  # Cantonese
    "wuu": "zh",  # Wu Chinese
}
# "zxx": no linguistic content; "und": the library's own abstention.
_NO_LANGUAGE = frozenset({"zxx", "und"})

# Links, @handles and the '#' of hashtags say nothing about the language and
# dominate short posts; hashtag words are kept because they usually are words.
_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+|#")
_LETTER = re.compile(r"[^\W\d_]")


def runs_english_steps(language: str | None) -> bool:
    """Whether English-only steps (NER, VADER) apply to a document in ``language``."""
    return language in ENGLISH_STEP_LANGUAGES


def register_extensions() -> None:
    """Register the language extension attributes once (guarded, so re-imports are harmless)."""
    for name in (LANGUAGE_EXTENSION, LANGUAGE_SCORE_EXTENSION):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


def model_cache_dir() -> Path:
    """Where the decompressed language model is kept: ``$XDG_CACHE_HOME/listener`` or
    ``~/.cache/listener``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "listener"


_CACHE_PREFIX = "py3langid-"
_TYPECODES = {2: "H", 4: "I", 8: "L"}
_STALE_SECONDS = 7 * 24 * 3600


def _plain_array(values: Any) -> array[int]:
    """An unsigned NumPy array as the stdlib ``array`` py3langid walks (as its loader does)."""
    out: array[int] = array(_TYPECODES[values.dtype.itemsize])
    out.frombytes(np.ascontiguousarray(values).data.cast("B"))
    return out


#: The arrays of py3langid's model file, one ``.npy`` each in the cached copy.
_MODEL_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")


def _decompressed_model(model: Path, cache_dir: Path) -> Path | None:
    """The py3langid model as plain ``.npy`` arrays in a folder of ``cache_dir``, made on first use.

    py3langid ships its model LZMA-compressed; decompressing it cost about 0.45 s of
    CPU in every process that detects languages (each crawl, ``enrich`` and web
    process). The folder is named by a digest of the shipped model, so another
    py3langid version gets its own (another version's copy is removed once it is a week
    old). None when the cache cannot be written (a read-only home): the caller reads the
    shipped file.
    """
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"{_CACHE_PREFIX}{digest}"
    if cached.is_dir():
        return cached
    temporary = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{_CACHE_PREFIX}"))
        with tempfile.TemporaryFile(dir=temporary) as npz:
            with lzma.open(model) as compressed:
                shutil.copyfileobj(compressed, npz, length=1 << 20)
            npz.seek(0)
            with np.load(npz, allow_pickle=False) as data:
                for name in _MODEL_ARRAYS:
                    np.save(temporary / f"{name}.npy", data[name], allow_pickle=False)
        try:
            os.rename(temporary, cached)  # whole or not at all
        except OSError:
            if not cached.is_dir():
                raise
            shutil.rmtree(temporary, ignore_errors=True)  # another process made it first
    except (OSError, ValueError, KeyError) as error:
        log.debug(
            "cannot cache the language model in %s (%s); reading it compressed", cache_dir, error
        )
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        return None
    with contextlib.suppress(OSError):  # racing processes may remove the same files
        _remove_stale(cache_dir, keep=cached)
    return cached


def _remove_stale(cache_dir: Path, keep: Path) -> None:
    """Another py3langid's copy, unless a venv still using it made it this week."""
    for old in cache_dir.glob(f"{_CACHE_PREFIX}*"):
        if old == keep:
            continue
        if old.suffix == ".npz":  # the one-file copy earlier listener versions made
            old.unlink(missing_ok=True)
        elif time.time() - old.stat().st_mtime > _STALE_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    for unfinished in cache_dir.glob(f".{_CACHE_PREFIX}*"):  # left by a process killed writing
        if time.time() - unfinished.stat().st_mtime > 3600:
            shutil.rmtree(unfinished, ignore_errors=True)


def _identifier_from(folder: Path) -> LanguageIdentifier:
    """py3langid's own loading (``py3langid.modelio.load_model``) from the cached arrays.

    The largest table (28 MB) is mapped, not read: processes share it in the page cache.
    """
    data = {
        name: np.load(
            folder / f"{name}.npy",
            mmap_mode="r" if name in ("ptc", "nextmove") else None,
            allow_pickle=False,
        )
        for name in _MODEL_ARRAYS
    }
    return LanguageIdentifier(
        np.asarray(data["ptc"]),
        np.asarray(data["pc"]),
        data["classes"].tolist(),
        _plain_array(data["nextmove"]),
        data["out_feat"].tolist(),
        norm_probs=True,
        tk_row=_plain_array(data["nextmove_row"]),
    )


@functools.cache
def load_identifier(
    languages: tuple[str, ...] | None = None, cache_dir: Path | None = None
) -> LanguageIdentifier:
    """The py3langid model (normalised probabilities), loaded once per process and language set.

    Read from the decompressed copy in :func:`model_cache_dir` (made by the first
    process that needs it), else from the file py3langid ships.
    """
    identifier = None
    cached = _decompressed_model(MODEL_DIR / MODEL_FILE, cache_dir or model_cache_dir())
    if cached is not None:
        try:
            identifier = _identifier_from(cached)
        except (OSError, ValueError, KeyError) as error:  # damaged: the next process rewrites it
            log.warning(
                "the cached language model %s is unreadable (%s); removing it", cached, error
            )
            shutil.rmtree(cached, ignore_errors=True)
    if identifier is None:
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if languages:
        identifier.set_languages(list(languages))
    return identifier


class LanguageDetector:
    """spaCy component: sets ``doc._.listener_language`` and ``doc._.listener_language_score``."""

    def __init__(
        self,
        name: str,
        *,
        min_confidence: float,
        max_chars: int,
        languages: list[str] | None,
    ) -> None:
        self.name = name
        self.min_confidence = min_confidence
        self.max_chars = max_chars
        # Loaded now, in the parent: forked worker processes inherit it.
        self._identifier = load_identifier(tuple(sorted(languages)) if languages else None)

    def detect(self, text: str) -> tuple[str | None, float]:
        """Return (language code or ``None`` when undetermined, the detector's probability)."""
        # The first thousand characters decide as well as the whole article, for less work.
        cleaned = _NOISE.sub(" ", text[: self.max_chars])
        if _LETTER.search(cleaned) is None:
            return None, 0.0
        code, confidence = self._identifier.classify(cleaned)
        if code in _NO_LANGUAGE or confidence < self.min_confidence:
            return None, float(confidence)
        return _TO_ISO_639_1.get(code, code), float(confidence)

    def __call__(self, doc: Doc) -> Doc:
        """Detect the language of one document."""
        language, confidence = self.detect(doc.text)
        doc._.set(LANGUAGE_EXTENSION, language)
        doc._.set(LANGUAGE_SCORE_EXTENSION, round(confidence, 4))
        return doc


@Language.factory(
    "listener_language",
    default_config={"min_confidence": 0.3, "max_chars": 1000, "languages": None},
)
def make_language_detector(
    nlp: Language,
    name: str,
    min_confidence: float,
    max_chars: int,
    languages: list[str] | None,
) -> LanguageDetector:
    """Build the language detector component."""
    register_extensions()
    return LanguageDetector(
        name, min_confidence=min_confidence, max_chars=max_chars, languages=languages
    )


class EnglishOnly:
    """spaCy component: runs another (disabled) component only on English-step documents.

    The wrapped component keeps its own name and stays in ``nlp.components``
    (disabled), so plugins can still place things ``before="ner"``.
    """

    def __init__(self, name: str, component: Any) -> None:
        self.name = name
        self.component = component

    def __call__(self, doc: Doc) -> Doc:
        """Run the wrapped component on ``doc`` if the document is English or undetermined."""
        if runs_english_steps(doc._.get(LANGUAGE_EXTENSION)):
            return self.component(doc)
        return doc

    def pipe(self, docs: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Run the wrapped component batch-wise on the selected documents, keeping order."""
        inner_pipe = getattr(self.component, "pipe", None)
        for batch in minibatch(docs, size=batch_size):
            selected = [doc for doc in batch if runs_english_steps(doc._.get(LANGUAGE_EXTENSION))]
            if selected:
                if inner_pipe is None:
                    for doc in selected:
                        self.component(doc)
                else:
                    # Components annotate in place; the generator only has to be drained.
                    for _ in inner_pipe(selected, batch_size=batch_size):
                        pass
            yield from batch


@Language.factory("listener_english_only", default_config={"component": "ner"})
def make_english_only(nlp: Language, name: str, component: str) -> EnglishOnly:
    """Wrap the pipeline component named ``component`` (which should be disabled)."""
    register_extensions()
    return EnglishOnly(name, nlp.get_pipe(component))
