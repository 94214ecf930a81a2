"""Per-epoch log rows, written whole (JSONL and CSV) from the checkpoint's history.

Rewriting both files from the history kept in the checkpoint means a resumed run never
duplicates or loses a row, whatever moment it was killed at.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from darc.io import atomic_write_text

LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"


def write_logs(rows: list[dict[str, Any]], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``out_dir/log.jsonl`` and ``out_dir/log.csv`` atomically; return their paths."""
    out_dir = Path(out_dir)
    jsonl = "".join(json.dumps(r, default=str) + "\n" for r in rows)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(jsonl, out_dir / LOG_JSONL), atomic_write_text(buf.getvalue(), out_dir / LOG_CSV)
