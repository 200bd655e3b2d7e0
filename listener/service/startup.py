"""What listener's own processes leave out when they start.

Every ``listener`` command, crawl child and web server pays its imports in CPU
before it works (``bench/startup.py`` prints the figures). Some of that is
libraries importing optional parts listener never uses. :func:`leave_out_unused_imports`
is called at the start of listener's own entry points (the CLI and the
``listener run`` crawl child), not on ``import listener``, so programs that
use listener as a library keep every optional part of their libraries.

Left out:

* **aiohttp for elastic-transport.** elastic-transport imports aiohttp when it
  is installed (Scrapy installs it), for the asynchronous client's
  ``AiohttpHttpNode``; listener uses the synchronous client (urllib3) only.
  That import cost about 0.12 s of CPU per process. In listener's processes
  elastic-transport sees aiohttp as not installed; aiohttp itself stays
  importable for anything else.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

#: The elastic-transport module that imports aiohttp when it can.
ELASTIC_AIOHTTP_NODE = "elastic_transport._node._http_aiohttp"


class _WithoutAiohttp(importlib.abc.Loader):
    """Runs the wrapped loader's module with ``import aiohttp`` failing, then undoes that."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        if "aiohttp" in sys.modules:  # already imported by something else: nothing to save
            self.loader.exec_module(module)
            return
        # None in sys.modules reads as "not installed" to the import system.
        sys.modules["aiohttp"] = None  # type: ignore[assignment]
        try:
            self.loader.exec_module(module)
        finally:
            if sys.modules.get("aiohttp", False) is None:
                del sys.modules["aiohttp"]

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename... for tracebacks
        return getattr(self.loader, name)


class _ElasticTransportFinder(importlib.abc.MetaPathFinder):
    """Finds elastic-transport's aiohttp node as usual, and loads it without aiohttp."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != ELASTIC_AIOHTTP_NODE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _WithoutAiohttp(spec.loader)
        return spec


def leave_out_unused_imports() -> None:
    """Install the import hooks above (once; a no-op when elastic-transport is already in)."""
    if ELASTIC_AIOHTTP_NODE in sys.modules:
        return
    if not any(isinstance(finder, _ElasticTransportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ElasticTransportFinder())
