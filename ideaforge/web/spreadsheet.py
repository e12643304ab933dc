"""CSV downloads that spreadsheets open safely: UTF-8 with a BOM, user text defused."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence


def csv_safe(value: object) -> object:
    """Spreadsheets run cells that start with = + - @ (or a tab or carriage return) as formulas: defuse text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_bytes(header: Sequence[object], rows: Iterable[Sequence[object]]) -> bytes:
    """The rows as CSV, every cell defused, with a BOM so spreadsheets read it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_safe(cell) for cell in header])
    writer.writerows([csv_safe(cell) for cell in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode()
