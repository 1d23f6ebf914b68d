-- The metrics views count what the tables hold: attempt outcomes (the last row of each
-- attempt), retries by reason, lock waits as histogram buckets, repeated notifications, the
-- age of the oldest due queue row, deferrals and breakers. Other tests' committed rows may be
-- in the database too, so the counters are compared before and after.
select plan(16);

select allocator.freeze_clock('2026-06-02 12:00+00');
create temp table totals_before as select metric, labels, value from allocator.metric_totals;
create temp table buckets_before as select metric, le, bucket_count, sample_count, sample_sum from allocator.metric_histograms;
create function pg_temp.total_delta(p_metric text, p_labels jsonb) returns numeric language sql as $$
  select t.value - coalesce((select b.value from totals_before b where b.metric = p_metric and b.labels = p_labels), 0)
    from allocator.metric_totals t where t.metric = p_metric and t.labels = p_labels $$;
create function pg_temp.bucket_delta(p_metric text, p_le numeric) returns bigint language sql as $$
  select h.bucket_count - (select b.bucket_count from buckets_before b where b.metric = p_metric and b.le = p_le)
    from allocator.metric_histograms h where h.metric = p_metric and h.le = p_le $$;

select (allocator.import_layout('{"name": "Metrics", "tables": [{"label": "M1", "max_capacity": 2}]}')
        ->> 'restaurant_id')::bigint as r \gset
select (allocator.create_booking(:r, 2, '2026-06-02 19:00+00', 90) ->> 'booking_id')::bigint as b \gset

-- Attempt 1: two plans lost their race, the third confirmed. Attempt 2: every plan lost.
-- Attempt 3: an error.
insert into allocator.booking_assignment_attempts (restaurant_id, booking_id, attempt, result, metadata) values
  (:r, :b, 1, 'conflict', '{"lock_wait_ms": 2}'), (:r, :b, 1, 'conflict', '{"lock_wait_ms": 2}'),
  (:r, :b, 1, 'confirmed', '{"lock_wait_ms": 2}'),
  (:r, :b, 2, 'conflict', '{"lock_wait_ms": 20}'),
  (:r, :b, 3, 'error', '{"lock_wait_ms": 150}');
select results_eq(
  format('select attempt, outcome, lock_wait_ms from allocator.attempt_outcomes where booking_id = %s order by attempt', :b),
  $$values (1, 'confirmed', 2::numeric), (2, 'conflicted', 20), (3, 'error', 150)$$,
  'one outcome per attempt: the result of its last row, conflict-only attempts conflicted');
select is(pg_temp.total_delta('assignment_attempts', '{"outcome": "confirmed"}'), 1::numeric, 'one confirmed attempt counted');
select is(pg_temp.total_delta('assignment_attempts', '{"outcome": "conflicted"}'), 1::numeric, 'one conflicted attempt, not three conflicts');
select is(pg_temp.total_delta('assignment_attempts', '{"outcome": "error"}'), 1::numeric, 'one error');
select is(pg_temp.total_delta('bookings_created', '{}'), 1::numeric, 'one booking created');

-- Lock waits of 2, 20 and 150 ms, one per attempt.
select is(pg_temp.bucket_delta('lock_wait_seconds', 0.001), 0::bigint, 'no wait at or below 1 ms');
select is(pg_temp.bucket_delta('lock_wait_seconds', 0.005), 1::bigint, '2 ms in the 5 ms bucket');
select is(pg_temp.bucket_delta('lock_wait_seconds', 0.1), 2::bigint, '2 and 20 ms at or below 100 ms');
select is(pg_temp.bucket_delta('lock_wait_seconds', 'Infinity'), 3::bigint, 'all three below +Inf');
select is((select sample_sum from allocator.metric_histograms where metric = 'lock_wait_seconds' limit 1)
          - (select sample_sum from buckets_before where metric = 'lock_wait_seconds' limit 1),
          0.172::numeric, 'the sum of the waits, in seconds');

-- A retry and a manual review, from the history.
insert into allocator.booking_state_history (restaurant_id, booking_id, from_state, to_state, version, actor, reason) values
  (:r, :b, 'assignment_in_progress', 'assignment_pending', 5, 'worker:w', 'all_plans_conflicted'),
  (:r, :b, 'assignment_in_progress', 'manual_review', 6, 'worker:w', 'no_free_table after 3 attempts');
select is(pg_temp.total_delta('retries', '{"reason": "all_plans_conflicted"}'), 1::numeric, 'a retry by its reason');
select is(pg_temp.total_delta('manual_reviews', '{}'), 1::numeric, 'a manual review');

-- A second "confirmed" notification for the same booking is a repeat.
insert into allocator.notifications (restaurant_id, booking_id, event_id, kind, payload) values
  (:r, :b, -1, 'confirmed', '{}'), (:r, :b, -2, 'confirmed', '{}');
select is(pg_temp.total_delta('notifications_repeated', '{"kind": "confirmed"}'), 1::numeric,
  'the second confirmation of a booking is counted as repeated');

-- The queue: due for 90 s and put back twice by the rate limiter; the breaker opened.
delete from allocator.assignment_queue where booking_id = :b;
insert into allocator.assignment_queue (restaurant_id, booking_id, run_at, reason, deferrals)
values (:r, :b, '2026-06-02 11:58:30+00', 'rate_limited', 2);
select is((select oldest_due_at from allocator.queue_status where restaurant_id = :r),
  '2026-06-02 11:58:30+00'::timestamptz, 'the run_at of the row due longest');
select results_eq(format('select reason, bookings, deferrals from allocator.queue_deferrals() where restaurant_id = %s', :r),
  $$values ('rate_limited'::text, 1::bigint, 2::bigint)$$, 'deferrals by reason');
insert into allocator.circuit_breakers (restaurant_id, state, failures, opened_at) values (:r, 'open', 3, allocator.now());
select results_eq(format('select state, failures from allocator.breaker_status where restaurant_id = %s', :r),
  $$values ('open'::text, 3)$$, 'the breaker''s state');

select * from finish();
