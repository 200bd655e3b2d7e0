"""Mentions from NDJSON text input (``listener enrich``): one JSON object per line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from pydantic import ValidationError

from listener.errors import ConfigError
from listener.mention import Mention

#: Where mentions without a URL point: the reserved ``.invalid`` domain, never fetched.
PLACEHOLDER_HOST = "https://input.listener.invalid"


def mention_from_record(record: dict[str, object], where: str) -> Mention:
    """One input object as a Mention: ``text`` required; ``id``, ``title``, ``url``,
    ``published_at``, ``source`` and ``source_kind`` optional."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: 'text' is required and must be a non-empty string")
    given_id = record.get("id")
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    url = record.get("url") or f"{PLACEHOLDER_HOST}/{given_id or digest}"
    published = record.get("published_at") or datetime.now(UTC).isoformat()
    try:
        when = datetime.fromisoformat(str(published).replace("Z", "+00:00"))
    except ValueError as error:
        raise ConfigError(
            f"{where}: published_at {published!r} is not an ISO date ({error})"
        ) from None
    try:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        mention = Mention.create(
            source=str(record.get("source") or "input"),
            source_kind=str(record.get("source_kind") or "social"),
            url=str(url),
            text=text,
            title=record.get("title") if isinstance(record.get("title"), str) else None,
            published_at=when,
        )
    except (ValueError, ValidationError) as error:
        raise ConfigError(f"{where}: {error}") from None
    if given_id is not None:
        mention = mention.model_copy(update={"id": str(given_id)})
    return mention


def read_ndjson_mentions(
    lines: Iterable[str],
    name: str = "stdin",
    on_error: Callable[[ConfigError], None] | None = None,
) -> Iterator[Mention]:
    """Stream Mentions from NDJSON lines; a bad line is an error naming its number.

    With ``on_error``, a bad line is handed to it and skipped, and reading goes on.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield _line_mention(line, f"{name} line {number}")
        except ConfigError as error:
            if on_error is None:
                raise
            on_error(error)


def _line_mention(line: str, where: str) -> Mention:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    return mention_from_record(record, where)
