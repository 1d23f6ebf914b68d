"""A hostile tenant, tried with real login roles on a database of its own.

A tenant-restricted login (a member of allocator_tenant) may use only the restaurants that
allocator.tenant_members lists for it. Tenant A tries to learn about, or act on, tenant B's
restaurant: it probes every view, table and set-returning function it may read with a leaky
function of its own (a pg_temp function with a tiny COST that raises a NOTICE with its
argument, so that the planner runs it as early as it may), and calls every operator function
on B's ids. B's ids are made distinctive (far from any other number), so any of them in a
notice or a row is a leak.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from control import migrate
from tests.conftest import create_database, database_name_for, drop_database, maintenance_url

PASSWORD = secrets.token_hex(16)

# B's objects take ids from here on: ten-digit numbers that nothing else in the database has.
DISTINCT_IDS = {
    "restaurants": 1_913_000_000,
    "zones": 1_923_000_000,
    "tables": 1_933_000_000,
    "table_combinations": 1_943_000_000,
    "bookings": 1_953_000_000,
    "holds": 1_963_000_000,
    "services": 1_973_000_000,
}
# An id no object has: what a tenant is told about another tenant's id must be what it is
# told about this one.
MISSING = 1_999_999_999

LEAK = (
    "create function pg_temp.leak(text) returns boolean language plpgsql stable cost 0.0001 "
    "as $$ begin raise notice 'leak: %', $1; return true; end $$"
)


@dataclass
class Tenant:
    """A login restricted to one restaurant, and that restaurant's objects."""

    role: str
    url: str
    restaurant_id: int
    token: str
    bookings: dict[str, int] = field(default_factory=dict)
    holds: dict[str, int] = field(default_factory=dict)
    tables: list[int] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)


@dataclass
class World:
    admin: str  # superuser URL of the private database
    ops: str  # URL of an unrestricted allocator_ops login
    a: Tenant  # allocator_ops and allocator_tenant, restaurant A
    b: Tenant  # allocator_ops and allocator_tenant, restaurant B: the one probed for
    app: Tenant  # allocator_app and allocator_tenant, restaurant A


def login(admin: psycopg.Connection[Any], url: str, role: str, *groups: str) -> str:
    admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
    admin.execute(
        sql.SQL("create role {} login password {} in role {}").format(
            sql.Identifier(role),
            sql.Literal(PASSWORD),
            sql.SQL(", ").join(map(sql.Identifier, groups)),
        )
    )
    return make_conninfo(url, user=role, password=PASSWORD)


def one(conn: psycopg.Connection[Any], query: str, *args: Any) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


BOOK = (
    "select (allocator.create_booking(%s, %s, date_trunc('hour', now()) + interval '2 days'"
    " + %s * interval '3 hours', 90) ->> 'booking_id')::bigint"
)


def furnish(admin: psycopg.Connection[Any], tenant: Tenant) -> None:
    """The tenant's own bookings, made through its own login: one confirmed, one in manual
    review, one with an active hold, one whose hold the test can let run out, one waiting
    in the queue."""
    with tenant.connect() as conn:
        rid = tenant.restaurant_id
        for name, party, slot in (
            ("confirmed", 2, 0),
            ("review", 40, 1),
            ("held", 2, 2),
            ("expiring", 2, 3),
            ("due", 2, 4),
        ):
            tenant.bookings[name] = one(conn, BOOK, rid, party, slot)
        for name in ("confirmed", "review"):
            conn.execute("select allocator.process_booking(%s, 'probe')", (tenant.bookings[name],))
        tenant.tables = [
            r[0]
            for r in conn.execute(
                "select table_id from allocator.table_overview where restaurant_id = %s order by label",
                (rid,),
            )
        ]
        for name in ("held", "expiring"):
            tenant.holds[name] = one(
                conn,
                "select (allocator.hold_tables(%s, array[%s]::bigint[], 600) ->> 'hold_id')::bigint",
                tenant.bookings[name],
                tenant.tables[-1],
            )
    states = dict(
        admin.execute(
            "select id, state from allocator.bookings where restaurant_id = %s", (rid,)
        ).fetchall()
    )
    assert states[tenant.bookings["confirmed"]] == "confirmed"
    assert states[tenant.bookings["review"]] == "manual_review"
    marks = admin.execute(
        """select id from allocator.restaurants where id = %(r)s
           union all select id from allocator.zones where restaurant_id = %(r)s
           union all select id from allocator.tables where restaurant_id = %(r)s
           union all select id from allocator.table_combinations where restaurant_id = %(r)s
           union all select id from allocator.bookings where restaurant_id = %(r)s
           union all select id from allocator.holds where restaurant_id = %(r)s""",
        {"r": rid},
    ).fetchall()
    tenant.marks = {str(m[0]) for m in marks}


def restaurant(admin: psycopg.Connection[Any], token: str) -> int:
    layout = {
        "name": f"Bistro {token}",
        "zones": [{"name": f"Room {token}"}],
        "tables": [
            {"label": f"{token}-{i}", "zone": f"Room {token}", "max_capacity": 4}
            for i in range(1, 5)
        ],
        "adjacency": [[f"{token}-1", f"{token}-2"]],
    }
    rid = int(
        one(
            admin,
            "select allocator.import_layout(%s::jsonb) ->> 'restaurant_id'",
            json.dumps(layout),
        )
    )
    # A service period, a closed day and a special day, named after the tenant, so that reading another
    # tenant's shows its token.
    admin.execute(
        "select allocator.set_service(%s, %s, array[1,2,3,4,5,6,7], '00:00', '23:45')",
        (rid, f"service {token}"),
    )
    admin.execute("select allocator.close_day(%s, current_date + 30, %s)", (rid, f"closed {token}"))
    admin.execute(
        "select allocator.set_special_day(%s, current_date + 31, %s, '18:00', '20:00', %s)",
        (rid, f"service {token}", f"special {token}"),
    )
    return rid


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    name = database_name_for("tenancy")
    url = create_database(name)
    migrate.upgrade("head", url=url)
    prefix = f"allocator_test_{name.split('_')[2]}"
    roles = [f"{prefix}_a", f"{prefix}_b", f"{prefix}_app", f"{prefix}_ops"]
    try:
        with psycopg.connect(url, autocommit=True) as admin:
            urls = {
                "a": login(admin, url, roles[0], "allocator_ops", "allocator_tenant"),
                "b": login(admin, url, roles[1], "allocator_ops", "allocator_tenant"),
                "app": login(admin, url, roles[2], "allocator_app", "allocator_tenant"),
                "ops": login(admin, url, roles[3], "allocator_ops"),
            }
            token_a, token_b = f"qa{secrets.token_hex(4)}", f"zb{secrets.token_hex(4)}"
            ra = restaurant(admin, token_a)
            for table, start in DISTINCT_IDS.items():
                admin.execute(
                    "select setval(pg_get_serial_sequence(%s, 'id'), %s)",
                    (f"allocator.{table}", start + secrets.randbelow(1000) * 1000),
                )
            rb = restaurant(admin, token_b)
            for role, rid in ((roles[0], ra), (roles[1], rb), (roles[2], ra)):
                admin.execute(
                    "insert into allocator.tenant_members (restaurant_id, role_name) values (%s, %s)",
                    (rid, role),
                )
            a = Tenant(roles[0], urls["a"], ra, token_a)
            b = Tenant(roles[1], urls["b"], rb, token_b)
            furnish(admin, b)
            furnish(admin, a)
            app = Tenant(roles[2], urls["app"], ra, token_a, a.bookings, a.holds, a.tables, a.marks)
        yield World(url, urls["ops"], a, b, app)
    finally:
        with psycopg.connect(maintenance_url(), autocommit=True) as conn:
            for role in roles:
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
        drop_database(name)


# ---------------------------------------------------------------------------------------
# Leaky functions against every view, table and set-returning function


class Probe:
    """A tenant's session with the leaky function, keeping every notice, row and error."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.notices: list[str] = []
        self.conn.add_notice_handler(lambda d: self.notices.append(d.message_primary or ""))
        self.conn.execute(LEAK)
        self.seen: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str | None, str]] = []

    def run(self, query: str) -> list[str]:
        """Run ``query`` in a transaction that is rolled back; the names of its columns."""
        start = len(self.notices)
        columns: list[str] = []
        try:
            with self.conn.transaction(force_rollback=True):
                cur = self.conn.execute(query)
                columns = [c.name for c in cur.description or ()]
                rows = cur.fetchall()
        except psycopg.Error as exc:
            self.errors.append((query, exc.sqlstate, str(exc).splitlines()[0]))
            rows = []
        self.seen += [(query, n) for n in self.notices[start:]]
        self.seen += [(query, repr(r)) for r in rows]
        return columns

    def probe(self, source: str, columns: list[str]) -> None:
        """Put the leaky function on each column of ``source``, and on all of them at once."""
        if not columns:
            return
        for column in columns:
            self.run(f"select * from {source} where pg_temp.leak(x.{column}::text)")
        everything = ", ".join(f"x.{c}::text" for c in columns)
        self.run(f"select * from {source} where pg_temp.leak(concat_ws('|', {everything}))")

    def close(self) -> None:
        self.conn.close()


def leaks(seen: list[tuple[str, str]], other: Tenant) -> list[tuple[str, str]]:
    """What was seen that names the other tenant's restaurant or any of its objects."""
    return [
        (query, text[:300])
        for query, text in seen
        if set(re.findall(r"\d+", text)) & other.marks or other.token in text.lower()
    ]


# The set-returning functions a tenant may execute, each with arguments of its own
# restaurant. A new one fails test_leaky_function_learns_nothing until it is listed here.
SRF_CALLS: dict[str, str] = {
    "assignment_metrics_between": "now() - interval '1 year', now() + interval '1 year'",
    "booking_attempts": "{confirmed}",
    "booking_history": "{confirmed}",
    "check_invariants": "",
    "staff_members": "",
    "claim_due": "'probe', 1000, 30",
    "claim_mail": "'probe', 1000, 30",
    "cron_plan": "",
    "deliver_notifications": "10000",
    "nightly_due": "",
    "plan_booking": "{due}, 100",
    "queue_deferrals": "",
    "find_slots": "{restaurant}, 2, now(), now() + interval '1 day'",
    "floor_at": "{restaurant}",
    "read_events": "'probe', 10000",
    "shadow_report_between": "now() - interval '1 year', now() + interval '1 year'",
}


@pytest.mark.parametrize("who", ["a", "app"])
def test_leaky_function_learns_nothing_of_another_tenant(world: World, who: str) -> None:
    me: Tenant = getattr(world, who)
    with psycopg.connect(world.admin, autocommit=True) as admin:
        # A violation of B's for check_invariants to find (put back afterwards).
        admin.execute(
            "update allocator.bookings set party_size = 9 where id = %s",
            (world.b.bookings["confirmed"],),
        )
        probe = Probe(me.url)
        try:
            relations = probe.conn.execute(
                """select c.relname, array(select a.attname::text from pg_attribute a
                                           where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                                           order by a.attnum)
                     from pg_class c
                    where c.relnamespace = 'allocator'::regnamespace and c.relkind in ('r', 'v', 'm', 'p', 'f')
                      and has_table_privilege(c.oid, 'SELECT')
                    order by 1"""
            ).fetchall()
            functions = [
                r[0]
                for r in probe.conn.execute(
                    """select p.proname from pg_proc p
                        where p.pronamespace = 'allocator'::regnamespace and p.proretset
                          and has_function_privilege(p.oid, 'EXECUTE')
                        order by 1"""
                )
            ]
            assert set(functions) <= set(SRF_CALLS), "list the arguments of a new function"
            readable = {name for name, _ in relations}
            assert {"bookings", "tables", "table_overview"} <= readable
            if who == "a":
                assert {"booking_timeline", "queue_status", "booking_state_counts"} <= readable
            for name, columns in relations:
                probe.probe(f"allocator.{name} x", [sql.Identifier(c).as_string() for c in columns])
            for function in functions:
                args = SRF_CALLS[function].format(**me.bookings, restaurant=me.restaurant_id)
                columns = probe.run(f"select * from allocator.{function}({args}) limit 0")
                probe.probe(f"allocator.{function}({args}) x", [f'"{c}"' for c in columns])
            found, errors, seen = leaks(probe.seen, world.b), probe.errors, probe.seen
        finally:
            probe.close()
            admin.execute(
                "update allocator.bookings set party_size = 2 where id = %s",
                (world.b.bookings["confirmed"],),
            )
    assert found == []
    assert errors == []
    # The probe works: it saw the tenant's own restaurant through the views.
    own = str(me.restaurant_id)
    assert any(own in re.findall(r"\d+", text) for q, text in seen if "leak" in text), seen[:5]


def test_every_view_reads_as_its_caller_behind_a_barrier(world: World) -> None:
    with psycopg.connect(world.admin) as conn:
        rows = conn.execute(
            """select c.relname from pg_class c
                where c.relnamespace = 'allocator'::regnamespace and c.relkind = 'v'
                  and not (coalesce(c.reloptions, '{}') @> array['security_invoker=true', 'security_barrier=true'])
                order by 1"""
        ).fetchall()
    assert rows == []


# ---------------------------------------------------------------------------------------
# Operator functions act on the caller's restaurants only


def state_of(admin: psycopg.Connection[Any], booking_id: int) -> tuple[str, str | None]:
    row = admin.execute(
        """select b.state, q.leased_by from allocator.bookings b
             left join allocator.assignment_queue q on q.restaurant_id = b.restaurant_id and q.booking_id = b.id
            where b.id = %s""",
        (booking_id,),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize(
    "call",
    [
        "select booking_id from allocator.claim_due('probe-claims', 1000, 3600)",
        "select allocator.run_one('probe-sweeper')",
        "select allocator.run_due(1000, 'probe-sweeper')",
        "call allocator.sweep(1000, 'probe-sweeper')",
    ],
    ids=["claim_due", "run_one", "run_due", "sweep"],
)
def test_queue_functions_take_only_the_callers_bookings(world: World, call: str) -> None:
    progress = """select (select array_agg((booking_id, leased_by) order by booking_id)
                          from allocator.assignment_queue where restaurant_id = %(r)s),
                         (select max(id) from allocator.booking_state_history where restaurant_id = %(r)s)"""
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        assert state_of(admin, world.b.bookings["due"]) == ("created", None)
        one(a, BOOK, world.a.restaurant_id, 2, 5)
        theirs = fingerprint(admin, world.b.restaurant_id)
        mine = admin.execute(progress, {"r": world.a.restaurant_id}).fetchone()
        try:
            a.execute(call)
            assert fingerprint(admin, world.b.restaurant_id) == theirs, "B's queue was touched"
            # The caller's own due bookings were taken: claimed, processed or dequeued.
            assert admin.execute(progress, {"r": world.a.restaurant_id}).fetchone() != mine
        finally:
            admin.execute(
                "update allocator.assignment_queue set leased_by = null, lease_expires_at = null"
                " where leased_by like 'probe-%'"
            )


def test_release_claims_gives_back_only_the_callers_rows(world: World) -> None:
    b_due = world.b.bookings["due"]
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        admin.execute(
            "update allocator.assignment_queue set leased_by = 'shared', lease_expires_at = now() + interval '10 minutes'"
            " where booking_id = %s",
            (b_due,),
        )
        try:
            assert one(a, "select allocator.release_claims('shared')") == 0
            assert state_of(admin, b_due) == ("created", "shared")
        finally:
            admin.execute(
                "update allocator.assignment_queue set leased_by = null, lease_expires_at = null"
                " where booking_id = %s",
                (b_due,),
            )


def test_events_and_notifications_of_a_tenant_are_its_own(world: World) -> None:
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        cursors = admin.execute("select * from allocator.subscriber_cursors order by 1").fetchall()
        notes = a.execute(
            "select restaurant_id, booking_id from allocator.deliver_notifications(10000)"
        ).fetchall()
        events = a.execute(
            "select restaurant_id from allocator.read_events('notifications', 10000)"
        ).fetchall()
        assert {r for r, _ in notes} == {world.a.restaurant_id}
        assert world.a.bookings["confirmed"] in {b for _, b in notes}
        assert {r for (r,) in events} <= {world.a.restaurant_id}
        # The shared cursors did not move: the notification handler still delivers B's.
        after = admin.execute(
            "select * from allocator.subscriber_cursors where subscriber not like 'tenant %%' order by 1"
        ).fetchall()
        assert after == [c for c in cursors if not c[0].startswith("tenant ")]
        with admin.transaction(force_rollback=True):
            delivered = admin.execute(
                "select booking_id from allocator.deliver_notifications(10000)"
            ).fetchall()
        assert world.b.bookings["confirmed"] in {b for (b,) in delivered}


def test_leases_of_a_tenant_are_its_own(world: World) -> None:
    with psycopg.connect(world.ops, autocommit=True) as ops, world.a.connect() as a:
        assert one(ops, "select allocator.lease_acquire('worker:shared', 'real-owner', 600)")[
            "acquired"
        ]
        try:
            # The owner is readable (allocator_readonly reads leases), yet of no use to A.
            owner = one(a, "select owner from allocator.leases where name = 'worker:shared'")
            assert not one(a, "select allocator.lease_extend('worker:shared', %s, 600)", owner)
            assert not one(a, "select allocator.lease_release('worker:shared', %s)", owner)
            mine = one(a, "select allocator.lease_acquire('worker:shared', 'tenant-a', 60)")
            assert mine["acquired"] and mine["name"] == "worker:shared"
            assert one(a, "select allocator.lease_release('worker:shared', 'tenant-a')")
            held = ops.execute(
                "select owner from allocator.leases where name = 'worker:shared'"
            ).fetchall()
            assert held == [("real-owner",)]
        finally:
            ops.execute("select allocator.lease_release('worker:shared', 'real-owner')")


def test_expire_holds_expires_only_the_callers_holds(world: World) -> None:
    hold = world.b.holds["expiring"]
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        admin.execute(
            "update allocator.holds set expires_at = now() - interval '1 minute' where id = %s",
            (hold,),
        )
        try:
            a.execute("select allocator.expire_holds()")
            assert one(admin, "select status from allocator.holds where id = %s", hold) == "active"
        finally:
            admin.execute(
                "update allocator.holds set expires_at = now() + interval '10 minutes' where id = %s",
                (hold,),
            )


def test_check_invariants_reports_only_the_callers_restaurants(world: World) -> None:
    confirmed = world.b.bookings["confirmed"]
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        # A party of 9 on a table for 4: a capacity violation of B's.
        admin.execute("update allocator.bookings set party_size = 9 where id = %s", (confirmed,))
        try:
            assert one(
                admin,
                "select count(*) from allocator.check_invariants() where booking_id = %s",
                confirmed,
            )
            seen = a.execute("select distinct restaurant_id from allocator.check_invariants()")
            assert {r for (r,) in seen} <= {world.a.restaurant_id}
        finally:
            admin.execute(
                "update allocator.bookings set party_size = 2 where id = %s", (confirmed,)
            )


def test_cron_plan_runs_for_allocator_ops(world: World) -> None:
    # Every column: a schedule may be computed from the settings.
    plan = "select jobname, schedule, command from allocator.cron_plan()"
    with psycopg.connect(world.ops) as ops, world.a.connect() as a:
        everything = ops.execute(plan).fetchall()
        mine = a.execute(plan).fetchall()
    assert {"allocator-expire-holds", "allocator-run-due"} <= {job for job, _, _ in everything}
    assert leaks([(plan, repr(mine))], world.b) == []


def test_the_nightly_sweep_of_a_tenant_plans_only_its_restaurants(world: World) -> None:
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        due = {r for (r,) in a.execute("select restaurant_id from allocator.nightly_due()")}
        assert due <= {world.a.restaurant_id}
        a.execute("call allocator.nightly_sweep()")
        planned = admin.execute(
            "select restaurant_id from allocator.nightly_plans where restaurant_id = %s",
            (world.b.restaurant_id,),
        ).fetchall()
        admin.execute("delete from allocator.nightly_plans")
    assert planned == []


# ---------------------------------------------------------------------------------------
# Another tenant's ids are answered like ids that do not exist

# Each call names one id, as {id}: a restaurant, booking, hold or table of the other tenant,
# or MISSING. {confirmed}, {review}, {table} are the caller's own.
ID_CALLS: list[tuple[str, str, str]] = [
    (
        "restaurant",
        "apply_optimal_assignment",
        "select allocator.apply_optimal_assignment({id}, current_date, '{{}}')",
    ),
    ("booking", "booking_attempts", "select * from allocator.booking_attempts({id})"),
    ("booking", "booking_history", "select * from allocator.booking_history({id})"),
    ("booking", "cancel_booking", "select allocator.cancel_booking({id})"),
    ("hold", "confirm_hold", "select allocator.confirm_hold({id})"),
    (
        "restaurant",
        "create_booking",
        "select allocator.create_booking({id}, 2, now() + interval '1 day')",
    ),
    (
        "booking",
        "decline_booking",
        "select allocator.decline_booking({id}, 'staff:probe', 'probe')",
    ),
    ("restaurant", "delete_restaurant", "select allocator.delete_restaurant({id})"),
    ("booking", "expect_version", "select allocator.expect_version({id}, 1)"),
    ("booking", "force_confirm", "select allocator.force_confirm({id}, 'staff:probe', 'probe')"),
    (
        "table",
        "force_confirm",
        "select allocator.force_confirm({review}, 'staff:probe', 'probe', array[{id}]::bigint[])",
    ),
    ("booking", "hold_tables", "select allocator.hold_tables({id}, array[{table}]::bigint[])"),
    ("table", "hold_tables", "select allocator.hold_tables({due}, array[{id}]::bigint[])"),
    ("restaurant", "import_bookings", "select allocator.import_bookings({id}, '[]')"),
    (
        "booking",
        "manual_assign",
        "select allocator.manual_assign({id}, array[{table}]::bigint[], 'staff:probe', 'probe')",
    ),
    (
        "table",
        "manual_assign",
        "select allocator.manual_assign({review}, array[{id}]::bigint[], 'staff:probe', 'probe')",
    ),
    ("booking", "modify_booking", "select allocator.modify_booking({id}, 1, p_party_size => 3)"),
    ("booking", "seat_booking", "select allocator.seat_booking({id})"),
    ("restaurant", "floor_at", "select * from allocator.floor_at({id})"),
    ("restaurant", "seat_walk_in", "select allocator.seat_walk_in({id}, 2)"),
    ("restaurant", "join_waitlist", "select allocator.join_waitlist({id}, 2, 'probe')"),
    ("restaurant", "seat_from_waitlist", "select allocator.seat_from_waitlist({id}, 1)"),
    ("restaurant", "remove_from_waitlist", "select allocator.remove_from_waitlist({id}, 1)"),
    (
        "restaurant",
        "block_tables",
        "select allocator.block_tables({id}, array[{table}]::bigint[], now() + interval '1 day', now() + interval '2 days', 'probe')",
    ),
    (
        "table",
        "block_tables",
        "select allocator.block_tables({restaurant}, array[{id}]::bigint[], now() + interval '1 day', now() + interval '2 days', 'probe')",
    ),
    ("restaurant", "unblock_tables", "select allocator.unblock_tables({id}, array[1]::bigint[])"),
    ("booking", "finish_booking", "select allocator.finish_booking({id})"),
    ("booking", "mark_no_show", "select allocator.mark_no_show({id})"),
    ("restaurant", "nightly_optimize", "select allocator.nightly_optimize({id})"),
    ("restaurant", "optimize_day", "select allocator.optimize_day({id}, current_date)"),
    (
        "restaurant",
        "pipeline_report",
        "select allocator.pipeline_report({id}, now() - interval '1 day')",
    ),
    ("booking", "plan_booking", "select * from allocator.plan_booking({id})"),
    ("booking", "process_booking", "select allocator.process_booking({id}, 'probe')"),
    ("hold", "release_hold", "select allocator.release_hold({id})"),
    ("restaurant", "run_nightly", "select allocator.run_nightly({id})"),
    ("restaurant", "replan_day", "select allocator.replan_day({id}, current_date)"),
    ("booking", "requeue", "select allocator.requeue({id}, 'staff:probe', 'probe')"),
    ("restaurant", "tenant_allows", "select allocator.tenant_allows({id})"),
    ("restaurant", "update_settings", "select allocator.update_settings({id}, '{{}}')"),
    (
        "restaurant",
        "find_slots",
        "select * from allocator.find_slots({id}, 2, now(), now() + interval '1 day')",
    ),
    ("restaurant", "book", "select allocator.book({id}, 2, now() + interval '1 day')"),
    (
        "restaurant",
        "set_service",
        "select allocator.set_service({id}, 'probe', array[1], '18:00', '22:00')",
    ),
    ("restaurant", "remove_service", "select allocator.remove_service({id}, 'probe')"),
    ("restaurant", "close_day", "select allocator.close_day({id}, current_date + 1, 'probe')"),
    ("restaurant", "reopen_day", "select allocator.reopen_day({id}, current_date + 1)"),
    (
        "restaurant",
        "set_special_day",
        "select allocator.set_special_day({id}, current_date + 1, 'probe', null, null, 'probe')",
    ),
    (
        "restaurant",
        "clear_special_day",
        "select allocator.clear_special_day({id}, current_date + 1, 'probe')",
    ),
    ("restaurant", "mail_outcome", "select allocator.mail_outcome({id}, 1, 'probe', 'sent')"),
    ("restaurant", "resend_mail", "select allocator.resend_mail({id}, 1)"),
]
ID_ARGUMENTS = ("p_restaurant_id", "p_booking_id", "p_hold_id", "p_table_ids")


def outcome(conn: psycopg.Connection[Any], query: str, the_id: int) -> tuple[str, str]:
    """SQLSTATE and message, or 'ok' and the result, with the id written as <id>."""
    try:
        with conn.transaction(force_rollback=True):
            result = ("ok", repr(conn.execute(query).fetchall()))
    except psycopg.Error as exc:
        result = (exc.sqlstate or "?", str(exc).splitlines()[0])
    return result[0], result[1].replace(str(the_id), "<id>")


def fingerprint(admin: psycopg.Connection[Any], rid: int) -> tuple[Any, ...]:
    row = admin.execute(
        """select (select settings from allocator.restaurants where id = %(r)s),
                  (select array_agg((id, state, version) order by id) from allocator.bookings where restaurant_id = %(r)s),
                  (select array_agg((id, status) order by id) from allocator.holds where restaurant_id = %(r)s),
                  (select count(*) from allocator.allocations where restaurant_id = %(r)s),
                  (select count(*) from allocator.optimizer_runs where restaurant_id = %(r)s),
                  (select array_agg((booking_id, leased_by) order by booking_id) from allocator.assignment_queue where restaurant_id = %(r)s)""",
        {"r": rid},
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_another_tenants_ids_are_answered_as_missing_ones(world: World) -> None:
    own = {**world.a.bookings, "table": world.a.tables[0], "restaurant": world.a.restaurant_id}
    theirs = {
        "restaurant": world.b.restaurant_id,
        "booking": world.b.bookings["confirmed"],
        "hold": world.b.holds["held"],
        "table": world.b.tables[0],
    }
    with psycopg.connect(world.admin, autocommit=True) as admin, world.a.connect() as a:
        assert not one(
            admin, "select exists (select 1 from allocator.restaurants where id = %s)", MISSING
        )
        # Every function the tenant may call that takes such an id is tried.
        callable_ = {
            r[0]
            for r in a.execute(
                """select p.proname from pg_proc p
                    where p.pronamespace = 'allocator'::regnamespace and has_function_privilege(p.oid, 'EXECUTE')
                      and p.proargnames && %s::text[]""",
                (list(ID_ARGUMENTS),),
            )
        }
        assert callable_ <= {name for _, name, _ in ID_CALLS}, "list the new function in ID_CALLS"
        before = fingerprint(admin, world.b.restaurant_id)
        differ = []
        for kind, name, template in ID_CALLS:
            foreign = outcome(a, template.format(id=theirs[kind], **own), theirs[kind])
            missing = outcome(a, template.format(id=MISSING, **own), MISSING)
            if foreign != missing:
                differ.append((name, kind, foreign, missing))
        assert differ == []
        assert fingerprint(admin, world.b.restaurant_id) == before


def test_notify_payloads_are_bare_event_ids(world: World) -> None:
    with world.a.connect() as a, world.b.connect() as b, psycopg.connect(world.admin) as admin:
        a.execute("listen allocator_events")
        booking = one(b, BOOK, world.b.restaurant_id, 2, 6)
        payloads = [n.payload for n in a.notifies(timeout=2.0, stop_after=1)]
        assert payloads and all(re.fullmatch(r"[1-9][0-9]*", p) for p in payloads), payloads
        ids = [int(p) for p in payloads]
        topics = admin.execute(
            "select restaurant_id, booking_id from allocator.events where id = any(%s)", (ids,)
        ).fetchall()
        assert (world.b.restaurant_id, booking) in topics
        # The event itself is B's: A cannot read it.
        assert (
            a.execute("select * from allocator.events where id = any(%s)", (ids,)).fetchall() == []
        )
        admin.execute("select allocator.cancel_booking(%s)", (booking,))
        admin.commit()
