"""Random sequences of create / modify / cancel / hold / confirm / release / process / expire
against the real database; the invariants hold after every step, and every refusal is one of
the project's documented SQLSTATEs."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

# Every documented SQLSTATE (docs/errors.md): a change of a confirmed booking that cannot be
# honoured is refused with RA013 or RA014.
DOCUMENTED = {f"RA{n:03d}" for n in range(1, 15)}
COUNTER = {"n": 0}


class BookingMachine(RuleBasedStateMachine):
    url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.conn = psycopg.connect(self.url, autocommit=True)
        self.bookings: list[int] = []
        self.holds: list[int] = []
        self.tables: list[int] = []
        self.restaurant = 0
        self.operations = 0

    @initialize()
    def restaurant_with_tables(self) -> None:
        COUNTER["n"] += 1
        layout = {
            "name": f"Property {COUNTER['n']}",
            "settings": {"retry": {"max_attempts": 2, "base_delay_ms": 0, "max_delay_ms": 0}},
            "tables": [
                {"label": f"P{i}", "max_capacity": c} for i, c in enumerate([2, 2, 4, 4, 6])
            ],
            "adjacency": [["P0", "P1"], ["P2", "P3"]],
        }
        row = self.conn.execute(
            "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
        ).fetchone()
        assert row is not None
        self.restaurant = row[0]["restaurant_id"]
        self.tables = [
            r[0]
            for r in self.conn.execute(
                "select id from allocator.tables where restaurant_id = %s order by id",
                (self.restaurant,),
            ).fetchall()
        ]

    def call(self, sql: str, args: tuple[Any, ...]) -> Any:
        self.operations += 1
        try:
            row = self.conn.execute(sql, args).fetchone()
        except psycopg.Error as exc:
            assert exc.sqlstate in DOCUMENTED, f"{exc.sqlstate}: {exc}"
            return None
        return row[0] if row else None

    def version(self, booking: int) -> int:
        row = self.conn.execute(
            "select version from allocator.bookings where id = %s", (booking,)
        ).fetchone()
        return int(row[0]) if row else 1

    @rule(
        party=st.integers(-1, 9),
        slot=st.integers(0, 6),
        minutes=st.sampled_from([None, 60, 90, 150]),
    )
    def create(self, party: int, slot: int, minutes: int | None) -> None:
        result = self.call(
            "select allocator.create_booking(%s, %s, date_trunc('hour', now()) + interval '1 day' + %s * interval '45 minutes', %s)",
            (self.restaurant, party, slot, minutes),
        )
        if result is not None:
            self.bookings.append(result["booking_id"])

    @precondition(lambda self: self.bookings)
    @rule(data=st.data(), party=st.integers(0, 8), stale=st.booleans())
    def modify(self, data: st.DataObject, party: int, stale: bool) -> None:
        booking = data.draw(st.sampled_from(self.bookings))
        self.call(
            "select allocator.modify_booking(%s, %s, p_party_size => %s)",
            (booking, self.version(booking) - int(stale), party),
        )

    @precondition(lambda self: self.bookings)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.call(
            "select allocator.cancel_booking(%s)", (data.draw(st.sampled_from(self.bookings)),)
        )

    @precondition(lambda self: self.bookings)
    @rule(data=st.data(), ttl=st.integers(-1, 30))
    def hold(self, data: st.DataObject, ttl: int) -> None:
        booking = data.draw(st.sampled_from(self.bookings))
        tables = data.draw(st.lists(st.sampled_from(self.tables), min_size=1, max_size=2))
        result = self.call(
            "select allocator.hold_tables(%s, %s::bigint[], %s)", (booking, tables, ttl)
        )
        if result is not None:
            self.holds.append(result["hold_id"])

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        self.call("select allocator.confirm_hold(%s)", (data.draw(st.sampled_from(self.holds)),))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self.call("select allocator.release_hold(%s)", (data.draw(st.sampled_from(self.holds)),))

    @precondition(lambda self: self.bookings)
    @rule(data=st.data())
    def process(self, data: st.DataObject) -> None:
        self.call(
            "select allocator.process_booking(%s, 'prop')",
            (data.draw(st.sampled_from(self.bookings)),),
        )

    @rule()
    def expire(self) -> None:
        self.call("select allocator.expire_holds()", ())

    @rule()
    def sweep(self) -> None:
        self.call("select allocator.run_due(20, 'prop')", ())

    @invariant()
    def invariants_hold(self) -> None:
        if not self.restaurant:
            return
        violations = self.conn.execute(
            "select * from allocator.check_invariants() where restaurant_id = %s",
            (self.restaurant,),
        ).fetchall()
        assert violations == []

    def teardown(self) -> None:
        self.conn.close()


def test_random_operation_sequences_keep_every_invariant(db_url: str, soak: bool) -> None:
    BookingMachine.url = db_url
    run_state_machine_as_test(
        BookingMachine,
        settings=settings(
            max_examples=1000 if soak else 50,
            stateful_step_count=50 if soak else 25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    COUNTER["n"] = 0
