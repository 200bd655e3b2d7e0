"""What an export row is, for ``listener export`` and ``GET /api/export`` alike."""

from __future__ import annotations

import json
from typing import Any

from listener.mention import Mention

#: Every Mention field, in model order (nested values are JSON in CSV).
EXPORT_COLUMNS = list(Mention.model_fields)


def csv_cells(document: dict[str, Any]) -> dict[str, Any]:
    """A stored mention as CSV cells: nested values (author, brands, …) as JSON text."""
    return {
        key: json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        for key, value in document.items()
    }
