-- Pooled assignment: bookings wait for their day's cut-off, the nightly optimizer seats the
-- pool at once, and a booking still waiting after the fallback is assigned like any other.
select plan(28);

select allocator.freeze_clock('2026-06-01 12:00+00');

-- Settings.
select throws_ok($$ select allocator.validate_settings('{"pooling": {"cutoff": "25:00"}}') $$,
  'RA006', 'setting pooling.cutoff must be a local time of day as HH:MM', 'a cut-off that is not a time is rejected');
select throws_ok($$ select allocator.validate_settings('{"pooling": {"cutoff": 330}}') $$,
  'RA006', 'setting pooling.cutoff must be a local time of day as HH:MM', 'a cut-off that is not a string is rejected');
select throws_ok($$ select allocator.validate_settings('{"pooling": {"fallback_minutes": 0}}') $$,
  'RA006', 'setting pooling.fallback_minutes must be an integer from 5 to 1440',
  'a fallback that leaves the nightly run no time is rejected');
select throws_ok($$ select allocator.validate_settings('{"pooling": {"enable": true}}') $$,
  'RA006', 'unknown setting pooling.enable', 'a misspelt pooling key is rejected');
select is(allocator.validate_settings('{"pooling": {"enabled": true}}') -> 'pooling',
  '{"enabled": true, "cutoff": "03:30", "fallback_minutes": 30}'::jsonb, 'unset pooling keys take their defaults');
select is(allocator.pool_cutoff('Europe/Rome', allocator.default_settings(), '2026-06-10 19:00+02'), null,
  'pooling is off by default');

select (allocator.import_layout('{"name": "Pool", "timezone": "Europe/Rome",
  "settings": {"buffer_minutes": 0, "pooling": {"enabled": true}},
  "tables": [{"label": "P2", "max_capacity": 2}, {"label": "P4", "min_capacity": 2, "max_capacity": 4}]}') ->> 'restaurant_id')::bigint as r \gset
select is(allocator.pool_cutoff('Europe/Rome', (select settings from allocator.restaurants where id = :r), '2026-06-10 19:00+02'),
  '2026-06-10 03:30+02'::timestamptz, 'the cut-off is the cutoff time of the booking''s local day');

-- Before the cut-off, a booking waits.
select (allocator.create_booking(:r, 2, '2026-06-10 19:00+02', 120) ->> 'booking_id')::bigint as a \gset
select (allocator.create_booking(:r, 4, '2026-06-10 19:30+02', 120) ->> 'booking_id')::bigint as b \gset
select allocator.process_booking(:a, 'w') as out_a \gset
select allocator.process_booking(:b, 'w') is not null as x \gset
-- A party of three at the same time: only the 4-top fits it, and the four outweigh it.
select (allocator.create_booking(:r, 3, '2026-06-10 20:00+02', 120) ->> 'booking_id')::bigint as e \gset
select allocator.process_booking(:e, 'w') is not null as x \gset
select is(:'out_a'::jsonb ->> 'outcome', 'deferred', 'before the cut-off the booking is deferred');
select is(:'out_a'::jsonb ->> 'reason', 'pooled', 'because the restaurant pools');
select is((select state from allocator.bookings where id = :a), 'assignment_pending', 'it waits in assignment_pending');
select is((select run_at from allocator.assignment_queue where booking_id = :a), '2026-06-10 04:00+02'::timestamptz,
  'due again fallback_minutes after the cut-off');
select is((select count(*)::int from allocator.allocations where booking_id in (:a, :b)), 0, 'no table is taken yet');
select is((select count(*)::int from allocator.booking_assignment_attempts where booking_id = :a), 0,
  'waiting is not an attempt');
select is(allocator.process_booking(:a, 'w') ->> 'reason', 'not_due', 'processing it again before then does nothing');
select is((select row(scheduled, pooled)::text from allocator.queue_status where restaurant_id = :r), '(3,3)',
  'queue_status counts the waiting bookings as pooled');

-- A booking too close to its cut-off to wait is assigned at once.
select (allocator.create_booking(:r, 2, '2026-06-10 03:45+02', 90) ->> 'booking_id')::bigint as c \gset
select is(allocator.process_booking(:c, 'w') ->> 'outcome', 'confirmed', 'a booking starting within the fallback is assigned at once');

-- At the cut-off, the nightly optimizer seats the pool, whatever the threshold says.
select allocator.freeze_clock('2026-06-10 03:30+02');
select allocator.nightly_optimize(:r) as night \gset
select is(:'night'::jsonb ->> 'status', 'applied', 'the nightly run applies the plan');
select is((select count(*)::int from allocator.bookings where id in (:a, :b) and state = 'confirmed'), 2,
  'both waiting bookings that fit are confirmed');
select is((:'night'::jsonb ->> 'pool_released')::int, 1, 'the one the plan could not seat is released');
select is((select run_at from allocator.assignment_queue where booking_id = :e), allocator.now(),
  'it is due at once, not after the fallback');
select is(allocator.process_booking(:e, 'w') ->> 'reason', 'no_free_table',
  'and a worker now tries it like any other booking');
select is((select count(*)::int from allocator.assignment_queue where booking_id in (:a, :b)), 0, 'and leave the queue');
select is((select min_improvement from allocator.optimizer_runs where restaurant_id = :r order by id desc limit 1), 0::numeric,
  'a plan that seats waiting guests needs no threshold');
select is(allocator.nightly_optimize(:r) ->> 'status', 'nothing_to_do', 'a second run finds nothing to do');
select is((select min_improvement from allocator.optimizer_runs where restaurant_id = :r order by id desc limit 1), 0.10,
  'and a plan that seats nobody keeps the default threshold');

-- The fallback: the next day's booking, with no nightly run, is assigned once due again.
select (allocator.create_booking(:r, 2, '2026-06-11 13:00+02', 90) ->> 'booking_id')::bigint as d \gset
select is(allocator.process_booking(:d, 'w') ->> 'outcome', 'deferred', 'the next day''s booking waits too');
select allocator.freeze_clock('2026-06-11 04:01+02');
select is(allocator.process_booking(:d, 'w') ->> 'outcome', 'confirmed', 'after the fallback it is assigned online');

-- The nightly job follows the cut-off: it ticks every minute, and the restaurant's plan runs
-- at 03:30 Rome time whatever the UTC offset (tests/sql/test_nightly.sql).
select allocator.freeze_clock('2026-06-12 03:30+02');
select is((select row(n ->> 'ran', n ->> 'day')::text from (select allocator.run_nightly(:r) as n) x), '(true,2026-06-12)',
  'the nightly plan runs at the cut-off, for that local day');

select * from finish();
