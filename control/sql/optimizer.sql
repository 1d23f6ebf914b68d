-- The solver module (plpy_functions/solver.py, installed in allocator.plpy_modules) as
-- GD["allocator.solver"] for the session's PL/Python functions: loaded once, and again when
-- its source changes. Returns the source's sha256.
create or replace function allocator.load_solver() returns text
language plpython3u
stable
as $$
import sys
import types

# The source is read only when the module must be (re)built: the digest is enough to know.
if "allocator.load_solver.plan" not in SD:
    SD["allocator.load_solver.plan"] = plpy.prepare(
        "select sha256 from allocator.plpy_modules where name = 'solver'")
row = plpy.execute(SD["allocator.load_solver.plan"])
if not row:
    plpy.execute("select allocator.raise_error('not_found', 'the solver module is not installed', null, 'run allocator migrate up')")
solver = GD.get("allocator.solver")
if solver is None or getattr(solver, "__sha256__", None) != row[0]["sha256"]:
    source = plpy.execute("select source, sha256 from allocator.plpy_modules where name = 'solver'")[0]
    solver = types.ModuleType("allocator_solver")
    solver.__sha256__ = source["sha256"]
    sys.modules["allocator_solver"] = solver
    exec(compile(source["source"], "plpy_functions/solver.py", "exec"), solver.__dict__)
    GD["allocator.solver"] = solver
return solver.__sha256__
$$;

comment on function allocator.load_solver() is
  'Load plpy_functions/solver.py into the session''s PL/Python functions (GD), once and again when it changes; its sha256';

-- The PL/Python part of optimize_day: reads the day and solves it. Only optimize_day calls it,
-- once the arguments are checked, so that a bad argument gets a plain project error.
create or replace function allocator.optimize_day_solve(p_restaurant_id bigint, p_date date, p_time_limit_ms integer)
returns jsonb
language plpython3u
stable
as $$
import json
import time

# p_time_limit_ms bounds the whole call: reading the day counts against the solver's time.
called = time.perf_counter()

plpy.execute("select allocator.load_solver()")
solver = GD["allocator.solver"]

if "allocator.optimize_day.plans" not in SD:
    SD["allocator.optimize_day.plans"] = (
        plpy.prepare("""
          select t.id, t.min_capacity, t.max_capacity, t.zone_id
            from allocator.tables t where t.restaurant_id = $1 and t.active
           order by t.id""", ["bigint"]),
        plpy.prepare("""
          select c.table_ids, c.min_capacity, c.max_capacity
            from allocator.table_combinations c where c.restaurant_id = $1 and c.table_count = $2""",
                     ["bigint", "integer"]),
        plpy.prepare("""
          with day as (
            select tstzrange(($2::date)::timestamp at time zone r.timezone,
                             ($2::date + 1)::timestamp at time zone r.timezone, '[)') as span,
                   (r.settings ->> 'buffer_minutes')::integer as buffer,
                   coalesce(nullif(r.settings ->> 'preferred_zone', ''), '') as zone_name
              from allocator.restaurants r where r.id = $1
          ), reach as materialized (
            -- The day's bookings may run past midnight: the next day's bookings they could
            -- meet on a table are read too (as fixed ones).
            select tstzrange(lower(day.span),
                             greatest(upper(day.span),
                                      max(upper(b.period)) + make_interval(mins => day.buffer)), '[)') as span
              from day left join allocator.bookings b
                on b.restaurant_id = $1 and day.span @> lower(b.period)
             group by day.span, day.buffer
          )
          select b.id, b.party_size, b.version, b.state,
                 coalesce(b.preferred_zone_id,
                          (select z.id from allocator.zones z where z.restaurant_id = b.restaurant_id and z.name = day.zone_name)) as zone,
                 extract(epoch from lower(b.period)) / 60 as start_min,
                 extract(epoch from upper(b.period)) / 60 + day.buffer as end_min,
                 (select array_agg(a.table_id order by a.table_id) from allocator.allocations a
                   where a.restaurant_id = b.restaurant_id and a.booking_id = b.id) as current,
                 not (day.span @> lower(b.period)) as other_day,
                 lower(b.period) <= allocator.now() as started,
                 -- A hold in flight, a party at its tables, or tables a member of staff chose.
                 (b.state in ('assigned', 'assignment_in_progress') or b.state = 'seated'
                  or b.state = 'confirmed' and allocator.pinned_by_staff(b.restaurant_id, b.id, b.version)) as kept
            from allocator.bookings b, day, reach
           where b.restaurant_id = $1 and b.period && reach.span
             -- The states that are not final, worked out once (an InitPlan), not once a booking.
             and b.state = any ((select pg_catalog.array_agg(s.state) from allocator.booking_states s
                                  where not allocator.is_final(s.state))::text[])
           order by b.id""", ["bigint", "date"]),
        # The cheapest query: running one lets PostgreSQL act on a cancel or statement_timeout,
        # which a Python loop never does on its own.
        plpy.prepare("select 1"),
    )
plan_tables, plan_combos, plan_bookings, plan_check = SD["allocator.optimize_day.plans"]
limit = p_time_limit_ms / 1000.0
clock = solver.Clock(lambda: plpy.execute(plan_check))

tables = plpy.execute(plan_tables, [p_restaurant_id])
zone_of = {t["id"]: t["zone_id"] for t in tables}
resources = [solver.Resource((t["id"],), t["min_capacity"], t["max_capacity"],
                             (t["zone_id"],) if t["zone_id"] is not None else ())
             for t in tables]
# Combinations of two tables, then of three and so on (a connected set holds a connected set
# one table smaller, so the first size without any is the end), in no order within a size (the
# solver's results do not depend on it, and rows come without waiting for a sort), until a
# quarter of the limit is spent: a layout with more than can be read in that time is planned
# with those read (combinations_unread counts the others).
combinations_unread = 0
size, late = 2, False
while not late:
    cursor = plpy.cursor(plan_combos, [p_restaurant_id, size])
    found = 0
    while not late:
        batch = cursor.fetch(2000)
        if not batch:
            break
        found += len(batch)
        resources += [solver.Resource(tuple(c["table_ids"]), c["min_capacity"], c["max_capacity"],
                                      tuple(sorted({zone_of[t] for t in c["table_ids"] if zone_of.get(t) is not None})))
                      for c in batch]
        late = clock.past(called + limit / 4)
    cursor.close()
    if not found:
        break
    size += 1
if late:
    count = plpy.prepare("select count(*)::integer as n from allocator.table_combinations where restaurant_id = $1", ["bigint"])
    combinations_unread = plpy.execute(count, [p_restaurant_id])[0]["n"] - (len(resources) - len(tables))
rows = plpy.execute(plan_bookings, [p_restaurant_id, p_date])
bookings = []
info = {}
day_bookings = []  # the day's own bookings: what the figures and scores count
for b in rows:
    current = tuple(b["current"]) if b["current"] else None
    # Started already, or starts on another day: not this plan's to seat or move.
    fixed = b["started"] or b["other_day"]
    if fixed and current is None:
        # Without tables, a booking that started or belongs to another day stays out of the
        # plan: its table choice depends on bookings this day does not see.
        continue
    # A booking that holds tables but is not confirmed (a hold in flight) keeps them.
    locked = (fixed or b["kept"]) and current is not None
    seated = b["state"] == "confirmed" or locked
    bookings.append(solver.Booking(b["id"], b["party_size"], float(b["start_min"]), float(b["end_min"]),
                                   current=current, locked=locked, must_seat=seated,
                                   preferred_zone=b["zone"]))
    info[b["id"]] = b
    if not b["other_day"]:
        day_bookings.append(bookings[-1])

index = {tuple(sorted(r.table_ids)): r for r in resources}
for b in bookings:
    if b.current is not None and tuple(sorted(b.current)) not in index:
        index[tuple(sorted(b.current))] = solver.Resource(tuple(sorted(b.current)), 1, max(b.party, 1))
current_assignment = {b.id: (tuple(sorted(b.current)) if b.current and b.must_seat else None) for b in bookings}
current_score = solver.objective(current_assignment, day_bookings, index)
result = solver.solve(resources, bookings, time_limit=max(0.001, limit - (time.perf_counter() - called)),
                      interrupt=clock.interrupt)
candidate = result.assignment
# Bookings of other days keep their tables in any plan: they add the same to both scores.
candidate_score = solver.objective(candidate, day_bookings, index)
if candidate_score < current_score:
    candidate, candidate_score = current_assignment, current_score

moves, seat = [], []
for b in bookings:
    before, after = current_assignment[b.id], candidate.get(b.id)
    if b.locked or after is None or before == after:
        continue
    entry = {"booking_id": b.id, "version": info[b.id]["version"], "party_size": b.party, "to": list(after)}
    if before is None:
        seat.append(entry)
    else:
        entry["from"] = list(before)
        moves.append(entry)

def covers(assignment):
    return sum(b.party for b in day_bookings if assignment.get(b.id) is not None)

improvement = ((candidate_score - current_score) / current_score) if current_score > 0 else (1.0 if candidate_score > 0 else 0.0)
return json.dumps({
    "restaurant_id": p_restaurant_id,
    "date": str(p_date),
    "bookings": len(day_bookings),
    "current_score": current_score,
    "candidate_score": candidate_score,
    "improvement": round(improvement, 6),
    "covers_before": covers(current_assignment),
    "covers_after": covers(candidate),
    "unassigned_before": sum(1 for b in day_bookings if current_assignment[b.id] is None),
    "unassigned_after": sum(1 for b in day_bookings if candidate.get(b.id) is None),
    "moves": moves,
    "seat": seat,
    "solver": result.solver,
    "status": result.status,
    "solve_ms": result.solve_ms,
    "blocks": int(result.stats.get("blocks", 0)),
    "combinations_unread": combinations_unread,
    "call_ms": round((time.perf_counter() - called) * 1000, 3),
})
$$;

comment on function allocator.optimize_day_solve(bigint, date, integer) is
  'The PL/Python part of optimize_day (reads the day, solves it); called only by optimize_day';

create or replace function allocator.optimize_day(p_restaurant_id bigint, p_date date, p_time_limit_ms integer default 2000)
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_today date := allocator.now()::date;
begin
  if p_restaurant_id is null or p_date is null then
    perform allocator.raise_error('invalid_argument', 'restaurant and date are required');
  end if;
  -- A day that can hold bookings: from a year back to two years ahead (bookings start at most
  -- two years ahead); never infinity, nor a day whose midnights are not timestamps.
  if (case when pg_catalog.isfinite(p_date) and pg_catalog.isfinite(v_today)
           then p_date - v_today not between -366 and 732
                or p_date not between '4713-11-26 BC'::date and '294276-12-29'::date
           else true end) then
    perform allocator.raise_error('invalid_argument', pg_catalog.format(
      'day must be from a year back to two years ahead of today (%s), got %s', v_today, p_date));
  end if;
  perform allocator.check_argument('time limit (ms)', p_time_limit_ms, 1, 600000);
  perform allocator.require_restaurant(p_restaurant_id);
  return allocator.optimize_day_solve(p_restaurant_id, p_date, p_time_limit_ms);
end
$$;

comment on function allocator.optimize_day(bigint, date, integer) is
  'Re-plan a restaurant''s local day (its time zone, DST included) over tables and combinations; returns scores, improvement, moves and newly seated bookings. Writes nothing';

create or replace function allocator.apply_optimal_assignment(
  p_restaurant_id bigint,
  p_date date,
  p_plan jsonb,
  p_min_improvement numeric default 0.10,
  p_actor text default 'optimizer'
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_improvement numeric;
  v_item jsonb;
  v_booking allocator.bookings;
  v_stale bigint[] := '{}';
  v_status text;
  v_rationale text;
  v_run_id bigint;
  v_moved integer := 0;
  v_seated integer := 0;
  v_period tstzrange;
  v_kind text;
  v_problem text;
  v_plan_restaurant bigint;
  v_plan_day date;
  v_timezone text;
  v_current bigint[];
  v_tables bigint[];
  v_today date;
begin
  perform allocator.require_restaurant(p_restaurant_id);
  perform allocator.actor_role(p_actor);
  if p_date is null then
    perform allocator.raise_error('invalid_argument', 'date is required');
  end if;
  -- The days optimize_day accepts.
  v_today := allocator.now()::date;
  if (case when pg_catalog.isfinite(p_date) and pg_catalog.isfinite(v_today)
           then p_date - v_today not between -366 and 732
                or p_date not between '4713-11-26 BC'::date and '294276-12-29'::date
           else true end) then
    perform allocator.raise_error('invalid_argument', pg_catalog.format(
      'day must be from a year back to two years ahead of today (%s), got %s', v_today, p_date));
  end if;
  if p_min_improvement is null or p_min_improvement < 0 then
    perform allocator.raise_error('invalid_argument', 'minimum improvement must be 0 or more');
  end if;
  perform allocator.check_size('the plan', p_plan, 'plan_bytes');

  -- The plan: an optimize_day result for this restaurant and day whose every entry is a move or
  -- a seat optimize_day could propose. Anything else refuses the whole plan (invalid_argument),
  -- before anything is written.
  if p_plan is null or pg_catalog.jsonb_typeof(p_plan) <> 'object'
     or pg_catalog.jsonb_typeof(p_plan -> 'moves') is distinct from 'array'
     or pg_catalog.jsonb_typeof(p_plan -> 'seat') is distinct from 'array' then
    v_problem := 'it is not an object with "moves" and "seat" arrays';
  else
    begin
      v_plan_restaurant := (p_plan ->> 'restaurant_id')::bigint;
      v_plan_day := (p_plan ->> 'date')::date;
      v_improvement := (p_plan ->> 'improvement')::numeric;
      -- Figures the run records: numbers, if given.
      perform (p_plan ->> 'current_score')::numeric, (p_plan ->> 'candidate_score')::numeric,
              (p_plan ->> 'solve_ms')::numeric, (p_plan ->> 'covers_before')::integer,
              (p_plan ->> 'covers_after')::integer;
    exception when data_exception then
      v_problem := pg_catalog.format('a figure is malformed (%s)', sqlerrm);
    end;
    if v_problem is null and (v_plan_restaurant is distinct from p_restaurant_id or v_plan_day is distinct from p_date) then
      v_problem := 'it is not for this restaurant and date';
    elsif v_problem is null and v_improvement is null then
      v_problem := 'it has no improvement';
    end if;
  end if;
  -- Each entry: an object with a booking id and version and 1 to 10 table ids to seat it at;
  -- a move also lists the tables it leaves. Each booking once.
  for v_item, v_kind in
    select e.x, 'move' from pg_catalog.jsonb_array_elements(case when v_problem is null then p_plan -> 'moves' end) e(x)
    union all
    select e.x, 'seat' from pg_catalog.jsonb_array_elements(case when v_problem is null then p_plan -> 'seat' end) e(x)
  loop
    v_problem := case
      when pg_catalog.jsonb_typeof(v_item) is distinct from 'object' then 'an entry is not an object'
      when pg_catalog.jsonb_typeof(v_item -> 'booking_id') is distinct from 'number'
           or (v_item ->> 'booking_id') !~ '^[1-9][0-9]{0,17}$' then 'an entry has no valid booking_id'
      when pg_catalog.jsonb_typeof(v_item -> 'version') is distinct from 'number'
           or (v_item ->> 'version') !~ '^[1-9][0-9]{0,8}$' then 'an entry has no valid version'
      when pg_catalog.jsonb_typeof(v_item -> 'to') is distinct from 'array'
           or pg_catalog.jsonb_array_length(v_item -> 'to') not between 1 and 10
           or exists (select 1 from pg_catalog.jsonb_array_elements(v_item -> 'to') t
                       where pg_catalog.jsonb_typeof(t) <> 'number' or t::text !~ '^[1-9][0-9]{0,17}$')
        then pg_catalog.format('booking %s: "to" must list 1 to 10 table ids', v_item ->> 'booking_id')
      when v_kind = 'seat' and v_item ? 'from'
        then pg_catalog.format('booking %s: a booking the plan seats has no tables to leave', v_item ->> 'booking_id')
      when v_kind = 'move' and (pg_catalog.jsonb_typeof(v_item -> 'from') is distinct from 'array'
           or pg_catalog.jsonb_array_length(v_item -> 'from') not between 1 and 10
           or exists (select 1 from pg_catalog.jsonb_array_elements(v_item -> 'from') t
                       where pg_catalog.jsonb_typeof(t) <> 'number' or t::text !~ '^[1-9][0-9]{0,17}$'))
        then pg_catalog.format('booking %s: "from" must list the 1 to 10 table ids it leaves', v_item ->> 'booking_id')
    end;
    exit when v_problem is not null;
  end loop;
  if v_problem is null then
    select pg_catalog.format('booking %s is in the plan twice', x ->> 'booking_id') into v_problem
      from pg_catalog.jsonb_array_elements((p_plan -> 'moves') || (p_plan -> 'seat')) x
     group by x ->> 'booking_id' having pg_catalog.count(*) > 1 limit 1;
  end if;
  -- Each booking: of this restaurant and local day, and, unless it changed since the plan was
  -- made (the plan is then stale, below), confirmed on the tables a move leaves or waiting for
  -- tables when seated; the tables are active tables of the restaurant that fit the party, as
  -- for a hold (check_table_set).
  select r.timezone into v_timezone from allocator.restaurants r where r.id = p_restaurant_id;
  for v_item, v_kind in
    select e.x, 'move' from pg_catalog.jsonb_array_elements(case when v_problem is null then p_plan -> 'moves' end) e(x)
    union all
    select e.x, 'seat' from pg_catalog.jsonb_array_elements(case when v_problem is null then p_plan -> 'seat' end) e(x)
  loop
    select b.* into v_booking from allocator.bookings b
     where b.restaurant_id = p_restaurant_id and b.id = (v_item ->> 'booking_id')::bigint;
    if not found then
      v_problem := pg_catalog.format('booking %s is not a booking of restaurant %s', v_item ->> 'booking_id', p_restaurant_id);
      exit;
    end if;
    continue when v_booking.version <> (v_item ->> 'version')::integer;
    v_current := (select pg_catalog.array_agg(a.table_id order by a.table_id) from allocator.allocations a
                   where a.restaurant_id = p_restaurant_id and a.booking_id = v_booking.id);
    if (pg_catalog.lower(v_booking.period) at time zone v_timezone)::date <> p_date then
      v_problem := pg_catalog.format('booking %s is not on %s', v_booking.id, p_date);
    elsif v_kind = 'move' and (v_booking.state <> 'confirmed' or v_current is distinct from
          (select pg_catalog.array_agg(t::bigint order by t::bigint) from pg_catalog.jsonb_array_elements_text(v_item -> 'from') t)) then
      v_problem := pg_catalog.format('booking %s is not confirmed on the tables %s it would leave', v_booking.id, v_item -> 'from');
    elsif v_kind = 'seat' and (v_current is not null or v_booking.state = 'confirmed'
          or not exists (select 1 from allocator.booking_transitions t
                          where t.from_state = v_booking.state and t.to_state = 'confirmed')) then
      v_problem := pg_catalog.format('booking %s is not waiting for tables (it is %s)', v_booking.id, v_booking.state);
    else
      v_tables := array(select t::bigint from pg_catalog.jsonb_array_elements_text(v_item -> 'to') t);
      begin
        perform allocator.check_table_set(v_booking, v_tables);
      exception when sqlstate 'RA001' or sqlstate 'RA002' or sqlstate 'RA007' or sqlstate 'RA011' then
        v_problem := pg_catalog.format('booking %s (party of %s): %s', v_booking.id, v_booking.party_size, sqlerrm);
      end;
    end if;
    exit when v_problem is not null;
  end loop;
  if v_problem is not null then
    perform allocator.raise_error('invalid_argument', 'the plan cannot be applied: ' || v_problem, null,
      'apply an unchanged optimize_day result for this restaurant and date');
  end if;

  if pg_catalog.jsonb_array_length(p_plan -> 'moves') + pg_catalog.jsonb_array_length(p_plan -> 'seat') = 0 then
    v_status := 'nothing_to_do';
    v_rationale := 'the current assignment is already the best the solver found';
  elsif v_improvement < p_min_improvement then
    v_status := 'below_threshold';
    v_rationale := pg_catalog.format('improvement %s%% is below the %s%% threshold',
      pg_catalog.round(v_improvement * 100, 2), pg_catalog.round(p_min_improvement * 100, 2));
  else
    -- Lock every booking the plan touches, in id order, and check nothing changed and none
    -- has started (its guests may be seated).
    for v_booking in
      select b.* from allocator.bookings b
       where b.restaurant_id = p_restaurant_id
         and b.id in (select (x ->> 'booking_id')::bigint from pg_catalog.jsonb_array_elements(p_plan -> 'moves') x
                      union all
                      select (x ->> 'booking_id')::bigint from pg_catalog.jsonb_array_elements(p_plan -> 'seat') x)
       order by b.id
       for update
    loop
      if v_booking.version <> (select (x ->> 'version')::integer
                                 from pg_catalog.jsonb_array_elements((p_plan -> 'moves') || (p_plan -> 'seat')) x
                                where (x ->> 'booking_id')::bigint = v_booking.id limit 1)
         or pg_catalog.lower(v_booking.period) <= allocator.now() then
        v_stale := v_stale || v_booking.id;
      end if;
    end loop;
    if pg_catalog.cardinality(v_stale) > 0
       or (select pg_catalog.count(*) from allocator.bookings b
            where b.restaurant_id = p_restaurant_id
              and b.id in (select (x ->> 'booking_id')::bigint
                             from pg_catalog.jsonb_array_elements((p_plan -> 'moves') || (p_plan -> 'seat')) x))
          <> pg_catalog.jsonb_array_length(p_plan -> 'moves') + pg_catalog.jsonb_array_length(p_plan -> 'seat') then
      v_status := 'stale';
      v_rationale := pg_catalog.format('bookings %s changed or started since the plan was made', v_stale);
    else
      begin
        -- Lock every table the plan seats a party on, in id order, then free every moved
        -- booking's tables first, so swaps never collide with themselves.
        perform allocator.lock_tables(p_restaurant_id,
          (select pg_catalog.array_agg(distinct (t)::bigint)
             from pg_catalog.jsonb_array_elements((p_plan -> 'moves') || (p_plan -> 'seat')) x,
                  pg_catalog.jsonb_array_elements_text(x -> 'to') t));
        delete from allocator.allocations a
         where a.restaurant_id = p_restaurant_id
           and a.booking_id in (select (x ->> 'booking_id')::bigint from pg_catalog.jsonb_array_elements(p_plan -> 'moves') x);
        for v_item in select x from pg_catalog.jsonb_array_elements((p_plan -> 'moves') || (p_plan -> 'seat')) x loop
          select b.* into v_booking from allocator.bookings b
           where b.restaurant_id = p_restaurant_id and b.id = (v_item ->> 'booking_id')::bigint;
          v_period := allocator.blocked_period(v_booking);
          perform allocator.insert_allocations(p_restaurant_id, v_booking.id,
            array(select (t)::bigint from pg_catalog.jsonb_array_elements_text(v_item -> 'to') t), v_period,
            'confirmed');
          perform allocator.dequeue(p_restaurant_id, v_booking.id);
          perform allocator.transition(v_booking.id, v_booking.version, 'confirmed', p_actor,
            case when v_item ? 'from' then 'moved by the optimizer' else 'seated by the optimizer' end,
            pg_catalog.jsonb_build_object('from', v_item -> 'from', 'to', v_item -> 'to', 'day', p_date));
          if v_item ? 'from' then v_moved := v_moved + 1; else v_seated := v_seated + 1; end if;
        end loop;
        v_status := 'applied';
        v_rationale := pg_catalog.format('score %s -> %s (+%s%%): %s more covers seated, %s moved',
          pg_catalog.round((p_plan ->> 'current_score')::numeric), pg_catalog.round((p_plan ->> 'candidate_score')::numeric),
          pg_catalog.round(v_improvement * 100, 2),
          (p_plan ->> 'covers_after')::integer - (p_plan ->> 'covers_before')::integer, v_moved);
      exception when sqlstate 'RA003' then
        v_status := 'conflict';
        v_rationale := 'a table the plan uses was taken meanwhile; nothing was applied';
        v_moved := 0;
        v_seated := 0;
      end;
    end if;
  end if;

  insert into allocator.optimizer_runs
         (restaurant_id, day, status, current_score, candidate_score, improvement, min_improvement,
          moved, seated, solver, solve_ms, rationale, plan, actor)
  values (p_restaurant_id, p_date, v_status, (p_plan ->> 'current_score')::numeric,
          (p_plan ->> 'candidate_score')::numeric, v_improvement, p_min_improvement, v_moved, v_seated,
          p_plan ->> 'solver', (p_plan ->> 'solve_ms')::numeric, v_rationale, p_plan, p_actor)
  returning id into v_run_id;
  return pg_catalog.jsonb_build_object('applied', v_status = 'applied', 'status', v_status, 'run_id', v_run_id,
    'moved', v_moved, 'seated', v_seated, 'improvement', v_improvement, 'rationale', v_rationale,
    'stale_bookings', pg_catalog.to_jsonb(v_stale));
end
$$;

comment on function allocator.apply_optimal_assignment(bigint, date, jsonb, numeric, text) is
  'Apply an optimize_day plan in one transaction if it improves the score by at least p_min_improvement and no booking it touches changed (version check); records the run and its rationale in optimizer_runs';

create or replace function allocator.replan_day(p_restaurant_id bigint, p_day date) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_plan jsonb;
  v_result jsonb;
  v_released integer;
begin
  v_plan := allocator.optimize_day(p_restaurant_id, p_day);
  -- A plan that seats waiting guests (the day's pool, bookings in manual review) is applied
  -- whatever its score; a plan that only moves guests must clear the default threshold.
  v_result := allocator.apply_optimal_assignment(p_restaurant_id, p_day, v_plan,
    case when pg_catalog.jsonb_array_length(v_plan -> 'seat') > 0 then 0 else 0.10 end);
  -- The day's pool has had its chance: what is still waiting is due now, so the workers
  -- assign it (or send it to manual review) at once instead of after the fallback. Before
  -- the cut-off, process_booking simply defers it again.
  update allocator.assignment_queue q set run_at = allocator.now()
    from allocator.bookings b, allocator.restaurants r
   where q.restaurant_id = p_restaurant_id and q.reason = 'pooled' and q.run_at > allocator.now()
     and b.restaurant_id = q.restaurant_id and b.id = q.booking_id and b.state = 'assignment_pending'
     and r.id = b.restaurant_id and (pg_catalog.lower(b.period) at time zone r.timezone)::date = p_day;
  get diagnostics v_released = row_count;
  return v_result || pg_catalog.jsonb_build_object('day', p_day, 'bookings', v_plan -> 'bookings',
    'covers_before', v_plan -> 'covers_before', 'covers_after', v_plan -> 'covers_after',
    'solver', v_plan -> 'solver', 'status_solver', v_plan -> 'status', 'solve_ms', v_plan -> 'solve_ms',
    'pool_released', v_released);
end
$$;

comment on function allocator.replan_day(bigint, date) is
  'optimize_day then apply_optimal_assignment for one local day: a plan that seats anyone waiting is applied whatever its improvement, else only if it clears the default 10%; pooled bookings of the day still waiting become due at once. Returns the apply result with the plan''s covers before and after';

create or replace function allocator.nightly_optimize(p_restaurant_id bigint) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_day date;
begin
  select (allocator.now() at time zone r.timezone)::date into v_day
    from allocator.restaurants r where r.id = p_restaurant_id;
  if v_day is null then
    perform allocator.raise_error('not_found', pg_catalog.format('restaurant %s does not exist', p_restaurant_id));
  end if;
  return allocator.replan_day(p_restaurant_id, v_day);
end
$$;

comment on function allocator.nightly_optimize(bigint) is
  'replan_day for the restaurant''s current local day, now, whatever the time (by hand; the pg_cron job calls run_nightly, which plans each day once at its pooling.cutoff)';


