"""``listener plugins new``: write an installable source-plugin package, tests included."""

from __future__ import annotations

import json
import keyword
import re
from pathlib import Path

from listener import __version__
from listener.errors import ListenerError
from listener.sdk.source import HOOK_API_VERSION

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "listener-{dist}"
version = "0.1.0"
description = "A listener source plugin for {name}."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["listener>={listener_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This line is what makes listener find the plugin.
[project.entry-points.listener]
{name} = "{package}.source"

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
"{package}" = ["fixtures/*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """\
# listener-{dist}

A [listener](https://pypi.org/project/listener/) source plugin: mentions from
the `{name}` search API.

```sh
pip install -e '.[test]'     # install the plugin next to listener
listener plugins list        # the '{name}' source appears
listener plugins check {name} # contract checks against the recorded responses
pytest                       # the plugin's own tests
```

Use it in a project file:

```toml
[[sources]]
plugin = "{name}"
base_url = "https://api.example.com"
```

`{package}/fixtures/` holds recorded responses (`routes.json` says which file
answers which request); the tests replay them through the real Scrapy engine
with `listener.testing.replay_crawl`. Record real responses of your API there
and adapt `parse()` to them.
"""

SOURCE = '''\
"""The ``{name}`` source: mentions from a JSON search API.

Request: ``GET {{base_url}}/api/search?q=TERM&page=N``; response::

    {{"results": [{{"id": "1", "url": "https://…", "text": "…",
                   "created_at": "2026-11-02T10:00:00Z",
                   "author": {{"name": "…", "handle": "…"}}, "likes": 3, "replies": 1}}],
     "next_page": 2}}

Adapt the URL, the options, ``item_to_mention`` and ``parse`` to the API you are adding.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from listener import hookimpl
from listener.mention import Author, Engagement, Mention, SourceKind
from listener.source import Request, Response, Source, SourceOptions
from listener.sourcekit import SkipReport, guarded, http_url, parse_time, search_terms, to_count

log = logging.getLogger(__name__)


class {cls}Options(SourceOptions):
    """Options of the ``{name}`` source (every key of its ``[[sources]]`` entry).

    ``SourceOptions`` already has ``plugin``, ``name``, ``max_pages`` (used
    below), ``download_delay``, ``concurrency`` and a few more: see
    ``listener plugins list``.
    """

    base_url: str = "https://api.example.com"


def item_to_mention(item: dict[str, Any], source: str) -> Mention | str:
    """One result of the API as a Mention, or the reason it cannot be one."""
    published = parse_time(item.get("created_at"))
    if published is None:
        return "no created_at"
    url = http_url(item.get("url"))
    if url is None:
        return "no url"
    author = item.get("author") or {{}}
    return Mention.create(
        source=source,
        source_kind={cls}Source.kind,
        url=url,
        text=item.get("text") or "",
        published_at=published,
        author=Author(name=author.get("name"), handle=author.get("handle")),
        engagement=Engagement(
            likes=to_count(item.get("likes")), comments=to_count(item.get("replies"))
        ),
    )


class {cls}Source(Source[{cls}Options]):
    """Searches the {name} API for each brand keyword."""

    name = "{name}"
    kind = SourceKind.SOCIAL
    api_version = {api_version}  # the listener source contract this was written for
    download_delay = 1.0
    concurrency = 2
    example_options = {{"base_url": "{{base_url}}"}}
    fixtures_dir = Path(__file__).parent / "fixtures"

    def search_url(self, term: str, page: int = 1) -> str:
        base = self.options.base_url.rstrip("/")
        return f"{{base}}/api/search?{{urlencode({{'q': term, 'page': page}})}}"

    def start_requests(self) -> Iterable[Request]:
        for term in search_terms(self.brands):
            yield Request(self.search_url(term), meta={{"term": term, "page": 1}})

    def parse(self, response: Response) -> Iterable[Mention | Request]:
        data = response.json()  # a ValueError naming the URL when the body is not JSON
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ValueError(f"{{response.url}}: expected an object with a 'results' list")
        term = response.meta["term"]
        skips = SkipReport("results")  # one warning a page naming each skipped item
        seen_before = False
        for item in data["results"]:
            # guarded: an item of a shape nobody foresaw is skipped, never the page.
            outcome = (
                guarded(item_to_mention, item, self.name)
                if isinstance(item, dict)
                else "not an object"
            )
            if isinstance(outcome, str):
                skips.skip(outcome, f"id {{item.get('id')}}" if isinstance(item, dict) else None)
            elif self.is_new(term, outcome):  # newer than the checkpoint, or never yielded
                self.checkpoint.advance(term, outcome.published_at, outcome.id)
                yield outcome
            else:
                seen_before = True  # newest first: an earlier run read from here on
        skips.log(log, self.label, response.url, len(data["results"]))
        page = response.meta["page"]
        if data.get("next_page") and not seen_before and page < self.options.max_pages:
            yield Request(self.search_url(term, page + 1), meta={{"term": term, "page": page + 1}})


@hookimpl
def listener_register_sources() -> list[type[Source]]:
    return [{cls}Source]
'''

TEST = '''\
"""Tests for the {name} source: recorded responses replayed through the real Scrapy engine."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from listener.testing import make_source, respond, split

from {package}.source import {cls}Source

FIXTURES = Path(__file__).resolve().parent.parent / "{package}" / "fixtures"
BRANDS = [{{"name": "Acme", "keywords": ["acme"]}}]


def test_crawl_replays_both_pages(replay_crawl):
    result = replay_crawl("{name}", {{"base_url": "{{base_url}}"}}, FIXTURES)
    assert result.source["health"] == "healthy"
    assert [m.author.handle for m in result.mentions] == ["ada", "grace", "linus"]
    assert all(m.published_at.tzinfo is not None for m in result.mentions)
    assert result.mentions[0].engagement.likes == 12


def test_second_run_asks_only_for_newer_items(replay_crawl, tmp_path):
    first = replay_crawl("{name}", {{"base_url": "{{base_url}}"}}, FIXTURES, home=tmp_path)
    second = replay_crawl("{name}", {{"base_url": "{{base_url}}"}}, FIXTURES, home=tmp_path)
    assert len(first.mentions) == 3
    assert second.mentions == []


def test_an_item_that_cannot_be_read_is_skipped_with_a_warning(caplog):
    source = make_source({cls}Source, brands=BRANDS)
    (request,) = source.start_requests()
    body = (FIXTURES / "search-acme-2.json").read_bytes()
    with caplog.at_level(logging.WARNING):
        mentions, _ = split(source.parse(respond(request, body)))
    assert [m.author.handle for m in mentions] == ["linus"]
    assert "skipped 1 of 2 results" in caplog.text
    assert "1 no created_at (id 100)" in caplog.text


def test_parse_rejects_an_error_page():
    source = make_source({cls}Source, brands=BRANDS)
    (request,) = source.start_requests()
    with pytest.raises(ValueError, match="did not return JSON"):
        split(source.parse(respond(request, "<html>oops</html>", content_type="text/html")))


def test_fixtures_are_valid_json():
    for path in FIXTURES.glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
'''

PAGE_ONE = {
    "results": [
        {
            "id": "103",
            "url": "https://social.example.com/@ada/103",
            "text": "Trying the new Acme kettle: boils in ninety seconds, love it.",
            "created_at": "2026-11-03T09:15:00Z",
            "author": {"name": "Ada L.", "handle": "ada"},
            "likes": 12,
            "replies": 2,
        },
        {
            "id": "102",
            "url": "https://social.example.com/@grace/102",
            "text": "Acme support took a week to answer my ticket. Not great.",
            "created_at": "2026-11-02T18:40:00Z",
            "author": {"name": "Grace H.", "handle": "grace"},
            "likes": 4,
            "replies": 0,
        },
    ],
    "next_page": 2,
}
PAGE_TWO = {
    "results": [
        {
            "id": "101",
            "url": "https://social.example.com/@linus/101",
            "text": "Is the Acme router worth it over the old model?",
            "created_at": "2026-11-01T07:05:00Z",
            "author": {"name": "Linus T.", "handle": "linus"},
            "likes": 1,
            "replies": 5,
        },
        {
            "id": "100",
            "url": "https://social.example.com/@margaret/100",
            "text": "An item without its date: the source skips it with a warning.",
            "author": {"name": "Margaret H.", "handle": "margaret"},
        },
    ],
    "next_page": None,
}
ROUTES = {
    "routes": [
        {"path": "/api/search", "query": {"q": "acme", "page": "1"}, "file": "search-acme-1.json"},
        {"path": "/api/search", "query": {"q": "acme", "page": "2"}, "file": "search-acme-2.json"},
    ]
}


def scaffold(name: str, directory: Path) -> Path:
    """Write the plugin package ``listener-NAME`` under ``directory``; return its folder."""
    if not NAME_PATTERN.match(name) or keyword.iskeyword(name):
        raise ListenerError(
            f"plugin name {name!r} must be 2-40 lowercase letters, digits or underscores, "
            "starting with a letter (it becomes a Python package and the project-file name)"
        )
    dist = name.replace("_", "-")
    package = f"listener_{name}"
    cls = "".join(part.capitalize() for part in name.split("_"))
    root = directory / f"listener-{dist}"
    if root.exists():
        raise ListenerError(f"{root} already exists; choose another --dir or remove it")
    values = {
        "name": name,
        "dist": dist,
        "package": package,
        "cls": cls,
        "api_version": HOOK_API_VERSION,
        "listener_version": __version__,
    }
    files = {
        "pyproject.toml": PYPROJECT.format(**values),
        "README.md": README.format(**values),
        f"{package}/__init__.py": f'"""listener source plugin: {name}."""\n',
        f"{package}/source.py": SOURCE.format(**values),
        f"{package}/fixtures/routes.json": json.dumps(ROUTES, indent=2) + "\n",
        f"{package}/fixtures/search-acme-1.json": json.dumps(PAGE_ONE, indent=2) + "\n",
        f"{package}/fixtures/search-acme-2.json": json.dumps(PAGE_TWO, indent=2) + "\n",
        "tests/test_source.py": TEST.format(**values),
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root
