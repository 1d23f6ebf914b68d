"""Importing a restaurant's existing bookings from another system (``allocator import bookings``).

The file is read here (CSV or JSON lines, one booking a row); every rule is the database's
(``allocator.import_bookings``). The rows go in batches of 500, all in one transaction: when
any row is refused, nothing is imported and the report says which rows and why.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from control.queries import query

BATCH = 500
#: Columns with a meaning of their own; any other column goes into the booking's metadata.
COLUMNS = ("external_id", "party_size", "start", "duration_minutes", "zone", "tables")


class ImportFileError(ValueError):
    """The file cannot be read as bookings (not a question of any one booking's content)."""


@dataclass
class ImportReport:
    """What an import did, or would have done."""

    rows: int = 0
    imported: int = 0
    existing: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    committed: bool = False


def _csv_row(raw: dict[str, str | None]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for key, value in raw.items():
        if key is None:
            raise ImportFileError("a CSV row has more fields than the header")
        name = key.strip()
        text = (value or "").strip()
        if name == "tables":
            # Table labels joined by "+" (as a combination is written) or ";".
            labels = [part.strip() for part in text.replace(";", "+").split("+") if part.strip()]
            row["tables"] = labels or None
        elif name in COLUMNS:
            row[name] = text or None
        elif text:
            metadata[name] = text
    if metadata:
        row["metadata"] = metadata
    return row


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The bookings of a CSV file (a header line naming the columns) or a JSON-lines file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFileError(f"{path}: cannot be read as UTF-8 text: {exc}") from exc
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFileError(f"{path}:{number}: not JSON: {exc.msg}") from exc
            if not isinstance(value, dict):
                raise ImportFileError(f"{path}:{number}: each line must be a JSON object")
            known = {k: v for k, v in value.items() if k in (*COLUMNS, "metadata")}
            extra = {k: v for k, v in value.items() if k not in known}
            if extra:
                known["metadata"] = {**extra, **(known.get("metadata") or {})}
            rows.append(known)
        return rows
    reader = csv.DictReader(text.splitlines())
    try:
        if not reader.fieldnames or "external_id" not in [f.strip() for f in reader.fieldnames]:
            raise ImportFileError(f"{path}: the header line must name the columns, external_id too")
        return [_csv_row(raw) for raw in reader]
    except csv.Error as exc:
        raise ImportFileError(f"{path}:{reader.line_num}: not CSV: {exc}") from exc


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def import_bookings(
    conn: psycopg.Connection[Any],
    restaurant_id: int,
    rows: list[dict[str, Any]],
    *,
    dry_run: bool = False,
    actor: str = "staff:import",
) -> ImportReport:
    """Import ``rows`` for a restaurant in one transaction; commit only when no row is refused
    (and not ``dry_run``). Row numbers in the report count from 1 over the whole file."""
    report = ImportReport(rows=len(rows))
    offset = 0
    with conn.transaction():
        for batch in _batches(rows):
            result = conn.execute(
                query("import_bookings"), (restaurant_id, Jsonb(batch), actor)
            ).fetchone()
            assert result is not None
            summary: dict[str, Any] = result[0]
            report.imported += int(summary["imported"])
            report.existing += int(summary["existing"])
            for refusal in summary["refused"]:
                refusal["row"] = int(refusal["row"]) + offset
                report.refused.append(refusal)
            offset += len(batch)
        if report.refused or dry_run:
            raise psycopg.Rollback()
        report.committed = True
    return report
