"""The solver core, without a database: known optima, locks, determinism, fallback."""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plpy_functions"))

import solver
from solver import Booking, Resource, blocks, feasible, solve

TWO_TOPS = [Resource((1,), 1, 2), Resource((2,), 1, 2)]
FOUR_TOP = Resource((3,), 2, 4)
COMBO = Resource((1, 2), 2, 4)


@pytest.mark.parametrize("method", ["milp", "greedy"])
def test_tiny_instance_with_known_optimum(method: str) -> None:
    # Two 2-tops that combine into a 4, and one 4-top; three parties overlap.
    bookings = [
        Booking(1, 4, 0, 120),
        Booking(2, 4, 30, 150),
        Booking(3, 2, 60, 180),
    ]
    result = solve([*TWO_TOPS, FOUR_TOP, COMBO], bookings, method=method)
    assert feasible(result.assignment, bookings)
    seated = {b for b, r in result.assignment.items() if r is not None}
    # The optimum seats both 4s (4-top and the combination); the 2 then has no table.
    assert seated == {1, 2}
    assert sorted(r for r in result.assignment.values() if r) == [(1, 2), (3,)]


def test_optimum_prefers_covers_then_fit() -> None:
    bookings = [Booking(1, 2, 0, 60), Booking(2, 3, 0, 60)]
    result = solve([Resource((1,), 1, 2), Resource((2,), 1, 4)], bookings, method="milp")
    assert result.assignment == {1: (1,), 2: (2,)}, "the 2 takes the 2-top so the 3 can sit"
    assert result.status == "optimal"


def test_locked_bookings_keep_their_tables() -> None:
    bookings = [
        Booking(1, 2, 0, 60, current=(2,), locked=True),  # seated on a table that fits worse
        Booking(2, 2, 0, 60, current=(1,)),
    ]
    resources = [Resource((1,), 1, 2), Resource((2,), 1, 4)]
    for method in ("milp", "greedy"):
        result = solve(resources, bookings, method=method)
        assert result.assignment[1] == (2,)
        assert result.assignment[2] == (1,)


def test_moves_only_when_they_pay() -> None:
    # Booking 1 sits on the 4-top; a party of 4 arrives: moving 1 to the 2-top seats it.
    bookings = [Booking(1, 2, 0, 90, current=(3,)), Booking(2, 4, 30, 120)]
    result = solve([TWO_TOPS[0], FOUR_TOP], bookings, method="milp")
    assert result.assignment == {1: (1,), 2: (3,)}
    # Wasted seats weigh more than a move: alone, booking 1 still moves to the better fit...
    alone = solve([TWO_TOPS[0], FOUR_TOP], [Booking(1, 2, 0, 90, current=(3,))], method="milp")
    assert alone.assignment == {1: (1,)}
    # ...and a booking already on its best table is never moved.
    assert solve(
        [TWO_TOPS[0], FOUR_TOP], [Booking(1, 2, 0, 90, current=(1,))], method="milp"
    ).assignment == {1: (1,)}


def _random_day(
    seed: int, tables: int = 12, bookings: int = 60
) -> tuple[list[Resource], list[Booking]]:
    rng = random.Random(seed)
    caps = [rng.choice([2, 2, 4, 4, 6]) for _ in range(tables)]
    resources = [Resource((i,), 1 if c < 6 else 3, c) for i, c in enumerate(caps)]
    resources += [Resource((i, i + 1), 2, caps[i] + caps[i + 1]) for i in range(0, tables - 1, 2)]
    day = []
    for i in range(bookings):
        start = rng.randrange(0, 300, 15)
        party = rng.choice([1, 2, 2, 2, 3, 4, 4, 5, 6, 8])
        day.append(Booking(i, party, start, start + 90 + 15 * (party > 4)))
    return resources, day


def test_deterministic_and_feasible_on_random_days() -> None:
    for seed in range(5):
        resources, day = _random_day(seed)
        first = solve(resources, day, method="milp")
        second = solve(resources, list(reversed(day)), method="milp")
        assert first.assignment == second.assignment
        assert feasible(first.assignment, day)
        greedy = solve(resources, day, method="greedy")
        assert feasible(greedy.assignment, day)
        assert greedy.assignment == solve(resources, day, method="greedy").assignment
        assert greedy.objective <= first.objective + 1e-6, "the MILP optimum bounds the heuristic"


def test_auto_falls_back_to_greedy_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    resources, day = _random_day(1, tables=6, bookings=20)
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    result = solve(resources, day, method="auto")
    assert result.solver == "greedy"
    assert feasible(result.assignment, day)


def test_blocks_split_only_where_nothing_overlaps() -> None:
    lunch = [Booking(1, 2, 720, 810), Booking(2, 2, 800, 890), Booking(3, 4, 880, 990)]
    dinner = [Booking(4, 2, 1140, 1230), Booking(5, 2, 1230, 1320)]
    found = blocks([*reversed(dinner), *lunch])
    # 1-2-3 chain through overlaps; 5 starts exactly when 4 ends, so it is a block of its own.
    assert [[b.id for b in block] for block in found] == [[1, 2, 3], [4], [5]]


def test_solving_by_blocks_keeps_the_optimum() -> None:
    # Two copies of a day, a day apart: the optimum of the whole is twice that of one.
    resources, day = _random_day(3)
    later = [Booking(b.id + 1000, b.party, b.start + 1440, b.end + 1440) for b in day]
    one = solve(resources, day, method="milp")
    both = solve(resources, [*day, *later], method="milp")
    assert both.status == "optimal"
    assert both.stats["blocks"] >= 2 * one.stats["blocks"]
    assert both.objective == pytest.approx(2 * one.objective)
    assert feasible(both.assignment, [*day, *later])


def test_time_limit_bounds_the_call() -> None:
    # A day too large to prove optimal quickly: the answer still comes within the limit,
    # and is a feasible plan from the MILP's best solution or the fallback.
    resources, day = _random_day(7, tables=40, bookings=400)
    result = solve(resources, day, time_limit=0.5)
    assert result.solve_ms < 1000
    assert feasible(result.assignment, day)
    assert any(r is not None for r in result.assignment.values())


def _dense_day(
    seed: int, tables: int, bookings: int, size: int = 3
) -> tuple[list[Resource], list[Booking]]:
    """Every pair of tables adjacent: every set of up to ``size`` tables is a combination."""
    rng = random.Random(seed)
    caps = [rng.choice([2, 2, 4, 4, 6]) for _ in range(tables)]
    lows = [1 if c == 2 else c // 2 for c in caps]
    resources = [
        Resource(ids, sum(lows[i] for i in ids), sum(caps[i] for i in ids))
        for k in range(1, size + 1)
        for ids in itertools.combinations(range(tables), k)
    ]
    day = []
    for i in range(bookings):
        start = rng.randrange(0, 600, 15)
        party = rng.choice([1, 2, 2, 2, 3, 4, 4, 5, 6, 8])
        day.append(Booking(i, party, start, start + 105 + 15 * (party > 4)))
    return resources, day


def test_candidates_worked_out_per_party_are_the_definition() -> None:
    # _Options computes every booking's candidates from one pass per party size; on layouts
    # with any capacities (combinations not the sum of their tables), current tables that
    # fit or not, zones and locks, it gives what _candidates gives, in both orders.
    for seed in range(300):
        rng = random.Random(seed)
        n = rng.randint(2, 7)
        resources = []
        for i in range(n):
            low = rng.randint(1, 4)
            resources.append(Resource((i,), low, low + rng.randint(0, 4), (rng.randint(1, 2),)))
        for k in (2, 3):
            for ids in itertools.combinations(range(n), k):
                if rng.random() < 0.5:
                    low = rng.randint(1, 8) if rng.random() < 0.5 else sum(i + 1 for i in ids)
                    resources.append(Resource(ids, low, low + rng.randint(0, 8), (1,)))
        keys = [r.table_ids for r in resources]
        day = []
        for i in range(10):
            current = rng.choice([None, None, rng.choice(keys), (rng.randrange(n),)])
            day.append(
                Booking(i, rng.randint(1, 12), 0, 60, current=current,
                        locked=current is not None and rng.random() < 0.2,
                        must_seat=rng.random() < 0.3, preferred_zone=rng.choice([None, 1, 2]))
            )  # fmt: skip
        index = solver._index(resources, day)
        options = solver._Options(index)
        for b in day:
            expected = solver._candidates(b, index)
            assert options.candidates(b) == expected, (seed, b)
            ranked = sorted(expected, key=lambda r, b=b: (-solver.value(b, r, index), r))
            assert options.ranked(b) == ranked, (seed, b)


def test_a_dense_layout_keeps_to_the_limit() -> None:
    # 25 tables, every pair adjacent: 2,600 combinations. Building the model and HiGHS's
    # presolve alone took seconds, whatever the limit.
    pytest.importorskip("scipy.optimize")
    resources, day = _dense_day(5, tables=25, bookings=100)
    started = time.perf_counter()
    result = solve(resources, day, time_limit=0.5)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.2 * 0.5 + 0.1, elapsed
    assert feasible(result.assignment, day)
    assert sum(1 for r in result.assignment.values() if r is not None) > 50


def test_the_interrupt_hook_stops_the_solver_at_once() -> None:
    # In PL/Python the hook runs a query, which raises when the statement is cancelled; a
    # long limit does not delay it, not even while HiGHS runs (in a child process, killed).
    pytest.importorskip("scipy.optimize")
    resources, day = _random_day(7, tables=30, bookings=600)
    calls = []

    class Cancelled(Exception):
        pass

    def interrupt() -> None:
        calls.append(time.perf_counter())
        if calls[-1] - calls[0] > 0.5:
            raise Cancelled

    started = time.perf_counter()
    with pytest.raises(Cancelled):
        solve(resources, day, time_limit=60, interrupt=interrupt)
    assert time.perf_counter() - started < 1.5
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert max(gaps) < 0.25, "the hook is called every few hundredths of a second"
    children = Path(f"/proc/self/task/{threading.get_native_id()}/children")
    if children.exists():
        assert children.read_text().split() == [], "HiGHS's process is gone"


def test_a_tiny_limit_still_gives_a_plan() -> None:
    # The first greedy pass comes before the MILP: whatever is left for HiGHS, a plan.
    resources, day = _random_day(7, tables=12, bookings=150)
    result = solve(resources, day, time_limit=0.02)
    assert feasible(result.assignment, day)
    assert any(r is not None for r in result.assignment.values())


# ---------------------------------------------------------------------------------------
# make_room: admission with flexible tables


def _fits(resources: list[Resource]) -> Callable[[Booking], list[tuple[int, ...]]]:
    def choices(b: Booking) -> list[tuple[int, ...]]:
        return sorted(
            (r.table_ids for r in resources if r.min_capacity <= b.party <= r.max_capacity),
            key=lambda k: (len(k), k),
        )

    return choices


def test_make_room_takes_a_free_table_without_moving_anyone() -> None:
    seated = [Booking(1, 2, 0, 120, current=(3,))]
    new = Booking(9, 2, 60, 180)
    plan = solver.make_room(new, seated, [], _fits([*TWO_TOPS, FOUR_TOP]))
    assert plan == {9: (1,)}


def test_make_room_moves_a_party_to_seat_a_larger_one() -> None:
    # A party of 2 sits on the 4-top; a party of 4 needs it, and the 2-top is free.
    seated = [Booking(1, 2, 0, 120, current=(3,))]
    new = Booking(9, 4, 60, 180)
    plan = solver.make_room(new, seated, [], _fits([TWO_TOPS[0], FOUR_TOP]))
    assert plan == {9: (3,), 1: (1,)}


def test_make_room_never_moves_a_locked_booking_nor_through_a_wall() -> None:
    resources = [TWO_TOPS[0], FOUR_TOP]
    locked = [Booking(1, 2, 0, 120, current=(3,), locked=True)]
    assert solver.make_room(Booking(9, 4, 60, 180), locked, [], _fits(resources)) is None
    seated = [Booking(1, 2, 0, 120, current=(3,))]
    walls = [(1, 100, 110)]  # a block on the 2-top while the party of 2 would be there
    assert solver.make_room(Booking(9, 4, 60, 180), seated, walls, _fits(resources)) is None


def test_make_room_plans_are_feasible_and_bounded_on_random_days() -> None:
    moved_somewhere = 0
    for seed in range(6):
        resources, day = _random_day(seed, tables=10, bookings=70)
        rng = random.Random(seed)
        choices = _fits(resources)
        seated: list[Booking] = []
        for b in day:
            plan = solver.make_room(b, seated, [], choices, depth=2, moves=2, tries=50)
            if plan is None:
                continue
            placed = {x.id: x for x in seated}
            placed[b.id] = b
            assert b.id in plan
            for key, resource in plan.items():
                assert resource in choices(placed[key]), "every move lands on a resource that fits"
            moved = [k for k in plan if k != b.id]
            moved_somewhere += bool(moved)
            assert len(moved) <= 2 + 2 * 2, "at most two per placement, two levels deep"
            seated = [
                Booking(x.id, x.party, x.start, x.end, current=plan.get(x.id, x.current))
                for x in placed.values()
                if x.id != b.id
            ]
            seated.append(Booking(b.id, b.party, b.start, b.end, current=plan[b.id]))
            rng.shuffle(seated)
            assignment = {x.id: x.current for x in seated}
            assert feasible(assignment, seated), f"seed {seed}: a table given twice"
    assert moved_somewhere > 0, "the random days exercise moves"


def test_make_room_keeps_to_its_tries_and_deadline() -> None:
    resources, day = _random_day(3, tables=10, bookings=120)
    choices = _fits(resources)
    seated: list[Booking] = []
    for b in day:
        plan = solver.make_room(b, seated, [], choices, tries=0)
        if plan is not None:
            assert len(plan) == 1, "no tries: only free tables"
            seated.append(Booking(b.id, b.party, b.start, b.end, current=plan[b.id]))
    late = solver.make_room(Booking(999, 2, 60, 150), seated, [], choices, deadline=0.0)
    free = solver.make_room(Booking(999, 2, 60, 150), seated, [], choices, tries=0)
    assert late == free, "past its deadline it still takes a free table, and moves nobody"
