"""bench/results.json: every benchmark adds its own key and keeps the others'."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def merge_results(path: Path, key: str, value: Any) -> None:
    """Put value under key in a JSON file, keeping what other benchmarks wrote there."""
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        existing = {}
    existing[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2) + "\n")
