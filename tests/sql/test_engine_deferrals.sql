-- The engine's permits and its non-progress outcomes, with a frozen clock: permits are rows
-- no role can lock, created as a restaurant needs them; circuit_open, rate_limited and
-- row_locked are counted on the queue row, and retry.max_deferrals of them in a row send the
-- booking to manual review. (Other sessions holding permits or rows: tests/py/test_engine_locks.py.)
select plan(26);

select allocator.freeze_clock('2026-06-01 12:00+00');

-- The permits table: keyed by restaurant, row level security, and nobody may lock its rows.
select col_is_pk('allocator', 'permits', array['restaurant_id', 'slot'], 'permits are keyed by restaurant and slot');
select ok((select relrowsecurity from pg_class where oid = 'allocator.permits'::regclass), 'permits has row level security');
select ok(not has_table_privilege('allocator_app', 'allocator.permits', 'select')
      and not has_table_privilege('public', 'allocator.permits', 'select'),
  'neither the app nor PUBLIC may read permits');
select ok(not has_table_privilege('allocator_app', 'allocator.permits', 'update')
      and not has_table_privilege('allocator_ops', 'allocator.permits', 'update')
      and not has_table_privilege('allocator_readonly', 'allocator.permits', 'update')
      and not has_table_privilege('public', 'allocator.permits', 'update'),
  'no role has UPDATE on permits, which SELECT ... FOR UPDATE / FOR SHARE needs');
select ok(not has_table_privilege('allocator_app', 'allocator.bookings', 'update')
      and not has_table_privilege('allocator_ops', 'allocator.bookings', 'update')
      and not has_table_privilege('allocator_readonly', 'allocator.bookings', 'update')
      and not has_table_privilege('public', 'allocator.bookings', 'update'),
  'nor on bookings: no role can lock a booking row itself');

select (allocator.import_layout('{"name": "Deferrals", "settings": {"buffer_minutes": 0,
    "flags": {"max_parallel": 2},
    "retry": {"max_deferrals": 3},
    "breaker": {"failure_threshold": 1, "cooldown_seconds": 30}},
  "tables": [{"label": "D1", "max_capacity": 4}, {"label": "D2", "max_capacity": 4}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.book(p_at text) returns bigint language sql as
  $$ select (allocator.create_booking((select id from allocator.restaurants where name = 'Deferrals'), 2,
       p_at::timestamptz, 120) ->> 'booking_id')::bigint $$;

-- A permit slot's row is created by the first transaction that needs it, and a transaction
-- holding a permit gets the same one again.
select is((select count(*)::int from allocator.permits where restaurant_id = :r), 0, 'a new restaurant has no permit rows yet');
select is(allocator.take_permit(:r, 2), 1, 'the first permit is slot 1');
select is((select array_agg(slot order by slot) from allocator.permits where restaurant_id = :r), array[1],
  'taking it created that slot''s row (the others are created when a session needs them)');
select is(allocator.take_permit(:r, 2), 1, 'the transaction holding a permit gets the same one again');
select allocator.update_settings(:r, '{"flags": {"max_parallel": 4}}') is not null as x \gset
select is((select count(*)::int from allocator.permits where restaurant_id = :r), 1, 'raising max_parallel writes no permit row');
select allocator.update_settings(:r, '{"flags": {"max_parallel": 2}}') is not null as x \gset

-- circuit_open: counted, then manual review at the third in a row.
select pg_temp.book('2026-06-02 19:00+00') as b1 \gset
select is(allocator.breaker_record(:r, false), 'open', 'one failure opens this restaurant''s breaker');
select allocator.process_booking(:b1, 'w1') as o1 \gset
select is(:'o1'::jsonb ->> 'outcome' || '/' || (:'o1'::jsonb ->> 'reason') || '/' || (:'o1'::jsonb ->> 'delay_ms'),
  'retry/circuit_open/30000', 'an open breaker puts the booking back for the cooldown');
select is((select (deferrals, reason, run_at)::text from allocator.assignment_queue where booking_id = :b1),
  (1, 'circuit_open'::text, '2026-06-01 12:00:30+00'::timestamptz)::text, 'the queue row counts one deferral, due after the cooldown');
select is((select (state, assignment_attempts)::text from allocator.bookings where id = :b1), ('created'::text, 0)::text,
  'the booking is unchanged: no attempt, no state change');
select allocator.freeze_clock('2026-06-01 12:00:31+00');
select allocator.breaker_record(:r, false) as x \gset
select is(allocator.process_booking(:b1, 'w1') ->> 'reason', 'circuit_open', 'open again when it is due: deferred again');
select is((select deferrals from allocator.assignment_queue where booking_id = :b1), 2, 'two deferrals');
select allocator.freeze_clock('2026-06-01 12:01:02+00');
select allocator.breaker_record(:r, false) as x \gset
select allocator.process_booking(:b1, 'w1') as o3 \gset
select is(:'o3'::jsonb ->> 'outcome' || '/' || (:'o3'::jsonb ->> 'reason'), 'manual_review/circuit_open',
  'the third deferral in a row (retry.max_deferrals) sends it to manual review');
select is((select manual_review_reason from allocator.bookings where id = :b1), 'circuit_open after 3 deferrals',
  'with the reason and the count');
select ok(not exists (select 1 from allocator.assignment_queue where booking_id = :b1), 'and takes it off the queue');
select is((select metadata ->> 'deferrals' from allocator.booking_state_history where booking_id = :b1 and to_state = 'manual_review'),
  '3', 'the history row records the deferrals');
select is(allocator.breaker_record(:r, true), 'closed', '(the breaker closes again)');

-- Any other queueing resets the count: a modification, a retry after an attempt.
select pg_temp.book('2026-06-02 20:00+00') as b2 \gset
update allocator.assignment_queue set deferrals = 2, reason = 'rate_limited' where booking_id = :b2;
select allocator.modify_booking(:b2, 1, p_party_size => 3) is not null as x \gset
select is((select (deferrals, reason)::text from allocator.assignment_queue where booking_id = :b2), (0, 'modified'::text)::text,
  'a modification queues the booking afresh, with no deferrals');

-- row_locked: process_booking cannot move a booking another session holds; once the row is
-- free, the first call that locks it finds the count at the limit and sends it to a person.
select pg_temp.book('2026-06-02 21:00+00') as b3 \gset
update allocator.assignment_queue set deferrals = 3, reason = 'row_locked' where booking_id = :b3;
select allocator.process_booking(:b3, 'w1') as o4 \gset
select is(:'o4'::jsonb ->> 'outcome' || '/' || (:'o4'::jsonb ->> 'reason'), 'manual_review/row_locked',
  'a booking found at retry.max_deferrals goes to manual review with the last reason');
select is((select (state, manual_review_reason)::text from allocator.bookings where id = :b3),
  ('manual_review'::text, 'row_locked after 3 deferrals'::text)::text, 'with the reason and the count');
select is((select count(*)::int from allocator.booking_assignment_attempts where booking_id = :b3), 0,
  'no attempt is recorded for it');

-- Below the limit nothing changes: the booking is worked on and the count goes with the row.
select pg_temp.book('2026-06-02 22:00+00') as b4 \gset
update allocator.assignment_queue set deferrals = 2, reason = 'rate_limited' where booking_id = :b4;
select is(allocator.process_booking(:b4, 'w1') ->> 'outcome', 'confirmed', 'two deferrals of three: it is assigned as usual');

select * from finish();
