"""`allocator bench instant` at a tiny scale (no database): the JSON holds every figure, no
policy seats more than the hindsight optimum on any day, no seating double-books a table,
first-fit is the quality benchmark's legacy planner, and each day is calibrated on earlier
days only, before its hindsight is computed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from bench import instant, quality
from bench.admission_rearrangement import turn
from bench.cli import run

SETTINGS = instant.Settings(
    restaurants=2,
    days=4,
    warmup=2,
    seed=3,
    scales=(0.75, 1.0, 1.25),
    sensitivity_every=1,
    workers=1,
    quick=True,
    seatings=True,
)


@pytest.fixture(scope="module")
def study() -> Iterator[tuple[dict[str, Any], list[tuple[Any, ...]]]]:
    """One tiny study, with the calls of calibrate, evaluate and hindsight recorded in order."""
    events: list[tuple[Any, ...]] = []
    calibrate, evaluate, hindsight = instant.calibrate, instant.evaluate, instant.hindsight

    def calibrating(
        rest: instant.Restaurant, history: Sequence[instant.Hindsight], day: int
    ) -> instant.Calibration:
        events.append(("calibrate", rest.index, day, [h.day.day for h in history]))
        return calibrate(rest, history, day)

    def evaluating(
        args: instant.Settings,
        rest: instant.Restaurant,
        day: instant.Day,
        calibration: instant.Calibration,
    ) -> dict[str, Any]:
        events.append(("evaluate", rest.index, day.day, list(calibration.days)))
        return evaluate(args, rest, day, calibration)

    def solving(rest: instant.Restaurant, day: instant.Day) -> instant.Hindsight:
        events.append(("hindsight", rest.index, day.day))
        return hindsight(rest, day)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(instant, "calibrate", calibrating)
        patch.setattr(instant, "evaluate", evaluating)
        patch.setattr(instant, "hindsight", solving)
        report = instant.study(SETTINGS)
    yield report, events


def _days(report: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for r in report["restaurants"]:
        for d in r["days"]:
            yield r["model"], r["restaurant"], d


def test_the_report_holds_the_figures(study: tuple[dict[str, Any], list[Any]]) -> None:
    report, _ = study
    assert report["checks"] == []
    assert set(report["models"]) == set(instant.MODELS)
    evaluated = SETTINGS.restaurants * (SETTINGS.days - SETTINGS.warmup)
    for agg in report["models"].values():
        assert agg["days"] == evaluated
        for name in (*instant.ONLINE, "oracle_fixed", "optimum"):
            p = agg["policies"][name]
            assert {
                "covers",
                "mean_covers",
                "peak_covers",
                "peak_gain_over_first_fit_pct",
                "ratio_optimum_mean",
                "ratio_optimum_min",
            } <= p.keys()
            assert 0 < p["ratio_optimum_mean"] <= 1
        for name in instant.ONLINE:
            alt = agg["policies"][name]["alternatives"]
            assert alt["covers"] == alt["at_asked_time"] + alt["alternative_covers"]
            assert agg["targets"][name].keys() >= {"peak_met", "optimum_met"}
        assert agg["policies"]["first_fit"]["peak_gain_over_first_fit_pct"] == 0
        assert agg["sensitivity_days"] == evaluated
        for run_name in ("bid_static.theta", "bid_resolved.theta", "bid_resolved.forecast"):
            values = agg["sensitivity"][run_name]
            assert set(values) == {str(x) for x in SETTINGS.scales}
            assert max(v["relative_to_best"] for v in values.values()) == 1.0
    json.dumps(report)  # serialisable as is


def test_no_policy_beats_the_optimum(study: tuple[dict[str, Any], list[Any]]) -> None:
    report, _ = study
    for _, _, day in _days(report):
        best = day["optimum"]["covers"]
        assert best > 0
        for name in (*instant.ONLINE, "oracle_fixed"):
            assert day[name]["covers"] <= best, name
        for runs in day["sensitivity"].values():
            assert all(fig["covers"] <= best for fig in runs.values())


def test_seatings_never_double_book(study: tuple[dict[str, Any], list[Any]]) -> None:
    """Checked again here from the seats in the JSON, independently of ``violations``."""
    report, _ = study
    solver = quality.load_solver()
    rests = {
        i: instant.restaurant(solver, SETTINGS.seed, i, quick=True)
        for i in range(SETTINGS.restaurants)
    }
    for model, index, day in _days(report):
        rest = rests[index]
        requests = {
            r.key: r for r in instant.day_requests(SETTINGS.seed, model, rest, day["day"]).requests
        }
        for name, seats in day["seatings"].items():
            seen: set[int] = set()
            periods: dict[int, list[tuple[int, int]]] = {}
            for key, tables, start, end in seats:
                assert key not in seen
                seen.add(key)
                r = requests[key]
                resource = rest.resources[tuple(tables)]
                assert resource.min_capacity <= r.party <= resource.max_capacity
                assert end == start + turn(r.party) + rest.instance.buffer_minutes
                if "alternatives" in name:
                    assert abs(start - r.start) <= 30
                else:
                    assert start == r.start
                for t in tables:
                    periods.setdefault(t, []).append((start, end))
            for spans in periods.values():
                for i, (s1, e1) in enumerate(spans):
                    for s2, e2 in spans[i + 1 :]:
                        assert not (s1 < e2 and s2 < e1), f"{name}: a table is double-booked"
            covers = sum(requests[k].party for k, _, s, _ in seats if s == requests[k].start)
            if "alternatives" not in name:
                assert covers == day[name]["covers"]


def test_first_fit_is_the_legacy_planner(study: tuple[dict[str, Any], list[Any]]) -> None:
    report, _ = study
    solver = quality.load_solver()
    for model, index, day in _days(report):
        rest = instant.restaurant(solver, SETTINGS.seed, index, quick=True)
        generated = instant.day_requests(SETTINGS.seed, model, rest, day["day"])
        rest.instance.requests = generated.requests
        legacy = quality.legacy_first_fit(rest.instance, generated.durations)
        assert {k for k, *_ in day["seatings"]["first_fit"]} == legacy.seated


def test_calibration_uses_earlier_days_only(study: tuple[dict[str, Any], list[Any]]) -> None:
    _, events = study
    calibrations = [e for e in events if e[0] == "calibrate"]
    assert len(calibrations) == len(instant.MODELS) * SETTINGS.restaurants * SETTINGS.days
    for _, _, day, history in calibrations:
        assert history == list(range(day))  # strictly before the day, every one of them
    # Per restaurant, each day is calibrated, then evaluated, then solved in hindsight; its
    # hindsight joins the history of the next days only.
    position = {e: i for i, e in enumerate(events) if e[0] == "hindsight"}
    for i, event in enumerate(events):
        if event[0] in ("calibrate", "evaluate"):
            assert position[("hindsight", event[1], event[2])] > i
    for _, _, day in _days(study[0]):
        assert day["calibrated_on"] == list(range(day["day"]))
    with pytest.raises(ValueError, match="calibration for day"):
        solver = quality.load_solver()
        rest = instant.restaurant(solver, SETTINGS.seed, 0, quick=True)
        seen = instant.hindsight(rest, instant.day_requests(SETTINGS.seed, "quality", rest, 1))
        instant.calibrate(rest, [seen], 1)


def test_a_refused_insert_leaves_the_floor_unchanged() -> None:
    solver = quality.load_solver()
    rest = instant.restaurant(solver, SETTINGS.seed, 0, quick=True)
    day = instant.day_requests(SETTINGS.seed, "heavy", rest, 0)
    floor = instant.Floor(rest)
    refused = 0
    for r in day.requests:
        before = (dict(floor.where), list(floor.busy), [set(s) for s in floor.on])
        end = day.end(r)
        if not floor.insert(r.key, r.party, r.start, end, rest.candidates(r.party), 3):
            refused += 1
            assert (floor.where, floor.busy, floor.on) == before
    assert refused > 0
    assert instant.violations(rest, day, floor.seats()) == []


def test_cli_prints_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "instant",
            "--quick",
            "--restaurants",
            "1",
            "--days",
            "3",
            "--model",
            "heavy",
            "--sensitivity-every",
            "0",
            "--workers",
            "1",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 0
    assert report["benchmark"] == "instant"
    assert list(report["models"]) == ["heavy"]
    assert report["models"]["heavy"]["days"] == 1
    assert "sensitivity" not in report["models"]["heavy"]
