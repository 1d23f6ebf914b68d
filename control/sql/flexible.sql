-- Flexible tables: a guest is promised a time and a seat; which tables stay open until the
-- lock point (flexible_tables.lock_minutes before the start) or until staff choose them.
-- When book() (or any instant seating) finds nothing free at the time asked, it may move
-- confirmed bookings that are still flexible to other tables, in the same transaction, with
-- history and an internal booking.tables_changed event for each (guests are not told).

-- Whether staff chose a booking's present tables: its last confirmation, at its present
-- version, was a member of staff's (manual_assign, confirm_on_tables, force_confirm). Such
-- tables are kept by the optimizer and never moved at admission. A plain SQL function,
-- inlined into its callers' queries.
create or replace function allocator.pinned_by_staff(p_restaurant_id bigint, p_booking_id bigint, p_version integer)
returns boolean
language sql
stable
as $$
  select exists (select 1 from allocator.booking_state_history h
                  where h.restaurant_id = p_restaurant_id and h.booking_id = p_booking_id
                    and h.to_state = 'confirmed' and h.version = p_version
                    and pg_catalog.split_part(h.actor, ':', 1) = 'staff')
$$;

comment on function allocator.pinned_by_staff(bigint, bigint, integer) is
  'Whether a member of staff chose the booking''s present tables (its confirmation at this version was a staff action)';

-- The flexible_tables settings of a restaurant, defaults filled in.
create or replace function allocator.flexible_tables(p_restaurant allocator.restaurants) returns jsonb
language plpgsql
stable
as $$
begin
  return (allocator.default_settings() -> 'flexible_tables') || coalesce(p_restaurant.settings -> 'flexible_tables', '{}');
end
$$;

comment on function allocator.flexible_tables(allocator.restaurants) is
  'The restaurant''s flexible_tables settings (enabled, lock_minutes, budget_ms), defaults filled in';

-- The search, in PL/Python (plpy_functions/solver.py, make_room): reads the tables that fit
-- the parties involved and what occupies the restaurant's tables around the booking, and
-- returns a plan, or NULL when none was found within p_budget_ms. Reads only.
create or replace function allocator.make_room(
  p_booking allocator.bookings,
  p_lock_minutes integer,
  p_budget_ms integer
) returns jsonb
language plpython3u
stable
as $$
import json
import time

called = time.perf_counter()
# Loading the module (once a session) and reading are not the search: p_budget_ms bounds the
# search alone, so the first call of a session decides as the others do.
plpy.execute("select allocator.load_solver()")
solver = GD["allocator.solver"]

if "allocator.make_room.plans" not in SD:
    SD["allocator.make_room.plans"] = (
        plpy.prepare("""
          select u.table_ids, u.min_capacity, u.max_capacity
            from (select array[t.id] as table_ids, 1 as table_count, t.min_capacity, t.max_capacity
                    from allocator.tables t
                   where t.restaurant_id = $1 and t.active and t.min_capacity <= $2 and t.max_capacity >= $2
                  union all
                  select c.table_ids, c.table_count, c.min_capacity, c.max_capacity
                    from allocator.table_combinations c
                   where c.restaurant_id = $1 and c.min_capacity <= $2 and c.max_capacity >= $2) u
           order by u.max_capacity, u.table_count, u.table_ids
           limit allocator.limit_of('scored_candidates')""", ["bigint", "integer"]),
        # What occupies the tables over the window: confirmed allocations and live holds with
        # their bookings, and blocks. A booking may move only if it is confirmed on confirmed
        # allocations, starts after the lock point and lies inside the window (so everything
        # it could meet is read); whether staff chose its tables is asked of the bookings a
        # plan moves (below), not of every booking read.
        plpy.prepare("""
          select a.table_id, a.booking_id, b.party_size, b.version,
                 extract(epoch from lower(a.period)) / 60 as start_min,
                 extract(epoch from upper(a.period)) / 60 as end_min,
                 (a.kind = 'confirmed' and b.state = 'confirmed' and a.period <@ $2
                  and lower(b.period) > allocator.now() + make_interval(mins => $3)) as movable
            from allocator.allocations a
            join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
           where a.restaurant_id = $1 and a.period && $2
             and (a.kind = 'confirmed' or a.expires_at > allocator.now())
          union all
          select k.table_id, null, null, null,
                 extract(epoch from lower(k.period)) / 60, extract(epoch from upper(k.period)) / 60, false
            from allocator.table_blocks k
           where k.restaurant_id = $1 and k.period && $2""", ["bigint", "tstzrange", "integer"]),
        plpy.prepare("select 1"),
        plpy.prepare("""
          select b.id from allocator.bookings b
           where b.restaurant_id = $1 and b.id = any ($2)
             and allocator.pinned_by_staff(b.restaurant_id, b.id, b.version)""", ["bigint", "bigint[]"]),
        plpy.prepare("""
          select extract(epoch from lower(p)) / 60 as start_min, extract(epoch from upper(p)) / 60 as end_min,
                 tstzrange(lower(p) - interval '8 hours', upper(p) + interval '8 hours', '[)') as window
            from allocator.blocked_period($1) p""", ["allocator.bookings"]),
    )
plan_fits, plan_occupied, plan_check, plan_pinned, plan_span = SD["allocator.make_room.plans"]
clock = solver.Clock(lambda: plpy.execute(plan_check))

span = plpy.execute(plan_span, [p_booking])[0]
rows = plpy.execute(plan_occupied, [p_booking["restaurant_id"], span["window"], p_lock_minutes])
walls = []
seated = {}  # booking id -> [party, version, start, end, tables, movable]
for r in rows:
    if r["booking_id"] is None:
        walls.append((r["table_id"], float(r["start_min"]), float(r["end_min"])))
        continue
    b = seated.setdefault(r["booking_id"], [r["party_size"], r["version"], float(r["start_min"]),
                                            float(r["end_min"]), [], True])
    b[4].append(r["table_id"])
    b[5] = b[5] and r["movable"]
others = []
for key, (party, version, start, end, tables, movable) in seated.items():
    if movable:
        others.append(solver.Booking(key, party, start, end, current=tuple(sorted(tables))))
    else:
        walls += [(t, start, end) for t in tables]
new = solver.Booking(p_booking["id"], p_booking["party_size"], float(span["start_min"]), float(span["end_min"]))
deadline = time.perf_counter() + p_budget_ms / 1000.0

index = {}
ranked = {}
def choices(b):
    # The resources that fit the party, best first by the solver's value; a resource with a
    # part that also fits is left out (its occupants include the part's).
    if b.party not in ranked:
        fits = {}
        for f in plpy.execute(plan_fits, [p_booking["restaurant_id"], b.party]):
            key = tuple(sorted(f["table_ids"]))
            fits[key] = solver.Resource(key, f["min_capacity"], f["max_capacity"])
        index.update(fits)
        kept = [k for k in fits
                if not any(part in fits for size in range(1, len(k))
                           for part in solver.itertools.combinations(k, size))]
        probe = solver.Booking(0, b.party, 0.0, 0.0)
        ranked[b.party] = sorted(kept, key=lambda k: (-solver.value(probe, k, index), k))
    return ranked[b.party]

# A plan that would move tables staff chose is searched again with those bookings kept
# where they are (as walls), until a plan moves none of them.
by_id = {b.id: b for b in others}
while True:
    plan = solver.make_room(new, others, walls, choices, deadline=deadline, clock=clock)
    if plan is None:
        return None
    pinned = {r["id"] for r in plpy.execute(plan_pinned, [p_booking["restaurant_id"], [k for k in plan if k != new.id]])}
    if not pinned:
        break
    others = [b for b in others if b.id not in pinned]
    walls += [(t, by_id[k].start, by_id[k].end) for k in pinned for t in by_id[k].current]
moves = [{"booking_id": key, "version": seated[key][1], "from": list(by_id[key].current), "to": list(resource)}
         for key, resource in sorted(plan.items()) if key != new.id]
return json.dumps({"table_ids": list(plan[new.id]), "moves": moves,
                   "ms": round((time.perf_counter() - called) * 1000, 3)})
$$;

comment on function allocator.make_room(allocator.bookings, integer, integer) is
  'Search for tables for a booking that finds none free by moving flexible confirmed bookings (plpy_functions/solver.py, make_room): {table_ids, moves [{booking_id, version, from, to}], ms}, or NULL; reads only';

-- Seat a created booking by moving flexible bookings (make_room), in the caller's
-- transaction: the moved bookings are locked in id order without waiting and must be
-- unchanged, then every table involved is locked in id order, the moves are written (history
-- and booking.tables_changed, actor optimizer:admission) and the booking is held and
-- confirmed. Anything in the way (a booking being changed, a table taken meanwhile) undoes
-- all of it and returns NULL, as does a search that found nothing: the caller refuses.
create or replace function allocator.seat_by_moving(p_booking allocator.bookings, p_actor text)
returns jsonb
language plpgsql
volatile
as $$
declare
  v_restaurant allocator.restaurants;
  v_settings jsonb;
  v_plan jsonb;
  v_move jsonb;
  v_moved allocator.bookings;
  v_tables bigint[];
  v_ids bigint[];
  v_count integer;
begin
  select r.* into v_restaurant from allocator.restaurants r where r.id = p_booking.restaurant_id;
  v_settings := allocator.flexible_tables(v_restaurant);
  if not (v_settings ->> 'enabled')::boolean then
    return null;
  end if;
  v_plan := allocator.make_room(p_booking, (v_settings ->> 'lock_minutes')::integer,
                                (v_settings ->> 'budget_ms')::integer);
  if v_plan is null then
    return null;
  end if;
  v_tables := array(select x::bigint from pg_catalog.jsonb_array_elements_text(v_plan -> 'table_ids') x);
  v_ids := array(select (m ->> 'booking_id')::bigint from pg_catalog.jsonb_array_elements(v_plan -> 'moves') m);
  begin
    select pg_catalog.count(*) into v_count
      from (select 1 from allocator.bookings b
             where b.restaurant_id = p_booking.restaurant_id and b.id = any (v_ids) and b.state = 'confirmed'
               and b.version = (select (m ->> 'version')::integer from pg_catalog.jsonb_array_elements(v_plan -> 'moves') m
                                 where (m ->> 'booking_id')::bigint = b.id)
             order by b.id
               for update nowait) l;
    if v_count <> pg_catalog.cardinality(v_ids) then
      perform allocator.raise_error('conflict', 'a booking to move changed meanwhile');
    end if;
    perform allocator.lock_tables(p_booking.restaurant_id,
      array(select distinct x::bigint
              from pg_catalog.jsonb_array_elements(v_plan -> 'moves') m,
                   pg_catalog.jsonb_array_elements_text((m -> 'from') || (m -> 'to')) x
            union
            select pg_catalog.unnest(v_tables)));
    delete from allocator.allocations a
     where a.restaurant_id = p_booking.restaurant_id and a.booking_id = any (v_ids);
    for v_move in select m from pg_catalog.jsonb_array_elements(v_plan -> 'moves') m order by (m ->> 'booking_id')::bigint loop
      select b.* into v_moved from allocator.bookings b
       where b.restaurant_id = p_booking.restaurant_id and b.id = (v_move ->> 'booking_id')::bigint;
      perform allocator.insert_allocations(p_booking.restaurant_id, v_moved.id,
        array(select x::bigint from pg_catalog.jsonb_array_elements_text(v_move -> 'to') x),
        allocator.blocked_period(v_moved), 'confirmed');
      perform allocator.transition(v_moved.id, v_moved.version, 'confirmed', 'optimizer:admission',
        pg_catalog.format('moved to seat booking %s', p_booking.id),
        pg_catalog.jsonb_build_object('from', v_move -> 'from', 'to', v_move -> 'to', 'for_booking', p_booking.id));
    end loop;
    perform allocator.hold_booking_tables(p_booking, v_tables, null, null, p_actor, p_booking.version, true,
      'booked', pg_catalog.jsonb_build_object('moved', pg_catalog.to_jsonb(v_ids)), 'flexible_tables');
  exception when sqlstate 'RA003' or lock_not_available then
    return null;
  end;
  return pg_catalog.jsonb_build_object('table_ids', pg_catalog.to_jsonb(v_tables), 'strategy', 'flexible_tables',
    'score', null, 'moved', pg_catalog.jsonb_array_length(v_plan -> 'moves'));
end
$$;

comment on function allocator.seat_by_moving(allocator.bookings, text) is
  'Confirm a created booking by moving flexible confirmed bookings to other tables (make_room) in this transaction; NULL, with nothing changed, when no plan was found or one could not be applied';
