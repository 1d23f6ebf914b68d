"""Would moving confirmed guests at admission seat more covers online?

A simulation on the quality benchmark's seeded days (``bench/quality.py``), in plain
Python with the solver's scoring: bookings arrive in random order and each takes the best
free table or combination, as an online engine does. With rearrangement, a booking that
finds nothing free may take a resource whose occupants (up to ``--max-moves``) can each move
to another free resource. Prints covers per day and the totals, with the hindsight optimum.

    .venv/bin/python bench/admission_rearrangement.py --instances 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plpy_functions")]

import solver  # type: ignore[import-not-found]  # noqa: E402

from bench import quality  # noqa: E402

# The restaurant default turn_minutes: the smallest key that fits the party, else the largest.
TURN_MINUTES = {2: 90, 4: 120, 6: 150, 8: 180}


def turn(party: int) -> int:
    return next((m for size, m in sorted(TURN_MINUTES.items()) if party <= size), 180)


def online(resources: list[solver.Resource], bookings: list[solver.Booking], max_moves: int) -> int:
    """Covers seated in arrival order; ``max_moves`` 0 means no rearrangement."""
    index = {tuple(sorted(r.table_ids)): r for r in resources}
    by_id = {b.id: b for b in bookings}
    seated: dict[int, tuple[int, ...]] = {}
    on_table: dict[int, list[int]] = {}

    def blockers(b: solver.Booking, r: tuple[int, ...]) -> set[int]:
        return {o for t in r for o in on_table.get(t, ()) if solver._overlap(by_id[o], b)}

    def place(key: int, r: tuple[int, ...]) -> None:
        seated[key] = r
        for t in r:
            on_table.setdefault(t, []).append(key)

    def unplace(key: int) -> tuple[int, ...]:
        r = seated.pop(key)
        for t in r:
            on_table[t].remove(key)
        return r

    def options(b: solver.Booking) -> list[tuple[int, ...]]:
        return sorted(solver._candidates(b, index), key=lambda r: (-solver.value(b, r, index), r))

    for b in bookings:
        choices = options(b)
        free = next((r for r in choices if not blockers(b, r)), None)
        if free is not None:
            place(b.id, free)
            continue
        for r in choices:
            found = blockers(b, r)
            if not found or len(found) > max_moves:
                continue
            saved = {o: unplace(o) for o in found}
            place(b.id, r)
            moved = []
            for o in sorted(found, key=lambda o: (-by_id[o].party, o)):
                alt = next((x for x in options(by_id[o]) if not blockers(by_id[o], x)), None)
                if alt is None:
                    break
                place(o, alt)
                moved.append(o)
            if len(moved) == len(found):
                break
            unplace(b.id)
            for o in moved:
                unplace(o)
            for o, x in saved.items():
                place(o, x)
    return sum(by_id[k].party for k in seated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-moves", type=int, default=2)
    args = parser.parse_args()
    totals = [0, 0, 0]
    print("day  online  rearranged  optimum")
    for i in range(args.instances):
        instance = quality.generate(args.seed, i)
        durations = {r.key: turn(r.party) for r in instance.requests}
        resources, bookings = quality.solver_model(solver, instance, durations, frozenset())
        optimum, _ = quality.solve_day(solver, instance, durations)
        row = [
            online(resources, bookings, 0),
            online(resources, bookings, args.max_moves),
            optimum.figures(instance)["covers"],
        ]
        totals = [t + x for t, x in zip(totals, row, strict=True)]
        print(f"{i:3d}  {row[0]:6d}  {row[1]:10d}  {row[2]:7d}")
    gain = (totals[1] - totals[0]) / totals[0] * 100
    print(f"all  {totals[0]:6d}  {totals[1]:10d}  {totals[2]:7d}   rearranged: {gain:+.2f}% covers")


if __name__ == "__main__":
    main()
