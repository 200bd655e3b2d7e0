"""The ``listener`` command line: the root group ``main`` and its commands.

Each command group is a module of this package (crawl, search, data, analytics,
top, report, sources, plugins, service, web); every command prints through
:mod:`listener.cli.output`. The entry point is ``listener.cli:main``, also run by
``python -m listener.cli``.
"""

from __future__ import annotations

import logging
import sys

import click

from listener import __version__
from listener.cli import analytics, crawl, data, plugins, report, search, service, sources, top, web
from listener.service.startup import leave_out_unused_imports

# Libraries that log every retry and failure with a traceback; listener reports the
# condition itself in one line, so they are heard only with -v.
_CHATTY_LOGGERS = (
    "elastic_transport",
    "urllib3",
    "scrapy.downloadermiddlewares.retry",
    "scrapy.downloadermiddlewares.robotstxt",
)


# Loggers that repeat one condition per batch (the cluster is down: every batch is spooled);
# the end-of-crawl summary gives the totals, so without -v each message is shown once.
_ONCE_LOGGERS = ("listener.store.indexer", "listener.crawl.pipelines")


class _QuietFilter(logging.Filter):
    """Without -v: libraries' retry chatter hidden, per-batch repeats shown once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, object]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        chatty = any(name == c or name.startswith(c + ".") for c in _CHATTY_LOGGERS)
        if chatty and record.levelno < logging.CRITICAL:
            return False
        if name in _ONCE_LOGGERS:
            key = (name, record.msg)
            if key in self.seen:
                return False
            self.seen.add(key)
        return True


class _LogFormatter(logging.Formatter):
    """One line per record; tracebacks only when asked for (``-v``)."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks:
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="listener")
@click.option("-v", "--verbose", count=True, help="More log output, with tracebacks (-vv: debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """listener: crawl public mentions of brands, enrich them, index them, report share of voice."""
    leave_out_unused_imports()  # before the command imports elasticsearch
    ctx.ensure_object(dict)
    level = ["WARNING", "INFO", "DEBUG"][min(verbose, 2)]
    ctx.obj["log_level"] = level
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(_LogFormatter(tracebacks=verbose > 0))
    logging.root.addHandler(handler)
    logging.root.setLevel(level)
    if not verbose:
        handler.addFilter(_QuietFilter())


for _command in (
    crawl.crawl,
    crawl.demo,
    crawl.enrich,
    crawl.reenrich,
    search.search,
    search.preview,
    data.export,
    data.rematch,
    data.retention,
    data.forget,
    analytics.sov,
    analytics.sentiment_command,
    analytics.earned_command,
    analytics.trending_command,
    analytics.spikes_command,
    analytics.alerts_command,
    top.top_group,
    report.report_command,
    sources.sources,
    plugins.plugins,
    service.run_command,
    service.worker_command,
    web.serve_command,
):
    main.add_command(_command)
