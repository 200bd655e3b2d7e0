"""The items of a page a source skipped: counted by reason, named, logged once a page."""

from __future__ import annotations

import logging
from collections import Counter

__all__ = ["SkipReport"]


class SkipReport:
    """What one page's skipped items were and why, for one log line and the source's counter.

    Call :meth:`skip` for each item that cannot be a mention (with the reason, usually
    what :func:`~listener.sourcekit.guarded` returned, and how the log names the item:
    its id), then :meth:`log` once for the page::

        skips = SkipReport("posts")
        for post in posts:
            outcome = guarded(post_to_mention, post, self.name)
            if isinstance(outcome, str):
                skips.skip(outcome, f"id {post.get('id')}")
        skips.log(log, self.label, response.url, len(posts), into=self.skipped)

    which logs, when anything was skipped, one warning such as
    ``acme: skipped 2 of 50 posts of URL (1 not public (id 7), 1 without a date (id 9))``.
    """

    def __init__(self, items: str = "items", *, most: int = 5) -> None:
        #: What the page's items are called in the log line (``posts``, ``entries``).
        self.items = items
        #: How many items of a reason the log line names at the most.
        self.most = most
        #: How many items were skipped, by reason.
        self.counts: Counter[str] = Counter()
        #: The names of the skipped items, by reason, in page order.
        self.named: dict[str, list[str]] = {}

    def skip(self, reason: str, name: str | None = None) -> None:
        """Count one skipped item under ``reason``; ``name`` (its id) is listed in the log."""
        self.counts[reason] += 1
        if name:
            self.named.setdefault(reason, []).append(name)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def total(self) -> int:
        """How many items were skipped, whatever the reason."""
        return self.counts.total()

    def only(self, *reasons: str) -> bool:
        """Whether something was skipped and every reason is one of ``reasons`` (the ordinary
        ones, say, which a source logs at a lower level)."""
        return bool(self.counts) and set(self.counts) <= set(reasons)

    def details(self) -> str:
        """``2 without a date (id 7, id 9), 1 not an object``: reasons in order, items named."""
        parts = []
        for reason, count in sorted(self.counts.items()):
            names = self.named.get(reason, [])
            listed = ", ".join(names[: self.most])
            if len(names) > self.most:
                listed += f" and {len(names) - self.most} more"
            parts.append(f"{count} {reason}" + (f" ({listed})" if listed else ""))
        return ", ".join(parts)

    def log(
        self,
        logger: logging.Logger,
        label: str,
        url: str,
        total: int | None = None,
        *,
        into: Counter[str] | None = None,
        level: int = logging.WARNING,
    ) -> None:
        """Log the page's skips in one line and add them to ``into`` (the source's
        ``skipped`` counter); nothing when no item was skipped.

        ``label`` is the source's (``self.label``), ``url`` the page's, ``total`` how
        many items it held (``None`` when unknown: the line then says no "of N").
        """
        if not self.counts:
            return
        if into is not None:
            into.update(self.counts)
        of_total = f" of {total}" if total is not None else ""
        logger.log(
            level,
            "%s: skipped %d%s %s of %s (%s)",
            label,
            self.total(),
            of_total,
            self.items,
            url,
            self.details(),
        )
