"""The reference part of docs/api.md, generated from the catalog of a migrated database.

Everything comes from the database, never from the SQL files: the functions and procedures
of the schema ``allocator`` that ``allocator_app``, ``allocator_ops`` or ``allocator_readonly``
may execute (``has_function_privilege``, so role membership counts), their signatures,
results, comments, volatility and security, whether PUBLIC may execute them, and the project
SQLSTATEs they can raise; and the views those roles may read.

The SQLSTATEs of a routine are found in its source (``prosrc``): calls
``raise_error('<name>', ...)``, mapped to a code through ``allocator.error_codes``, and literal
codes (``errcode = 'RA001'``, ``sqlstate = 'RA001'``). The search follows, transitively, the
calls of other ``allocator`` functions (``allocator.<name>(``) and the triggers of the schema's
tables the source writes (``insert into``, ``update``, ``delete from``). It is an upper bound:
an error a caller catches is still listed, and a call made through dynamic SQL is not seen.

The output is Markdown between two marker lines; :func:`update_api_doc` replaces only what
lies between them and leaves the hand-written part of the file alone. The output depends on
the catalog only (sorted, no timestamps), so regenerating an unchanged schema changes nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

BEGIN_MARKER = "<!-- BEGIN GENERATED REFERENCE (allocator docs) -->"
END_MARKER = "<!-- END GENERATED REFERENCE -->"

ROLES: tuple[str, ...] = (
    "allocator_app",
    "allocator_console",
    "allocator_ops",
    "allocator_readonly",
)
"""The roles the reference is written for, in the order of its columns."""

SCHEMA = "allocator"
_WIDTH = 88  # a signature longer than this is written one argument per line
_PAGE_WIDTH = 96  # prose is wrapped at this width

_RAISE_ERROR = re.compile(r"\braise_error\s*\(\s*'([A-Za-z_]+)'", re.IGNORECASE)
_LITERAL_CODE = re.compile(r"\b(?:errcode|sqlstate)\s*=\s*['\"](RA[0-9]{3})['\"]", re.IGNORECASE)
_RAISE_SQLSTATE = re.compile(
    r"\braise\s+(?:(?:exception|warning|notice|info|log|debug)\s+)?sqlstate\s+'(RA[0-9]{3})'",
    re.IGNORECASE,
)
_CALL = re.compile(rf"\b{SCHEMA}\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.IGNORECASE)
_WRITE = re.compile(
    rf"\b(insert\s+into|update|delete\s+from)\s+{SCHEMA}\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)",
    re.IGNORECASE,
)
# A string literal (kept) or a comment (dropped) of SQL and PL/pgSQL source.
_SQL_COMMENT = re.compile(r"('(?:[^']|'')*')|--[^\n]*|/\*.*?\*/", re.DOTALL)
_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_WORD = re.compile(r"(?:`[^`]*`|[^\s`])+")
_BLOCK_START = re.compile(r"[-+*>|#=]|[0-9]+[.)]\s")

_VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}


class SchemaMissing(RuntimeError):
    """The database has no migrated ``allocator`` schema to document."""


@dataclass(frozen=True)
class Routine:
    """One function or procedure as the reference describes it."""

    name: str
    kind: str
    """``function`` or ``procedure``."""
    identity_arguments: str
    """``pg_get_function_identity_arguments``: names and types, no defaults."""
    arguments: str
    """``pg_get_function_arguments``: names, types and defaults."""
    result: str | None
    """``pg_get_function_result``; None for a procedure."""
    comment: str | None
    volatility: str
    security_definer: bool
    language: str
    config: tuple[str, ...]
    """``SET`` clauses of the definition, such as ``search_path=pg_catalog, pg_temp``."""
    roles: tuple[str, ...]
    """Which of :data:`ROLES` may execute it."""
    public: bool
    """Whether PUBLIC may execute it."""
    sqlstates: tuple[tuple[str, str], ...]
    """(SQLSTATE, name) of the project errors it can raise, sorted by SQLSTATE."""


@dataclass(frozen=True)
class View:
    """One view as the reference describes it."""

    name: str
    kind: str
    """``view`` or ``materialized view``."""
    comment: str | None
    options: tuple[str, ...]
    columns: tuple[str, ...]
    roles: tuple[str, ...]
    """Which of :data:`ROLES` may select from it."""
    public: bool


@dataclass(frozen=True)
class _Source:
    oid: int
    name: str
    language: str
    text: str


@cache
def _queries() -> dict[str, str]:
    text = Path(__file__).with_name("apidocs.sql").read_text()
    parts = _BLOCK.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _rows(
    conn: psycopg.Connection[Any], name: str, params: Mapping[str, object] | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_queries()[name], params)
        return cur.fetchall()


def _code_text(source: _Source) -> str:
    """The source with SQL comments removed, so a call named in a comment is not followed."""
    if source.language in ("sql", "plpgsql"):
        return _SQL_COMMENT.sub(lambda m: m.group(1) or " ", source.text)
    return source.text


def _raised_sqlstates(
    sources: Sequence[_Source],
    triggers: Iterable[tuple[str, str, int]],
    error_codes: Mapping[str, str],
) -> dict[int, set[str]]:
    """The SQLSTATEs each routine can raise, by oid, following calls and triggers.

    ``triggers`` holds (table, event, trigger function oid) with event ``insert``, ``update``
    or ``delete``; ``error_codes`` maps error names to SQLSTATEs. A name that is not in it is
    kept as ``?<name>`` so that the reference shows it.
    """
    by_name: dict[str, list[int]] = {}
    for source in sources:
        by_name.setdefault(source.name.lower(), []).append(source.oid)
    fired: dict[tuple[str, str], list[int]] = {}
    for table, event, oid in triggers:
        fired.setdefault((table.lower(), event), []).append(oid)

    direct: dict[int, set[str]] = {}
    edges: dict[int, set[int]] = {}
    for source in sources:
        text = _code_text(source)
        codes = {error_codes.get(n.lower(), f"?{n.lower()}") for n in _RAISE_ERROR.findall(text)}
        codes.update(c.upper() for c in _LITERAL_CODE.findall(text))
        codes.update(c.upper() for c in _RAISE_SQLSTATE.findall(text))
        direct[source.oid] = codes
        called: set[int] = set()
        for name in _CALL.findall(text):
            called.update(by_name.get(name.lower(), ()))
        for verb, table in _WRITE.findall(text):
            event = verb.split()[0].lower()
            called.update(fired.get((table.lower(), event), ()))
        called.discard(source.oid)
        edges[source.oid] = called

    closure: dict[int, set[str]] = {}
    for source in sources:
        seen = {source.oid}
        todo = [source.oid]
        reached: set[str] = set()
        while todo:
            oid = todo.pop()
            reached |= direct.get(oid, set())
            for callee in edges.get(oid, ()):
                if callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
        closure[source.oid] = reached
    return closure


def _role_params(roles: Sequence[str]) -> dict[str, object]:
    return {"roles": list(roles)}


def collect_routines(conn: psycopg.Connection[Any], roles: Sequence[str] = ROLES) -> list[Routine]:
    """Every function and procedure of the schema that one of ``roles`` may execute, sorted
    by name and identity arguments. Raises :class:`SchemaMissing` on a database that was not
    migrated."""
    if not _rows(conn, "schema_ready")[0]["ready"]:
        raise SchemaMissing("the database has no allocator schema: run `allocator migrate up`")
    rows = _rows(conn, "routines", _role_params(roles))
    names = {row["sqlstate"]: row["name"] for row in _rows(conn, "error_codes")}
    codes_by_name = {name: sqlstate for sqlstate, name in names.items()}
    triggers: list[tuple[str, str, int]] = []
    for row in _rows(conn, "triggers"):
        for event in ("insert", "update", "delete"):
            if row[f"on_{event}"]:
                triggers.append((row["table_name"], event, int(row["function_oid"])))
    sources = [
        _Source(int(row["oid"]), row["name"], row["language"], row["source"] or "") for row in rows
    ]
    raised = _raised_sqlstates(sources, triggers, codes_by_name)

    routines: list[Routine] = []
    for row in rows:
        if not row["roles"]:
            continue
        sqlstates = sorted(raised[int(row["oid"])])
        routines.append(
            Routine(
                name=row["name"],
                kind="procedure" if row["prokind"] == "p" else "function",
                identity_arguments=row["identity_arguments"],
                arguments=row["arguments"],
                result=row["result"],
                comment=row["comment"],
                volatility=_VOLATILITY.get(row["volatility"], row["volatility"]),
                security_definer=bool(row["security_definer"]),
                language=row["language"],
                config=tuple(row["config"]),
                roles=tuple(r for r in roles if r in row["roles"]),
                public=bool(row["public"]),
                sqlstates=tuple((code, names.get(code, "")) for code in sqlstates),
            )
        )
    routines.sort(key=lambda r: (r.name, r.identity_arguments))
    return routines


def collect_views(conn: psycopg.Connection[Any], roles: Sequence[str] = ROLES) -> list[View]:
    """Every view of the schema that one of ``roles`` may read, sorted by name."""
    views = [
        View(
            name=row["name"],
            kind="materialized view" if row["relkind"] == "m" else "view",
            comment=row["comment"],
            options=tuple(row["options"]),
            columns=tuple(row["columns"]),
            roles=tuple(r for r in roles if r in row["roles"]),
            public=bool(row["public"]),
        )
        for row in _rows(conn, "views", _role_params(roles))
        if row["roles"]
    ]
    views.sort(key=lambda v: v.name)
    return views


# ---------------------------------------------------------------------------------------
# Markdown


def _split_top_level(text: str) -> list[str]:
    """Split at the commas that are outside parentheses, brackets and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _listing(head: str, items: Sequence[str], tail: str) -> str:
    """``head(items)tail`` on one line if it is short, else one item per line."""
    one_line = f"{head}({', '.join(items)}){tail}"
    if len(one_line) <= _WIDTH or not items:
        return one_line
    inner = ",\n".join(f"  {item}" for item in items)
    return f"{head}(\n{inner}\n){tail}"


def signature(routine: Routine) -> str:
    """The routine's signature with defaults, as SQL, wrapped when it is long."""
    head = f"{SCHEMA}.{routine.name}"
    arguments = _split_top_level(routine.arguments)
    if routine.result is None:
        return _listing(head, arguments, "")
    result = routine.result
    table = re.fullmatch(r"TABLE\((.*)\)", result, re.DOTALL)
    if table is None:
        return _listing(head, arguments, f" returns {result}")
    columns = _split_top_level(table.group(1))
    one_line = f"{head}({', '.join(arguments)}) returns {result}"
    if len(one_line) <= _WIDTH:
        return one_line
    return _listing(head, arguments, "") + "\n" + _listing("returns table ", columns, "")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _code_list(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def _joined(items: Sequence[str], conjunction: str) -> str:
    quoted = [f"`{item}`" for item in items]
    if len(quoted) <= 2:
        return f" {conjunction} ".join(quoted)
    return ", ".join(quoted[:-1]) + f" {conjunction} " + quoted[-1]


def _who(roles: Sequence[str], public: bool) -> str:
    granted = _code_list(roles) if roles else "none of the roles"
    return granted + ("; also `PUBLIC`" if public else "; not `PUBLIC`")


def _heading(routine: Routine, overloaded: bool) -> str:
    if overloaded:
        return f"`{SCHEMA}.{routine.name}({routine.identity_arguments})`"
    return f"`{SCHEMA}.{routine.name}`"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _group_key(roles: Sequence[str]) -> tuple[bool, ...]:
    return tuple(role not in roles for role in ROLES)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _sqlstate_text(code: str, name: str) -> str:
    if code.startswith("?"):
        return f"`{code[1:]}` (a name not in `allocator.error_codes`)"
    if not name:
        return f"`{code}` (not in `allocator.error_codes`)"
    return f"`{code} {name}`"


def _render_routine(routine: Routine, heading: str) -> list[str]:
    kind = routine.kind
    if routine.kind == "procedure":
        kind = "procedure (`CALL` it)"
    properties = [f"{kind} in `{routine.language}`"]
    if routine.kind == "function":
        properties.append(routine.volatility)
    properties.append(
        "`SECURITY DEFINER` (runs as its owner)"
        if routine.security_definer
        else "`SECURITY INVOKER` (runs with the caller's rights)"
    )
    properties.extend(f"`SET {setting}`" for setting in routine.config)
    raises = (
        ", ".join(_sqlstate_text(code, name) for code, name in routine.sqlstates)
        or "no project SQLSTATE"
    )
    return [
        f"#### {heading}",
        "",
        "```sql",
        signature(routine),
        "```",
        "",
        _one_line(routine.comment) or "*No comment in the catalog.*",
        "",
        f"- **Kind:** {', '.join(properties)}",
        f"- **Callable by:** {_who(routine.roles, routine.public)}",
        f"- **Raises:** {raises}",
        "",
    ]


def _render_view(view: View) -> list[str]:
    lines = [
        f"#### `{SCHEMA}.{view.name}`",
        "",
        _one_line(view.comment) or "*No comment in the catalog.*",
        "",
        f"- **Readable by:** {_who(view.roles, view.public)}",
    ]
    if view.kind != "view":
        lines.append(f"- **Kind:** {view.kind}")
    if view.options:
        lines.append(f"- **Options:** {_code_list(view.options)}")
    lines.append(f"- **Columns:** {_code_list(view.columns)}")
    lines.append("")
    return lines


def render(routines: Sequence[Routine], views: Sequence[View]) -> str:
    """The reference as Markdown, between the marker lines (no trailing newline)."""
    counts: dict[str, int] = {}
    for routine in routines:
        counts[routine.name] = counts.get(routine.name, 0) + 1
    headings = {id(r): _heading(r, counts[r.name] > 1) for r in routines}
    role_columns = " | ".join(f"`{role}`" for role in ROLES)
    align = " | ".join(":-:" for _ in ROLES)

    lines = [
        BEGIN_MARKER,
        "<!-- Written by `allocator docs`: edit the SQL comments and grants, not this part. -->",
        "",
        "## Reference",
        "",
        "Generated by `allocator docs` from the catalog of a database migrated to head. It lists"
        " every function and procedure of the schema `allocator` that "
        + _joined(ROLES, "or")
        + " may execute, and every view they may read. For each function:",
        "",
        "- the signature with its defaults, and the result;",
        "- the comment stored with it in the database;",
        "- its kind: language, volatility, and whether it runs as its owner"
        " (`SECURITY DEFINER`) or with the caller's rights;",
        "- **Callable by**: which of the roles may execute it, directly or through membership"
        " (`allocator_ops` is a member of `allocator_readonly`), and whether `PUBLIC` may;",
        "- **Raises**: the project SQLSTATEs (`allocator.error_codes`) found in its source, in"
        " the source of the `allocator` functions it calls and in the triggers of the tables it"
        " writes, followed to the end. It is an upper bound: an error that a caller catches is"
        " still listed. PostgreSQL's own errors come on top, such as `42501` for a role"
        " without the grant.",
        "",
        "### Index",
        "",
        f"| function | returns | {role_columns} | `PUBLIC` |",
        f"| --- | --- | {align} | :-: |",
    ]
    for routine in routines:
        heading = headings[id(routine)]
        returns = routine.result or "procedure"
        if returns.startswith("TABLE("):
            returns = "table"
        cells = " | ".join(_yes(role in routine.roles) for role in ROLES)
        lines.append(
            f"| [`{routine.name}`](#{_slug(heading.replace('`', ''))}) | `{returns}` | {cells}"
            f" | {_yes(routine.public)} |"
        )
    lines.append("")

    groups: dict[tuple[bool, ...], list[Routine]] = {}
    for routine in routines:
        groups.setdefault(_group_key(routine.roles), []).append(routine)
    for key in sorted(groups):
        members = groups[key]
        lines.append(f"### Callable by {_joined(members[0].roles, 'and')}")
        lines.append("")
        for routine in members:
            lines.extend(_render_routine(routine, headings[id(routine)]))

    lines.extend(
        [
            "### Views readable by the roles",
            "",
            f"| view | {role_columns} | `PUBLIC` |",
            f"| --- | {align} | :-: |",
        ]
    )
    for view in views:
        cells = " | ".join(_yes(role in view.roles) for role in ROLES)
        anchor = _slug(f"{SCHEMA}.{view.name}")
        lines.append(f"| [`{view.name}`](#{anchor}) | {cells} | {_yes(view.public)} |")
    lines.append("")
    for view in views:
        lines.extend(_render_view(view))
    lines.append(END_MARKER)
    return "\n".join(_wrap(lines))


def _fill(line: str, indent: str) -> list[str]:
    """``line`` filled to the page's width, never breaking inside a code span."""
    if line.count("`") % 2:
        return [line]
    pieces: list[str] = []
    current = ""
    for word in _WORD.findall(line):
        if current and len(current) + 1 + len(word) > _PAGE_WIDTH:
            pieces.append(current)
            current = indent + word
        else:
            current = f"{current} {word}" if current else word
    pieces.append(current)
    return pieces


def _wrap(lines: Iterable[str]) -> list[str]:
    """Paragraphs and list items wrapped at the page's width; code, tables, headings and HTML
    comments as they are."""
    wrapped: list[str] = []
    in_code = False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        if in_code or len(line) <= _PAGE_WIDTH or line.startswith(("|", "#", "<", "```")):
            wrapped.append(line)
            continue
        pieces = _fill(line, "  " if line.startswith("- ") else "")
        # A continuation line that Markdown would read as a list, heading, quote or table
        # row would change the meaning: such a paragraph stays on one line.
        if any(_BLOCK_START.match(piece.strip()) for piece in pieces[1:]):
            pieces = [line]
        wrapped.extend(pieces)
    return wrapped


def render_reference(conn: psycopg.Connection[Any]) -> str:
    """The generated reference of docs/api.md, read from the catalog ``conn`` is connected
    to, with its two marker lines (no trailing newline). It only reads."""
    return render(collect_routines(conn), collect_views(conn))


def splice_reference(document: str, reference: str) -> str:
    """``document`` with the part between the markers (markers included) replaced by
    ``reference``. A document without markers gets the reference appended."""
    begin = document.find(BEGIN_MARKER)
    end = document.find(END_MARKER)
    if begin < 0 and end < 0:
        return document.rstrip("\n") + "\n\n" + reference + "\n"
    if begin < 0 or end < begin:
        raise ValueError(
            f"the document must hold {BEGIN_MARKER!r} followed by {END_MARKER!r}, or neither"
        )
    if document.find(BEGIN_MARKER, begin + 1) >= 0 or document.find(END_MARKER, end + 1) >= 0:
        raise ValueError("the document holds the generated reference markers more than once")
    return document[:begin] + reference + document[end + len(END_MARKER) :]


def api_doc_diff(conn: psycopg.Connection[Any], path: Path) -> list[str]:
    """A unified diff from ``path`` to what :func:`update_api_doc` would write; empty when
    the file is current."""
    current = path.read_text()
    wanted = splice_reference(current, render_reference(conn))
    return list(
        difflib.unified_diff(
            current.splitlines(),
            wanted.splitlines(),
            fromfile=str(path),
            tofile=f"{path} (regenerated)",
            lineterm="",
        )
    )


def update_api_doc(conn: psycopg.Connection[Any], path: Path, *, write: bool = True) -> bool:
    """Regenerate the reference part of the Markdown file ``path`` from the catalog, leaving
    the rest of the file as it is. Returns whether the file changed (with ``write=False``:
    would change; nothing is written)."""
    current = path.read_text()
    wanted = splice_reference(current, render_reference(conn))
    if wanted == current:
        return False
    if write:
        path.write_text(wanted)
    return True
