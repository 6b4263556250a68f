"""Census reports in each format: CSV and JSON here, HTML in report_html (rows and columns in report_rows)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from .report_rows import COLUMNS, trend_series, with_age
from .snapshots import Snapshot

# A spreadsheet runs a cell starting with one of these as a formula (full-width forms too, which some
# locales' spreadsheets take as the ASCII ones). Text from specs (a city's displayName) is data: such a
# cell is written with a leading apostrophe, as OWASP advises. Numbers are written as they are.
FORMULA_START = tuple("=+-@\t\r＝＋－＠")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return str(value)


def to_csv(snapshot: Snapshot) -> str:
    buf = io.StringIO()
    # RFC 4180's CRLF: the writer then also quotes a field holding a lone CR, which "\n" left bare.
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.id for c in COLUMNS])
    for row in with_age(snapshot):
        writer.writerow([_cell(row.get(c.id)) for c in COLUMNS])
    return buf.getvalue()


def to_json(snapshot: Snapshot, history: Sequence[Snapshot]) -> str:
    doc = {
        "schema": "datacloud.fujian.gov.cn/census-report/v1",
        "title": {"zh": "算力资源普查报告", "en": "Compute census report"},
        "census": snapshot.census,
        "takenAt": snapshot.taken_at,
        "durationSeconds": round(snapshot.duration_s, 3),
        "columns": [{"id": c.id, "zh": c.zh, "en": c.en, "unit": c.unit} for c in COLUMNS],
        "rows": with_age(snapshot),
        "trend": trend_series(history),
        "problems": snapshot.problems,
        "sources": snapshot.sources,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


def render(fmt: str, snapshot: Snapshot, history: Sequence[Snapshot]) -> bytes:
    """One report; `history` is the retained snapshots, oldest first, ending with `snapshot`."""
    if fmt == "csv":
        return to_csv(snapshot).encode()
    if fmt == "json":
        return to_json(snapshot, history).encode()
    if fmt == "html":
        from .report_html import to_html  # plotly is heavy: loaded only when a page is asked for

        return to_html(snapshot, history).encode()
    raise ValueError(f"unknown report format {fmt!r}; choose json, csv or html")


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}
