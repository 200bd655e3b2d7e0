"""Peak memory and time of the ``rss`` source reading one very large feed (default 100,000 items).

Each measurement runs in a fresh process: it builds the feed of
``bench/faults.py`` (own link, date and wording per item), then hands it to
:meth:`RssSource.parse` and consumes the Mentions one at a time, as the
spider does. Prints the peak resident memory of that process, the memory
before parsing (interpreter, libraries and the feed's bytes), and the
seconds. Usage::

    python bench/large_feed.py [--items 100000] [--format rss|atom]

To measure another checkout (say the commit before streaming), extract it to
DIR and run ``PYTHONPATH=DIR python bench/large_feed.py --checkout DIR``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def atom(count: int) -> bytes:
    """The same items as an Atom feed."""
    from datetime import timedelta

    from faults import START, WORDS

    entries = []
    for number in range(count):
        words = " ".join(WORDS[(number >> shift) % len(WORDS)] for shift in range(0, 24, 3))
        stamp = (START + timedelta(minutes=number)).isoformat()
        entries.append(
            f"<entry><title>Acme note {number}</title>"
            f'<link href="https://news.example/acme/{number}"/>'
            f"<id>urn:acme:{number}</id><updated>{stamp}</updated>"
            f"<summary>Acme {words} number {number}.</summary></entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Generated</title><id>urn:gen</id><updated>{START.isoformat()}</updated>"
        f"{''.join(entries)}</feed>"
    ).encode()


def measure(items: int, kind: str, checkout: str | None) -> dict[str, object]:
    """In this (fresh) process: parse the feed, consume every Mention."""
    import importlib.util

    sys.path.insert(0, str(HERE))
    from faults import feed

    from listener.sdk.replay import Route  # noqa: F401  (imports what a crawl has loaded)
    from listener.source import Request, Response

    plugin = Path(checkout or HERE.parent) / "plugins" / "rss.py"
    spec = importlib.util.spec_from_file_location("bench_rss", plugin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_rss"] = module  # pydantic resolves its annotations there
    spec.loader.exec_module(module)
    RssOptions, RssSource = module.RssOptions, module.RssSource

    body = feed(items) if kind == "rss" else atom(items)
    source = RssSource(RssOptions(plugin="rss", feeds=["https://news.example/feed.xml"]), [])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    response = Response(
        url="https://news.example/feed.xml",
        status=200,
        headers={"content-type": f"application/{kind}+xml"},
        body=body,
        request=Request(url="https://news.example/feed.xml"),
    )
    count = 0
    for _mention in source.parse(response):  # the spider takes them one at a time
        count += 1
    elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "format": kind,
        "items": items,
        "mentions": count,
        "feed_mb": round(len(body) / 1e6, 1),
        "rss_before_parse_mb": round(before),
        "peak_rss_mb": round(peak),
        "seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--format", choices=["rss", "atom"], nargs="+", default=["rss", "atom"])
    parser.add_argument("--checkout", help="measure the rss source of this checkout instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(measure(arguments.items, arguments.format[0], arguments.checkout)))
        return
    for kind in arguments.format:
        command = [sys.executable, __file__, "--child", "--items", str(arguments.items)]
        if arguments.checkout:
            command += ["--checkout", arguments.checkout]
        result = subprocess.run(
            [*command, "--format", kind], capture_output=True, text=True, check=False
        )
        print(result.stdout.strip() or result.stderr.strip()[-2000:], flush=True)


if __name__ == "__main__":
    main()
