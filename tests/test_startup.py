"""What a listener process loads when it starts: the same models, read faster.

Speed is printed by ``bench/startup.py``; these tests check that the faster
paths give exactly what the slow ones gave, and fall back cleanly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from listener.enrichment.language import load_identifier, model_cache_dir

TEXTS = [
    "Acme's new phone is great, says Jane Doe in London.",
    "Globex is down again; support did not answer.",
    "Je suis très content de mon nouveau téléphone Acme, merci !",
    "Das neue Telefon von Acme ist wirklich gut.",
    "¿Alguien más tiene problemas con Globex hoy?",
    "Il nuovo telefono di Acme è fantastico",
    "Acme のスマホ、最高です",
    "Привет, как дела у Globex?",  # noqa: RUF001
    "lol",
    "https://t.co/abc @acme",
]


def _load(languages: tuple[str, ...] | None, cache_dir: Path) -> LanguageIdentifier:
    return load_identifier.__wrapped__(languages, cache_dir)  # type: ignore[attr-defined]


def _answers(identifier: LanguageIdentifier) -> list[tuple[str, float]]:
    return [identifier.classify(text) for text in TEXTS]


RESTRICTED = ("de", "en", "fr")


@pytest.fixture(scope="module")
def shipped() -> dict[tuple[str, ...] | None, list[tuple[str, float]]]:
    """py3langid's answers with its own loader, on all languages and on RESTRICTED."""
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    answers = {None: _answers(identifier)}
    identifier.set_languages(list(RESTRICTED))
    answers[RESTRICTED] = _answers(identifier)
    return answers


Answers = dict[tuple[str, ...] | None, list[tuple[str, float]]]


def test_the_cached_language_model_answers_exactly_as_the_shipped_one(
    tmp_path: Path, shipped: Answers
) -> None:
    earlier = tmp_path / "py3langid-0123456789abcdef.npz"  # an earlier listener's one-file copy
    earlier.write_bytes(b"")
    written = _load(None, tmp_path)  # first use: decompresses the model into the cache
    [cached] = tmp_path.glob("py3langid-*")
    read_back = _load(None, tmp_path)  # second use: reads the copy
    assert list(tmp_path.iterdir()) == [cached]
    assert sorted(p.name for p in cached.iterdir()) == [
        "classes.npy", "nextmove.npy", "nextmove_row.npy", "out_feat.npy", "pc.npy", "ptc.npy"
    ]  # fmt: skip
    assert _answers(written) == shipped[None]
    assert _answers(read_back) == shipped[None]
    assert _answers(_load(RESTRICTED, tmp_path)) == shipped[RESTRICTED]


def test_a_damaged_cached_model_is_removed_and_the_shipped_one_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, shipped: Answers
) -> None:
    _load(None, tmp_path)
    [cached] = tmp_path.glob("py3langid-*")
    (cached / "ptc.npy").write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="listener.enrichment.language"):
        identifier = _load(None, tmp_path)
    assert _answers(identifier) == shipped[None]
    assert not cached.exists()
    assert str(cached) in caplog.text and "unreadable" in caplog.text


def test_an_unwritable_cache_falls_back_to_the_shipped_model(
    tmp_path: Path, shipped: Answers
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    identifier = _load(None, blocker / "listener")
    assert _answers(identifier) == shipped[None]
    assert list(tmp_path.iterdir()) == [blocker]


def test_the_cache_lives_under_xdg_cache_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert model_cache_dir() == tmp_path / "listener"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert model_cache_dir() == tmp_path / "home" / ".cache" / "listener"


LEAN_PROCESS = """
import json, sys
from listener.service.startup import leave_out_unused_imports
leave_out_unused_imports()
leave_out_unused_imports()  # twice: one hook
from elasticsearch import Elasticsearch
from elastic_transport._node import _http_aiohttp
client = Elasticsearch("http://127.0.0.1:9")  # the synchronous client listener uses
first = "aiohttp" in sys.modules
import aiohttp  # still importable for anything else
import spacy
cli_at_first = sorted(m for m in ("spacy.cli", "typer", "weasel") if m in sys.modules)
tokens = [t.text for t in spacy.blank("en")("Acme's phone")]
info = spacy.info(markdown=False, silent=True)  # spaCy's own, imported when called
import spacy.cli
print(json.dumps({
    "spacy_cli_at_first": cli_at_first,
    "tokens": tokens,
    "spacy_info": sorted(k for k in ("spacy_version", "location") if k in info),
    "spacy_cli_later": [hasattr(spacy.cli, "download"), hasattr(spacy.cli, "app")],
    "spacy_loader": type(spacy.__loader__).__name__,
    "aiohttp_at_first": first,
    "node_sees_aiohttp": _http_aiohttp._AIOHTTP_AVAILABLE,
    "node_class": type(client.transport.node_pool.get()).__name__,
    "hooks": sum(type(f).__name__ == "_LeanFinder" for f in sys.meta_path),
    "aiohttp_later": hasattr(aiohttp, "ClientSession"),
}))
"""


def test_listener_processes_import_elasticsearch_without_aiohttp_and_spacy_without_its_cli() -> (
    None
):
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", LEAN_PROCESS], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == {
        "spacy_cli_at_first": [],
        "tokens": ["Acme", "'s", "phone"],
        "spacy_info": ["location", "spacy_version"],
        "spacy_cli_later": [True, True],
        "spacy_loader": "SourceFileLoader",
        "aiohttp_at_first": False,
        "node_sees_aiohttp": False,
        "node_class": "Urllib3HttpNode",
        "hooks": 1,
        "aiohttp_later": True,
    }
