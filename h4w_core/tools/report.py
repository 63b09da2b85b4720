"""Printing benchmark records: an aligned table, then JSON (optionally also to a file)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> str:
    """Right-aligned columns with a rule under the header."""
    table = [list(header)] + [list(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in table]
    out = [lines[0], "-" * len(lines[0])] + lines[1:]
    return "\n".join(out + ([note] if note else []))


def emit(table: str, records: list[dict], json_path: Path | None) -> None:
    """Print the table and the records as JSON; write the JSON to json_path when given."""
    text = json.dumps(records, indent=2)
    print(table)
    print(text)
    if json_path is not None:
        json_path.write_text(text + "\n")
