-- optimize_day proposes without writing; apply_optimal_assignment applies real improvements only.
select plan(21);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Optimizer", "timezone": "Europe/Paris", "settings": {"buffer_minutes": 0},
  "tables": [{"label": "P2", "max_capacity": 2}, {"label": "P4", "min_capacity": 2, "max_capacity": 4}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id = (select id from allocator.restaurants where name = 'Optimizer') $$;

-- A couple confirmed on the 4-top (the app chose it), then a party of 4 finds no table.
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+02', 120) ->> 'booking_id')::bigint as a \gset
select allocator.confirm_hold((allocator.hold_tables(:a, array[pg_temp.t('P4')]) ->> 'hold_id')::bigint) is not null as x \gset
select (allocator.create_booking(:r, 4, '2026-06-01 19:30+02', 120) ->> 'booking_id')::bigint as b \gset
select (allocator.create_booking(:r, 2, '2026-06-02 19:30+02', 120) ->> 'booking_id')::bigint as other_day \gset

create temporary table counts_before as
  select (select count(*) from allocator.allocations) as allocations, (select count(*) from allocator.booking_state_history) as history,
         (select count(*) from allocator.events) as events, (select sum(version) from allocator.bookings) as versions;
select allocator.optimize_day(:r, '2026-06-01') as plan \gset
select is((select row(allocations, history, events, versions)::text from counts_before),
  (select row((select count(*) from allocator.allocations), (select count(*) from allocator.booking_state_history),
              (select count(*) from allocator.events), (select sum(version) from allocator.bookings))::text),
  'optimize_day writes nothing');
select is((:'plan'::jsonb ->> 'bookings')::int, 2, 'it plans the restaurant''s local day only');
select is((:'plan'::jsonb ->> 'unassigned_before')::int, 1, 'one party was not seated');
select is((:'plan'::jsonb ->> 'unassigned_after')::int, 0, 'the plan seats everyone');
select is(:'plan'::jsonb -> 'moves' -> 0 -> 'to', to_jsonb(array[pg_temp.t('P2')]), 'by moving the couple to the 2-top');
select is(:'plan'::jsonb -> 'seat' -> 0 -> 'to', to_jsonb(array[pg_temp.t('P4')]), 'and seating the four on the 4-top');
select ok((:'plan'::jsonb ->> 'improvement')::numeric > 0.10, 'a real improvement');
select is(:'plan'::jsonb ->> 'solver', 'milp', 'found by the exact solver');

-- Below the threshold: recorded, nothing applied.
select is(allocator.apply_optimal_assignment(:r, '2026-06-01', :'plan'::jsonb, 50) ->> 'status', 'below_threshold',
  'a plan under the threshold is not applied');
select is((select count(*)::int from allocator.allocations where booking_id = :b), 0, 'and changes nothing');

-- Stale: the couple's booking changed after the plan was made.
savepoint before_stale;
select allocator.modify_booking(:a, (select version from allocator.bookings where id = :a), p_party_size => 1) is not null as x \gset
select allocator.apply_optimal_assignment(:r, '2026-06-01', :'plan'::jsonb) as stale \gset
select is(:'stale'::jsonb ->> 'status', 'stale', 'a plan whose bookings changed is rejected');
select is((select count(*)::int from allocator.allocations where booking_id = :b), 0, 'with nothing applied');
rollback to savepoint before_stale;

select allocator.apply_optimal_assignment(:r, '2026-06-01', :'plan'::jsonb) as applied \gset
select is(:'applied'::jsonb ->> 'status', 'applied', 'a fresh plan above the threshold is applied');
select results_eq(format('select table_id from allocator.allocations where booking_id in (%s, %s) order by booking_id', :a, :b),
  format('values (%s::bigint), (%s::bigint)', pg_temp.t('P2'), pg_temp.t('P4')), 'the couple moved and the four are seated');
select is((select actor from allocator.booking_state_history where booking_id = :a order by version desc limit 1), 'optimizer',
  'the history names the optimizer');
select is((select state from allocator.bookings where id = :b), 'confirmed', 'the four are confirmed');
select results_eq(format($$select topic from allocator.events where booking_id = %s and (payload ->> 'actor') = 'optimizer'$$, :a),
  $$ values ('booking.tables_changed') $$, 'the move is booking.tables_changed, never a second booking.confirmed');
select is((select status || ': ' || rationale from allocator.optimizer_runs where restaurant_id = :r order by id desc limit 1),
  'applied: score 200980 -> 601997 (+199.53%): 4 more covers seated, 1 moved', 'the run and its rationale are recorded');

-- A booking of the evening before that runs past midnight, without a table, is not the next
-- day's to seat: the table it would get is taken that evening by a booking the next day
-- does not see.
select (allocator.import_layout('{"name": "Midnight", "timezone": "Europe/Paris", "settings": {"buffer_minutes": 0},
  "tables": [{"label": "N2", "max_capacity": 2}]}') ->> 'restaurant_id')::bigint as m \gset
select (allocator.create_booking(:m, 2, '2026-06-03 21:00+02', 150) ->> 'booking_id')::bigint as evening \gset
select allocator.confirm_hold((allocator.hold_tables(:evening,
  array[(select id from allocator.tables where restaurant_id = :m)]) ->> 'hold_id')::bigint) is not null as x \gset
select (allocator.create_booking(:m, 2, '2026-06-03 23:00+02', 120) ->> 'booking_id')::bigint as late \gset
select is(allocator.optimize_day(:m, '2026-06-04') -> 'seat', '[]'::jsonb,
  'a booking that starts the day before is not seated by the next day''s plan');

-- And the next day's first booking is seen by this day's plan: the evening booking that runs
-- past midnight cannot be given the table it holds from 00:30.
select (allocator.create_booking(:m, 2, '2026-06-05 00:30+02', 120) ->> 'booking_id')::bigint as early \gset
select allocator.confirm_hold((allocator.hold_tables(:early,
  array[(select id from allocator.tables where restaurant_id = :m)]) ->> 'hold_id')::bigint) is not null as x \gset
select (allocator.create_booking(:m, 2, '2026-06-04 23:00+02', 120) ->> 'booking_id')::bigint as night \gset
select is(allocator.optimize_day(:m, '2026-06-04') -> 'seat', '[]'::jsonb,
  'a booking running into the next day is not seated over the next day''s booking');
select is((allocator.optimize_day(:m, '2026-06-04') ->> 'bookings')::int, 1,
  'the figures count the day''s own bookings only, not the next day''s it reads');

select * from finish();
