"""Reading the values APIs and pages give: numbers, times, dates, text, URLs, secrets, terms.

Every reader here is *tolerant*: it returns ``None`` for a value it cannot read
(missing, blank, of the wrong type, out of range) instead of raising, so a
source can skip or degrade one item and go on with the rest. None of them
guesses: a non-whole number is not an integer, an impossible calendar date
(``2026-13-45``, ``2026-02-30``) is not a date.
"""

from __future__ import annotations

import html
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any, overload
from urllib.parse import urljoin, urlsplit

from listener.config import BrandConfig
from listener.errors import ConfigError
from listener.mention import Mention, canonicalize_url, unwrap_redirect
from listener.text import html_to_text

__all__ = [
    "canonical_url",
    "clean_text",
    "from_timestamp",
    "guarded",
    "host_of",
    "http_url",
    "one_line",
    "parse_date",
    "parse_time",
    "search_terms",
    "secret_from_env",
    "to_count",
    "to_float",
    "to_int",
]


# --------------------------------------------------------------------------- search terms


def search_terms(brands: Iterable[BrandConfig]) -> dict[str, list[str]]:
    """The distinct API search terms and the brands that asked for each.

    A leading ``#`` or ``@`` is dropped (search APIs search words, and ``#acme``
    finds what ``acme`` finds); inner whitespace is collapsed; terms that are
    equal ignoring case are searched once, spelled as first written. Order
    follows the project file.
    """
    terms: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for brand in brands:
        for term in brand.terms:
            query = " ".join(term.lstrip("#@").split())
            if not query:
                continue
            first = spelled.setdefault(query.casefold(), query)
            if brand.name not in terms.setdefault(first, []):
                terms[first].append(brand.name)
    return terms


# --------------------------------------------------------------------------- numbers


def _decimal(value: object) -> Decimal | None:
    """A finite Decimal from an int, a float or a numeric string; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(value) if math.isfinite(value) else None
    if not isinstance(value, str | bytes):
        return None
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    # Finite and of a sane size: "1e999999999" must not become a gigantic int.
    return number if number.is_finite() and abs(number.adjusted()) <= 400 else None


def to_int(value: object) -> int | None:
    """An integer from an int, a whole float or a numeric string; ``None`` otherwise.

    ``7``, ``7.0``, ``"7"``, ``" 7 "``, ``"7.0"``, ``"-3"`` and ``"1e3"`` are
    integers. ``True``/``False``, ``None``, ``""``, ``"seven"``, ``"1,234"``,
    NaN and infinities are not, and neither is a number with a fractional part
    (``2.5``, ``"2.5"``): it is never rounded or truncated. A source whose API
    reports fractional scores rounds explicitly: ``round(to_float(value))``.
    """
    number = _decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def to_count(value: object) -> int | None:
    """A non-negative integer (likes, comments, views) as :func:`to_int` reads it; else None."""
    number = to_int(value)
    return number if number is not None and number >= 0 else None


def to_float(value: object) -> float | None:
    """A finite float from an int, a float or a numeric string (``"4.5"``); ``None`` otherwise.

    Booleans, NaN, infinities and strings that are not one number (``"4,5"``,
    ``"4.5 stars"``) are ``None``.
    """
    number = _decimal(value)
    if number is None:
        return None
    result = float(number)
    return result if math.isfinite(result) else None


# --------------------------------------------------------------------------- times and dates


def _aware(parsed: datetime) -> datetime:
    if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_time(value: object) -> datetime | None:
    """A timestamp string as an aware UTC datetime; ``None`` when it is not one.

    Reads ISO 8601 / RFC 3339 (``2026-11-02T10:00:00Z``, ``…+02:00``,
    ``2026-11-02``) and RFC 822 e-mail dates (``Mon, 02 Nov 2026 10:00:00
    GMT``). A time without a zone is UTC. Numbers are not read here (see
    :func:`from_timestamp`), and neither are impossible dates.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _aware(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def from_timestamp(value: object) -> datetime | None:
    """Unix seconds (an int, a float or a numeric string) as an aware UTC datetime; else None."""
    number = _decimal(value)
    if number is None:
        return None
    try:
        return datetime.fromtimestamp(float(number), UTC)
    except (OverflowError, OSError, ValueError):
        return None


# Month names in the languages pages and feeds are written in, by their first letters
# (German, French, Spanish, Italian, Dutch, Portuguese; longest prefixes first).
_MONTH_PREFIXES = (
    ("juil", 7), ("juin", 6), ("jan", 1), ("ene", 1), ("gen", 1), ("feb", 2), ("fev", 2),
    ("fév", 2), ("mär", 3), ("mrz", 3), ("mrt", 3), ("mar", 3), ("apr", 4), ("avr", 4),
    ("abr", 4), ("may", 5), ("mai", 5), ("mag", 5), ("mei", 5), ("jun", 6), ("giu", 6),
    ("jul", 7), ("lug", 7), ("aug", 8), ("ago", 8), ("aoû", 8), ("aou", 8), ("sep", 9),
    ("set", 9), ("oct", 10), ("okt", 10), ("ott", 10), ("out", 10), ("nov", 11),
    ("dec", 12), ("déc", 12), ("dez", 12), ("dic", 12),
)  # fmt: skip
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WORD = re.compile(r"[^\W\d_]+\.?")


def _english_month(word: str) -> str:
    lowered = word.rstrip(".").lower()
    for prefix, month in _MONTH_PREFIXES:
        if lowered.startswith(prefix):
            return _MONTHS[month - 1]
    return word


def english_months(text: str) -> str:
    """``text`` with month names of other languages (``Dez``, ``février``) in English."""
    return _WORD.sub(lambda match: _english_month(match.group()), text)


_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
# A 12-hour clock: e-mail date parsing reads "10:00 PM" as 10:00, dateutil does not.
_TWELVE_HOUR = re.compile(r"\d\s*[AaPp]\.?\s?[Mm]\b\.?")
# Dates with dots are day first wherever they are written (05.03.2024, 5. März 2024).
_DOTTED_DAY = re.compile(r"^\s*\d{1,2}\.\s*(?:\d{1,2}\.|[^\W\d_])")
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{1,2}))?")
# A clock (10:00), or an ISO 8601 time in basic format (20161206T171700Z, 2016-12-06T1717).
_TIME = re.compile(r"\d{1,2}:\d{2}|\dT\d{2}")


def parse_date(value: object) -> tuple[datetime, bool] | None:
    """A date as written on web pages: an aware UTC datetime and whether it carried a time.

    Reads what :func:`parse_time` reads (ISO 8601 basic format too:
    ``20161206T171700Z`` carries its time and zone), W3C partial dates (``2024``,
    ``2024-03``: the first of the period) and written dates with a four-digit
    year (``March 5, 2024``, ``5 March 2024 10:00``, ``Feb 1, 2023 10:00 PM``;
    ``05.03.2024`` is day first; month names in German, French, Spanish,
    Italian, Dutch and Portuguese too: ``5. März 2024``). A date alone is midnight
    UTC; a time without a zone is UTC. ``None`` when there is no date or it is
    impossible (``2026-13-45`` is rejected, never rolled over into 2027).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    has_time = bool(_TIME.search(text))
    partial = _PARTIAL_DATE.fullmatch(text)
    if partial:
        try:
            return _aware(datetime(int(partial.group(1)), int(partial.group(2) or 1), 1)), False
        except ValueError:
            return None
    parsed = None if _TWELVE_HOUR.search(text) else parse_time(text)
    if parsed is not None:
        return parsed, has_time
    if not _YEAR.search(text):
        return None
    from dateutil import parser as date_parser  # a dependency of trafilatura (htmldate)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            written = date_parser.parse(
                english_months(re.sub(r"\b(?:de|del)\b", " ", text)),  # "5 de marzo de 2024"
                default=datetime(2000, 1, 1),
                dayfirst=bool(_DOTTED_DAY.match(text)),
            )
        except (ValueError, OverflowError, TypeError):
            return None
    return _aware(written), has_time


# --------------------------------------------------------------------------- text

_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?>")


def one_line(value: object) -> str | None:
    """A single line: HTML entities decoded, whitespace collapsed; ``None`` when blank."""
    if not isinstance(value, str):
        return None
    return " ".join(html.unescape(value).split()) or None


def clean_text(value: object) -> str:
    """Plain text with paragraphs kept, from HTML or from plain text (entities decoded).

    A value with HTML tags goes through :func:`listener.text.html_to_text`;
    plain text has its lines trimmed and at most one blank line between
    paragraphs. ``""`` for anything blank or not a string.
    """
    if not isinstance(value, str) or not value.strip():
        return ""
    if _TAG.search(value):
        return html_to_text(value)
    text = html.unescape(value).replace("\r\n", "\n")
    paragraphs = []
    for paragraph in re.split(r"\n[ \t]*\n+", text.strip()):
        lines = [_SPACES.sub(" ", line).strip() for line in paragraph.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            paragraphs.append(joined)
    return "\n\n".join(paragraphs)


# --------------------------------------------------------------------------- URLs


def host_of(url: str) -> str:
    """The lower-case host of a URL (``""`` when it has none)."""
    return (urlsplit(url).hostname or "").lower()


def http_url(value: object, base: str | None = None) -> str | None:
    """``value`` as an absolute http(s) URL (resolved against ``base`` when given); else None.

    Blank strings, non-strings, other schemes (``mailto:``, ``javascript:``),
    URLs without a host, malformed ones (``https://[::1/``, a port that is not a
    number from 0 to 65535, which would fail when the mention is built) and
    JSON-LD blank nodes (``_:b0``) are ``None``.
    """
    if not isinstance(value, str) or not value.strip() or value.strip().startswith("_:"):
        return None
    try:
        resolved = urljoin(base, value.strip()) if base else value.strip()
        parts = urlsplit(resolved)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return resolved


def canonical_url(url: str, *, keep_fragment: bool = False) -> str:
    """The URL a mention's id derives from (what :meth:`Mention.create` computes).

    Known redirect links (Google Alerts' ``google.com/url?url=…``) unwrapped to
    their target, lower-case host, no default port, tracking parameters
    (``utm_*``, ``fbclid`` …) and the fragment dropped; ``keep_fragment=True``
    keeps ``#anchor`` for sources giving one item per anchor of a page (pass
    the same flag to ``Mention.create``).
    """
    return canonicalize_url(unwrap_redirect(url), keep_fragment=keep_fragment)


# --------------------------------------------------------------------------- secrets


@overload
def secret_from_env(source: str, option: str, variable: str, *, hint: str = "") -> str: ...
@overload
def secret_from_env(
    source: str, option: str, variable: str | None, *, hint: str = ""
) -> str | None: ...
def secret_from_env(
    source: str, option: str, variable: str | None, *, hint: str = ""
) -> str | None:
    """The value of the environment variable an option names (credentials never sit in files).

    ``None`` when the option is unset (``variable`` is ``None``); a
    :class:`~listener.errors.ConfigError` naming the source, the option and the
    variable when the variable is unset or blank (``hint`` is appended to it).
    Call it in ``__init__`` so the error appears before any request.
    """
    if variable is None:
        return None
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ConfigError(
            f"{source}: option {option} names the environment variable {variable}, "
            f"which is not set or empty; export {variable} or remove {option}"
            + (f" ({hint})" if hint else "")
        )
    return value


# --------------------------------------------------------------------------- items

#: What reading a malformed item can raise: a shape no reader foresaw, a value
#: ``Mention`` refuses (pydantic's ValidationError is a ValueError).
_ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)


def guarded(convert: Callable[..., Mention | str], *args: Any, **kwargs: Any) -> Mention | str:
    """``convert(*args, **kwargs)``, or why it failed when it raised on a malformed item.

    A source maps each item of a page with a function returning a Mention or the
    reason it cannot be one; called through this, an item of a shape nobody foresaw
    is skipped with the reason ``unreadable (TypeError: ...)`` instead of raising out
    of ``parse()``, which would lose the whole page and its pagination.
    """
    try:
        return convert(*args, **kwargs)
    except _ITEM_ERRORS as error:
        detail = " ".join(str(error).split())
        detail = detail if len(detail) <= 120 else detail[:119] + "…"
        return f"unreadable ({type(error).__name__}: {detail})"


def guarded_object(
    convert: Callable[..., Mention | str], item: object, *args: Any, **kwargs: Any
) -> Mention | str:
    """:func:`guarded` for an item that should be a JSON object: ``"not an object"`` when
    ``item`` is no dict (a ``null`` or a string in a page's list), else
    ``guarded(convert, item, *args, **kwargs)``."""
    if not isinstance(item, dict):
        return "not an object"
    return guarded(convert, item, *args, **kwargs)
