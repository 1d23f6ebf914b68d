-- create_booking, modify_booking, cancel_booking: results, idempotency, history, queue, bad input.
select plan(42);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Bookings", "timezone": "Europe/Paris",
  "zones": [{"name": "Terrace"}],
  "tables": [{"label": "B1", "zone": "Terrace", "max_capacity": 2},
             {"label": "B2", "max_capacity": 4}, {"label": "B3", "max_capacity": 4}],
  "adjacency": [["B2", "B3"]]}') ->> 'restaurant_id')::bigint as r \gset

select allocator.create_booking(p_restaurant_id => :r, p_party_size => 3,
  p_start => '2026-06-01 19:00+00', p_idempotency_key => 'k1') as c1 \gset
select is((:'c1'::jsonb ->> 'state'), 'created', 'a new booking is created');
select is((:'c1'::jsonb ->> 'version')::int, 1, 'at version 1');
select is((:'c1'::jsonb ->> 'end')::timestamptz, '2026-06-01 21:00+00',
  'the duration defaults to the turn time for the party (120 min for 3)');
select is((:'c1'::jsonb ->> 'created')::boolean, true, 'the result says it was created');
select (:'c1'::jsonb ->> 'booking_id')::bigint as b1 \gset

select results_eq(format('select from_state, to_state, version, actor from allocator.booking_history(%s)', :b1),
  $$ values (null::text, 'created'::text, 1, 'app'::text) $$, 'creation is the first history row');
select is((select count(*)::int from allocator.events where booking_id = :b1 and topic = 'booking.created'), 1,
  'creation emits one booking.created event');
select is((select run_at from allocator.assignment_queue where booking_id = :b1), allocator.now(),
  'the booking is queued for assignment now');

select is((allocator.create_booking(:r, 3, '2026-06-01 19:00+00', p_idempotency_key => 'k1') ->> 'booking_id')::bigint,
  :b1::bigint, 'the same key and arguments return the same booking');
select is((allocator.create_booking(:r, 3, '2026-06-01 19:00+00', p_idempotency_key => 'k1') ->> 'created')::boolean,
  false, 'and say it was not created again');
select is((select count(*)::int from allocator.booking_state_history where booking_id = :b1), 1,
  'a repeated create writes no history');
select throws_ok(format($$select allocator.create_booking(%s, 4, '2026-06-01 19:00+00', p_idempotency_key => 'k1')$$, :r),
  'RA008', NULL, 'the same key with another party size is an error');
select throws_ok(format($$select allocator.create_booking(%s, 3, '2026-06-01 20:00+00', p_idempotency_key => 'k1')$$, :r),
  'RA008', format('idempotency key k1 was used for booking %s with other arguments', :b1),
  'the same key with another time is an error');
select throws_ok(format($$select allocator.create_booking(%s, 3, '2026-06-01 19:00+00', 90, p_idempotency_key => 'k1')$$, :r),
  'RA008', NULL, 'the same key with another duration is an error');
select throws_ok(format($$select allocator.create_booking(%s, 3, '2026-06-01 19:00+00', p_idempotency_key => repeat('k', 201))$$, :r),
  'RA001', 'idempotency key must be 1 to 200 characters', 'a key of 201 characters is refused');
-- The one idempotency check every RPC with a key uses.
select lives_ok($$select allocator.check_idempotency_key(NULL), allocator.check_idempotency_key(repeat('k', 200)),
                         allocator.check_idempotency_key('k', 'hold', 7, true)$$,
  'no key, a key of 200 characters, and a key seen with the same arguments pass');
select throws_ok($$select allocator.check_idempotency_key('k', 'thing', 7, false, 'the detail', 'the hint')$$,
  'RA008', 'idempotency key k was used for thing 7 with other arguments', 'a key seen with other arguments does not');

select is((allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 45, p_preferred_zone => 'Terrace') ->> 'end')::timestamptz,
  '2026-06-01 19:45+00', 'an explicit duration is used');

-- Bad input: each raises its code and writes nothing.
create temporary table before as select count(*) as n from allocator.bookings;
select throws_ok(format($$select allocator.create_booking(%s, 0, '2026-06-01 19:00+00')$$, :r), 'RA001', NULL, 'party size 0');
select throws_ok(format($$select allocator.create_booking(%s, -2, '2026-06-01 19:00+00')$$, :r), 'RA001', NULL, 'negative party size');
select throws_ok(format($$select allocator.create_booking(%s, 5000, '2026-06-01 19:00+00')$$, :r), 'RA001', NULL, 'absurd party size');
select throws_ok(format($$select allocator.create_booking(%s, NULL, '2026-06-01 19:00+00')$$, :r), 'RA001', NULL, 'NULL party size');
select throws_ok(format($$select allocator.create_booking(%s, 2, NULL)$$, :r), 'RA001', NULL, 'NULL start');
select throws_ok($$select allocator.create_booking(NULL, 2, '2026-06-01 19:00+00')$$, 'RA001', NULL, 'NULL restaurant');
select throws_ok($$select allocator.create_booking(987654321, 2, '2026-06-01 19:00+00')$$, 'RA002', NULL, 'unknown restaurant');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-01 19:00+00', -30)$$, :r), 'RA001', NULL,
  'end before start (negative duration)');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-01 19:00+00', 0)$$, :r), 'RA001', NULL, 'zero duration');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-01 19:00+00', 100000)$$, :r), 'RA001', NULL, 'absurd duration');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-05-01 19:00+00')$$, :r), 'RA001', NULL, 'start in the past');
select throws_ok(format($$select allocator.create_booking(%s, 2, '9999-01-01 19:00+00')$$, :r), 'RA001', NULL, 'start centuries ahead');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-01 19:00+00', p_preferred_zone => 'Roof')$$, :r),
  'RA002', NULL, 'unknown zone');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-01 19:00+00', p_actor => 'hacker')$$, :r),
  'RA001', NULL, 'unknown actor role');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-01 19:00+00', p_metadata => '[1]')$$, :r),
  'RA001', NULL, 'metadata that is not an object');
select is((select count(*) from allocator.bookings), (select n from before), 'rejected creates wrote nothing');

-- modify
select throws_ok(format($$select allocator.modify_booking(%s, 5, p_party_size => 4)$$, :b1), 'RA004', NULL,
  'modify with a stale version is refused');
select throws_ok(format($$select allocator.modify_booking(%s, 1)$$, :b1), 'RA001', NULL, 'modify with nothing to change');
select allocator.modify_booking(:b1, 1, p_start => '2026-06-01 20:00+00') as m1 \gset
select is(array[(:'m1'::jsonb ->> 'version'), (:'m1'::jsonb ->> 'start')::timestamptz::text, (:'m1'::jsonb ->> 'end')::timestamptz::text],
  array['2', '2026-06-01 20:00:00+00', '2026-06-01 22:00:00+00'], 'a new start keeps the duration and bumps the version');
select is((allocator.modify_booking(:b1, 2, p_party_size => 6) ->> 'end')::timestamptz, '2026-06-01 22:30+00',
  'a new party size takes its turn time (150 min for 6)');

-- cancel
select throws_ok(format($$select allocator.cancel_booking(%s, 1)$$, :b1), 'RA004', NULL, 'cancel with a stale version');
select is(allocator.cancel_booking(:b1, 3) ->> 'state', 'cancelled', 'cancel moves the booking to cancelled');
select is((allocator.cancel_booking(:b1) ->> 'changed')::boolean, false, 'cancelling twice changes nothing');
select ok(not exists (select 1 from allocator.assignment_queue where booking_id = :b1), 'a cancelled booking leaves the queue');
select throws_ok(format($$select allocator.modify_booking(%s, 4, p_party_size => 2)$$, :b1), 'RA005', NULL,
  'a cancelled booking cannot be modified');

select * from finish();
