"""Text from the database (or from a user) shown on the operator's terminal, literally.

Restaurant names, zone and table labels, actors, reasons, error messages and the like are
data: rich must not read ``[bold]`` or ``[/]`` in them as markup, and the terminal must not
receive their control characters (an ESC starts an escape sequence, a carriage return
overwrites the line). Every place that prints such text goes through one of these helpers.
"""

from __future__ import annotations

import json
from typing import Any

from rich.highlighter import JSONHighlighter
from rich.markup import escape
from rich.text import Text

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators, and the
# bidirectional embeddings, overrides and isolates (they reorder what the terminal shows).
_CONTROLS = [
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ONE_LINE = {c: _NAMED.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}
_MULTILINE = {c: s for c, s in _ONE_LINE.items() if c != 0x0A}
# json.dumps escapes C0 controls itself; the others become \u escapes, still valid JSON.
_JSON = {c: f"\\u{c:04x}" for c in _CONTROLS if c >= 0x7F}


def visible(value: object, *, multiline: bool = False) -> str:
    """``str(value)`` with every control character written as a visible escape (``\\x1b``,
    ``\\r``, ``\\n``...); with ``multiline``, line feeds stay line feeds. For plain output."""
    return str(value).translate(_MULTILINE if multiline else _ONE_LINE)


def literal(value: object, *, multiline: bool = False) -> str:
    """``visible(value)`` escaped for rich markup: to put inside a markup string given to
    ``console.print`` (or a table title), where it shows exactly as it is."""
    return escape(visible(value, multiline=multiline))


def cell(value: object) -> Text:
    """A table cell showing ``value`` literally (``-`` for NULL); never read as markup."""
    return Text("-" if value is None else visible(value))


def json_text(data: Any) -> Text:
    """``data`` as indented, highlighted JSON whose strings show literally: no markup, and
    every control character a JSON escape (non-ASCII letters stay as they are)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str).translate(_JSON)
    return JSONHighlighter()(Text(text))
