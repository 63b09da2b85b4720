"""Paths every test module shares (a plain module, so test files import it by a unique name)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("H4W_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "parity"
CACHE = Path(os.environ.setdefault("H4W_CACHE", str(REPO / ".cache" / "h4w")))
