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
* **spaCy's command line on ``import spacy``.** ``spacy/__init__.py`` imports
  ``spacy.cli.info`` for ``spacy.info()``, which imports all of spaCy's command
  line (typer, weasel, httpx, jinja2...): about 0.2 s of CPU in every process
  that enriches. While spaCy's package initialises, ``spacy.cli`` is a stub whose
  ``info`` imports the real one when called; afterwards the stub is gone, so
  ``import spacy.cli`` (or ``python -m spacy``) gets spaCy's own module.
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


def _hand_back(module: ModuleType, loader: Any) -> None:
    """Leave the module with its own loader, as if no wrapper had run it."""
    module.__loader__ = loader
    if module.__spec__ is not None:
        module.__spec__.loader = loader


class _WrappingLoader(importlib.abc.Loader):
    """A module's own loader, with :meth:`exec_module` changed by the subclass."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename... for tracebacks
        return getattr(self.loader, name)


class _WithoutAiohttp(_WrappingLoader):
    """Runs the wrapped loader's module with ``import aiohttp`` failing, then undoes that."""

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
            _hand_back(module, self.loader)


#: spaCy's command-line package, imported by ``spacy/__init__.py`` for ``spacy.info``.
SPACY_CLI = "spacy.cli"


def _lazy_spacy_info(*args: Any, **kwargs: Any) -> Any:
    """``spacy.info``, importing spaCy's command line when it is called."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


class _SpacyCliStub(importlib.abc.Loader):
    """Loads ``spacy.cli`` and ``spacy.cli.info`` as near-empty stand-ins."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        if module.__name__ == f"{SPACY_CLI}.info":
            module.info = _lazy_spacy_info  # type: ignore[attr-defined]


class _SpacyCliStubFinder(importlib.abc.MetaPathFinder):
    """Active only while spaCy's package initialises (see :class:`_WithoutSpacyCli`)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in (SPACY_CLI, f"{SPACY_CLI}.info"):
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _SpacyCliStub(), is_package=fullname == SPACY_CLI
        )


class _WithoutSpacyCli(_WrappingLoader):
    """Runs spaCy's ``__init__`` with its command line stubbed, then removes the stubs."""

    def exec_module(self, module: ModuleType) -> None:
        if SPACY_CLI in sys.modules:  # imported already: nothing to save
            self.loader.exec_module(module)
            return
        stubs = _SpacyCliStubFinder()
        sys.meta_path.insert(0, stubs)
        try:
            self.loader.exec_module(module)
        finally:
            sys.meta_path.remove(stubs)
            for name in (f"{SPACY_CLI}.info", SPACY_CLI):
                stub = sys.modules.get(name)
                if stub is not None and isinstance(stub.__loader__, _SpacyCliStub):
                    del sys.modules[name]
            if isinstance(getattr(module.__dict__.get("cli"), "__loader__", None), _SpacyCliStub):
                del module.cli  # the next ``import spacy.cli`` loads the real package
            _hand_back(module, self.loader)


#: Module -> wrapper of its loader, for the modules above.
_WRAPPED = {ELASTIC_AIOHTTP_NODE: _WithoutAiohttp, "spacy": _WithoutSpacyCli}


class _LeanFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of ``_WRAPPED`` as usual, and loads them through their wrapper."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        wrapper = _WRAPPED.get(fullname)
        if wrapper is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = wrapper(spec.loader)
        return spec


def leave_out_unused_imports() -> None:
    """Install the import hook above, once (it only acts on modules not yet imported)."""
    if not any(isinstance(finder, _LeanFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LeanFinder())
