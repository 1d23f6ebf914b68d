-- claim_due leases queue rows; leases expire and are taken over; a late extend fails.
select plan(19);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Queue", "tables": [{"label": "Q1", "max_capacity": 4}]}') ->> 'restaurant_id')::bigint as r \gset
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00') ->> 'booking_id')::bigint as b1 \gset
select (allocator.create_booking(:r, 2, '2026-06-01 20:00+00') ->> 'booking_id')::bigint as b2 \gset
-- only this file's rows are due: push other sessions' rows (none committed in tests) aside
update allocator.assignment_queue set run_at = '2026-06-01 11:59+00' where booking_id in (:b1, :b2);
update allocator.assignment_queue set run_at = '2026-06-01 11:59:30+00' where booking_id = :b2;

select results_eq(format($$select booking_id from allocator.claim_due('w1', 1) where booking_id in (%s, %s)$$, :b1, :b2),
  format('values (%s::bigint)', :b1), 'claim_due takes the row due first');
select is((select leased_by from allocator.assignment_queue where booking_id = :b1), 'w1', 'and leases it to the worker');
select results_eq(format($$select booking_id from allocator.claim_due('w2', 10) where booking_id in (%s, %s)$$, :b1, :b2),
  format('values (%s::bigint)', :b2), 'a leased row is not claimed again while its lease runs');
select allocator.freeze_clock('2026-06-01 12:00:31+00');
select results_eq(format($$select booking_id from allocator.claim_due('w3', 10) where booking_id in (%s, %s) order by 1$$, :b1, :b2),
  format('values (%s::bigint), (%s::bigint)', :b1, :b2), 'rows whose lease expired (a dead worker) are claimable again');
select throws_ok($$select * from allocator.claim_due('', 1)$$, 'RA001', NULL, 'a worker needs a name');
select throws_ok($$select * from allocator.claim_due('w', 0)$$, 'RA001', NULL, 'the limit must be positive');
select is(allocator.process_booking(:b1, 'w3') ->> 'outcome', 'confirmed', 'processing clears the queue row');
select ok(not exists (select 1 from allocator.assignment_queue where booking_id = :b1), 'of a confirmed booking');

-- leases
select is(allocator.lease_acquire('job:nightly', 'a', 10) ->> 'acquired', 'true', 'a free lease is acquired');
select is(allocator.lease_acquire('job:nightly', 'b', 10) ->> 'acquired', 'false', 'a held lease is refused to another owner');
select is(allocator.lease_acquire('job:nightly', 'a', 10) ->> 'acquired', 'true', 'the owner may take it again');
select ok(allocator.lease_extend('job:nightly', 'a', 10), 'the owner extends it');
select allocator.freeze_clock('2026-06-01 12:01:00+00');
select is(allocator.lease_acquire('job:nightly', 'b', 10) ->> 'taken_over_from', 'a', 'an expired lease is taken over');
select ok(not allocator.lease_extend('job:nightly', 'a', 10), 'a late extend by the old owner fails');
select ok(not allocator.lease_release('job:nightly', 'a'), 'and so does its release');
select ok(allocator.lease_release('job:nightly', 'b'), 'the new owner releases it');
select is((select count(*)::int from allocator.lease_waits where name = 'job:nightly'), 4, 'every acquire records its wait');

-- A lease that expires while another owner waits for it is taken within the wait.
select allocator.lease_acquire('job:short', 'a', 1) ->> 'acquired' as x \gset
select is(allocator.lease_acquire('job:short', 'b', 1, 0) ->> 'acquired', 'false', 'held for a second: refused at once');
select is(allocator.lease_acquire('job:short', 'b', 10, 3000) ->> 'taken_over_from', 'a',
  'waiting longer than its TTL takes it over');

select * from finish();
