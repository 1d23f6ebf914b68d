"""Security over the catalog and the sources: the privilege matrix of every function and
table for every role, and dynamic SQL that can only quote, never splice."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pglast
import psycopg
from pglast import ast

from control.sqlfiles import Grants, grants

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("allocator_app", "allocator_ops", "allocator_readonly", "public")

GRANTS = grants()
# allocator_ops is a member of allocator_readonly and inherits what readonly may call.
MEMBER_OF = {"allocator_ops": {"allocator_readonly"}}


def expected_execute(role: str, function: str, listed: Grants = GRANTS) -> bool:
    """What control/sql/grants.toml says: PUBLIC calls nothing; a role calls what it is listed for."""
    callers = set(listed.callers(function))
    return role in callers or bool(MEMBER_OF.get(role, set()) & callers)


def test_grant_list_keeps_the_booking_rpcs_apart_from_operator_actions() -> None:
    app = {name for name, roles in GRANTS.execute.items() if "allocator_app" in roles}
    assert {"create_booking", "process_booking", "hold_tables"} <= app
    assert not app & {"requeue", "force_confirm", "claim_due", "read_events", "optimize_day"}
    ops = {name for name, roles in GRANTS.execute.items() if "allocator_ops" in roles}
    assert app - {"now", "clock_override", "tenant_allows"} <= ops


def test_function_privilege_matrix(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """select p.oid::regprocedure::text, p.proname, r.role,
                  has_function_privilege(r.role, p.oid, 'EXECUTE')
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace,
                  unnest(%s::text[]) r(role)
            where n.nspname = 'allocator'""",
        (list(ROLES),),
    ).fetchall()
    assert len(rows) > 100
    wrong = [
        (sig, role, has) for sig, name, role, has in rows if has != expected_execute(role, name)
    ]
    assert wrong == [], "EXECUTE differs from control/sql/grants.toml (signature, role, has it)"
    created = {name for _, name, _, _ in rows}
    assert set(GRANTS.execute) <= created, "grants.toml names functions the code does not create"


def test_table_privilege_matrix(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        """select c.relname, c.relkind, r.role,
                  has_table_privilege(r.role, c.oid, 'SELECT'),
                  has_table_privilege(r.role, c.oid, 'INSERT') or has_table_privilege(r.role, c.oid, 'UPDATE')
                  or has_table_privilege(r.role, c.oid, 'DELETE') or has_table_privilege(r.role, c.oid, 'TRUNCATE')
             from pg_class c join pg_namespace n on n.oid = c.relnamespace,
                  unnest(%s::text[]) r(role)
            where n.nspname = 'allocator' and c.relkind in ('r', 'v')""",
        (list(ROLES),),
    ).fetchall()
    writable = [(name, role) for name, _, role, _, write in rows if write]
    assert writable == [], "no role writes a table directly: every change goes through a function"
    unreadable_by_readonly = [
        name for name, _, role, read, _ in rows if role == "allocator_readonly" and not read
    ]
    assert unreadable_by_readonly == []
    public_reads = [name for name, _, role, read, _ in rows if role == "public" and read]
    assert public_reads == []
    app_reads = {name for name, _, role, read, _ in rows if role == "allocator_app" and read}
    assert {"bookings", "allocations", "holds", "tables"} <= app_reads
    assert not app_reads & {
        "events",
        "booking_state_history",
        "tenant_members",
        "leases",
        "plpy_modules",
    }


def test_row_level_security_on_every_restaurant_table(conn: psycopg.Connection[Any]) -> None:
    missing = conn.execute(
        """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'allocator' and c.relkind = 'r'
              and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname in ('restaurant_id'))
              and not c.relrowsecurity"""
    ).fetchall()
    assert missing == []


_PLACEHOLDER = re.compile(r"%(?:\d+\$)?-?\d*([a-zA-Z%])")


def _dynamic_sql_problems(body_statement: str, where: str) -> tuple[int, list[str]]:
    problems = []
    found = 0
    # The PL/pgSQL parser resolves only pg_catalog and public type names.
    tree = json.dumps(pglast.parse_plpgsql(body_statement.replace("allocator.", "public.")))
    for expr in re.findall(
        r'"PLpgSQL_stmt_dynexecute": \{[^{]*"query": \{"PLpgSQL_expr": \{"query": "((?:[^"\\]|\\.)*)"',
        tree,
    ):
        found += 1
        text = json.loads(f'"{expr}"')
        node = pglast.parse_sql(f"select {text}")[0].stmt.targetList[0].val  # type: ignore[union-attr]
        if not (
            isinstance(node, ast.FuncCall)
            and node.funcname[-1].sval == "format"
            and node.args
            and isinstance(node.args[0], ast.A_Const)
        ):
            problems.append(f"{where}: EXECUTE {text!r} is not format() with a literal template")
            continue
        template = node.args[0].val.sval
        bad = [p for p in _PLACEHOLDER.findall(template) if p not in ("I", "L", "%")]
        if bad:
            problems.append(
                f"{where}: EXECUTE template {template!r} uses %{bad[0]} (only %I and %L quote)"
            )
    return found, problems


def test_dynamic_execute_only_through_format_with_quoting() -> None:
    found = 0
    problems: list[str] = []
    schema_files = [*(ROOT / "control" / "sql").glob("*.sql")]
    schema_files += (ROOT / "control" / "migrations" / "versions").glob("*.sql")
    for path in sorted(schema_files):
        text = path.read_text()
        for raw in pglast.parse_sql(text):
            stmt = raw.stmt
            location = raw.stmt_location or 0
            source = text[location : location + (raw.stmt_len or len(text))]
            if isinstance(stmt, ast.CreateFunctionStmt):
                language = [o.arg.sval for o in stmt.options or () if o.defname == "language"]
                if language == ["plpgsql"]:
                    n, p = _dynamic_sql_problems(source, f"{path.name}: {stmt.funcname[-1].sval}")
                    found, problems = found + n, problems + p
            elif isinstance(stmt, ast.DoStmt):
                body = next(o.arg.sval for o in stmt.args if o.defname == "as")
                wrapped = f"create function do_block() returns void language plpgsql as $body${body}$body$"
                n, p = _dynamic_sql_problems(wrapped, f"{path.name}: DO block")
                found, problems = found + n, problems + p
    assert found >= 3, "the check saw the dynamic SQL the schema has"
    assert problems == []


def test_lint_catches_spliced_sql() -> None:
    spliced = (
        "create function f(t text) returns void language plpgsql as "
        "$$ begin execute 'drop table ' || t; execute format('drop table %s', t); end $$"
    )
    found, problems = _dynamic_sql_problems(spliced, "example")
    assert found == 2 and len(problems) == 2
