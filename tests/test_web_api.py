"""The REST API against the real engine: auth, validation, search, pagination, analytics, crawls.

The server runs in a background thread (uvicorn on a free loopback port) and
connects to the session's engine through :func:`listener.store.engine.connect`, as
``listener serve`` does. The corpus is the analytics sample (about 600
mentions with a known spike) plus a few hand-made mentions: one for
highlighting and two carrying hostile content (HTML, script, ``javascript:``
URLs). ``test_web_browser.py`` reuses :func:`index_corpus`.
"""

from __future__ import annotations

import base64
import json
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import _delete_prefix
from elasticsearch import BadRequestError, Elasticsearch

from listener.analytics.measures import share_of_voice
from listener.analytics.sample import SPIKE_DAY, sample_mentions
from listener.analytics.scope import Filters
from listener.cli import main as cli_main
from listener.cli.demo import write_demo_project
from listener.config import ProjectConfig, load_project
from listener.errors import ConfigError
from listener.mention import Author, BrandMatch, Engagement, Mention, Sentiment
from listener.sdk.replay import ReplayServer, load_site
from listener.store.indexer import Indexer, mentions_alias
from listener.web import create_app
from listener.web.auth import TOKEN_ENV, check_bind, host_allowed, is_loopback
from listener.web.search import safe_url
from listener.web.server import BackgroundServer

TOKEN = "test-token-0123456789abcdef"
HOSTILE_TEXT = (
    'zzhostile Acme <script>window.__pwned = 1; alert("script")</script> '
    "<img src=x onerror=\"window.__pwned = 2; alert('img')\"> "
    '<a href="javascript:window.__pwned=3">click me</a> <b>bold</b> &amp; &lt;done&gt;'
)
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=4">Acme <svg onload="window.__pwned=5">'
HOSTILE_AUTHOR = '<svg/onload="window.__pwned=6"><script>alert(7)</script>'
HIGHLIGHT_TEXT = (
    "Zzlaunch day: the Acme Rocket Skates sold out in an hour while #acme fans queued "
    "outside. Globex stayed quiet. Battery life was the question everyone asked."
)


# -- the corpus (shared with test_web_browser.py) ----------------------------------------


@dataclass
class Corpus:
    """The indexed corpus and its project."""

    project: ProjectConfig
    mentions: list[Mention]
    hostile_ids: list[str]
    highlight_id: str


def write_project(folder: Path, prefix: str, url: str) -> Path:
    """The corpus's project file: the sample brands and one source that never ran."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "listener.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [elasticsearch]
            url = "{url}"
            index_prefix = "{prefix}"

            [[brands]]
            name = "Acme"
            keywords = ["acme", "acme corp"]
            owned_domains = ["acme.com"]
            owned_accounts = ["@acme"]

            [[brands]]
            name = "Globex"
            keywords = ["globex"]
            owned_domains = ["globex.example"]

            [[brands]]
            name = "Initech"
            keywords = ["initech"]

            [[sources]]
            plugin = "rss"
            name = "newswire"
            feeds = ["http://127.0.0.1:9/feed.xml"]
            """
        ),
        encoding="utf-8",
    )
    return path


def _special(
    number: int,
    text: str,
    *,
    title: str | None,
    brands: list[str],
    author: Author,
    published: datetime,
    label: str = "neutral",
) -> Mention:
    return Mention.create(
        source="rss",
        source_kind="blog",
        url=f"https://special.example/posts/{number}",
        title=title,
        text=text,
        published_at=published,
        author=author,
        brands=[BrandMatch(brand=b, keyword=b.lower()) for b in brands],
        brand_names=brands,
        sentiment=Sentiment(score=0.0, label=label),  # type: ignore[arg-type]
        engagement=Engagement(likes=3),
        language="en",
    )


def index_corpus(client: Elasticsearch, folder: Path, engine_url: str) -> Corpus:
    """Index the sample corpus plus the special mentions under a fresh prefix."""
    prefix = f"w{uuid.uuid4().hex[:12]}"
    project = load_project(write_project(folder, prefix, engine_url))
    moment = datetime(2024, 4, 29, 12, 0, tzinfo=UTC)
    highlight = _special(
        1,
        HIGHLIGHT_TEXT,
        title="Acme Rocket Skates launch",
        brands=["Acme", "Globex"],
        author=Author(name="Quinn Ray", url="https://special.example/quinn"),
        published=moment,
        label="positive",
    )
    hostile = [
        _special(
            2,
            HOSTILE_TEXT,
            title=HOSTILE_TITLE,
            brands=["Acme"],
            author=Author(name=HOSTILE_AUTHOR, url="https://special.example/x"),
            published=moment,
        ),
        _special(
            3,
            "zzhostile second: Acme " + HOSTILE_TEXT,
            title="javascript:alert(8)",
            brands=["Acme"],
            author=Author(name="Mallory", url="https://special.example/m"),
            published=moment,
        ),
    ]
    mentions = [*sample_mentions(), highlight, *hostile]
    indexer = Indexer(client, project)
    assert indexer.index(mentions).indexed == len(mentions)
    # URLs the Mention model refuses, written straight into the index as a hostile or
    # broken source could: the API must never hand them out as links.
    bad_urls = [
        ("javascript:window.__pwned=9", "javascript:alert(10)"),
        ("JaVaScRiPt:alert(11)", "data:text/html,<script>alert(12)</script>"),
    ]
    for mention, (url, author_url) in zip(hostile, bad_urls, strict=True):
        client.update(
            index=indexer.index_name_for(mention),
            id=mention.id,
            doc={"url": url, "author": {"url": author_url}},
        )
    indexer.refresh()
    return Corpus(project, mentions, [m.id for m in hostile], highlight.id)


def drop_corpus(client: Elasticsearch, corpus: Corpus) -> None:
    """Remove the corpus's indices and template."""
    _delete_prefix(client, corpus.project.elasticsearch.index_prefix)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Corpus]:
    folder = tmp_path_factory.mktemp("web")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LISTENER_HOME", str(folder / "home"))
        patch.delenv("LISTENER_ES_URL", raising=False)
        built = index_corpus(session_client, folder / "project", engine.url)
        yield built
    drop_corpus(session_client, built)


@pytest.fixture(scope="module")
def server(corpus: Corpus) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(corpus.project)) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def secured(corpus: Corpus) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(corpus.project, token=TOKEN)) as running:
        yield running


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def problem(response: httpx.Response, param: str | None = None) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    if param is not None:
        assert body["param"] == param, body
    return str(body["detail"])


def expected_ids(corpus: Corpus, **where: Any) -> set[str]:
    """Ids of the corpus mentions passing simple filters, computed in Python."""
    brand = where.get("brand")
    source = where.get("source")
    return {
        m.id
        for m in corpus.mentions
        if (brand is None or brand in m.brand_names) and (source is None or m.source == source)
    }


# -- server and project -----------------------------------------------------------------------


def test_healthz_and_project(api: httpx.Client, corpus: Corpus) -> None:
    assert ok(api.get("/api/healthz")) == {"status": "ok", "engine": True}
    info = ok(api.get("/api/project"))
    assert [b["name"] for b in info["brands"]] == ["Acme", "Globex", "Initech"]
    assert info["sources"] == [{"label": "newswire", "plugin": "rss"}]
    assert info["data"]["mentions"] == len(corpus.mentions)
    assert info["data"]["first"].startswith("2024-03-01")
    assert info["data"]["last"].startswith("2024-04-30")
    sources = {f["value"]: f["count"] for f in info["facets"]["source"]}
    assert sources["reddit"] == sum(m.source == "reddit" for m in corpus.mentions)
    assert info["auth"] is False
    assert info["engine"] == "elasticsearch"  # the test project names the session engine's URL


def test_project_info_is_one_engine_request(engine: Any, corpus: Corpus) -> None:
    """Counts, facets and the date range come from one search (the engine runs one at a time)."""
    paths: list[str] = []
    empty = corpus.project.model_copy(
        update={
            "elasticsearch": corpus.project.elasticsearch.model_copy(
                update={"index_prefix": f"none{uuid.uuid4().hex[:8]}"}
            )
        }
    )
    with Elasticsearch(engine.url, request_timeout=60) as client:
        real = client.transport.perform_request

        def counting(method: str, path: str, **kwargs: Any) -> Any:
            paths.append(path)
            return real(method, path, **kwargs)

        client.transport.perform_request = counting  # type: ignore[method-assign]
        infos = []
        for project in (corpus.project, empty):
            with BackgroundServer(create_app(project, client=client)) as running:
                paths.clear()
                infos.append(ok(httpx.get(f"{running.url}/api/project", timeout=60)))
                assert len(paths) == 1, paths
    stored, nothing = infos
    assert stored["data"]["mentions"] == len(corpus.mentions)
    first = min(m.published_at for m in corpus.mentions)
    last = max(m.published_at for m in corpus.mentions)
    assert datetime.fromisoformat(stored["data"]["first"]) == first
    assert datetime.fromisoformat(stored["data"]["last"]) == last
    assert nothing["data"] == {"mentions": 0, "first": None, "last": None}
    assert all(values == [] for values in nothing["facets"].values())


def test_openapi_describes_every_endpoint(api: httpx.Client) -> None:
    schema = ok(api.get("/openapi.json"))
    paths = set(schema["paths"])
    assert paths >= {
        "/api/healthz",
        "/api/project",
        "/api/mentions",
        "/api/mentions/{mention_id}",
        "/api/share-of-voice",
        "/api/sentiment",
        "/api/earned-media",
        "/api/top/authors",
        "/api/top/domains",
        "/api/trending",
        "/api/spikes",
        "/api/sources/health",
        "/api/crawls",
        "/api/crawls/{crawl_id}",
        "/api/crawls/{crawl_id}/cancel",
    }
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    # No page that needs a CDN.
    assert api.get("/docs").status_code == 404


def test_dashboard_and_assets_are_served_with_a_strict_policy(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    for asset in ("app.js", "charts.js", "style.css", "favicon.svg"):
        response = api.get(f"/static/{asset}")
        assert response.status_code == 200, asset
    script = api.get("/static/app.js").text + api.get("/static/charts.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"on"):  # fmt: skip
        assert sink not in script, sink
    assert "http://" not in page.text.replace("http://www.w3.org", "")
    assert "https://" not in page.text


# -- auth --------------------------------------------------------------------------------------


def test_token_is_required_when_set(secured: BackgroundServer) -> None:
    with httpx.Client(base_url=secured.url, timeout=60) as client:
        missing = client.get("/api/project")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/api/project", headers={"Authorization": "Bearer nope-nope-nope-nope"})
        assert wrong.status_code == 401
        basic = client.get("/api/project", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        good = client.get("/api/project", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and good.json()["auth"] is True
        for path in ("/api/mentions", "/api/share-of-voice", "/api/crawls", "/api/sources/health"):
            assert client.get(path).status_code == 401, path
        assert client.post("/api/crawls", json={}).status_code == 401
        # Liveness and the static dashboard need no token (they hold no data).
        assert client.get("/api/healthz").status_code == 200
        assert client.get("/").status_code == 200


def test_loopback_server_without_token_answers_only_loopback_hosts(
    api: httpx.Client, secured: BackgroundServer
) -> None:
    rebound = api.get("/api/project", headers={"Host": "evil.example:8080"})
    assert rebound.status_code == 400
    assert api.get("/api/project", headers={"Host": "localhost:8080"}).status_code == 200
    with httpx.Client(base_url=secured.url, timeout=60) as client:
        # With a token, any host name may be used (behind a proxy, on a LAN).
        named = client.get(
            "/api/project",
            headers={"Host": "listener.example", "Authorization": f"Bearer {TOKEN}"},
        )
        assert named.status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("listener.example", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError, match="at least 16"):
        check_bind("127.0.0.1", "short")
    assert host_allowed("127.0.0.1:8080") and host_allowed("[::1]:80")
    assert not host_allowed("attacker.example") and not host_allowed(None)


def test_serve_refuses_to_start_without_a_token(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    path = str(corpus.project.path)
    result = CliRunner().invoke(cli_main, ["serve", "-c", path, "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0 without an API token" in result.output
    monkeypatch.setenv(TOKEN_ENV, "too-short")
    result = CliRunner().invoke(cli_main, ["serve", "-c", path, "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "at least 16" in result.output


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"since": "yesterday-ish"}, "since", "cannot read the time"),
        ({"since": "2024-04-02", "until": "2024-04-01"}, "until", "after since"),
        ({"sort": "random"}, "sort", "unknown sort"),
        ({"sort": "relevance"}, "sort", "needs search text"),
        ({"rule": "acme NEAR"}, "rule", "NEAR/5"),
        ({"rule": 'acme AND "unclosed'}, "rule", "rule"),
        ({"brand": "Umbrella"}, "brand", "unknown brand"),
        ({"kind": "podcast"}, "kind", "unknown source kind"),
        ({"sentiment": "ecstatic"}, "sentiment", "unknown sentiment"),
        ({"tz": "Mars/Olympus"}, "tz", "unknown time zone"),
        ({"cursor": "not-a-cursor!"}, "cursor", "not valid"),
        ({"brand": ["Acme"] * 21}, "brand", "at most 20"),
    ],
)
def test_search_validation_errors(
    api: httpx.Client, params: dict[str, Any], param: str, message: str
) -> None:
    assert message in problem(api.get("/api/mentions", params=params), param)


def test_framework_level_validation(api: httpx.Client) -> None:
    for params in ({"size": 0}, {"size": 101}, {"q": "x" * 501}, {"full": "maybe"}):
        response = api.get("/api/mentions", params=params)
        assert response.status_code == 422, params
        assert isinstance(response.json()["detail"], list)
    assert api.get("/api/share-of-voice", params={"interval": "year"}).status_code == 422
    assert api.get("/api/share-of-voice", params={"by": "vibes"}).status_code == 422
    assert api.get("/api/spikes", params={"k": 0}).status_code == 422
    assert api.get("/api/top/authors", params={"limit": 1000}).status_code == 422
    assert api.get("/api/mentions/not-an-id").status_code == 422
    assert api.get("/api/mentions/" + "0" * 40).status_code == 404
    assert api.get("/api/crawls/" + "0" * 12).status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/api/share-of-voice", "/api/sentiment", "/api/earned-media", "/api/top/authors",
     "/api/top/domains", "/api/trending", "/api/spikes"],
)  # fmt: skip
def test_analytics_validation_errors(api: httpx.Client, path: str) -> None:
    assert "unknown brand" in problem(api.get(path, params={"brand": "Umbrella"}), "brand")
    assert "cannot read the time" in problem(api.get(path, params={"since": "soon"}), "since")
    assert "unknown source kind" in problem(api.get(path, params={"kind": "podcast"}), "kind")


def test_query_input_never_becomes_raw_dsl(api: httpx.Client, corpus: Corpus) -> None:
    # JSON that would be a query if it were passed through is just words that match nothing.
    dsl = json.dumps({"match_all": {}})
    page = ok(api.get("/api/mentions", params={"q": dsl}))
    assert page["total"] == 0
    # Field syntax of the Lucene query language has no effect either (simple query string).
    page = ok(api.get("/api/mentions", params={"q": "source:reddit"}))
    assert page["total"] == 0


# -- search -----------------------------------------------------------------------------------


def collect(api: httpx.Client, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every page of a search through its cursors; returns the mentions and the page count."""
    found: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        page = ok(api.get("/api/mentions", params={**params, "cursor": cursor}))
        pages += 1
        found.extend(page["mentions"])
        assert len(page["mentions"]) <= params["size"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found, pages
        assert len(page["mentions"]) == params["size"]
        assert pages < 100


def test_pagination_walks_every_mention_once_in_order(api: httpx.Client, corpus: Corpus) -> None:
    mentions, pages = collect(api, {"size": 50})
    assert pages == -(-len(corpus.mentions) // 50) > 1
    ids = [m["id"] for m in mentions]
    assert len(ids) == len(set(ids)) == len(corpus.mentions)
    assert set(ids) == {m.id for m in corpus.mentions}
    keys = [(m["published_at"], m["id"]) for m in mentions]
    # newest first, ties by id ascending
    assert keys == sorted(keys, key=lambda k: (-datetime.fromisoformat(k[0]).timestamp(), k[1]))


def test_pagination_with_filters_and_engagement_order(api: httpx.Client, corpus: Corpus) -> None:
    params = {"size": 40, "brand": "Globex", "sort": "engagement"}
    first = ok(api.get("/api/mentions", params=params))
    mentions, pages = collect(api, params)
    assert pages > 1
    assert first["total"] == len(mentions) and first["total_relation"] == "eq"
    assert {m["id"] for m in mentions} == expected_ids(corpus, brand="Globex")
    totals = [m["engagement"]["total"] for m in mentions]
    assert totals == sorted(totals, reverse=True)
    assert all(any(b["brand"] == "Globex" for b in m["brands"]) for m in mentions)


def test_a_cursor_only_continues_its_own_search(api: httpx.Client) -> None:
    page = ok(api.get("/api/mentions", params={"size": 5, "brand": "Acme"}))
    cursor = page["next_cursor"]
    assert cursor
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert set(payload) == {"v", "s", "f", "a"}
    other = api.get("/api/mentions", params={"size": 5, "brand": "Globex", "cursor": cursor})
    assert "another search" in problem(other, "cursor")
    resorted = api.get("/api/mentions", params={"size": 5, "brand": "Acme", "sort": "oldest",
                                                "cursor": cursor})  # fmt: skip
    assert "another search" in problem(resorted, "cursor")
    forged = dict(payload, a=[{"match_all": {}}, "x"])
    token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
    tampered = api.get("/api/mentions", params={"size": 5, "brand": "Acme", "cursor": token})
    assert "not valid" in problem(tampered, "cursor")


def test_filters_select_what_they_say(api: httpx.Client, corpus: Corpus) -> None:
    page = ok(api.get("/api/mentions", params={"source": "reddit", "size": 100}))
    assert page["total"] == len(expected_ids(corpus, source="reddit"))
    assert {m["source"] for m in page["mentions"]} == {"reddit"}
    page = ok(api.get("/api/mentions", params={"kind": ["review", "video"], "size": 100}))
    assert {m["source_kind"] for m in page["mentions"]} <= {"review", "video"}
    expected = sum(m.source_kind in ("review", "video") for m in corpus.mentions)
    assert page["total"] == expected
    # Date range: since inclusive, until exclusive.
    day = {"since": "2024-04-20", "until": "2024-04-21", "size": 100}
    page = ok(api.get("/api/mentions", params=day))
    expected = sum(m.published_at.date() == SPIKE_DAY for m in corpus.mentions)
    assert page["total"] == expected > 0
    assert all(m["published_at"].startswith("2024-04-20") for m in page["mentions"])
    # Sentiment with a brand: the sentiment for that brand (the brand match's, else the text's).
    page = ok(api.get("/api/mentions", params={"brand": "Acme", "sentiment": "negative",
                                               "size": 100}))  # fmt: skip
    for mention in page["mentions"]:
        acme = next(b for b in mention["brands"] if b["brand"] == "Acme")
        assert acme["sentiment"] == "negative"
    page = ok(api.get("/api/mentions", params={"language": "de", "size": 100}))
    assert page["total"] == sum(m.language == "de" for m in corpus.mentions)


def test_full_text_search_highlights_matches(api: httpx.Client, corpus: Corpus) -> None:
    page = ok(api.get("/api/mentions", params={"q": "zzlaunch skates -recall", "full": True}))
    assert page["total"] == 1
    mention = page["mentions"][0]
    assert mention["id"] == corpus.highlight_id
    assert "".join(s["text"] for s in mention["text_segments"]) == HIGHLIGHT_TEXT
    marked = [s["text"] for s in mention["text_segments"] if s["match"]]
    assert marked == ["Zzlaunch", "Skates"]
    assert [s["text"] for s in mention["title_segments"] if s["match"]] == ["Skates"]
    # Relevance order is available with words.
    assert ok(api.get("/api/mentions", params={"q": "battery", "sort": "relevance"}))["total"] > 1


def test_brand_rule_search_uses_the_rule_language(api: httpx.Client, corpus: Corpus) -> None:
    rule = "acme NEAR/3 skates AND #acme NOT site:acme.com"
    page = ok(api.get("/api/mentions", params={"rule": rule, "full": True}))
    assert [m["id"] for m in page["mentions"]] == [corpus.highlight_id]
    marked = [s["text"] for s in page["mentions"][0]["text_segments"] if s["match"]]
    assert marked == ["Acme", "Skates", "#acme"]
    # A rule is checked against a word-by-word count of the corpus.
    page = ok(api.get("/api/mentions", params={"rule": '"battery recall"', "size": 100}))
    assert page["total"] == sum("battery recall" in m.text.lower() for m in corpus.mentions)


def test_mention_by_id_has_the_full_text(api: httpx.Client, corpus: Corpus) -> None:
    found = ok(api.get(f"/api/mentions/{corpus.highlight_id}", params={"q": "battery"}))
    assert "".join(s["text"] for s in found["text_segments"]) == HIGHLIGHT_TEXT
    assert [s["text"] for s in found["text_segments"] if s["match"]] == ["Battery"]
    assert found["text_truncated"] is False


# -- different searches at the same time share one engine request ----------------------------

BATCHED_SEARCHES: list[dict[str, Any]] = [
    {"q": "acme"},  # more than a page: its next_cursor must match too
    {"q": "globex", "sort": "oldest"},
    {"q": "battery", "size": 5},
    {"brand": "Acme", "sentiment": "negative", "size": 100},
    {"q": "zzlaunch"},
    {"q": "nosuchwordanywhere"},
    {"size": 3, "unique": True},
]


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def test_concurrent_searches_share_one_engine_request(
    api: httpx.Client, server: BackgroundServer, corpus: Corpus
) -> None:
    """Searches waiting for the engine go in one request, and answer as if each ran alone."""
    assert server.app.state.listener.batcher is None  # a configured cluster: never combined
    expected = [ok(api.get("/api/mentions", params=params)) for params in BATCHED_SEARCHES]
    assert expected[0]["next_cursor"] and expected[0]["total"] > 25
    app = create_app(corpus.project, batch_searches=True)
    with BackgroundServer(app) as running, ThreadPoolExecutor(len(BATCHED_SEARCHES)) as pool:
        batcher = app.state.listener.batcher
        with batcher.held():
            futures = [
                pool.submit(httpx.get, f"{running.url}/api/mentions", params=params, timeout=120)
                for params in BATCHED_SEARCHES
            ]
            _wait_for(lambda: batcher.waiting() == len(BATCHED_SEARCHES), "all searches wait")
        answers = [ok(future.result()) for future in futures]
        # A search sorted by relevance, or asking for a next page, is never held back.
        with batcher.held():
            relevance = ok(
                httpx.get(
                    f"{running.url}/api/mentions",
                    params={"q": "acme", "sort": "relevance"},
                    timeout=120,
                )
            )
            following = ok(
                httpx.get(
                    f"{running.url}/api/mentions",
                    params={"q": "acme", "cursor": answers[0]["next_cursor"]},
                    timeout=120,
                )
            )
    assert batcher.combined == len(BATCHED_SEARCHES) - 1  # the one that found nothing ran again
    for params, want, got in zip(BATCHED_SEARCHES, expected, answers, strict=True):
        want.pop("took_ms")
        got.pop("took_ms")
        assert got == want, params
    assert relevance["total"] == expected[0]["total"]
    plain = ok(api.get("/api/mentions", params={"q": "acme", "cursor": expected[0]["next_cursor"]}))
    following.pop("took_ms")
    plain.pop("took_ms")
    assert following == plain


def test_a_search_the_engine_refuses_fails_alone(
    api: httpx.Client, session_client: Elasticsearch, corpus: Corpus
) -> None:
    """A query the engine cannot run gets the engine's error, the others their answers."""
    from listener.web.batch import Page, SearchBatcher
    from listener.web.search import SORTS, SOURCE_EXCLUDES, TRACK_TOTAL, build_query, build_request

    index = mentions_alias(corpus.project.elasticsearch.index_prefix)
    batcher = SearchBatcher(session_client, index, source_excludes=SOURCE_EXCLUDES)
    query = build_query(build_request(corpus.project, query="acme"))
    good = Page(query, SORTS["newest"], 26, TRACK_TOTAL)
    bad = Page({"no_such_query": {"field": "x"}}, SORTS["newest"], 26, TRACK_TOTAL)
    with ThreadPoolExecutor(2) as pool:
        with batcher.held():
            futures = [pool.submit(batcher.run, page) for page in (good, bad)]
            _wait_for(lambda: batcher.waiting() == 2, "both searches wait")
        assert (
            futures[0].result().total == ok(api.get("/api/mentions", params={"q": "acme"}))["total"]
        )
        with pytest.raises(BadRequestError):
            futures[1].result()
    assert batcher.combined == 1


def test_hostile_content_is_data_and_bad_urls_are_dropped(
    api: httpx.Client, corpus: Corpus
) -> None:
    page = ok(api.get("/api/mentions", params={"q": "zzhostile", "full": True}))
    assert {m["id"] for m in page["mentions"]} == set(corpus.hostile_ids)
    for mention in page["mentions"]:
        assert mention["url"] is None
        assert mention["author"]["url"] is None
        text = "".join(s["text"] for s in mention["text_segments"])
        assert HOSTILE_TEXT in text  # verbatim: escaping is the renderer's job (textContent)
    titles = {m["title"] for m in page["mentions"]}
    assert titles == {HOSTILE_TITLE, "javascript:alert(8)"}


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://example.com/a?b=1", True),
        ("http://example.com", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("data:text/html,x", False),
        ("//example.com/x", False),
        ("/relative", False),
        ("https:///nohost", False),
        ("https://exa\\mple.com", False),
        (None, False),
    ],
)
def test_safe_url(url: str | None, kept: bool) -> None:
    assert (safe_url(url) is not None) is kept


# -- analytics --------------------------------------------------------------------------------


def test_share_of_voice_wraps_the_analytics(
    api: httpx.Client, corpus: Corpus, session_client: Elasticsearch
) -> None:
    params = {"since": "2024-03-01", "until": "2024-05-01", "interval": "week", "kind": "social"}
    body = ok(api.get("/api/share-of-voice", params=params))
    assert body["interval"] == "week" and "share" in body["formula"]
    rows = share_of_voice(
        session_client,
        corpus.project,
        since="2024-03-01",
        until="2024-05-01",
        interval="week",
        filters=Filters.of(source_kinds=["social"]),
    )
    assert body["rows"] == [row.record() for row in rows]
    by_brand: dict[str, int] = {}
    for row in body["rows"]:
        by_brand[row["brand"]] = by_brand.get(row["brand"], 0) + row["mentions"]
    for brand in ("Acme", "Globex", "Initech"):
        expected = sum(
            brand in m.brand_names and m.source_kind == "social" for m in corpus.mentions
        )
        assert by_brand[brand] == expected
    overall = ok(api.get("/api/share-of-voice", params={"by": "engagement", "since": "all"}))
    assert overall["interval"] is None
    assert abs(sum(r["share"] for r in overall["rows"]) - 1) < 1e-3


def test_sentiment_earned_top_and_trending(api: httpx.Client, corpus: Corpus) -> None:
    sentiment = ok(api.get("/api/sentiment", params={"brand": "Acme", "since": "all"}))
    (acme,) = sentiment["rows"]
    assert acme["mentions"] == sum("Acme" in m.brand_names for m in corpus.mentions)
    assert (
        acme["positive"] + acme["neutral"] + acme["negative"] + acme["unknown"] == acme["mentions"]
    )
    earned = ok(api.get("/api/earned-media", params={"top": 3, "since": "all"}))
    assert [r["brand"] for r in earned["rows"]] == ["Acme", "Globex", "Initech"]
    assert all(r["owned"] + r["earned"] == r["mentions"] for r in earned["rows"])
    assert len([t for t in earned["top"] if t["brand"] == "Acme"]) == 3
    assert all(t["url"] is None or t["url"].startswith("http") for t in earned["top"])
    authors = ok(
        api.get("/api/top/authors", params={"by": "engagement", "limit": 5, "since": "all"})
    )
    assert len(authors["rows"]) == 5
    engagement = [r["engagement"] for r in authors["rows"]]
    assert engagement == sorted(engagement, reverse=True)
    domains = ok(api.get("/api/top/domains", params={"since": "all"}))
    assert domains["rows"][0]["mentions"] >= domains["rows"][-1]["mentions"]
    trending = ok(api.get("/api/trending", params={"since": "2024-04-24", "until": "2024-05-01"}))
    assert trending["field"] == "phrases"
    assert any(t["brand"] == "Globex" and t["term"] == "price cut" for t in trending["terms"])


def test_spikes_are_found_and_explained(api: httpx.Client) -> None:
    body = ok(
        api.get(
            "/api/spikes",
            params={"since": "2024-03-01", "until": "2024-05-01", "interval": "day"},
        )
    )
    spikes = [s for s in body["spikes"] if s["brand"] == "Acme"]
    spike = next(s for s in spikes if s["period"] == SPIKE_DAY.isoformat())
    assert spike["count"] > spike["threshold"]
    assert "battery recall" in [t["name"] for t in spike["terms"]]
    assert spike["sources"][0]["name"] == "reddit"
    assert spike["samples"] and "battery recall" in spike["explanation"]
    series = [p for p in body["series"] if p["brand"] == "Acme"]
    assert len(series) == 61


# -- sources and crawls ------------------------------------------------------------------------


def test_source_health_reads_the_run_summaries(api: httpx.Client, corpus: Corpus) -> None:
    empty = ok(api.get("/api/sources/health"))
    assert empty["runs"] == 0 and empty["last_run"] is None
    assert empty["sources"] == [
        {
            "source": "newswire",
            "status": "never run",
            "configured": True,
            "runs": 0,
            "history": [],
            "last_run_mentions": 0,
            "last_run_errors": 0,
            "last_success": None,
            "last_error": None,
        }
    ]
    runs = corpus.project.home / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for index, health in enumerate(["healthy", "broken"]):
        entry = {"health": health, "mentions": 5 - 5 * index, "parse_errors": index,
                 "fetch_errors": 0, "last_error": "HTTP 500" if index else None,
                 "last_success": None if index else "2024-05-01T00:00:00+00:00"}  # fmt: skip
        summary = {"finished_at": f"2024-05-0{index + 1}T00:00:00+00:00", "found": 5,
                   "indexed": 5, "errors": index, "sources": {"newswire": entry,
                   "oldsource": {**entry, "health": "healthy"}}}  # fmt: skip
        (runs / f"2024050{index + 1}T000000Z.json").write_text(json.dumps(summary))
    try:
        health = ok(api.get("/api/sources/health"))
    finally:
        for path in runs.glob("*.json"):
            path.unlink()
    assert health["runs"] == 2 and health["last_run"]["errors"] == 1
    rows = {row["source"]: row for row in health["sources"]}
    assert rows["newswire"]["status"] == "broken"
    assert rows["newswire"]["history"] == ["healthy", "broken"]
    assert rows["newswire"]["last_error"] == "HTTP 500"
    assert rows["oldsource"]["configured"] is False


@pytest.fixture
def crawl_server(
    engine: Any, session_client: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BackgroundServer, str]]:
    """A server for the demo project, its sources pointed at a local replay of the demo site."""
    from importlib.resources import files

    site = Path(str(files("listener.demo_site")))
    prefix = f"wc{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("LISTENER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LISTENER_ES_URL", raising=False)
    with ReplayServer(load_site(site)) as replay:
        path = write_demo_project(tmp_path / "project", replay.url)
        settings = (
            f'[elasticsearch]\nurl = "{engine.url}"\nindex_prefix = "{prefix}"\n\n'
            "[crawl]\nautothrottle = false\n\n"
        )
        path.write_text(settings + path.read_text(encoding="utf-8"), encoding="utf-8")
        with BackgroundServer(create_app(load_project(path))) as running:
            yield running, prefix
    _delete_prefix(session_client, prefix)


def test_crawl_runs_in_the_background_and_reports_progress(
    crawl_server: tuple[BackgroundServer, str],
) -> None:
    server, _prefix = crawl_server
    with httpx.Client(base_url=server.url, timeout=60) as client:
        # Only JSON starts a crawl: a cross-site form (text/plain, urlencoded) cannot.
        as_text = client.post("/api/crawls", content=b"{}", headers={"Content-Type": "text/plain"})
        assert as_text.status_code == 422
        assert client.post("/api/crawls").status_code == 415
        form = client.post("/api/crawls", data={"since": "7d"})
        assert form.status_code in (415, 422)
        started = client.post("/api/crawls", json={})
        assert started.status_code == 202, started.text
        crawl = started.json()
        assert crawl["state"] == "running"
        busy = client.post("/api/crawls", json={})
        assert busy.status_code == 409 and "still running" in busy.json()["detail"]
        deadline = time.monotonic() + 300
        states = []
        while crawl["state"] == "running":
            assert time.monotonic() < deadline, crawl
            time.sleep(0.5)
            crawl = ok(client.get(f"/api/crawls/{crawl['id']}"))
            states.append(crawl["state"])
        assert crawl["state"] == "succeeded", crawl
        assert crawl["exit_code"] == 0 and crawl["error"] is None
        assert crawl["progress"]["found"] == 66, "\n".join(crawl["log_tail"])
        assert crawl["progress"]["indexed"] == 58
        assert crawl["summary"][0].startswith("crawl finished in")
        assert any("hackernews: healthy" in line for line in crawl["summary"])
        listed = ok(client.get("/api/crawls"))["crawls"]
        assert [c["id"] for c in listed] == [crawl["id"]]
        assert ok(client.get("/api/mentions", params={"size": 1}))["total"] == 58
        health = ok(client.get("/api/sources/health"))
        assert health["runs"] == 1
        assert {r["source"]: r["status"] for r in health["sources"]} == {
            "techwire": "healthy",
            "devnotes": "healthy",
            "stackweekly": "healthy",
            "hackernews": "healthy",
        }
        bad = client.post("/api/crawls", json={"since": "whenever"})
        assert "cannot read the time" in problem(bad, "since")
        extra = client.post("/api/crawls", json={"since": "7d", "depth": 3})
        assert extra.status_code == 422


def generated_feed(first: int, count: int) -> bytes:
    """An RSS feed of ``count`` items from number ``first``, each naming Acme, dated apart."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>Acme note {n}</title><link>https://news.example/acme/{n}</link>"
        f"<description>Acme shipped release {n} for group {n % 7}.</description>"
        f"<pubDate>{format_datetime(start + timedelta(minutes=n), usegmt=True)}</pubDate></item>"
        for n in range(first, first + count)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Generated</title>'
        f"<link>https://news.example/</link>{items}</channel></rss>"
    ).encode()


def stopped_crawl(client: httpx.Client, crawl_id: str, polls: int) -> dict[str, Any]:
    """The crawl once it is no longer running, asking at most ``polls`` times."""
    for _ in range(polls):
        crawl = ok(client.get(f"/api/crawls/{crawl_id}"))
        if crawl["state"] != "running":
            return crawl
        threading.Event().wait(0.2)  # watching another process; nothing to wait on
    raise AssertionError(f"crawl {crawl_id} still running after {polls} polls: {crawl}")


def indexed_soon(client: httpx.Client, polls: int) -> int:
    """How many mentions the index holds once it holds any, asking at most ``polls`` times."""
    for _ in range(polls):
        total = int(ok(client.get("/api/mentions", params={"size": 1}))["total"])
        if total:
            return total
        threading.Event().wait(0.1)  # watching another process; nothing to wait on
    raise AssertionError(f"nothing was indexed after {polls} polls")


def test_a_cancelled_crawl_keeps_what_it_counted_and_a_rerun_fetches_the_rest(
    engine: Any, session_client: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two feeds of one source: the first is answered at once, the second is held until the
    # test has cancelled, so the cancel lands mid-crawl with no sleep and no timing luck.
    from listener.sdk.replay import Hold, Route
    from listener.sdk.testing import write_project as write_sources

    first, held = 40, 8
    hold = Hold()
    routes = [
        Route("/now.xml", body=generated_feed(0, first),
              headers={"Content-Type": "application/rss+xml"}),
        Route("/held.xml", body=generated_feed(first, held),
              headers={"Content-Type": "application/rss+xml"}, hold=hold),
    ]  # fmt: skip
    prefix = f"wx{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    monkeypatch.setenv("LISTENER_HOME", str(home))
    monkeypatch.delenv("LISTENER_ES_URL", raising=False)
    try:
        with ReplayServer(routes) as replay:
            path = write_sources(
                tmp_path / "listener.toml",
                [{"plugin": "rss", "name": "gen",
                  "feeds": [f"{replay.url}/now.xml", f"{replay.url}/held.xml"]}],
                [{"name": "Acme"}],
                {"batch_size": 1, "enrich_processes": 1, "retry_times": 0},
                delays=False,
            )  # fmt: skip
            path.write_text(
                f'[elasticsearch]\nurl = "{engine.url}"\nindex_prefix = "{prefix}"\n\n'
                + path.read_text(encoding="utf-8"),
                encoding="utf-8",
            )
            with (
                BackgroundServer(create_app(load_project(path))) as server,
                httpx.Client(base_url=server.url, timeout=60) as client,
            ):
                crawl = client.post("/api/crawls", json={}).json()
                assert hold.arrived.wait(120), "the crawl never asked for the held feed"
                # Cancel once the first feed's mentions start to reach the index.
                indexed_soon(client, polls=600)
                cancelled = client.post(f"/api/crawls/{crawl['id']}/cancel")
                assert cancelled.status_code == 200, cancelled.text
                # The process ends soon, although a feed it asked for never answered.
                crawl = stopped_crawl(client, crawl["id"], polls=100)
                assert crawl["state"] == "cancelled", crawl
                assert crawl["exit_code"] == 6, crawl["log_tail"]
                stored = ok(client.get("/api/mentions", params={"size": 100}))
                progress = crawl["progress"]
                # What the job reports is what the index, the spool and the checkpoint hold.
                assert progress["indexed"] == stored["total"], crawl
                spooled = len(ndjson_ids(home / "spool"))
                left = progress["left_for_next_run"]
                assert progress["found"] == progress["indexed"] + spooled + left, crawl
                assert progress["found"] <= first, "the held feed was never answered"
                # The held feed's request was cut short: said in the summary and the run record.
                tail = "\n".join(crawl["log_tail"])
                assert "1 request was cut short" in tail, tail
                run = json.loads(sorted((home / "runs").glob("*.json"))[-1].read_text())
                assert run["stopped_requests"] == 1, run
                assert run["sources"]["gen"]["stopped_requests"] == 1, run

                hold.release()
                again = client.post("/api/crawls", json={})
                assert again.status_code == 202, again.text
                rerun = stopped_crawl(client, again.json()["id"], polls=1500)
                assert rerun["state"] == "succeeded", rerun["log_tail"]
                # The rest, and only the rest, is fetched: nothing lost, nothing twice.
                assert rerun["progress"]["indexed"] == first + held - stored["total"], rerun
                final = ok(client.get("/api/mentions", params={"size": 100}))
                urls = sorted(m["url"] for m in final["mentions"])
                assert final["total"] == len(urls) == len(set(urls)) == first + held
    finally:
        _delete_prefix(session_client, prefix)


def ndjson_ids(folder: Path) -> list[str]:
    """Mention ids in the spool files of a folder (none if it does not exist)."""
    return [
        json.loads(line)["id"]
        for path in sorted(folder.glob("*.ndjson"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


# -- units: highlighting, excerpts, crawl output ------------------------------------------------


def marked(text: str, query: str | None = None, rule: str | None = None) -> list[str]:
    from listener.rules import parse_rule
    from listener.web.search import Highlighter

    highlighter = Highlighter.build(query, parse_rule(rule) if rule else None)
    return [text[start:end] for start, end in highlighter.spans(text)]


def test_highlighting_follows_the_index_analysis() -> None:
    text = "Café Acme: #acme fans love @globex, not acme-anvils. ROCKETS!"
    assert marked(text, query="cafe") == ["Café"]
    assert marked(text, query="rocket*") == ["ROCKETS"]
    assert marked(text, query='"acme fans" -love') == ["Acme", "acme", "fans", "acme"]
    assert marked(text, query="fans | globex") == ["fans", "globex"]
    assert marked(text, rule="#acme") == ["#acme"]
    assert marked(text, rule="@globex OR anvils NOT love") == ["@globex", "anvils"]
    assert marked(text, rule="site:acme.com") == []
    assert marked(text) == []


def test_excerpts_keep_the_first_match_in_view() -> None:
    from listener.web.search import excerpt

    text = " ".join(["filler"] * 300) + " the recall happened " + " ".join(["tail"] * 300)
    start = text.index("recall")
    pieces, truncated = excerpt(text, [(start, start + 6)], limit=200)
    joined = "".join(p.text for p in pieces)
    assert truncated and len(joined) <= 210
    assert joined.startswith("… ") and joined.endswith(" …")
    assert [p.text for p in pieces if p.match] == ["recall"]
    assert joined.removeprefix("… ").removesuffix(" …") in text
    short, cut = excerpt("short text", [])
    assert [p.text for p in short] == ["short text"] and not cut


def test_crawl_output_is_read_from_the_crawls_own_summary() -> None:
    from listener.crawl.progress import CrawlSummary, SourceSummary
    from listener.web.crawls import CrawlJob

    summary = CrawlSummary(
        found=66,
        indexed=58,
        errors=1,
        dropped={"duplicate_in_crawl": 5, "no_brand_match": 3},
        sources={"rss": SourceSummary("rss", mentions=12, indexed=9, last_success="now")},
        elapsed=4.2,
    )
    job = CrawlJob(id="0" * 12, command=[], since=None)
    job.feed("[    1s] pages 6  found 41  indexed 0  dropped 3  errors 0\n")
    assert (job.progress.pages, job.progress.found, job.progress.dropped) == (6, 41, 3)
    for line in summary.lines():
        job.feed(line + "\n")
    job.feed("error: every source failed (rss); see the summary above\n")
    job.finish(1)
    view = job.view()
    assert view.state == "failed" and view.exit_code == 1
    assert (view.progress.found, view.progress.indexed, view.progress.dropped) == (66, 58, 8)
    assert view.progress.errors == 1 and view.progress.pages == 6
    assert view.summary == summary.lines()
    assert view.error == "every source failed (rss); see the summary above"


def test_too_many_periods_and_bad_times_are_422_with_the_limit(corpus: Corpus) -> None:
    analytics = corpus.project.analytics.model_copy(update={"max_periods": 1000})
    small = corpus.project.model_copy(update={"analytics": analytics})
    with (
        BackgroundServer(create_app(small)) as running,
        httpx.Client(base_url=running.url, timeout=120) as client,
    ):
        # Hourly from year 1 once grew the server to 19.6 GB: now cut to the data
        # (1,464 hours of sample mentions) and refused above the limit.
        for path in ("/api/share-of-voice", "/api/sentiment", "/api/earned-media", "/api/spikes"):
            detail = problem(client.get(path, params={"since": "0001-01-01", "interval": "hour"}))
            assert "1,464 hourly periods" in detail and "limit of 1,000" in detail, path
        per_day = ok(client.get("/api/share-of-voice", params={"since": "2000-01-01",
                                                                 "interval": "day"}))  # fmt: skip
        assert per_day["rows"][0]["period"] == "2024-03-01"
        assert "year 1" in problem(client.get("/api/sentiment", params={"since": "99999999d"}),
                                   "since")  # fmt: skip


def test_search_text_and_rules_the_engine_cannot_run_are_422(api: httpx.Client) -> None:
    assert "0, 1 or 2 edits" in problem(api.get("/api/mentions", params={"q": "acme~10"}), "q")
    assert api.get("/api/mentions", params={"q": '"acme rocket"~10'}).status_code == 200
    deep = "(" * 200 + "acme" + ")" * 200
    assert "nested" in problem(api.get("/api/mentions", params={"rule": deep}), "rule")


def test_identical_reads_in_flight_share_one_computation(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import listener.web.api as api_module

    real = api_module.share_of_voice
    release = threading.Event()
    calls: list[dict[str, Any]] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(api_module, "share_of_voice", held)
    app = create_app(corpus.project, token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    params = {"since": "2024-03-01", "until": "2024-05-01", "interval": "week"}
    with (
        BackgroundServer(app) as running,
        httpx.Client(base_url=running.url, timeout=120, headers=auth) as client,
        ThreadPoolExecutor(max_workers=6) as pool,
    ):
        same = [pool.submit(client.get, "/api/share-of-voice", params=params) for _ in range(5)]
        other = pool.submit(client.get, "/api/share-of-voice", params={**params, "by": "reach"})
        deadline = time.monotonic() + 60
        while (app.state.reads.waiting() < 4 or len(calls) < 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.state.reads.waiting() == 4 and len(calls) == 2
        # Another token is another request: it is not handed the waiting answer.
        refused = client.get("/api/share-of-voice", params=params, headers={"Authorization": "x"})
        assert refused.status_code == 401
        release.set()
        answers = [future.result() for future in same]
        assert {a.status_code for a in answers} == {200}
        assert len({a.content for a in answers}) == 1
        assert all(a.headers["content-security-policy"] for a in answers)
        assert ok(other.result())["by"] == "reach"
        assert len(calls) == 2 and app.state.reads.shared == 4
        # Once answered, nothing is kept: the next identical request computes again.
        ok(client.get("/api/share-of-voice", params=params))
        assert len(calls) == 3


def test_analytics_routes_cover_the_last_30_days_unless_told(api: httpx.Client) -> None:
    # The sample is from 2024: the default range (the last 30 days) holds none of it.
    for path in ("/api/share-of-voice", "/api/sentiment", "/api/earned-media"):
        rows = ok(api.get(path))["rows"]
        assert rows and all(row["mentions"] == 0 for row in rows), path
    assert ok(api.get("/api/top/authors"))["rows"] == []
    assert ok(api.get("/api/spikes"))["spikes"] == []
    everything = ok(api.get("/api/share-of-voice", params={"since": "all"}))["rows"]
    assert sum(row["mentions"] for row in everything) > 0
    assert "give a start" in problem(api.get("/api/trending", params={"since": "all"}), "since")
    project = ok(api.get("/api/project"))["data"]
    assert project["first"].startswith("2024-03-01") and project["last"].startswith("2024-04-30")
