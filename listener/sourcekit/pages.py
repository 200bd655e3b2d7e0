"""Fetched HTML pages: headers, decoding, refusing what is not a page, parsing, error pages."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from w3lib.encoding import html_to_unicode

from listener.sourcekit.values import http_url, one_line

__all__ = [
    "ACCEPT_HTML",
    "decode_html",
    "describe_body",
    "error_page_title",
    "first_text",
    "link_rel",
    "load_json_ld",
    "page_language",
    "parse_html",
    "response_header",
    "same_site",
    "sniff_body",
]

#: What a browser asks for; some sites answer bare clients with a bot wall.
ACCEPT_HTML = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_DEFAULT_CHARSETS = frozenset({"iso8859-1", "cp1252", "ascii", "iso8859-15"})
_SNIFFABLE_TYPES = frozenset({"", "text/plain", "application/octet-stream", "binary/octet-stream"})
# What error and bot-wall pages are titled. A title is status-like when one of its parts
# (split at " | ", " - ", ": " …) is such a phrase or a 4xx/5xx status code, with at most
# one other word ("Oops! Page not found", "Error 404 (Not Found)", "Just a moment...").
_ERROR_PHRASE = re.compile(
    r"\b(?:page not found|not found|access denied|forbidden|bad gateway|service unavailable"
    r"|internal server error|gateway time-?out|too many requests|just a moment"
    r"|attention required|are you a robot|captcha|under maintenance|temporarily unavailable)\b",
    re.IGNORECASE,
)
_STATUS_CODE = re.compile(r"^\W*(?:http\s*)?(?:error\s*)?[45]\d\d(?!\d)", re.IGNORECASE)
_TITLE_PARTS = re.compile(r"\s[|\-\u2013\u2014\u00b7\u00bb]\s|[|\u00b7\u00bb]|:\s")
_FILLER_WORDS = frozenset({"oops", "whoops", "sorry", "error", "http", "page", "the", "this", "a"})


def _status_like(part: str) -> bool:
    """Whether one part of a title says no more than an error status."""
    rest, phrases = _ERROR_PHRASE.subn(" ", part)
    code = _STATUS_CODE.match(rest)
    if code is not None:
        rest = rest[code.end() :]
    if not phrases and code is None:
        return False
    others = [word for word in re.findall(r"[^\W_]+", rest.casefold()) if word not in _FILLER_WORDS]
    return len(others) <= 1


def response_header(headers: Mapping[str, Any], name: str) -> str:
    """A header value, looked up case-insensitively; ``""`` when absent."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def _site_host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def same_site(url: str, site: str) -> bool:
    """Whether ``url`` is on ``site``'s host: equal ignoring ``www.``, or a subdomain either way."""
    a, b = _site_host(url), _site_host(site)
    if not a or not b:
        return False
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def describe_body(body: bytes) -> str:
    """The first 80 bytes of a body on one line, for error messages."""
    return " ".join(body[:80].decode("utf-8", errors="replace").split())


def sniff_body(body: bytes) -> str:
    """What a body looks like: ``html``, ``xml``, ``json``, ``pdf``, ``binary`` or ``text``."""
    start = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1024]
    lowered = start.lower()
    if start.startswith(b"%PDF") or b"\x00" in start[:512]:
        return "pdf" if start.startswith(b"%PDF") else "binary"
    if start[:1] in (b"{", b"["):
        return "json"
    if lowered.startswith((b"<!doctype html", b"<html")) or re.search(
        rb"<(html|head|body|meta|title|div|p)[\s>]", lowered[:1024]
    ):
        return "html"
    if start.startswith(b"<"):
        return "xml"
    return "text"


def decode_html(body: bytes, url: str, content_type: str = "") -> str:
    """The body of an HTML page as text; a :class:`ValueError` naming ``url`` when it is not one.

    The encoding comes from the Content-Type header, a BOM or the page's own
    ``<meta charset>``, as browsers do (w3lib), except that a body declared
    as Latin-1 or Windows-1252 that is valid UTF-8 is read as UTF-8. A body that is empty, declared
    as something other than HTML (JSON, XML, PDF, an image …) or that looks like
    JSON, PDF or binary data whatever its declared type is refused.
    """
    media_type = content_type.split(";")[0].strip().lower()
    if not body.strip():
        raise ValueError(f"{url} returned an empty body, not an HTML page")
    kind = sniff_body(body)
    if media_type in _HTML_TYPES:
        if kind in ("json", "pdf", "binary"):
            raise ValueError(
                f"{url} is declared as {media_type} but its body is {kind}, not HTML; "
                f"body starts {describe_body(body)!r}"
            )
    elif media_type in _SNIFFABLE_TYPES:
        if kind != "html":
            raise ValueError(f"{url} is not an HTML page; body starts {describe_body(body)!r}")
    else:
        raise ValueError(
            f"{url} is not an HTML page (Content-Type {media_type}); "
            f"body starts {describe_body(body)!r}"
        )
    encoding, text = html_to_unicode(content_type or None, body)
    if not body.isascii() and codecs.lookup(encoding).name in _DEFAULT_CHARSETS:
        # Declared (by a server's default charset= or an old <meta>) as Latin-1 or
        # Windows-1252 but valid UTF-8: practically never really Latin-1.
        try:
            return body.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError:
            pass
    return text


def parse_html(text: str, url: str) -> Any:
    """An lxml tree of the page (the flavour extruct's RDFa reader needs)."""
    # Imported here: extruct pulls in rdflib, mf2py and BeautifulSoup (about 0.3 s of CPU),
    # which every crawl and command that loads the built-in plugins would pay for otherwise.
    from extruct.utils import parse_xmldom_html

    try:
        tree = parse_xmldom_html(text.encode("utf-8"), encoding="utf-8")
    except (etree.ParserError, ValueError) as error:
        raise ValueError(f"{url} could not be parsed as HTML: {error}") from None
    if tree is None:
        raise ValueError(f"{url} could not be parsed as HTML")
    return tree


def first_text(tree: Any, xpath: str) -> str | None:
    """The first non-blank text (on one line) among the elements or strings ``xpath`` selects."""
    for element in tree.xpath(xpath):
        text = element if isinstance(element, str) else element.text_content()
        cleaned = one_line(str(text))
        if cleaned:
            return cleaned
    return None


def error_page_title(tree: Any) -> str | None:
    """The page's title (or first heading) when it reads like an error or bot-wall page.

    The title must be status-like (``404 Not Found``, ``Page not found | Acme``,
    ``Just a moment...``), not merely contain such words: a headline such as
    ``FaceTime bug not found in iOS 13 beta`` or ``500 jobs cut at Acme`` is no
    error page. Sources add what the page carries (little text, no structured
    data) before calling a page an error.
    """
    for xpath in ("//title", "//h1"):
        text = first_text(tree, xpath)
        if text and any(_status_like(part) for part in _TITLE_PARTS.split(text)):
            return text
    return None


def link_rel(tree: Any, rel: str, base: str) -> str | None:
    """The first ``<link>`` (or ``<a>``) with ``rel`` among its tokens, resolved to a URL."""
    for element in tree.xpath("//link[@rel and @href] | //a[@rel and @href]"):
        if rel in (element.get("rel") or "").lower().split():
            resolved = http_url(element.get("href"), base)
            if resolved:
                return resolved
    return None


def page_language(tree: Any) -> str | None:
    """The primary language subtag of the page's ``lang``/``xml:lang`` (``en``), else None."""
    value = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if not value:
        return None
    primary = value.strip().split("-")[0].split("_")[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def load_json_ld(raw: str) -> object | None:
    """A JSON-LD ``<script>``'s content; None when it is blank or not JSON.

    Tolerates what hand-written blocks carry: ``<!--``/CDATA wrappers, comments,
    raw control characters in strings and trailing commas.
    """
    text = raw.strip()
    text = re.sub(r"^\s*(?://\s*)?<!\[CDATA\[|(?://\s*)?\]\]>\s*$", "", text)
    text = re.sub(r"^\s*<!--|-->\s*$", "", text).strip()
    if not text:
        return None
    try:
        return json.loads(text, strict=False)
    except ValueError:
        pass
    try:
        import jstyleson  # extruct's own fallback for hand-written JSON-LD
    except ImportError:  # pragma: no cover - an extruct dependency
        return None
    try:
        loaded: object = jstyleson.loads(text, strict=False)
    except (ValueError, TypeError):
        return None
    return loaded
