"""The source contract, at the import path plugins use: ``from listener.source import Source``.

It lives in :mod:`listener.sdk.source`; this module re-exports it so the path
third-party plugins were written against keeps working.
"""

from listener.sdk.source import (
    HOOK_API_VERSION,
    Checkpoint,
    CheckpointStore,
    FileCheckpointStore,
    Query,
    Request,
    Response,
    Source,
    SourceOptions,
)

__all__ = [
    "HOOK_API_VERSION",
    "Checkpoint",
    "CheckpointStore",
    "FileCheckpointStore",
    "Query",
    "Request",
    "Response",
    "Source",
    "SourceOptions",
]
