"""The source kit: what source plugins share, so they never copy from (or import) each other.

Public and documented (docs/plugins.md, "The source kit"); listener's own
sources use nothing else. Import from here::

    from listener.sourcekit import parse_time, search_terms, to_count

- Search terms: :func:`search_terms`.
- Numbers: :func:`to_int`, :func:`to_count`, :func:`to_float` — one behaviour:
  ints, whole floats and numeric strings are read; non-whole numbers are never
  rounded into integers; anything unreadable is ``None``.
- Times: :func:`parse_time` (ISO 8601 / RFC 3339 / RFC 822 strings),
  :func:`from_timestamp` (Unix seconds), :func:`parse_date` (dates as written
  on web pages, and whether they carried a time). All aware UTC; impossible
  dates are ``None``.
- Text: :func:`html_to_text`, :func:`clean_text`, :func:`one_line`.
- URLs: :func:`http_url`, :func:`canonical_url`, :func:`host_of`.
- Secrets: :func:`secret_from_env`.
- Items: :func:`guarded` (an item that makes its mapping raise is skipped, with why),
  :func:`guarded_object` (the same, and an item that is no JSON object is skipped too);
  :class:`SkipReport` (a page's skipped items counted by reason, named, logged in one line).
- Feeds: :func:`read_feed` (RSS, Atom, JSON Feed) into :class:`Feed`/:class:`FeedEntry`;
  :func:`stream_feed` for the same entries one at a time (large feeds).
- HTML pages: :func:`decode_html`, :func:`parse_html`, :func:`error_page_title`,
  :func:`response_header`, :func:`same_site` and friends.
"""

from listener.sourcekit.feeds import (
    FEED_ACCEPT,
    Feed,
    FeedEntry,
    FeedStream,
    read_feed,
    stream_feed,
)
from listener.sourcekit.pages import (
    ACCEPT_HTML,
    decode_html,
    describe_body,
    error_page_title,
    first_text,
    link_rel,
    load_json_ld,
    page_language,
    parse_html,
    response_header,
    same_site,
    sniff_body,
)
from listener.sourcekit.skips import SkipReport
from listener.sourcekit.values import (
    canonical_url,
    clean_text,
    from_timestamp,
    guarded,
    guarded_object,
    host_of,
    http_url,
    one_line,
    parse_date,
    parse_time,
    search_terms,
    secret_from_env,
    to_count,
    to_float,
    to_int,
)
from listener.text import html_to_text

__all__ = [
    "ACCEPT_HTML",
    "FEED_ACCEPT",
    "Feed",
    "FeedEntry",
    "FeedStream",
    "SkipReport",
    "canonical_url",
    "clean_text",
    "decode_html",
    "describe_body",
    "error_page_title",
    "first_text",
    "from_timestamp",
    "guarded",
    "guarded_object",
    "host_of",
    "html_to_text",
    "http_url",
    "link_rel",
    "load_json_ld",
    "one_line",
    "page_language",
    "parse_date",
    "parse_html",
    "parse_time",
    "read_feed",
    "response_header",
    "same_site",
    "search_terms",
    "secret_from_env",
    "sniff_body",
    "stream_feed",
    "to_count",
    "to_float",
    "to_int",
]
