"""Citus's rules for distributing the schema by restaurant, checked over the catalog.

The layout these tests hold the schema to (docs/scaling.md describes it):

- **Distributed tables.** Every table of schema ``allocator`` with a ``restaurant_id`` column
  is hash-distributed by ``restaurant_id``. ``restaurants`` is the distribution root: it is
  distributed by ``id`` and colocated with them, so a restaurant's row lives on the same node
  as the rest of its data, and the foreign keys ``(restaurant_id) references restaurants (id)``
  are colocated foreign keys.
- **Reference tables** (``REFERENCE_TABLES``): tables without a restaurant that every
  restaurant reads, replicated to every node.
- **Coordinator tables** (``COORDINATOR_TABLES``): process coordination and bookkeeping
  that serve all restaurants; they stay plain tables on the coordinator.

The set of tables comes from the catalog, never from the SQL files: a new table with a
``restaurant_id`` column is distributed and held to the rules at once, and a new table
without one fails ``test_every_table_has_a_place`` until it is listed here.

The rules are the ones Citus checks when a table is distributed or a constraint or trigger
is created (Citus 11.1.3 to 13.x support PostgreSQL 15):

- every PRIMARY KEY, UNIQUE and EXCLUDE constraint, and every unique index, of a distributed
  table includes the distribution column among its key columns, and an EXCLUDE constraint
  compares it with ``=``;
- colocated tables have distribution columns of the same type (and a row needs a value in
  it);
- a foreign key between distributed tables includes the distribution column at the same
  position on both sides, and then does not use ON DELETE SET NULL / SET DEFAULT or
  ON UPDATE SET NULL / SET DEFAULT / CASCADE; a foreign key may point from a distributed
  table at a reference table, but never from a reference table at a distributed one, and
  a distributed table cannot reference a table that stays local;
- identity and sequence-backed columns are bigint (Citus 11.2.1 to 11.3 allow identity
  columns on distributed tables only as bigint, later versions cannot generate int or
  smallint identity values on worker nodes, and ``nextval`` on a worker node fails for int
  and smallint defaults);
- triggers on distributed and reference tables are refused unless
  ``citus.enable_unsafe_triggers`` is on, so every such trigger is recorded in
  ``EXPECTED_TRIGGERS`` (and in docs/scaling.md) and a new one fails the inventory test.

``test_rules_catch_violations`` creates a table breaking each rule inside a transaction that
is rolled back and checks that every check reports it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

SCHEMA = "allocator"
DISTRIBUTION_COLUMN = "restaurant_id"
ROOT_TABLE = "restaurants"
ROOT_COLUMN = "id"

# Staff accounts and their tokens are small and read with every restaurant's rows (tenancy).
REFERENCE_TABLES = frozenset(
    {"booking_states", "booking_transitions", "error_codes", "plpy_modules", "staff", "staff_tokens"}
)
# Process coordination serving all restaurants, and the record of the applied code.
COORDINATOR_TABLES = frozenset({"code_version", "leases", "lease_waits", "subscriber_cursors"})

# Triggers on distributed and reference tables, table -> trigger -> trigger function. Citus
# creates these only with citus.enable_unsafe_triggers on; record a new one here and in
# docs/scaling.md ("Triggers"), or move its work into the functions that write the table.
EXPECTED_TRIGGERS: dict[str, dict[str, str]] = {
    "assignment_queue": {
        "assignment_queue_end_lease": "assignment_queue_end_lease",
    },
    "restaurants": {
        "restaurants_combination_size": "restaurants_settings_changed",
        "restaurants_validate": "restaurants_validate",
    },
    "table_adjacency": {
        "table_adjacency_layout_delete": "on_layout_change",
        "table_adjacency_layout_insert": "on_layout_change",
        "table_adjacency_layout_update": "on_layout_change",
        "table_adjacency_order": "table_adjacency_order",
    },
    "tables": {
        "tables_layout_delete": "on_layout_change",
        "tables_layout_insert": "on_layout_change",
        "tables_layout_update": "on_layout_change",
    },
}

# Foreign key actions (pg_constraint.confupdtype / confdeltype).
ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
BAD_ON_DELETE = {"n", "d"}
BAD_ON_UPDATE = {"n", "d", "c"}


@dataclass
class Layout:
    """Where each table of the schema would go in a Citus cluster."""

    distributed: dict[str, str] = field(default_factory=dict)  # table -> distribution column
    reference: set[str] = field(default_factory=set)
    coordinator: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def kind(self, table: str) -> str:
        if table in self.distributed:
            return "distributed"
        if table in self.reference:
            return "reference"
        if table in self.coordinator:
            return "coordinator"
        return "unplaced"

    @property
    def citus_tables(self) -> set[str]:
        """Tables Citus would manage (distributed and reference tables)."""
        return set(self.distributed) | self.reference


def classify(
    conn: psycopg.Connection[Any],
    reference: Set[str] = REFERENCE_TABLES,
    coordinator: Set[str] = COORDINATOR_TABLES,
) -> Layout:
    """Place every table of the schema (partitions follow their parent) from the catalog."""
    rows = conn.execute(
        """
        select c.relname,
               exists (select 1 from pg_attribute a
                        where a.attrelid = c.oid and a.attname = %(dist)s
                          and a.attnum > 0 and not a.attisdropped),
               exists (select 1 from pg_attribute a
                        where a.attrelid = c.oid and a.attname = %(root_col)s
                          and a.attnum > 0 and not a.attisdropped)
          from pg_class c
         where c.relnamespace = %(schema)s::regnamespace
           and c.relkind in ('r', 'p') and not c.relispartition
         order by 1
        """,
        {"schema": SCHEMA, "dist": DISTRIBUTION_COLUMN, "root_col": ROOT_COLUMN},
    ).fetchall()
    layout = Layout()
    for table, has_dist, has_root_col in rows:
        listed = [
            name
            for name, group in (
                ("REFERENCE_TABLES", reference),
                ("COORDINATOR_TABLES", coordinator),
            )
            if table in group
        ]
        if table == ROOT_TABLE:
            if not has_root_col:
                layout.problems.append(
                    f"{table}: the distribution root has no column {ROOT_COLUMN}"
                )
            layout.distributed[table] = ROOT_COLUMN
            if listed:
                layout.problems.append(f"{table}: the distribution root is also listed in {listed}")
        elif has_dist:
            layout.distributed[table] = DISTRIBUTION_COLUMN
            if listed:
                layout.problems.append(
                    f"{table}: has {DISTRIBUTION_COLUMN}, so it is distributed, "
                    f"but it is also listed in {', '.join(listed)}"
                )
        elif table in reference:
            layout.reference.add(table)
        elif table in coordinator:
            layout.coordinator.add(table)
        else:
            layout.problems.append(
                f"{table}: has no {DISTRIBUTION_COLUMN} column and is listed neither in "
                "REFERENCE_TABLES nor in COORDINATOR_TABLES"
            )
    present = {row[0] for row in rows}
    for name, group in (("REFERENCE_TABLES", reference), ("COORDINATOR_TABLES", coordinator)):
        for table in sorted(set(group) - present):
            layout.problems.append(f"{table}: listed in {name} but not a table of {SCHEMA}")
    return layout


def distribution_column_problems(conn: psycopg.Connection[Any], layout: Layout) -> list[str]:
    """Colocated tables need distribution columns of one type; rows need a value there."""
    rows = conn.execute(
        """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
          from pg_class c join pg_attribute a on a.attrelid = c.oid
         where c.relnamespace = %s::regnamespace and a.attnum > 0 and not a.attisdropped
        """,
        (SCHEMA,),
    ).fetchall()
    columns = {(table, column): (type_, notnull) for table, column, type_, notnull in rows}
    root_type = columns.get((ROOT_TABLE, ROOT_COLUMN), ("?", True))[0]
    problems = []
    for table, column in sorted(layout.distributed.items()):
        type_, notnull = columns[(table, column)]
        if type_ != root_type:
            problems.append(
                f"{table}.{column} is {type_}, but {ROOT_TABLE}.{ROOT_COLUMN} is {root_type}: "
                "colocated distribution columns must have the same type"
            )
        if not notnull:
            problems.append(f"{table}.{column} is nullable: a distributed row needs a value there")
    return problems


def uniqueness_problems(conn: psycopg.Connection[Any], layout: Layout) -> list[str]:
    """Unique indexes (PRIMARY KEY and UNIQUE constraints included) and EXCLUDE constraints
    of distributed tables must include the distribution column among their key columns, an
    EXCLUDE constraint with a btree equality operator (``=``)."""
    rows = conn.execute(
        """
        select t.relname,
               coalesce(con.conname, i.relname),
               case con.contype when 'p' then 'PRIMARY KEY' when 'u' then 'UNIQUE'
                                when 'x' then 'EXCLUDE' else 'unique index' end,
               (select array_agg(a.attname order by k.ord)
                  from unnest(x.indkey::int2[]) with ordinality k(attnum, ord)
                  left join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.attnum
                 where k.ord <= x.indnkeyatts),
               (select array_agg(
                         o.oprname = '='
                         and exists (select 1 from pg_amop am join pg_am m on m.oid = am.amopmethod
                                      where am.amopopr = o.oid and m.amname = 'btree'
                                        and am.amopstrategy = 3)
                         order by e.ord)
                  from unnest(con.conexclop) with ordinality e(opr, ord)
                  join pg_operator o on o.oid = e.opr),
               coalesce(pg_get_constraintdef(con.oid), pg_get_indexdef(x.indexrelid))
          from pg_index x
          join pg_class t on t.oid = x.indrelid
          join pg_class i on i.oid = x.indexrelid
          left join pg_constraint con on con.conindid = x.indexrelid and con.conrelid = x.indrelid
                                    and con.contype in ('p', 'u', 'x')
         where t.relnamespace = %s::regnamespace and (x.indisunique or x.indisexclusion)
         order by 1, 2
        """,
        (SCHEMA,),
    ).fetchall()
    problems = []
    for table, name, kind, keys, equality, definition in rows:
        column = layout.distributed.get(table)
        if column is None:
            continue
        positions = [i for i, key in enumerate(keys) if key == column]
        if not positions:
            problems.append(f"{table}.{name} ({kind}) does not include {column}: {definition}")
        elif kind == "EXCLUDE" and not any(equality[i] for i in positions):
            problems.append(
                f"{table}.{name} (EXCLUDE) does not compare {column} with =: {definition}"
            )
    return problems


def foreign_key_problems(conn: psycopg.Connection[Any], layout: Layout) -> list[str]:
    """Foreign keys a Citus cluster can enforce on one node."""
    rows = conn.execute(
        """
        select t.relname, c.conname, r.relname, rn.nspname,
               (select array_agg(a.attname order by k.ord)
                  from unnest(c.conkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum),
               (select array_agg(a.attname order by k.ord)
                  from unnest(c.confkey) with ordinality k(attnum, ord)
                  join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum),
               c.confdeltype, c.confupdtype, pg_get_constraintdef(c.oid)
          from pg_constraint c
          join pg_class t on t.oid = c.conrelid
          join pg_class r on r.oid = c.confrelid
          join pg_namespace rn on rn.oid = r.relnamespace
         where c.contype = 'f' and t.relnamespace = %s::regnamespace
           and c.conparentid = 0
         order by 1, 2
        """,
        (SCHEMA,),
    ).fetchall()
    problems = []
    for (
        table,
        name,
        target,
        target_schema,
        cols,
        target_cols,
        on_delete,
        on_update,
        definition,
    ) in rows:
        source_kind = layout.kind(table)
        target_kind = layout.kind(target) if target_schema == SCHEMA else "outside the schema"
        where = f"{table}.{name} ({source_kind} -> {target_kind} {target}): {definition}"
        if source_kind == "distributed" and target_kind == "distributed":
            column, target_column = layout.distributed[table], layout.distributed[target]
            at = [i for i, c in enumerate(cols) if c == column]
            target_at = [i for i, c in enumerate(target_cols) if c == target_column]
            if not at or not target_at or at[0] != target_at[0]:
                problems.append(
                    f"{where} -- must pair {column} with {target}.{target_column} "
                    "at the same position"
                )
            else:
                if on_delete in BAD_ON_DELETE:
                    problems.append(
                        f"{where} -- ON DELETE {ACTIONS[on_delete]} on the distribution column"
                    )
                if on_update in BAD_ON_UPDATE:
                    problems.append(
                        f"{where} -- ON UPDATE {ACTIONS[on_update]} on the distribution column"
                    )
        elif target_kind == "reference" and source_kind in ("distributed", "reference"):
            continue
        elif source_kind in ("reference", "coordinator") and target_kind == "distributed":
            problems.append(f"{where} -- only distributed tables may reference distributed tables")
        elif source_kind == "distributed":
            problems.append(
                f"{where} -- a distributed table may reference only colocated distributed "
                "tables and reference tables"
            )
        elif source_kind == "reference" and target_kind == "coordinator":
            if on_delete not in ("a", "r") or on_update not in ("a", "r"):
                problems.append(
                    f"{where} -- a reference table may reference a local table only with "
                    "NO ACTION or RESTRICT"
                )
        elif source_kind == "unplaced" or target_kind == "unplaced":
            problems.append(f"{where} -- place the table first")
    return problems


def sequence_problems(conn: psycopg.Connection[Any], layout: Layout) -> list[str]:
    """Identity columns and columns whose default draws from a sequence must be bigint, and
    so must their sequences."""
    rows = conn.execute(
        """
        with seq_columns as (
          -- identity columns and serial columns: the sequence is owned by the column
          select d.refobjid as relid, d.refobjsubid as attnum, d.objid as seqid,
                 case d.deptype when 'i' then 'identity' else 'owned sequence' end as how
            from pg_depend d
           where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
             and d.deptype in ('i', 'a') and d.refobjsubid > 0
             and (select relkind from pg_class where oid = d.objid) = 'S'
          union
          -- defaults that call nextval() on any sequence
          select ad.adrelid, ad.adnum, d.refobjid, 'default ' || pg_get_expr(ad.adbin, ad.adrelid)
            from pg_attrdef ad
            join pg_depend d on d.classid = 'pg_attrdef'::regclass and d.objid = ad.oid
                            and d.refclassid = 'pg_class'::regclass
           where (select relkind from pg_class where oid = d.refobjid) = 'S'
          union
          select a.attrelid, a.attnum, null, 'identity'
            from pg_attribute a where a.attidentity <> ''
        )
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               s.seqid::regclass::text, format_type(q.seqtypid, null), s.how
          from seq_columns s
          join pg_class c on c.oid = s.relid
          join pg_attribute a on a.attrelid = s.relid and a.attnum = s.attnum
          left join pg_sequence q on q.seqrelid = s.seqid
         where c.relnamespace = %s::regnamespace
         order by 1, 2
        """,
        (SCHEMA,),
    ).fetchall()
    columns: dict[tuple[str, str], str] = {}
    hows: dict[tuple[str, str], set[str]] = {}
    sequences: set[str] = set()
    for table, column, type_, sequence, sequence_type, how in rows:
        if table not in layout.citus_tables:
            continue
        columns[(table, column)] = type_
        hows.setdefault((table, column), set()).add(how)
        if sequence is not None and sequence_type != "bigint":
            sequences.add(
                f"{table}.{column}: sequence {sequence} is {sequence_type}, must be bigint"
            )
    problems = [
        f"{table}.{column} is {type_} ({', '.join(sorted(hows[(table, column)]))}): must be bigint"
        for (table, column), type_ in columns.items()
        if type_ != "bigint"
    ]
    return sorted([*problems, *sequences])


def triggers(conn: psycopg.Connection[Any], tables: Set[str]) -> dict[str, dict[str, str]]:
    """The user triggers (not those behind constraints) of the given tables."""
    rows = conn.execute(
        """
        select c.relname, t.tgname, p.proname
          from pg_trigger t
          join pg_class c on c.oid = t.tgrelid
          join pg_proc p on p.oid = t.tgfoid
         where c.relnamespace = %s::regnamespace and not t.tgisinternal
         order by 1, 2
        """,
        (SCHEMA,),
    ).fetchall()
    found: dict[str, dict[str, str]] = {}
    for table, name, function in rows:
        if table in tables:
            found.setdefault(table, {})[name] = function
    return found


def trigger_inventory_problems(
    actual: Mapping[str, Mapping[str, str]], expected: Mapping[str, Mapping[str, str]]
) -> list[str]:
    problems = []
    for table in sorted(set(actual) | set(expected)):
        have, want = actual.get(table, {}), expected.get(table, {})
        for name in sorted(set(have) - set(want)):
            problems.append(
                f"{table}.{name} (executes {have[name]}) is not in EXPECTED_TRIGGERS: Citus "
                "needs citus.enable_unsafe_triggers for it; record it here and in "
                "docs/scaling.md, or do its work elsewhere"
            )
        for name in sorted(set(want) - set(have)):
            problems.append(
                f"{table}.{name} is in EXPECTED_TRIGGERS but no longer exists: remove it there "
                "and from docs/scaling.md"
            )
        for name in sorted(set(want) & set(have)):
            if have[name] != want[name]:
                problems.append(
                    f"{table}.{name} executes {have[name]}, EXPECTED_TRIGGERS says {want[name]}"
                )
    return problems


def report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n  " + "\n  ".join(problems)


@pytest.fixture(scope="module")
def catalog(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def layout(catalog: psycopg.Connection[Any]) -> Layout:
    return classify(catalog)


def test_every_table_has_a_place(layout: Layout) -> None:
    assert not layout.problems, report("tables without a place in a Citus cluster", layout.problems)
    assert ROOT_TABLE in layout.distributed
    assert len(layout.distributed) > 1, "no table has a restaurant_id column"


def test_distribution_columns_can_be_colocated(
    catalog: psycopg.Connection[Any], layout: Layout
) -> None:
    problems = distribution_column_problems(catalog, layout)
    assert not problems, report("distribution columns that cannot be colocated", problems)


def test_keys_of_distributed_tables_include_the_distribution_column(
    catalog: psycopg.Connection[Any], layout: Layout
) -> None:
    problems = uniqueness_problems(catalog, layout)
    assert not problems, report(
        "PRIMARY KEY / UNIQUE / EXCLUDE constraints and unique indexes Citus refuses", problems
    )


def test_foreign_keys_are_colocated_or_point_at_reference_tables(
    catalog: psycopg.Connection[Any], layout: Layout
) -> None:
    problems = foreign_key_problems(catalog, layout)
    assert not problems, report("foreign keys Citus refuses", problems)


def test_identity_and_serial_columns_are_bigint(
    catalog: psycopg.Connection[Any], layout: Layout
) -> None:
    problems = sequence_problems(catalog, layout)
    assert not problems, report(
        "sequence-backed columns of Citus tables that are not bigint", problems
    )


def test_trigger_inventory(catalog: psycopg.Connection[Any], layout: Layout) -> None:
    actual = triggers(catalog, layout.citus_tables)
    problems = trigger_inventory_problems(actual, EXPECTED_TRIGGERS)
    assert not problems, report("triggers on distributed and reference tables", problems)


def test_rules_catch_violations(db_url: str) -> None:
    """Each check reports a table built to break its rule (all rolled back)."""
    with psycopg.connect(db_url) as conn:
        conn.execute("set local lock_timeout = '5s'")
        conn.execute(
            f"""
            create table {SCHEMA}.citus_probe_orphan (name text primary key);
            create table {SCHEMA}.citus_probe_ref (
              code text primary key,
              owner bigint references {SCHEMA}.restaurants (id));
            create table {SCHEMA}.citus_probe_typed (restaurant_id integer);
            create table {SCHEMA}.citus_probe (
              restaurant_id bigint not null references {SCHEMA}.restaurants (id),
              id integer generated by default as identity,
              n serial,
              name text,
              table_id bigint,
              booking_id bigint,
              other_restaurant bigint,
              period tstzrange,
              primary key (restaurant_id, id),
              constraint citus_probe_name_key unique (name),
              constraint citus_probe_no_overlap
                exclude using gist (restaurant_id with <>, period with &&),
              constraint citus_probe_table_fkey foreign key (restaurant_id, table_id)
                references {SCHEMA}.tables (restaurant_id, id) on update cascade,
              constraint citus_probe_booking_fkey foreign key (restaurant_id, booking_id)
                references {SCHEMA}.bookings (id, restaurant_id),
              constraint citus_probe_other_fkey foreign key (other_restaurant)
                references {SCHEMA}.restaurants (id),
              constraint citus_probe_local_fkey foreign key (name)
                references {SCHEMA}.leases (name));
            create unique index citus_probe_partial_idx on {SCHEMA}.citus_probe (booking_id)
              where name is null;
            create trigger citus_probe_trigger before insert on {SCHEMA}.citus_probe
              for each row execute function {SCHEMA}.table_adjacency_order();
            """
        )
        try:
            layout = classify(conn, reference=REFERENCE_TABLES | {"citus_probe_ref", "gone"})
            assert any(p.startswith("citus_probe_orphan:") for p in layout.problems)
            assert any(p.startswith("gone: listed in REFERENCE_TABLES") for p in layout.problems)
            assert layout.kind("citus_probe") == "distributed"

            colocation = distribution_column_problems(conn, layout)
            assert [p for p in colocation if p.startswith("citus_probe_typed.")] == [
                "citus_probe_typed.restaurant_id is integer, but restaurants.id is bigint: "
                "colocated distribution columns must have the same type",
                "citus_probe_typed.restaurant_id is nullable: a distributed row needs a value there",
            ]

            keys = uniqueness_problems(conn, layout)
            assert sorted(p.split(" ", 1)[0] for p in keys if p.startswith("citus_probe.")) == [
                "citus_probe.citus_probe_name_key",
                "citus_probe.citus_probe_no_overlap",
                "citus_probe.citus_probe_partial_idx",
            ]

            fkeys = foreign_key_problems(conn, layout)
            flagged = sorted(p.split(" ", 1)[0] for p in fkeys if p.startswith("citus_probe"))
            assert flagged == [
                "citus_probe.citus_probe_booking_fkey",
                "citus_probe.citus_probe_local_fkey",
                "citus_probe.citus_probe_other_fkey",
                "citus_probe.citus_probe_table_fkey",
                "citus_probe_ref.citus_probe_ref_owner_fkey",
            ]
            assert any("ON UPDATE CASCADE" in p for p in fkeys if "citus_probe_table_fkey" in p)

            sequences = sequence_problems(conn, layout)
            assert [p.split(" ", 1)[0] for p in sequences if p.startswith("citus_probe.")] == [
                "citus_probe.id",
                "citus_probe.id:",
                "citus_probe.n",
                "citus_probe.n:",
            ]

            inventory = trigger_inventory_problems(
                triggers(conn, layout.citus_tables),
                {**EXPECTED_TRIGGERS, "zones": {"zones_gone": "nothing"}},
            )
            assert [p.split(" ", 1)[0] for p in inventory] == [
                "citus_probe.citus_probe_trigger",
                "zones.zones_gone",
            ]
        finally:
            conn.rollback()
