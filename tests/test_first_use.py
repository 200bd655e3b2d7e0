"""First use on real and broken feeds: clean errors, honest health, the right exit codes.

Each crawl runs ``listener`` in a subprocess, as a user does, against a local
replay server and the session's real engine (or a cluster that is down, or a
stand-in that answers 401). Real recorded feeds from ``../shared/fixtures``
are used where they fit and skipped cleanly when absent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_FIXTURES, run_cli
from elasticsearch import Elasticsearch

from listener.sdk.replay import ReplayServer, Route
from listener.store.engine import free_port
from listener.testing import write_project

FIXTURES = SHARED_FIXTURES / "feeds"

GOOD_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
<link>https://news.example/</link>
<item><title>Acme opens a store</title><link>https://news.example/acme-store</link>
<description>Acme opens its first store downtown.</description>
<pubDate>Mon, 01 Dec 2025 10:00:00 GMT</pubDate></item>
<item><title>Acme hires</title><link>https://news.example/acme-hires</link>
<description>Acme hires fifty people.</description>
<pubDate>Mon, 01 Dec 2025 11:00:00 GMT</pubDate></item>
</channel></rss>
"""


def listener_cli(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``listener ARGS`` in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "listener.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def environment(home: Path, es_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(LISTENER_HOME=str(home), PYTHONUNBUFFERED="1", COLUMNS="200")
    if es_url:
        env["LISTENER_ES_URL"] = es_url
    return env


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


def project_file(
    path: Path, sources: list[dict[str, Any]], prefix: str = "listener", extra: str = ""
) -> Path:
    write_project(path, sources, crawl={"retry_times": 0})
    text = path.read_text(encoding="utf-8")
    path.write_text(
        f'[elasticsearch]\nindex_prefix = "{prefix}"\n{extra}\n' + text, encoding="utf-8"
    )
    return path


def truncated_real_feed() -> tuple[bytes, str]:
    """A real recorded feed cut in the middle of an entry (or a generated one without fixtures)."""
    real = FIXTURES / "perceval" / "couchbase_blog_rss.xml"
    body = real.read_bytes() if real.is_file() else GOOD_FEED.encode()
    second_item = body.index(b"<item>", body.index(b"<item>") + 1)
    return body[: second_item + 40], "real" if real.is_file() else "generated"


# -- errors and health --------------------------------------------------------------


def test_broken_and_malformed_sources_are_reported_in_one_line_each_with_exit_4(
    engine: Any, prefix: str, tmp_path: Path
) -> None:
    truncated, _ = truncated_real_feed()
    garbage_tail = GOOD_FEED.encode()[:-40] + b"<item><tit\x00le>broken"
    routes = [
        Route("/good.xml", body=GOOD_FEED, headers={"Content-Type": "application/rss+xml"}),
        Route("/truncated.xml", body=truncated, headers={"Content-Type": "application/rss+xml"}),
        Route("/garbage.xml", body=garbage_tail, headers={"Content-Type": "application/rss+xml"}),
    ]
    refused = f"http://127.0.0.1:{closed_port()}/feed.xml"
    with ReplayServer(routes) as server:
        project = project_file(
            tmp_path / "listener.toml",
            [
                {"plugin": "rss", "name": "good", "feeds": [f"{server.url}/good.xml"]},
                {"plugin": "rss", "name": "truncated", "feeds": [f"{server.url}/truncated.xml"]},
                {"plugin": "rss", "name": "garbage", "feeds": [f"{server.url}/garbage.xml"]},
                {"plugin": "rss", "name": "refused", "feeds": [refused]},
            ],
            prefix,
        )
        crawl = listener_cli(
            "crawl", "-c", str(project), env=environment(tmp_path / "home", engine.url)
        )
    # Partial failure: a distinct exit code naming the broken source.
    assert crawl.returncode == 4, crawl.stderr
    assert "1 of 4 sources failed (refused)" in crawl.stderr
    # The refused host: no Scrapy traceback, its one-line reason in the summary.
    assert "Traceback" not in crawl.stderr
    assert "robotstxt" not in crawl.stderr
    summary = {
        line.split(":", 1)[0].strip(): line
        for line in crawl.stderr.splitlines()
        if line.startswith("  ")
    }
    assert summary["refused"].startswith("  refused: broken")
    assert "Connection was refused" in summary["refused"]
    # Malformed feeds: degraded, with the parser's reason and what was salvaged.
    assert summary["good"].startswith("  good: healthy")
    for name in ("truncated", "garbage"):
        assert summary[name].startswith(f"  {name}: degraded"), summary[name]
        assert "1 parse errors" in summary[name]
        assert "is a malformed rss20 feed (" in summary[name]
        assert "salvaged" in summary[name]
    assert "salvaged 1 mention(s) from the 3 entries it could read" in summary["garbage"]
    runs = sorted((tmp_path / "home" / "runs").glob("*.json"))
    recorded = json.loads(runs[-1].read_text(encoding="utf-8"))["sources"]
    assert recorded["truncated"]["health"] == "degraded"
    assert "malformed" in recorded["truncated"]["last_error"]


def test_cluster_down_is_one_line_per_condition_naming_the_environment_variable(
    tmp_path: Path,
) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    with ReplayServer([Route("/good.xml", body=GOOD_FEED)]) as server:
        project = project_file(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "feeds": [f"{server.url}/good.xml"]}],
        )
        env = environment(tmp_path / "home", down)
        crawl = listener_cli("crawl", "-c", str(project), env=env)
    assert crawl.returncode == 3, crawl.stderr
    assert "Traceback" not in crawl.stderr
    assert "elastic_transport" not in crawl.stderr
    assert len(crawl.stderr.splitlines()) <= 8, crawl.stderr
    assert "(set by the environment variable LISTENER_ES_URL) was unreachable" in crawl.stderr

    sov = listener_cli("sov", "-c", str(project), env=env)
    assert sov.returncode == 1
    assert sov.stderr.count("\n") == 1, sov.stderr
    assert sov.stderr.startswith(f"error: cannot reach Elasticsearch at {down}")
    assert "that the environment variable LISTENER_ES_URL is right" in sov.stderr
    assert "elasticsearch.url" not in sov.stderr

    verbose = run_cli("-v", "sov", "-c", str(project), env=env)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr

    # Set in the project file instead: the hint names the file's key.
    in_file = project_file(tmp_path / "file.toml", [], extra=f'url = "{down}"')
    from_file = run_cli("sov", "-c", str(in_file), env=environment(tmp_path / "h2", None))
    assert from_file.returncode == 1
    assert f"elasticsearch.url in {in_file}" in from_file.stderr
    assert "LISTENER_ES_URL" not in from_file.stderr


# -- secrets --------------------------------------------------------------------------


def test_a_url_without_scheme_is_refused_without_printing_the_password(tmp_path: Path) -> None:
    project = project_file(tmp_path / "listener.toml", [])
    result = run_cli(
        "sov",
        "-c",
        str(project),
        env=environment(tmp_path / "home", "elastic:S3cretPass@127.0.0.1:9200"),
    )
    assert result.returncode == 2
    assert "S3cretPass" not in result.stdout + result.stderr
    assert "LISTENER_ES_URL" in result.stderr
    assert "'elastic:***@127.0.0.1:9200' is not an http:// or https:// URL" in result.stderr

    in_file = project_file(
        tmp_path / "file.toml", [], extra='url = "elastic:S3cretPass@127.0.0.1:9200"'
    )
    result = run_cli("sov", "-c", str(in_file), env=environment(tmp_path / "home", None))
    assert result.returncode == 2
    assert "S3cretPass" not in result.stdout + result.stderr
    assert "elasticsearch.url" in result.stderr


class _Unauthorized(BaseHTTPRequestHandler):
    """An Elasticsearch that rejects every request's credentials, as a secured cluster does."""

    def _reject(self) -> None:
        body = json.dumps(
            {
                "error": {"type": "security_exception", "reason": "unable to authenticate"},
                "status": 401,
            }
        ).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("WWW-Authenticate", 'Basic realm="security"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = _reject

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def unauthorized_cluster() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_401_is_reported_as_rejected_credentials_not_as_unreachable(
    unauthorized_cluster: str, tmp_path: Path
) -> None:
    with ReplayServer([Route("/good.xml", body=GOOD_FEED)]) as server:
        project = project_file(
            tmp_path / "listener.toml",
            [{"plugin": "rss", "feeds": [f"{server.url}/good.xml"]}],
            extra='username = "elastic"\npassword = "S3cretPass"',
        )
        env = environment(tmp_path / "home", unauthorized_cluster)
        crawl = listener_cli("crawl", "-c", str(project), env=env)
        sov = run_cli("sov", "-c", str(project), env=env)
    for result in (crawl, sov):
        assert result.returncode == 1, result.stderr
        assert "rejected the credentials (HTTP 401)" in result.stderr
        assert "unreachable" not in result.stderr
        assert "S3cretPass" not in result.stderr
    assert not (tmp_path / "home" / "spool").exists() or not any(
        (tmp_path / "home" / "spool").iterdir()
    )


# -- serve, enrich ----------------------------------------------------------------------


def test_serve_on_a_busy_port_is_a_one_line_refusal(tmp_path: Path) -> None:
    project = project_file(tmp_path / "listener.toml", [])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = listener_cli(
            "serve",
            "-c",
            str(project),
            "--port",
            str(port),
            env=environment(tmp_path / "home", None),
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another program listens there); "
        "choose another with --port, or stop that program"
    ]


def test_enrich_skips_bad_lines_by_number_and_enriches_the_rest(tmp_path: Path) -> None:
    project = project_file(tmp_path / "listener.toml", [])
    lines = [
        '{"text": "Acme is great"}',
        "not json",
        '{"title": "no text"}',
        '{"text": "Acme is awful", "published_at": "2026-13-45"}',
        '{"text": "I like Acme a lot"}',
    ]
    env = environment(tmp_path / "home", None)
    for strict in (False, True):
        result = run_cli(
            "enrich",
            "-c",
            str(project),
            *(["--strict"] if strict else []),
            input="\n".join(lines) + "\n",
            env=env,
        )
        assert result.returncode == (2 if strict else 0), result.stderr
        written = [json.loads(line) for line in result.stdout.splitlines()]
        assert [m["text"] for m in written] == ["Acme is great", "I like Acme a lot"]
        assert all(m["brand_names"] == ["Acme"] for m in written)
        errors = result.stderr.splitlines()
        assert errors[:3] == [
            "skipped stdin line 2: not JSON (Expecting value)",
            "skipped stdin line 3: 'text' is required and must be a non-empty string",
            "skipped stdin line 4: published_at '2026-13-45' is not an ISO date "
            "(month must be in 1..12)",
        ]
        assert "3 bad input line(s) skipped, 2 mention(s) enriched" in errors[3]


def test_a_real_truncated_feed_is_salvaged_and_reported_as_a_problem() -> None:
    """feedjira's InvalidDateFormat.xml is cut off before its closing tags (a real capture)."""
    path = FIXTURES / "feedjira" / "InvalidDateFormat.xml"
    if not path.is_file():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    from listener.config import BrandConfig
    from listener.plugins.rss import RssOptions, RssSource
    from listener.source import Request, Response

    url = "http://example.com/feed"
    source = RssSource(RssOptions(plugin="rss", feeds=[url]), [BrandConfig(name="Acme")])
    response = Response(
        url=url,
        status=200,
        headers={"content-type": "application/rss+xml"},
        body=path.read_bytes(),
        request=Request(url=url),
    )
    mentions = list(source.parse(response))
    assert len(mentions) == 2
    assert source.problems == [
        f"{url} is a malformed rss20 feed (<unknown>:21:0: no element found); "
        "salvaged 2 mention(s) from the 2 entries it could read"
    ]


# -- data a brand team reads ----------------------------------------------------------

# A Google Alerts feed as Google serves it (Atom; every link is a google.com/url redirect).
GOOGLE_ALERTS_FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">
<id>tag:google.com,2005:reader/user/06807031914929345698/state/com.google/alerts/1</id>
<title>Google Alert - acme</title>
<link href="https://www.google.com/alerts/feeds/06807031914929345698/1" rel="self"/>
<updated>2026-12-01T10:00:00Z</updated>
<entry><id>tag:google.com,2013:googlealerts/feed:10458939234402</id>
<title type="html">&lt;b&gt;Acme&lt;/b&gt; raises $10M for robot anvils</title>
<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://techcrunch.com/2026/12/01/acme-raises-10m/%3Futm_source%3Dgoogle&amp;ct=ga&amp;cd=CAEYACoTNTk4&amp;usg=AOvVaw0r"/>
<published>2026-12-01T09:00:00Z</published><updated>2026-12-01T09:00:00Z</updated>
<content type="html">Startup &lt;b&gt;Acme&lt;/b&gt; said on Monday it raised $10M.</content>
<author><name/></author></entry>
<entry><id>tag:google.com,2013:googlealerts/feed:10458939234403</id>
<title type="html">Why &lt;b&gt;Acme&lt;/b&gt; matters</title>
<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://www.huffpost.com/entry/acme-matters_n_1234&amp;ct=ga&amp;cd=CAEYASoTNTk4&amp;usg=AOvVaw1s"/>
<published>2026-12-01T08:00:00Z</published><updated>2026-12-01T08:00:00Z</updated>
<content type="html">An essay on &lt;b&gt;Acme&lt;/b&gt; and its anvils.</content>
<author><name/></author></entry>
</feed>
"""


def rss_mentions(body: bytes, url: str) -> list[Any]:
    from listener.config import BrandConfig
    from listener.plugins.rss import RssOptions, RssSource
    from listener.source import Request, Response

    source = RssSource(RssOptions(plugin="rss", feeds=[url]), [BrandConfig(name="Acme")])
    response = Response(url=url, status=200, headers={}, body=body, request=Request(url=url))
    return list(source.parse(response))


def test_google_alerts_links_are_unwrapped_before_id_canonical_url_and_domain() -> None:
    from listener.mention import mention_id

    mentions = rss_mentions(
        GOOGLE_ALERTS_FEED.encode(), "https://www.google.com/alerts/feeds/06807031914929345698/1"
    )
    assert [(m.url, m.canonical_url, m.domain) for m in mentions] == [
        (
            "https://techcrunch.com/2026/12/01/acme-raises-10m/?utm_source=google",
            "https://techcrunch.com/2026/12/01/acme-raises-10m/",
            "techcrunch.com",
        ),
        (
            "https://www.huffpost.com/entry/acme-matters_n_1234",
            "https://www.huffpost.com/entry/acme-matters_n_1234",
            "huffpost.com",
        ),
    ]
    assert mentions[0].id == mention_id("rss", "https://techcrunch.com/2026/12/01/acme-raises-10m/")


def test_real_google_search_result_links_are_unwrapped() -> None:
    """A captured Google results page (perceval's fixture): every /url?q= link leaves google."""
    import html
    import re

    page = (
        FIXTURES.parent / "api_responses" / "google_search" / "perceval_google_serp_bitergia.html"
    )
    if not page.is_file():
        pytest.skip(f"shared fixtures not found at {page}")
    from listener.mention import domain_of, unwrap_redirect

    links = [
        "https://www.google.es" + html.unescape(href)
        for href in re.findall(r'href="(/url\?q=[^"]+)"', page.read_text(encoding="utf-8"))
    ]
    assert len(links) == 23
    unwrapped = [unwrap_redirect(link) for link in links]
    assert all(not domain_of(u).startswith("google.") for u in unwrapped), unwrapped
    assert unwrapped[0] == "https://bitergia.com/"


def test_real_feedburner_proxy_links_count_for_the_original_site() -> None:
    """feedproxy.google.com links carry no target in the URL: the feed's origLink is used."""
    path = FIXTURES / "feedjira" / "TypePadNews.xml"
    if not path.is_file():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    mentions = rss_mentions(path.read_bytes(), "http://feeds.feedburner.com/TypePadNews")
    assert len(mentions) == 10
    assert {m.domain for m in mentions} == {"everything.typepad.com"}


@pytest.mark.parametrize(
    ("link", "target"),
    [
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fex.com%2Fa%3Fb%3D1&h=AT0",
            "https://ex.com/a?b=1",
        ),
        (
            "https://www.youtube.com/redirect?event=video&q=https%3A%2F%2Fex.com%2Fv",
            "https://ex.com/v",
        ),
        ("https://slack-redir.net/link?url=https%3A%2F%2Fex.com%2Fs", "https://ex.com/s"),
        (
            "https://www.linkedin.com/redir/redirect?url=https%3A%2F%2Fex.com%2Fl",
            "https://ex.com/l",
        ),
        ("https://www.google.co.uk/url?sa=t&url=https%3A%2F%2Fex.co.uk%2F", "https://ex.co.uk/"),
        # A redirect inside a redirect, and links that are not redirects or not to the web.
        (
            "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.google.com%2Furl%3Furl%3Dhttps%3A%2F%2Fex.com%2Fn",
            "https://ex.com/n",
        ),
        ("https://www.google.com/search?q=acme", "https://www.google.com/search?q=acme"),
        (
            "https://www.google.com/url?q=javascript:alert(1)",
            "https://www.google.com/url?q=javascript:alert(1)",
        ),
        (
            "https://notgoogle.com/url?url=https://ex.com/",
            "https://notgoogle.com/url?url=https://ex.com/",
        ),
    ],
)
def test_known_redirectors_are_unwrapped(link: str, target: str) -> None:
    from listener.mention import unwrap_redirect

    assert unwrap_redirect(link) == target


def test_a_source_entry_label_is_stored_and_filters_like_the_plugin_name(
    engine: Any, prefix: str, tmp_path: Path
) -> None:
    routes = [
        Route(
            "/alerts.xml", body=GOOGLE_ALERTS_FEED, headers={"Content-Type": "application/atom+xml"}
        ),
        Route("/news.xml", body=GOOD_FEED, headers={"Content-Type": "application/rss+xml"}),
    ]
    with ReplayServer(routes) as server:
        project = project_file(
            tmp_path / "listener.toml",
            [
                {
                    "plugin": "rss",
                    "name": "google-alerts-slack",
                    "feeds": [f"{server.url}/alerts.xml"],
                },
                {"plugin": "rss", "name": "industry", "feeds": [f"{server.url}/news.xml"]},
            ],
            prefix,
        )
        # Per-domain audience estimates for reach where feeds give none.
        project.write_text(
            project.read_text(encoding="utf-8") + '\n[audience]\n"techcrunch.com" = 12000000\n',
            encoding="utf-8",
        )
        env = environment(tmp_path / "home", engine.url)
        crawl = listener_cli("crawl", "-c", str(project), "--since", "2020-01-01", env=env)
    assert crawl.returncode == 0, crawl.stderr

    def mentions(*source: str) -> int:
        args = [a for name in source for a in ("--source", name)]
        result = run_cli(
            "sov", "-c", str(project), "--since", "all", *args, "--format", "json", env=env
        )
        assert result.returncode == 0, result.stderr
        return sum(row["mentions"] for row in json.loads(result.stdout))

    assert mentions("google-alerts-slack") == 2
    assert mentions("industry") == 2
    assert mentions("rss") == 4
    assert mentions("google-alerts-slack", "industry") == 4

    refused = run_cli("sov", "-c", str(project), "--source", "nosuch", env=env)
    assert refused.returncode == 2
    assert "unknown source 'nosuch'" in refused.stderr
    assert "google-alerts-slack, industry" in refused.stderr

    # The alerts count for the articles' sites, not google.com.
    domains = run_cli(
        "top", "domains", "-c", str(project), "--since", "all", "--format", "json", env=env
    )
    assert domains.returncode == 0, domains.stderr
    assert {row["domain"] for row in json.loads(domains.stdout)} == {
        "techcrunch.com",
        "huffpost.com",
        "news.example",
    }
    # Search: highlights as emphasis in the terminal, <em> marks only in JSON.
    table = run_cli("search", "-c", str(project), "anvils", env=env)
    assert table.returncode == 0, table.stderr
    assert "anvils" in table.stdout
    assert "<em>" not in table.stdout
    as_json = run_cli("search", "-c", str(project), "anvils", "--format", "json", env=env)
    assert "<em>anvils</em>" in as_json.stdout

    # Reach: the [audience] estimate where a feed gives no followers, "unknown" elsewhere.
    earned = run_cli(
        "earned", "-c", str(project), "--since", "2020-01-01", "--format", "json", env=env
    )
    assert earned.returncode == 0, earned.stderr
    [acme] = json.loads(earned.stdout)
    assert (acme["earned_reach"], acme["earned_reach_known"]) == (12_000_000, 1)
    by_reach = run_cli(
        "top",
        "domains",
        "-c",
        str(project),
        "--by",
        "reach",
        "--since",
        "2020-01-01",
        "--format",
        "json",
        env=env,
    )
    reach = {
        row["domain"]: (row["reach"], row["reach_known"]) for row in json.loads(by_reach.stdout)
    }
    assert reach == {
        "techcrunch.com": (12_000_000, 1),
        "huffpost.com": (0, 0),
        "news.example": (0, 0),
    }
    text = run_cli(
        "top", "domains", "-c", str(project), "--by", "reach", "--since", "2020-01-01", env=env
    )

    def row(domain: str) -> str:
        return next(line for line in text.stdout.splitlines() if domain in line)

    assert "12000000" in row("techcrunch.com").replace(",", "")
    assert "unknown" in row("news.example")
    assert "[audience] estimate" in text.stdout

    exported = run_cli("export", "-c", str(project), env=env)
    labels = sorted(json.loads(line)["source_label"] for line in exported.stdout.splitlines())
    assert labels == ["google-alerts-slack"] * 2 + ["industry"] * 2


def test_indices_made_before_a_new_field_accept_it_after_an_upgrade(
    project: Any, client: Elasticsearch, make_mention: Any
) -> None:
    """The mapping is strict: an old month's index gets the new fields when templates install."""
    from datetime import UTC, datetime

    from listener.store.indexer import Indexer, load_templates

    indexer = Indexer(client, project)
    body = next(iter(load_templates(project.elasticsearch.index_prefix).values()))
    old_mapping = json.loads(json.dumps(body["template"]["mappings"]))
    del old_mapping["properties"]["source_label"]
    mention = make_mention(datetime(2025, 3, 1, tzinfo=UTC))
    mention.source_label = "industry"
    client.indices.create(
        index=indexer.index_name_for(mention),
        mappings=old_mapping,
        settings=body["template"]["settings"],
    )
    indexer.install_templates()
    result = indexer.index([mention])
    assert (result.indexed, result.rejected) == (1, 0)


def test_search_highlights_become_emphasis_not_markup() -> None:
    from listener.cli.output import highlighted

    text = highlighted("Why <em>Acme</em> [bold]matters[/bold] to <em>anvil</em> makers")
    assert text.plain == "Why Acme [bold]matters[/bold] to anvil makers"
    emphasised = [text.plain[span.start : span.end] for span in text.spans if span.style]
    assert emphasised == ["Acme", "anvil"]


def test_rematch_removes_labels_of_brands_no_longer_in_the_project_file(
    engine: Any, session_client: Elasticsearch, prefix: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from listener.config import load_project
    from listener.enrichment import Enricher
    from listener.mention import Mention
    from listener.store.indexer import Indexer

    def write(brands: list[str]) -> Path:
        path = tmp_path / "listener.toml"
        blocks = "".join(f'[[brands]]\nname = "{name}"\n' for name in brands)
        path.write_text(f'[elasticsearch]\nindex_prefix = "{prefix}"\n{blocks}', encoding="utf-8")
        return path

    path = write(["Acme", "Nokia"])
    env = environment(tmp_path / "home", engine.url)
    project = load_project(path)
    texts = ["Nokia ships a new phone.", "Acme and Nokia sign a deal.", "Acme opens a store."]
    mentions = [
        Mention.create(
            source="rss",
            source_kind="news",
            url=f"https://news.example/{number}",
            text=text,
            published_at=datetime(2026, 11, 2, number, tzinfo=UTC),
        )
        for number, text in enumerate(texts)
    ]
    indexer = Indexer(session_client, project)
    indexer.install_templates()
    assert indexer.index(list(Enricher(project).enrich(mentions))).indexed == 3
    indexer.refresh()

    write(["Acme"])  # Nokia is no longer a brand of the project
    result = run_cli("rematch", "-c", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert "Nokia (not in the project file)" in result.stdout
    session_client.indices.refresh(index=f"{prefix}-mentions")
    hits = session_client.search(index=f"{prefix}-mentions", size=10, query={"match_all": {}})
    labels = {hit["_source"]["text"]: hit["_source"]["brand_names"] for hit in hits["hits"]["hits"]}
    assert labels == {texts[0]: [], texts[1]: ["Acme"], texts[2]: ["Acme"]}
    # reenrich then finds nothing left to remove.
    again = listener_cli("reenrich", "-c", str(path), env=env)
    assert again.returncode == 0, again.stderr
    assert "removed: none" in again.stderr


# -- small things -----------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_demo_next_steps_never_wrap_inside_a_command(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from listener.cli.demo import print_next_steps

    project = (
        tmp_path / "a-rather-long-folder-name-for-the-demo" / "listener-demo" / "listener.toml"
    )
    buffer = io.StringIO()
    print_next_steps(Console(file=buffer, width=80, highlight=False), project)
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "next:",
        f"  listener sov -c {project} --since all --interval week",
        f"  listener search -c {project} support",
    ]


def test_a_duplicate_brand_error_names_the_brand_without_dumping_the_config(
    tmp_path: Path,
) -> None:
    from listener.config import load_project
    from listener.errors import ConfigError

    path = tmp_path / "listener.toml"
    path.write_text(
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n\n[[brands]]\nname = "ACME"\n'
        '\n[[sources]]\nplugin = "rss"\nfeeds = ["https://example.com/feed.xml"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_project(path)
    assert str(caught.value) == f"{path}: (top level): brand 'ACME' is listed twice"


def test_the_plugin_guide_example_runs_as_written() -> None:
    """docs/plugins.md's Source API example, executed and fed a response."""
    import re

    from listener.source import Request, Response, SourceOptions

    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    section = text.split("## The Source API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/plugins.md", "exec"), namespace)
    source_class = namespace["ShoutboxSource"]
    options = source_class.Options(plugin="shoutbox")
    assert isinstance(options, SourceOptions)
    from listener.config import BrandConfig

    source = source_class(options, [BrandConfig(name="Acme")])
    [request] = list(source.start_requests())
    body = json.dumps(
        {
            "results": [
                {
                    "url": "https://shoutbox.example/s/1",
                    "text": "Acme rocks",
                    "created_at": "2026-11-01T10:00:00Z",
                },
                {"id": 2, "url": "https://shoutbox.example/s/2", "text": "no date"},
            ]
        }
    ).encode()
    assert isinstance(request, Request)
    response = Response(url=request.url, status=200, headers={}, body=body, request=request)
    [mention] = list(source.parse(response))  # the item without a date is skipped, not raised
    assert mention.published_at.isoformat() == "2026-11-01T10:00:00+00:00"
    assert source.checkpoint.to_dict()["newest"] == {"Acme": "2026-11-01T10:00:00+00:00"}


def test_every_routes_json_key_is_documented() -> None:
    import re

    from listener.sdk.replay import _RouteSpec

    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    section = text.split("### `routes.json`", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert documented == list(_RouteSpec.model_fields)


def test_the_source_kit_canonical_url_agrees_with_mention_create() -> None:
    from datetime import UTC, datetime

    from listener.mention import Mention
    from listener.sourcekit import canonical_url

    alert = (
        "https://www.google.com/url?rct=j&sa=t&url=https://techcrunch.com/a/%3Futm_source%3Dx&ct=ga"
    )
    mention = Mention.create(
        source="rss", source_kind="news", url=alert, text="Acme", published_at=datetime.now(UTC)
    )
    assert canonical_url(alert) == mention.canonical_url == "https://techcrunch.com/a/"


# -- API export -------------------------------------------------------------------------


def test_api_export_streams_every_matching_mention_as_ndjson_or_csv(
    project: Any, client: Elasticsearch, make_mention: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv
    import io
    from datetime import UTC, datetime, timedelta

    import httpx

    from listener.config import SourceConfig
    from listener.store.exporting import EXPORT_COLUMNS
    from listener.store.indexer import Indexer
    from listener.web import export
    from listener.web.app import create_app
    from listener.web.server import BackgroundServer

    project.sources = [
        SourceConfig(plugin="rss", name=name, feeds=["https://news.example/feed.xml"])
        for name in ("industry", "alerts")
    ]
    start = datetime(2026, 10, 1, tzinfo=UTC)
    mentions = []
    for number in range(11):
        mention = make_mention(
            start + timedelta(hours=number),
            brands=("Acme",) if number % 3 else ("Globex",),
            source="rss",
        )
        mention.source_label = "industry" if number % 2 else "alerts"
        mentions.append(mention)
    # Found by a plugin that is no longer installed nor configured: still stored, still exportable.
    retired = make_mention(start - timedelta(days=1), brands=("Globex",), source="oldplugin")
    indexer = Indexer(client, project)
    assert indexer.index([*mentions, retired]).indexed == 12
    indexer.refresh()
    monkeypatch.setattr(export, "PAGE", 3)  # several pages, to stream across them

    acme = sorted(
        (m for m in mentions if "Acme" in m.brand_names),
        key=lambda m: m.published_at,
        reverse=True,
    )
    with (
        BackgroundServer(create_app(project)) as server,
        httpx.Client(base_url=server.url, timeout=120) as http,
    ):
        response = http.get("/api/export", params={"brand": "Acme"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["transfer-encoding"] == "chunked"
        assert 'filename="mentions.ndjson"' in response.headers["content-disposition"]
        rows = [json.loads(line) for line in response.text.splitlines()]
        assert [row["id"] for row in rows] == [m.id for m in acme]
        search = http.get("/api/mentions", params={"brand": "Acme", "size": 100}).json()
        assert search["total"] == len(rows)

        labelled = http.get(
            "/api/export", params={"format": "csv", "source": "industry", "sort": "oldest"}
        )
        assert labelled.status_code == 200, labelled.text
        assert labelled.headers["content-type"] == "text/csv; charset=utf-8"
        table = list(csv.DictReader(io.StringIO(labelled.text)))
        assert list(table[0]) == EXPORT_COLUMNS
        expected = [m for m in mentions if m.source_label == "industry"]
        assert [row["id"] for row in table] == [m.id for m in expected]
        assert json.loads(table[0]["brands"])[0]["brand"] in ("Acme", "Globex")

        stored_only = http.get("/api/export", params={"source": "oldplugin"})
        assert [json.loads(line)["id"] for line in stored_only.text.splitlines()] == [retired.id]
        assert http.get("/api/export", params={"format": "xml"}).status_code == 422
        for path in ("/api/export", "/api/mentions", "/api/share-of-voice"):
            unknown = http.get(path, params={"source": "nosuch"})
            assert unknown.status_code == 422, path
            assert "unknown source 'nosuch'" in unknown.text


def test_audience_estimates_cover_subdomains_and_are_checked(tmp_path: Path) -> None:
    from listener.config import parse_project
    from listener.errors import ConfigError

    project = parse_project(
        {
            "brands": [{"name": "Acme"}],
            "audience": {"www.TechCrunch.com": 12_000_000, "bbc.co.uk": 40_000_000},
        },
        tmp_path / "listener.toml",
    )
    assert project.audience_of("techcrunch.com") == 12_000_000
    assert project.audience_of("news.bbc.co.uk") == 40_000_000
    assert project.audience_of("co.uk") is None
    assert project.audience_of("huffpost.com") is None
    with pytest.raises(ConfigError, match="audience"):
        parse_project(
            {"brands": [{"name": "Acme"}], "audience": {"x.com": -1}}, tmp_path / "listener.toml"
        )
