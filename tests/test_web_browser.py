"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

The server runs in a background thread against the session's engine with the
corpus of ``test_web_api.py`` (the analytics sample with its Acme spike, plus
hostile mentions). No browser is downloaded: the tests use /usr/bin/chromium
(``.ci/install-chromium`` installs it) and skip without it. Screenshots are
written to ``artifacts/screenshots/`` (gitignored; CI keeps them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_web_api as corpus_kit
from elasticsearch import Elasticsearch

from listener.web import create_app
from listener.web.server import BackgroundServer

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
LOAD_TIMEOUT = 60_000
#: Every page's viewport; with less motion asked for, the cards' loading spinners stand still
#: instead of redrawing at 60 frames/s while the API answers (Chromium CPU on a busy machine).
CONTEXT: dict[str, Any] = {"viewport": {"width": 1440, "height": 1000}, "reduced_motion": "reduce"}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None,
    reason="needs Debian's chromium at /usr/bin/chromium (run .ci/install-chromium)",
)


@pytest.fixture(scope="module")
def corpus(
    engine: Any, session_client: Elasticsearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[corpus_kit.Corpus]:
    folder = tmp_path_factory.mktemp("webui")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LISTENER_HOME", str(folder / "home"))
        patch.delenv("LISTENER_ES_URL", raising=False)
        built = corpus_kit.index_corpus(session_client, folder / "project", engine.url)
        yield built
    corpus_kit.drop_corpus(session_client, built)


@pytest.fixture(scope="module")
def server(corpus: corpus_kit.Corpus) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(corpus.project)) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


class PageWatch:
    """A page with everything that would show an injected script ran: dialogs and errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def watch(browser: Any) -> Iterator[PageWatch]:
    context = browser.new_context(**CONTEXT, timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT)
    watched = PageWatch(page)
    yield watched
    context.close()


def screenshot(page: Any, name: str, *, full_page: bool = False, element: str = "") -> Path:
    """Keep a screenshot of the page (or of one element) under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if element:
        page.locator(element).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


def open_dashboard(watch: PageWatch, server: BackgroundServer, fragment: str = "") -> Any:
    page = watch.page
    page.goto(f"{server.url}/{fragment}")
    settle(page)
    return page


def settle(page: Any) -> None:
    """Wait until every card has its data (no card shows the loading spinner)."""
    expect(page.locator("#mention-list > li").first).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(page.locator(".card.loading")).to_have_count(0, timeout=LOAD_TIMEOUT)


def search(page: Any, text: str, mode: str = "text") -> None:
    page.select_option("#mode", mode)
    page.fill("#q", text)
    page.click("#search-button")
    expect(page.locator("#result-count")).not_to_have_text("Searching…", timeout=LOAD_TIMEOUT)
    expect(page.locator(".card.loading")).to_have_count(0, timeout=LOAD_TIMEOUT)


def mention_ids(page: Any) -> list[str]:
    return list(page.locator("#mention-list > li.mention").evaluate_all(
        "items => items.map(item => item.dataset.id)"
    ))  # fmt: skip


# -- tests --------------------------------------------------------------------------------------


def test_dashboard_renders_charts_tables_and_mentions(
    watch: PageWatch, server: BackgroundServer, corpus: corpus_kit.Corpus
) -> None:
    page = open_dashboard(watch, server)
    # One line per brand in each time chart, a spike marker on the volume chart.
    for chart in ("#volume-chart", "#sov-chart", "#sentiment-chart"):
        expect(page.locator(f"{chart} svg path.line")).to_have_count(3)
    expect(page.locator("#volume-chart svg circle.marker").first).to_be_visible()
    expect(page.locator("#kpis .kpi")).to_have_count(3)
    expect(page.locator("#kpis .kpi").first).to_contain_text("Acme")
    expect(page.locator("#earned-table tbody tr")).to_have_count(3)
    expect(page.locator("#authors-table tbody tr").first).to_be_visible()
    expect(page.locator("#domains-table tbody tr").first).to_be_visible()
    expect(page.locator("#health-table tbody tr")).to_have_count(1)
    expect(page.locator("#health-table")).to_contain_text("never run")
    expect(page.locator("#sentiment-bars .stacked")).to_have_count(3)
    expect(page.locator("#trending-list")).to_contain_text("price cut")
    expect(page.locator("#mention-list > li.mention")).to_have_count(25)
    total = len(corpus.mentions)
    expect(page.locator("#result-count")).to_have_text(f"Showing 25 of {total} mentions")
    first = page.locator("#mention-list > li.mention").first
    for part in (".source", ".date", ".brand-chip", ".engagement", ".mention-text"):
        expect(first.locator(part).first).to_be_visible()
    # The dashboard never reaches beyond its own server.
    assert all(url.startswith(server.url) for url in watch.requests), watch.requests
    assert not watch.errors and not watch.dialogs
    screenshot(page, "dashboard")
    screenshot(page, "dashboard-full", full_page=True)


def test_spike_marker_shows_its_explanation(watch: PageWatch, server: BackgroundServer) -> None:
    page = open_dashboard(watch, server)
    marker = page.locator('#volume-chart circle.marker[data-period="2024-04-20"]')
    expect(marker).to_have_count(1)
    assert marker.get_attribute("data-brand") == "Acme"
    marker.click()
    detail = page.locator("#spike-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("Spike: Acme")
    expect(detail).to_contain_text("battery recall")
    expect(detail).to_contain_text("reddit")
    expect(detail.locator("ol.compact-list li").first).to_be_visible()
    screenshot(page, "spike-explanation")
    screenshot(page, "spike-explanation-card", element="#volume-card")
    # "Show these mentions" narrows the list to that day and brand.
    detail.get_by_role("button", name="Show these mentions").click()
    settle(page)
    expect(page.locator("#since")).to_have_value("2024-04-20")
    expect(page.locator("#until")).to_have_value("2024-04-20")
    dates = page.locator("#mention-list time").evaluate_all(
        "items => items.map(item => item.dateTime)"
    )
    assert dates and all(d.startswith("2024-04-20") for d in dates)


def test_search_highlights_the_words(watch: PageWatch, server: BackgroundServer) -> None:
    page = open_dashboard(watch, server)
    search(page, "battery recall")
    items = page.locator("#mention-list > li.mention")
    assert items.count() > 0
    for index in range(items.count()):
        marks = items.nth(index).locator("mark").all_text_contents()
        assert {m.lower() for m in marks} >= {"battery", "recall"}, marks
    expect(page.locator("#result-count")).to_contain_text("Showing")
    assert "q=battery+recall" in page.url
    screenshot(page, "search")
    screenshot(page, "search-results", element="#mentions-card")


def test_filters_narrow_the_list_and_the_charts(watch: PageWatch, server: BackgroundServer) -> None:
    page = open_dashboard(watch, server)
    page.check('#brand-filter input[value="Globex"]')
    settle(page)
    expect(page.locator("#sov-chart svg path.line")).to_have_count(1)
    expect(page.locator("#kpis .kpi")).to_have_count(1)
    page.select_option("#sentiment", "negative")
    settle(page)
    items = page.locator("#mention-list > li.mention")
    assert items.count() > 0
    for index in range(items.count()):
        chip = items.nth(index).locator(".brand-chip", has_text="Globex")
        expect(chip).to_contain_text("negative")
    page.select_option("#source", "reddit")
    settle(page)
    sources = page.locator("#mention-list .source").all_text_contents()
    assert sources and all(s.startswith("reddit") for s in sources)
    screenshot(page, "filters")
    # The view is in the address: reloading keeps it.
    page.reload()
    settle(page)
    expect(page.locator("#source")).to_have_value("reddit")
    expect(page.locator('#brand-filter input[value="Globex"]')).to_be_checked()


def test_load_more_pages_through_every_result(
    watch: PageWatch, server: BackgroundServer, corpus: corpus_kit.Corpus
) -> None:
    # Opened on the brand's view (the address holds it, as test_filters checks): one
    # dashboard load instead of two, each about 2.5 s of engine CPU (the spikes card).
    page = open_dashboard(watch, server, "#brand=Globex")
    expect(page.locator('#brand-filter input[value="Globex"]')).to_be_checked()
    expected = sum("Globex" in m.brand_names for m in corpus.mentions)
    more = page.locator("#more")
    pages = 1
    while more.is_visible():
        shown = page.locator("#mention-list > li.mention").count()
        more.click()
        expect(page.locator("#mention-list > li.mention")).not_to_have_count(shown)
        pages += 1
        assert pages < 50
    ids = mention_ids(page)
    assert pages == -(-expected // 25) > 1
    assert len(ids) == len(set(ids)) == expected
    expect(page.locator("#result-count")).to_have_text(f"Showing {expected} of {expected} mentions")


def test_brand_rule_search_and_its_errors(watch: PageWatch, server: BackgroundServer) -> None:
    page = open_dashboard(watch, server)
    search(page, "acme NEAR/3 skates AND #acme", mode="rule")
    expect(page.locator("#mention-list > li.mention")).to_have_count(1)
    marks = page.locator("#mention-list mark").all_text_contents()
    assert {"Acme", "Skates", "#acme"} <= set(marks)
    search(page, "acme NEAR", mode="rule")
    expect(page.locator("#filter-error")).to_contain_text("NEAR/5")
    screenshot(page, "rule-error")


@pytest.mark.parametrize("csp", ["with-csp", "csp-bypassed"])
def test_hostile_content_is_shown_as_text_and_never_runs(
    browser: Any, server: BackgroundServer, corpus: corpus_kit.Corpus, csp: str
) -> None:
    # With the Content-Security-Policy bypassed, the rendering alone must keep scripts out.
    context = browser.new_context(**CONTEXT, bypass_csp=csp == "csp-bypassed")
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT)
    watch = PageWatch(page)
    try:
        # Straight to the search's view (the address holds it; typing a search is
        # test_search_highlights'): one dashboard load instead of two.
        page.goto(f"{server.url}/#q=zzhostile")
        settle(page)
        expect(page.locator("#q")).to_have_value("zzhostile")
        items = page.locator("#mention-list > li.mention")
        expect(items).to_have_count(2)
        # Give any injected handler (img onerror, svg onload) a chance to fire.
        page.evaluate("() => new Promise(resolve => setTimeout(resolve, 500))")
        assert page.evaluate("() => window.__pwned") is None
        assert watch.dialogs == []
        assert watch.errors == []
        # The markup is visible as text, not as elements.
        text = page.locator("#mention-list").inner_text()
        assert "<script>window.__pwned = 1;" in text
        assert '<img src=x onerror="window.__pwned=4">' in text
        assert "<svg/onload=" in text
        assert (
            page.locator("#mention-list script, #mention-list img, #mention-list svg").count() == 0
        )
        assert page.locator("#mention-list b").count() == 0
        assert page.evaluate("() => document.scripts.length") == 2
        # No javascript:, data: or other non-http(s) link anywhere on the page.
        protocols = page.locator("a[href]").evaluate_all(
            "links => links.map(link => new URL(link.href, location.href).protocol)"
        )
        assert set(protocols) <= {"http:", "https:"}
        for link in page.locator("#mention-list a").all():
            href = link.get_attribute("href") or ""
            assert href.startswith(("http://", "https://")), href
        assert page.locator('[href^="javascript" i], [src^="javascript" i]').count() == 0
        # The hostile mentions have no link out: their URLs were not http(s).
        for index in range(items.count()):
            expect(items.nth(index).locator(".open-link")).to_have_count(0)
            expect(items.nth(index).locator("a.title-link")).to_have_count(0)
        screenshot(page, f"hostile-content-{csp}", element="#mentions-card")
    finally:
        context.close()


def test_token_prompt_unlocks_a_secured_server(watch: PageWatch, corpus: corpus_kit.Corpus) -> None:
    with BackgroundServer(create_app(corpus.project, token=corpus_kit.TOKEN)) as secured:
        page = watch.page
        page.goto(f"{secured.url}/")
        expect(page.locator("#auth")).to_be_visible()
        page.fill("#auth-token", "wrong-token-wrong-token")
        page.click("#auth-form button[type=submit]")
        expect(page.locator("#auth-error")).to_contain_text("not accepted")
        screenshot(page, "token-prompt")
        page.fill("#auth-token", corpus_kit.TOKEN)
        page.click("#auth-form button[type=submit]")
        settle(page)
        expect(page.locator("#auth")).to_be_hidden()
        expect(page.locator("#signout")).to_be_visible()
        expect(page.locator("#kpis .kpi")).to_have_count(3)
