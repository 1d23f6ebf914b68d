"""Named queries from SQL files (control/queries.sql here): no SQL is written in Python code."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def named_queries(path: Path) -> dict[str, str]:
    """The queries of a file of named blocks ("-- name: <name>"), by name."""
    parts = _BLOCK.split(path.read_text())
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    """The SQL of the named query."""
    return named_queries(Path(__file__).with_name("queries.sql"))[name]
