-- Flexible tables: book() seats a guest by moving confirmed bookings that are still flexible
-- to other tables, in its own transaction, with history and an internal event for each; it
-- never moves a booking past the lock point, one whose tables staff chose, holds or blocks,
-- and with the setting off it refuses as before, writing nothing.
select plan(31);

select allocator.freeze_clock('2026-06-01 08:00+00');
select (allocator.import_layout('{"name": "Flexible", "timezone": "UTC",
  "settings": {"buffer_minutes": 0, "turn_minutes": {"8": 120}},
  "tables": [{"label": "A", "max_capacity": 2, "combinable": false},
             {"label": "B", "max_capacity": 4, "combinable": false}]}') ->> 'restaurant_id')::bigint as r \gset
select allocator.set_service(:r, 'dinner', '{1,2,3,4,5,6,7}', '17:00', '22:00') is not null as dinner \gset
select id as a from allocator.tables where restaurant_id = :r and label = 'A' \gset
select id as b from allocator.tables where restaurant_id = :r and label = 'B' \gset

-- A day where a party of 2 (Y) sits on the 4-top B from 19:00 while the 2-top A is free:
-- X took A from 17:30, so Y got B, then X cancelled. Returns Y's booking id.
create function pg_temp.evening(p_r bigint, p_day date) returns bigint language plpgsql as $$
declare
  v_x bigint;
  v_y bigint;
begin
  v_x := (allocator.book(p_r, 2, p_day + time '17:30' at time zone 'UTC') ->> 'booking_id')::bigint;
  v_y := (allocator.book(p_r, 2, p_day + time '19:00' at time zone 'UTC') ->> 'booking_id')::bigint;
  perform allocator.cancel_booking(v_x, null, 'app', 'plans changed');
  return v_y;
end
$$;

create function pg_temp.tables_of(p_booking bigint) returns bigint[] language sql as $$
  select array_agg(table_id order by table_id) from allocator.allocations where booking_id = p_booking
$$;

create function pg_temp.sqlstate_of(p_sql text) returns text language plpgsql as $$
begin
  execute p_sql;
  return null;
exception when others then
  return sqlstate;
end
$$;

-- Moving a flexible booking.
select pg_temp.evening(:r, '2026-06-02') as y \gset
select is(pg_temp.tables_of(:y), array[:b]::bigint[], 'Y sits on the 4-top');
select allocator.book(:r, 4, '2026-06-02 20:00+00', 'four') as z \gset
select is(:'z'::jsonb ->> 'state', 'confirmed', 'a party of 4 is confirmed at once');
select is(:'z'::jsonb -> 'table_ids', jsonb_build_array(:b), 'on the 4-top');
select is(pg_temp.tables_of(:y), array[:a]::bigint[], 'Y moved to the 2-top');
select is((select state from allocator.bookings where id = :y), 'confirmed', 'Y stays confirmed');
select is((select array[actor, reason] from allocator.booking_state_history where booking_id = :y
            order by version desc limit 1),
  array['optimizer:admission', format('moved to seat booking %s', :'z'::jsonb ->> 'booking_id')],
  'Y''s history says who moved it and why');
select is((select metadata -> 'to' from allocator.booking_state_history where booking_id = :y
            order by version desc limit 1), jsonb_build_array(:a), 'and where to');
select is((select topic from allocator.events where booking_id = :y order by id desc limit 1),
  'booking.tables_changed', 'an internal booking.tables_changed event, not a second confirmation');
select is((select count(*)::integer from allocator.events where booking_id = :y and topic = 'booking.confirmed'),
  1, 'Y was confirmed once');
select is((select strategy from allocator.booking_assignment_attempts
            where booking_id = (:'z'::jsonb ->> 'booking_id')::bigint),
  'flexible_tables', 'Z''s attempt names the strategy');
select is((select count(*)::integer from allocator.check_invariants()), 0, 'no invariant is broken');
select is((allocator.book(:r, 4, '2026-06-02 20:00+00', 'four')) ->> 'booking_id', :'z'::jsonb ->> 'booking_id',
  'the same key returns the same booking');

-- Nothing left to move: a second party of 4 at 20:00 is refused with alternatives, and nothing
-- is written.
select count(*) as bookings_before from allocator.bookings where restaurant_id = :r \gset
select throws_ok(format($$select allocator.book(%s, 4, '2026-06-02 20:00+00')$$, :r), 'RA014', NULL,
  'no room even with moves: unavailable');
select is((select count(*) from allocator.bookings where restaurant_id = :r), :bookings_before::bigint,
  'nothing was written');
select is(pg_temp.tables_of(:y), array[:a]::bigint[], 'Y kept its tables');

-- Past the lock point: Y starts within lock_minutes of now, so it is not moved.
select allocator.freeze_clock('2026-06-03 18:30+00');
select pg_temp.evening(:r, '2026-06-03') as y3 \gset
select is(pg_temp.sqlstate_of(format($$select allocator.book(%s, 4, '2026-06-03 20:00+00')$$, :r)), 'RA014',
  'a booking 30 minutes from its start is locked (lock_minutes 60)');
select is(pg_temp.tables_of(:y3), array[:b]::bigint[], 'and keeps its tables');
select allocator.update_settings(:r, '{"flexible_tables": {"lock_minutes": 15}}') is not null as s \gset
select is(allocator.book(:r, 4, '2026-06-03 20:00+00') ->> 'state', 'confirmed',
  'with a lock point of 15 minutes it may move again');
select is(pg_temp.tables_of(:y3), array[:a]::bigint[], 'and moves');

-- Tables staff chose are kept.
select allocator.freeze_clock('2026-06-01 08:00+00');
select pg_temp.evening(:r, '2026-06-04') as y4 \gset
select allocator.manual_assign(:y4, array[:b]::bigint[], 'staff:ana', 'the guest asked for the big table') is not null as pinned \gset
select is(pg_temp.sqlstate_of(format($$select allocator.book(%s, 4, '2026-06-04 20:00+00')$$, :r)), 'RA014',
  'a booking on tables staff chose is not moved');
select is(pg_temp.tables_of(:y4), array[:b]::bigint[], 'and keeps them');

-- A block on the table it would move to keeps it where it is.
select pg_temp.evening(:r, '2026-06-05') as y5 \gset
select allocator.block_tables(:r, array[:a]::bigint[], '2026-06-05 20:30+00', '2026-06-05 21:00+00', 'repair') is not null as blocked \gset
select is(pg_temp.sqlstate_of(format($$select allocator.book(%s, 4, '2026-06-05 20:00+00')$$, :r)), 'RA014',
  'a move onto a blocked table is never made');
select is(pg_temp.tables_of(:y5), array[:b]::bigint[], 'Y stays');

-- Switched off: refused as before.
select pg_temp.evening(:r, '2026-06-06') as y6 \gset
select allocator.update_settings(:r, '{"flexible_tables": {"enabled": false}}') is not null as off \gset
select is(pg_temp.sqlstate_of(format($$select allocator.book(%s, 4, '2026-06-06 20:00+00')$$, :r)), 'RA014',
  'flexible_tables.enabled false: refused');
select is(pg_temp.tables_of(:y6), array[:b]::bigint[], 'and nothing moved');
select allocator.update_settings(:r, '{"flexible_tables": {"enabled": true}}') is not null as on \gset
select is(allocator.book(:r, 4, '2026-06-06 20:00+00') ->> 'state', 'confirmed', 'switched on again: confirmed');

-- Settings are checked.
select throws_ok(format($$select allocator.update_settings(%s, '{"flexible_tables": {"lock_minutes": -1}}')$$, :r),
  'RA006', NULL, 'a negative lock point');
select throws_ok(format($$select allocator.update_settings(%s, '{"flexible_tables": {"budget_ms": 0}}')$$, :r),
  'RA006', NULL, 'no time to search');
select throws_ok(format($$select allocator.update_settings(%s, '{"flexible_tables": {"enabled": "yes"}}')$$, :r),
  'RA006', NULL, 'enabled is a boolean');
select throws_ok(format($$select allocator.update_settings(%s, '{"flexible_tables": {"depth": 9}}')$$, :r),
  'RA006', NULL, 'an unknown key');
select is((select count(*)::integer from allocator.check_invariants()), 0, 'still no invariant broken');

select * from finish();
