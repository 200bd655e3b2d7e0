"""The hooks a listener plugin can implement.

Every hook name starts with ``listener_``. Implement them with
``@listener.hookimpl`` in a module registered under the ``listener`` entry-point
group. Each docstring is the contract: when the hook is called, what it
receives, and what it must return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from spacy.language import Language

    from listener.config import ProjectConfig
    from listener.sdk.source import Source

hookspec = pluggy.HookspecMarker("listener")
hookimpl = pluggy.HookimplMarker("listener")


@hookspec
def listener_register_sources() -> list[type[Source]]:
    """Return the :class:`listener.source.Source` subclasses this plugin provides.

    Called once, when the plugin manager is first used. Every implementation is
    called and the lists are joined; two sources with one ``name`` is an error.
    Each class declares ``name``, ``kind``, ``Options`` (a pydantic model) and
    ``api_version``; a class written for another contract version is refused.
    """


@hookspec
def listener_prepare_nlp(nlp: Language, config: ProjectConfig) -> None:
    """Change the enrichment pipeline in place: add spaCy components or patterns.

    Called once per process, after listener has built its own pipeline and
    before the first document is processed (in every worker process when
    enrichment runs with several). Return nothing. Components must keep their
    values in plain, picklable extension attributes.
    """
