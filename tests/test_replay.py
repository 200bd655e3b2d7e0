"""The replay server and the bundled demo site it serves."""

from __future__ import annotations

import json
import socket
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from listener import demo_site
from listener.config import parse_project
from listener.mention import Mention
from listener.sdk.plugin_manager import build_registry
from listener.sdk.replay import ROBOTS_ALLOW_ALL, ReplayServer, Route, load_site
from listener.source import Request, Response, Source


def fetch(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body, for success and HTTP errors alike."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


# --------------------------------------------------------------------------- routes


def test_serves_routes_on_loopback_and_records_requests() -> None:
    routes = [Route("/feed.xml", body=b"<rss/>", headers={"Content-Type": "application/rss+xml"})]
    with ReplayServer(routes) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url == f"http://127.0.0.1:{server.port}"
        status, headers, body = fetch(server.url + "/feed.xml?x=1", headers={"X-Probe": "yes"})

        assert (status, body) == (200, b"<rss/>")
        assert headers["content-type"] == "application/rss+xml"
        assert headers["content-length"] == "6"
        [recorded] = server.requests
        assert (recorded.method, recorded.path, recorded.target) == (
            "GET",
            "/feed.xml",
            "/feed.xml?x=1",
        )
        assert recorded.query == {"x": ["1"]}
        assert recorded.param("x") == "1"
        assert recorded.headers["X-Probe"] == "yes"
        assert recorded.status == 200
        assert server.requests_to("/feed.xml") == [recorded]


def test_unmatched_requests_get_a_plain_text_404_naming_the_path() -> None:
    routes = [Route("/known", body=b"ok"), Route("/search", query={"q": "acme"}, body=b"hits")]
    with ReplayServer(routes) as server:
        status, headers, body = fetch(server.url + "/missing/page?a=b")

        assert status == 404
        assert headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert "GET /missing/page?a=b" in text
        assert "GET /known" in text and "GET /search?q=acme" in text
        assert server.requests[0].status == 404


def test_query_parameters_are_a_subset_match() -> None:
    routes = [
        Route("/api", query={"query": "acme", "page": "1"}, body=b"acme page 1"),
        Route("/api", query={"query": "acme"}, body=b"acme page 0"),
        Route("/api?query=acme corp", body=b"acme corp"),
    ]
    with ReplayServer(routes) as server:
        assert fetch(server.url + "/api?query=acme&page=1&hitsPerPage=5")[2] == b"acme page 1"
        assert fetch(server.url + "/api?hitsPerPage=5&query=acme&page=0")[2] == b"acme page 0"
        assert fetch(server.url + "/api?query=acme")[2] == b"acme page 0"
        assert fetch(server.url + "/api?query=acme%20corp")[2] == b"acme corp"
        assert fetch(server.url + "/api?query=acme+corp&page=3")[2] == b"acme corp"
        assert fetch(server.url + "/api?query=globex")[0] == 404
        assert fetch(server.url + "/api")[0] == 404


def test_methods_must_match_and_head_is_answered_like_get() -> None:
    routes = [
        Route("/submit", method="post", status=201, body=b"created"),
        Route("/page", body=b"hello"),
    ]
    with ReplayServer(routes) as server:
        status, _, body = fetch(server.url + "/submit", method="POST", data=b'{"a": 1}')
        assert (status, body) == (201, b"created")
        assert server.requests[-1].body == b'{"a": 1}'
        assert fetch(server.url + "/submit")[0] == 404
        assert fetch(server.url + "/page", method="POST", data=b"")[0] == 404
        status, headers, body = fetch(server.url + "/page", method="HEAD")
        assert (status, headers["content-length"], body) == (200, "5", b"")


def test_robots_txt_allows_everything_unless_a_route_serves_it() -> None:
    with ReplayServer([]) as server:
        status, headers, body = fetch(server.url + "/robots.txt")
        assert (status, body) == (200, ROBOTS_ALLOW_ALL)
        assert headers["content-type"].startswith("text/plain")
        assert server.requests_to("/robots.txt")[0].status == 200

    strict = Route("/robots.txt", body=b"User-agent: *\nDisallow: /\n")
    with ReplayServer([strict]) as server:
        assert fetch(server.url + "/robots.txt")[2] == b"User-agent: *\nDisallow: /\n"


def test_times_answers_a_status_a_limited_number_of_times_then_falls_through() -> None:
    routes = [
        Route("/feed", status=429, headers={"Retry-After": "7"}, body=b"slow down", times=2),
        Route("/feed", body=b"the feed"),
    ]
    with ReplayServer(routes) as server:
        first, second, third, fourth = (fetch(server.url + "/feed") for _ in range(4))
        assert (first[0], first[1]["retry-after"], first[2]) == (429, "7", b"slow down")
        assert second[0] == 429
        assert (third[0], third[2]) == (200, b"the feed")
        assert fourth[0] == 200
        assert [r.status for r in server.requests_to("/feed")] == [429, 429, 200, 200]

        server.reset()
        assert server.requests == []
        assert fetch(server.url + "/feed")[0] == 429


def test_a_limited_route_without_a_fallback_ends_in_404() -> None:
    with ReplayServer([Route("/once", body=b"once", times=1)]) as server:
        assert fetch(server.url + "/once")[0] == 200
        assert fetch(server.url + "/once")[0] == 404


def test_base_url_placeholder_in_bodies_and_headers() -> None:
    routes = [
        Route("/old", status=301, headers={"Location": "{base_url}/new"}),
        Route("/new", body=b'<link href="{base_url}/feed.xml" rel="self"/>'),
    ]
    with ReplayServer(routes) as server:
        status, _, body = fetch(server.url + "/old")  # urllib follows the redirect
        assert status == 200
        assert body == f'<link href="{server.url}/feed.xml" rel="self"/>'.encode()
        assert [r.path for r in server.requests] == ["/old", "/new"]


def test_routes_accept_text_bodies_and_can_be_added_while_running() -> None:
    with ReplayServer([Route("/a", body="héllo")]) as server:  # type: ignore[arg-type]
        assert fetch(server.url + "/a")[2] == "héllo".encode()
        server.add(Route("/b", body=b"later"))
        assert fetch(server.url + "/b")[2] == b"later"
        assert [r.path for r in server.routes] == ["/a", "/b"]


def test_route_validation() -> None:
    with pytest.raises(ValueError, match="times"):
        Route("/x", times=0)
    with pytest.raises(ValueError, match="HTTP status"):
        Route("/x", status=99)
    assert Route("x").path == "/x"
    assert Route("/x?a=1&b=2", query={"b": "3"}).query == {"a": "1", "b": "3"}


def test_concurrent_requests_are_all_recorded() -> None:
    routes = [Route(f"/item/{n}", body=str(n).encode()) for n in range(20)]
    with ReplayServer(routes) as server, ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(lambda n: fetch(f"{server.url}/item/{n % 20}")[2], range(100)))
        assert bodies == [str(n % 20).encode() for n in range(100)]
        assert len(server.requests) == 100
        assert sorted(r.path for r in server.requests) == sorted(
            f"/item/{n % 20}" for n in range(100)
        )


def test_stop_releases_the_port_and_url_needs_a_started_server() -> None:
    server = ReplayServer([Route("/", body=b"root")])
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.url
    with server:
        port = server.port
        url = server.url
        assert fetch(server.url + "/")[2] == b"root"
    assert server.url == url  # still known after stop, for messages and assertions
    with pytest.raises(urllib.error.URLError):
        fetch(url + "/")
    with socket.socket() as probe:
        # The listening socket is closed (closed connections may linger in TIME_WAIT).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
    server.stop()  # stopping twice is harmless


# --------------------------------------------------------------------------- recorded sites


def write_site(folder: Path, routes: Any, files: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "routes.json").write_text(json.dumps(routes), encoding="utf-8")
    for name, content in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    return folder


def test_load_site_reads_the_manifest_and_guesses_content_types(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site",
        {
            "routes": [
                {"path": "/feed.xml", "file": "feeds/feed.xml"},
                {"path": "/api", "query": {"page": "0"}, "file": "api.json", "times": 2},
                {"path": "/gone", "status": 410, "body": "gone", "headers": {"X-A": "b"}},
                {"path": "/hook", "method": "POST", "status": 204},
            ]
        },
        {"feeds/feed.xml": b"<rss/>", "api.json": b"{}"},
    )
    routes = load_site(site)

    assert [(r.method, r.path, r.status) for r in routes] == [
        ("GET", "/feed.xml", 200),
        ("GET", "/api", 200),
        ("GET", "/gone", 410),
        ("POST", "/hook", 204),
    ]
    assert routes[0].headers == {"Content-Type": "application/xml"}
    assert routes[1].headers == {"Content-Type": "application/json"}
    assert (routes[1].query, routes[1].times, routes[1].body) == ({"page": "0"}, 2, b"{}")
    assert (routes[2].body, routes[2].headers) == (b"gone", {"X-A": "b"})
    assert routes[3].body == b""

    with ReplayServer(site) as server:  # a folder works directly
        assert fetch(server.url + "/feed.xml")[2] == b"<rss/>"
        assert fetch(server.url + "/gone")[0] == 410


def test_a_manifest_may_be_a_bare_list(tmp_path: Path) -> None:
    site = write_site(tmp_path, [{"path": "/x", "body": "x"}])
    assert [r.path for r in load_site(site)] == ["/x"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ([{"path": "/x", "fil": "a.txt"}], "route 0: fil: Extra inputs"),
        ([{"body": "x"}], "route 0: path: Field required"),
        ([{"path": "/x"}, {"path": "/y", "status": 700}], "route 1: status"),
        ([{"path": "/x", "file": "nope.txt"}], "file nope.txt does not exist"),
        ([{"path": "/x", "file": "../outside.txt"}], "is outside"),
        ([{"path": "/x", "file": "a.txt", "body": "b"}], "file or body, not both"),
        ({"paths": []}, "expected a list of routes"),
    ],
)
def test_load_site_errors_name_the_manifest_and_the_route(
    tmp_path: Path, manifest: Any, message: str
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    site = write_site(tmp_path / "site", manifest, {"a.txt": b"a"})
    with pytest.raises(ValueError, match=r"routes\.json") as error:
        load_site(site)
    assert message in str(error.value)


def test_a_site_may_read_files_from_the_site_it_extends(tmp_path: Path) -> None:
    shipped = write_site(tmp_path / "shipped", [], {"page.json": b"shipped", "both.json": b"old"})
    (tmp_path / "secret.txt").write_text("secret")
    manifest = [
        {"path": "/page", "file": "page.json"},
        {"path": "/both", "file": "both.json"},
        {"path": "/own", "file": "own.json"},
    ]
    extended = write_site(tmp_path / "tests", manifest, {"own.json": b"own", "both.json": b"new"})

    routes = load_site(extended, also=[shipped])

    # The site's own file wins; what it does not hold comes from the site it extends.
    assert [r.body for r in routes] == [b"shipped", b"new", b"own"]
    with pytest.raises(ValueError, match=r"file page\.json does not exist in") as error:
        load_site(extended)
    assert str(extended.resolve()) in str(error.value)
    escaping = write_site(tmp_path / "escaping", [{"path": "/x", "file": "../secret.txt"}])
    with pytest.raises(ValueError, match="is outside"):
        load_site(escaping, also=[shipped])


def test_load_site_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"routes\.json"):
        load_site(tmp_path)
    (tmp_path / "routes.json").write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_site(tmp_path)


# --------------------------------------------------------------------------- the demo site


def test_demo_site_serves_every_route() -> None:
    routes = demo_site.routes()
    assert len(routes) == 12  # robots.txt, 3 feeds, 8 Hacker News pages
    with ReplayServer(demo_site.DIRECTORY) as server:
        for route in routes:
            query = "&".join(f"{k}={v}".replace(" ", "%20") for k, v in (route.query or {}).items())
            status, _, body = fetch(f"{server.url}{route.path}{'?' + query if query else ''}")
            assert status == 200, route.describe()
            assert b"{base_url}" not in body
        assert fetch(server.url + "/robots.txt")[2] == b"User-agent: *\nDisallow:\n"
        feed = fetch(server.url + "/technews/feed.xml")
        assert feed[1]["content-type"] == "application/rss+xml; charset=UTF-8"
        assert f'href="{server.url}/technews/feed.xml"'.encode() in feed[2]
        weekly = json.loads(fetch(server.url + "/weekly/feed.json")[2])
        assert weekly["feed_url"] == f"{server.url}/weekly/feed.json"


def test_demo_project_file_is_a_valid_project() -> None:
    base = "http://127.0.0.1:8123"
    text = demo_site.project_file(base + "/")
    assert "{base_url}" not in text
    config = parse_project(tomllib.loads(text), Path("listener.toml"))

    assert [b.name for b in config.brands] == ["Acme", "Globex", "Initech"]
    assert config.brand("acme").keywords == ["acme", "#acme", "acme corp"]
    assert config.brand("acme").exclude == ["acme anvil"]
    assert config.brand("globex").keywords == ["globex", "@globex"]
    assert config.brand("initech").keywords == ["initech"]
    assert [s.label for s in config.sources] == [
        "techwire",
        "devnotes",
        "stackweekly",
        "hackernews",
    ]
    registry = build_registry()
    for entry in config.sources:
        options = registry.source(entry.plugin).Options.model_validate(
            {"plugin": entry.plugin, "name": entry.name, **entry.options}
        )
        assert options.plugin == entry.plugin
    assert config.sources[3].options["base_url"] == base


def crawl_without_scrapy(source: Source, base_url: str) -> list[Mention]:
    """Fetch a source's requests from the replay server and follow its follow-ups."""
    mentions: list[Mention] = []
    pending = list(source.start_requests())
    while pending:
        request = pending.pop(0)
        assert request.url.startswith(base_url)
        status, headers, body = fetch(request.url, headers=request.headers)
        response = Response(
            url=request.url, status=status, headers=headers, body=body, request=request
        )
        for result in source.parse(response):
            if isinstance(result, Request):
                pending.append(result)
            else:
                mentions.append(result)
    return mentions


def test_demo_site_read_through_the_real_sources() -> None:
    """What a crawl of the demo project finds, before the pipeline dedupes and enriches."""
    registry = build_registry()
    with ReplayServer(demo_site.DIRECTORY) as server:
        config = parse_project(
            tomllib.loads(demo_site.project_file(server.url)), Path("listener.toml")
        )
        found: dict[str, list[Mention]] = {}
        for entry in config.sources:
            cls = registry.source(entry.plugin)
            options = cls.Options.model_validate(
                {"plugin": entry.plugin, "name": entry.name, **entry.options}
            )
            found[entry.label] = crawl_without_scrapy(cls(options, config.brands), server.url)
        hn_requests = server.requests_to("/api/v1/search_by_date")

    assert {label: len(mentions) for label, mentions in found.items()} == {
        "techwire": 12,
        "devnotes": 8,
        "stackweekly": 6,
        "hackernews": 40,
    }
    assert len(hn_requests) == 8  # 4 distinct terms x 2 pages
    assert sorted((r.param("query"), r.param("page")) for r in hn_requests) == sorted(
        (term, page) for term in ("acme", "acme corp", "globex", "initech") for page in ("0", "1")
    )
    everything = [m for mentions in found.values() for m in mentions]
    assert len(everything) == 66
    assert len({m.id for m in everything}) == 61  # 4 HN hits found twice, 1 syndicated article


# --------------------------------------------------------------------------- unit-test helpers


def test_make_source_validates_options_like_a_crawl() -> None:
    from pydantic import ValidationError

    from listener.config import BrandConfig
    from listener.plugins.rss import RssSource
    from listener.testing import make_source

    brands = [BrandConfig(name="Acme")]
    source = make_source(RssSource, brands=brands, feeds=["https://example.com/feed.xml"])
    assert source.options.plugin == "rss"
    assert source.brands == brands
    with pytest.raises(ValidationError, match="feedz"):
        make_source(RssSource, feedz=["https://example.com/feed.xml"])


def test_make_source_takes_brands_as_replay_crawl_does() -> None:
    from listener.config import BrandConfig
    from listener.plugins.hackernews import HackerNewsSource
    from listener.testing import make_source

    source = make_source(HackerNewsSource, brands=[{"name": "Acme", "keywords": ["acme", "#acme"]}])
    assert source.brands == [BrandConfig(name="Acme", keywords=["acme", "#acme"])]
    # A bare name used to fail deep inside search_terms ('str' object has no attribute 'terms').
    with pytest.raises(TypeError, match=r"'Acme' is not a brand; pass mappings"):
        make_source(HackerNewsSource, brands=["Acme"])


def test_replay_routes_given_as_a_path_string_or_not_routes() -> None:
    import listener.plugins
    from listener.sdk.testing import _routes
    from listener.testing import replay_crawl

    site = Path(listener.plugins.__file__).parent / "fixtures" / "hackernews"
    # A folder given as a string used to be read as a list of one-letter routes.
    assert _routes(str(site), load_site) == load_site(site)
    with pytest.raises(TypeError, match="route 1 is 'x', not a Route"):
        replay_crawl("hackernews", {}, ["x"])  # type: ignore[list-item]


def test_respond_keeps_a_yielded_requests_url_and_meta() -> None:
    from listener.testing import respond

    request = Request("https://example.com/search?q=acme", meta={"term": "acme", "page": 1})
    response = respond(request, '{"hits": []}', status=429, meta={"page": 2})
    assert response.url == request.url
    assert response.meta == {"term": "acme", "page": 2}
    assert request.meta == {"term": "acme", "page": 1}  # the source's own Request is not changed
    assert (response.status, response.body, dict(response.headers)) == (429, b'{"hits": []}', {})

    by_url = respond("https://example.com/feed", b"<rss/>", content_type="application/rss+xml")
    assert by_url.request.meta == {}
    assert by_url.headers == {"content-type": "application/rss+xml"}
    headers = respond("https://example.com/", headers={"Content-Type": "text/html"}).headers
    assert headers == {"content-type": "text/html"}


def test_split_separates_mentions_from_requests_and_rejects_anything_else() -> None:
    from listener.testing import split

    mention = Mention.create(
        source="rss",
        source_kind="news",
        url="https://example.com/a",
        text="Acme",
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    follow = Request("https://example.com/page/2")
    assert split(iter([follow, mention])) == ([mention], [follow])
    with pytest.raises(AssertionError, match="Mentions and Requests only"):
        split([mention, {"url": "https://example.com/b"}])
