-- Bad input to the optimizer: days it cannot plan, time limits out of range and plans it did
-- not make are refused with invalid_argument (RA001), and change nothing.
select plan(48);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Plans", "timezone": "Europe/Paris", "settings": {"buffer_minutes": 0},
  "tables": [{"label": "P2", "max_capacity": 2}, {"label": "P4", "min_capacity": 2, "max_capacity": 4},
             {"label": "B8", "min_capacity": 4, "max_capacity": 8},
             {"label": "OFF", "min_capacity": 4, "max_capacity": 8, "active": false}]}') ->> 'restaurant_id')::bigint as r \gset
select (allocator.import_layout('{"name": "Plans elsewhere", "timezone": "Europe/Paris",
  "tables": [{"label": "O8", "min_capacity": 4, "max_capacity": 8}]}') ->> 'restaurant_id')::bigint as other \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id in
       (select id from allocator.restaurants where name in ('Plans', 'Plans elsewhere')) $$;

-- A couple confirmed on the 4-top, a party of 4 and a party of 8 waiting: the plan moves the
-- couple to the 2-top and seats the others.
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+02', 120) ->> 'booking_id')::bigint as couple \gset
select allocator.confirm_hold((allocator.hold_tables(:couple, array[pg_temp.t('P4')]) ->> 'hold_id')::bigint) is not null as x \gset
select (allocator.create_booking(:r, 4, '2026-06-01 19:30+02', 120) ->> 'booking_id')::bigint as four \gset
select (allocator.create_booking(:r, 8, '2026-06-01 19:00+02', 120) ->> 'booking_id')::bigint as eight \gset
select (allocator.create_booking(:r, 2, '2026-06-02 19:00+02', 120) ->> 'booking_id')::bigint as tomorrow \gset
select (allocator.create_booking(:other, 8, '2026-06-01 19:00+02', 120) ->> 'booking_id')::bigint as elsewhere \gset

select allocator.optimize_day(:r, '2026-06-01') as plan \gset
select is(
  (select jsonb_agg(jsonb_build_array(x ->> 'booking_id', x -> 'to') order by (x ->> 'booking_id')::bigint)
     from jsonb_array_elements((:'plan'::jsonb -> 'moves') || (:'plan'::jsonb -> 'seat')) x),
  jsonb_build_array(jsonb_build_array(:'couple', jsonb_build_array(pg_temp.t('P2'))),
                    jsonb_build_array(:'four', jsonb_build_array(pg_temp.t('P4'))),
                    jsonb_build_array(:'eight', jsonb_build_array(pg_temp.t('B8')))),
  'the plan moves the couple to the 2-top and seats the 4 and the 8');

-- What a refused call must leave as it was.
create function pg_temp.fingerprint() returns text language sql as $$
  select row((select count(*) from allocator.allocations), (select count(*) from allocator.booking_state_history),
             (select count(*) from allocator.events), (select sum(version) from allocator.bookings),
             (select count(*) from allocator.optimizer_runs), (select count(*) from allocator.assignment_queue))::text $$;
create temporary table before as select pg_temp.fingerprint() as f;

-- The plan with one booking's entry changed: p_key set to p_value (NULL: the key removed).
create function pg_temp.with_entry(p_plan jsonb, p_booking bigint, p_key text, p_value jsonb) returns jsonb language sql as $$
  select jsonb_object_agg(key, value) from (
    select e.key, e.value from jsonb_each(p_plan) e where e.key not in ('moves', 'seat')
    union all
    select k, coalesce((select jsonb_agg(case when (x ->> 'booking_id')::bigint <> p_booking then x
                                              when p_value is null then x - p_key
                                              else jsonb_set(x, array[p_key], p_value) end)
                          from jsonb_array_elements(p_plan -> k) x), '[]')
      from (values ('moves'), ('seat')) v(k)) s $$;
create function pg_temp.apply_fails(p_plan jsonb, p_what text) returns setof text language sql as $$
  select throws_ok(format('select allocator.apply_optimal_assignment(%s, %L, %L::jsonb, 0)',
                          (select id from allocator.restaurants where name = 'Plans'), '2026-06-01', p_plan),
                   'RA001', null, p_what) $$;

-- Plans optimize_day did not make.
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', '[]'), 'a party seated at no table');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', jsonb_build_array(pg_temp.t('OFF'))),
  'a party seated at an inactive table');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', jsonb_build_array(pg_temp.t('P2'))),
  'a party of 8 at a 2-top');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', jsonb_build_array(pg_temp.t('P2'), pg_temp.t('B8'))),
  'two tables that are not a combination');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', jsonb_build_array(pg_temp.t('O8'))),
  'a table of another restaurant');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', '[987654321]'), 'a table that does not exist');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', jsonb_build_array(pg_temp.t('B8'), pg_temp.t('B8'))),
  'a table listed twice');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'to', '["B8"]'), 'a table id that is not a number');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'booking_id', to_jsonb(:elsewhere)),
  'a booking of another restaurant');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'booking_id', to_jsonb(:tomorrow)),
  'a booking of another day');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'booking_id', '1e30'), 'a booking id out of range');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'version', '"1"'), 'a version that is not a number');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :eight, 'from', jsonb_build_array(pg_temp.t('B8'))),
  'a waiting party that leaves tables it does not have');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :couple, 'from', jsonb_build_array(pg_temp.t('B8'))),
  'a move from tables the booking is not on');
select pg_temp.apply_fails(pg_temp.with_entry(:'plan', :couple, 'from', null), 'a move without the tables it leaves');
select pg_temp.apply_fails(jsonb_set(jsonb_set(:'plan'::jsonb, '{moves}', '[]'), '{seat}', (:'plan'::jsonb -> 'seat')
    || jsonb_build_object('booking_id', :couple, 'version', (select version from allocator.bookings where id = :couple),
                          'to', jsonb_build_array(pg_temp.t('P2')))),
  'a confirmed booking seated as if it waited');
select pg_temp.apply_fails(jsonb_set(:'plan'::jsonb, '{seat}', (:'plan'::jsonb -> 'seat') || (:'plan'::jsonb -> 'seat' -> 0)),
  'a booking twice');
select pg_temp.apply_fails(jsonb_set(:'plan'::jsonb, '{seat}', '[5]'), 'an entry that is not an object');
select pg_temp.apply_fails(jsonb_set(:'plan'::jsonb, '{moves}', '{}'), 'moves that are not an array');
select pg_temp.apply_fails(:'plan'::jsonb - 'improvement', 'a plan without its improvement');
select pg_temp.apply_fails(:'plan'::jsonb || '{"improvement": "lots"}', 'an improvement that is not a number');
select pg_temp.apply_fails(:'plan'::jsonb || '{"covers_after": 1.5}', 'covers that are not a whole number');
select pg_temp.apply_fails(:'plan'::jsonb || '{"date": "2026-06-02"}', 'a plan of another day');
select pg_temp.apply_fails(:'plan'::jsonb || jsonb_build_object('restaurant_id', :other), 'a plan of another restaurant');
select is(pg_temp.fingerprint(), (select f from before), 'refused plans wrote nothing, not even a run');

-- Bookings that started since the plan was made are not moved: the plan is stale.
savepoint started;
select allocator.freeze_clock('2026-06-01 19:10+02');
select is(allocator.apply_optimal_assignment(:r, '2026-06-01', :'plan'::jsonb, 0) ->> 'status', 'stale',
  'a plan whose bookings have started is stale');
select is((select count(*)::int from allocator.allocations where booking_id in (:four, :eight)), 0, 'and nothing is seated');
rollback to savepoint started;
select allocator.freeze_clock('2026-06-01 12:00+00');

-- Days: a year back to two years ahead of today; never infinity or the ends of the calendar.
select throws_ok(format('select allocator.optimize_day(%s, %L)', :r, d), 'RA001', null, 'optimize_day refuses the day ' || d)
  from unnest(array['infinity', '-infinity', '294276-12-31', '5874897-12-31', '4713-11-24 BC', '2025-05-30', '2028-06-03']) d;
select lives_ok(format('select allocator.optimize_day(%s, %L)', :r, d), 'optimize_day plans the day ' || d)
  from unnest(array['2025-05-31', '2028-06-02']) d;
select throws_ok(format('select allocator.optimize_day(%s, %L, %s)', :r, '2026-06-01', l), 'RA001', null,
                 'optimize_day refuses the time limit ' || l)
  from unnest(array['0', '-1', '600001', '2147483647', 'NULL']) l;
select throws_ok(format('select allocator.replan_day(%s, %L)', :r, d), 'RA001', null, 'replan_day refuses the day ' || d)
  from unnest(array['infinity', '294276-12-31']) d;
select throws_ok(format('select allocator.apply_optimal_assignment(%s, %L, %L::jsonb)', :r, 'infinity',
                        jsonb_build_object('restaurant_id', :r, 'date', 'infinity', 'moves', '[]'::jsonb, 'seat', '[]'::jsonb, 'improvement', 0)),
  'RA001', null, 'apply_optimal_assignment refuses an infinite day');
savepoint frozen;
select allocator.freeze_clock('infinity');
select throws_ok(format('select allocator.nightly_optimize(%s)', :r), 'RA001', null,
  'nightly_optimize refuses to plan while the clock says infinity');
rollback to savepoint frozen;
select is(pg_temp.fingerprint(), (select f from before), 'and none of these wrote anything');

-- The plan as optimize_day made it still applies.
select is(allocator.apply_optimal_assignment(:r, '2026-06-01', :'plan'::jsonb, 0) ->> 'status', 'applied',
  'the unchanged plan is applied');

select * from finish();
