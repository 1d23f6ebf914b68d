-- Queries the control plane runs, by name. Each block starts with "-- name: <name>".

-- name: restaurant_by_name
select id from allocator.restaurants where name = %(name)s order by id;

-- name: delete_restaurant
select allocator.delete_restaurant(%(restaurant_id)s);

-- name: import_layout
select allocator.import_layout(%(layout)s::jsonb);

-- name: restaurant
select id, name, timezone, settings from allocator.restaurants where id = %(restaurant_id)s;

-- name: layout_tables
select zone, label, min_capacity, max_capacity, combinable, active, neighbours
  from allocator.table_overview
 where restaurant_id = %(restaurant_id)s
 order by zone nulls last, label;

-- name: layout_combinations
select table_count, labels, min_capacity, max_capacity
  from allocator.combination_overview
 where restaurant_id = %(restaurant_id)s
 order by table_count, max_capacity, labels;

-- name: claim_due
select booking_id from allocator.claim_due(%s, %s, %s);

-- name: process_booking
select allocator.process_booking(%s, %s);

-- name: deliver_notifications
select payload || jsonb_build_object('notification_id', id, 'event_id', event_id) from allocator.deliver_notifications(5000);

-- name: lease_acquire
select allocator.lease_acquire(%s, %s, %s);

-- name: lease_extend
select allocator.lease_extend(%s, %s, %s);

-- name: lease_release
select allocator.lease_release(%s, %s);

-- name: release_claims
select allocator.release_claims(%s);

-- name: events_after
-- In commit-safe order, as read_events reads: by (transaction, id), and only events of
-- transactions below the horizon (allocator.events_horizon()), so a late commit is never
-- skipped.
select id, restaurant_id, topic, booking_id, payload, created_at, xact::text
  from allocator.events
 where (xact, id) > (%(xact)s::xid8, %(after)s)
   and xact < allocator.events_horizon()
 order by xact, id
 limit 1000;

-- name: events_position
-- Where events_after starts to print what happens from now on: past the events of every
-- transaction below the horizon.
select allocator.events_horizon()::text, -1;

-- name: cron_plan
select jobname, schedule, command from allocator.cron_plan() order by jobname;

-- name: cron_jobs
select jobid, jobname, schedule, command, active from cron.job where jobname like 'allocator-%%' order by jobname;

-- name: cron_schedule
select cron.schedule(%s, %s, %s);

-- name: cron_unschedule
select cron.unschedule(%s);

-- name: status_queue
select restaurant_id, queued, due, leased, scheduled, pooled, oldest_run_at,
       round(extract(epoch from allocator.now() - oldest_due_at), 1) as oldest_due_age_s
  from allocator.queue_status order by restaurant_id;

-- name: status_deferrals
select restaurant_id, reason, bookings, deferrals from allocator.queue_deferrals() order by restaurant_id, reason;

-- name: status_mail
select restaurant_id, status, notifications, oldest_unsent_at from allocator.mail_status
 order by restaurant_id, status;

-- name: status_states
select restaurant_id, state, bookings from allocator.booking_state_counts order by restaurant_id, state;

-- name: status_breakers
select restaurant_id, state, failures, opened_at from allocator.breaker_status order by restaurant_id;

-- name: status_leases
select name, owner, expires_at, expires_at > now() as live from allocator.leases order by name;

-- name: booking
select allocator.booking_json(b) from allocator.bookings b where b.id = %s;

-- name: booking_timeline
select at, kind, what, actor, reason, details from allocator.booking_timeline
 where booking_id = %s order by at, kind;

-- name: create_booking
select allocator.create_booking(p_restaurant_id => %s, p_party_size => %s, p_start => %s,
  p_duration_minutes => %s, p_idempotency_key => %s, p_preferred_zone => %s);

-- name: pipeline_report
select allocator.pipeline_report(%s, %s);

-- name: open_bookings
-- How many of the bookings created since have settled (see allocator.is_settled), of how many.
select count(*) filter (where state in (select s.state from allocator.booking_states s
                                         where allocator.is_settled(s.state))), count(*)
  from allocator.bookings where restaurant_id = %s and created_at >= %s;

-- name: metrics_totals
select metric, labels, value from allocator.metric_totals;

-- name: metrics_histograms
select metric, le, bucket_count, sample_count, sample_sum from allocator.metric_histograms order by metric, le;

-- name: metrics_assignment
select restaurant_id, bookings, confirmed, manual_review, success_rate, manual_review_rate,
       created_to_confirmed_p50_ms, created_to_confirmed_p95_ms, lock_wait_p95_ms, lease_wait_p95_ms
  from allocator.assignment_metrics;

-- name: install_plpy_module
insert into allocator.plpy_modules (name, source, sha256) values (%s, %s, %s)
on conflict (name) do update set source = excluded.source, sha256 = excluded.sha256, installed_at = now();

-- name: optimize_day
select allocator.optimize_day(%s::bigint, %s::date, %s::integer);

-- name: apply_plan
select allocator.apply_optimal_assignment(%s::bigint, %s::date, %s::jsonb, %s::numeric);

-- name: next_due_in
select greatest(extract(epoch from min(run_at) - now()), 0) from allocator.assignment_queue
 where run_at > now() and (lease_expires_at is null or lease_expires_at <= now());

-- name: confirmed_bookings
select id, party_size from allocator.bookings
 where restaurant_id = %(restaurant_id)s and state = 'confirmed'
 order by id;

-- name: restaurant_violations
select kind, booking_id, detail from allocator.check_invariants()
 where restaurant_id = %(restaurant_id)s;

-- name: replan_day
select allocator.replan_day(%s::bigint, %s::date);

-- name: demo_days
select distinct (lower(b.period) at time zone r.timezone)::date as day
  from allocator.bookings b join allocator.restaurants r on r.id = b.restaurant_id
 where b.restaurant_id = %s and b.created_at >= %s
 order by day;

-- name: violation_count
select count(*) from allocator.check_invariants() where restaurant_id = %s;

-- name: validate_settings
select allocator.validate_settings(%s::jsonb);

-- name: code_checksum
select checksum from allocator.code_version;

-- name: record_code_checksum
insert into allocator.code_version (checksum) values (%s)
on conflict (singleton) do update set checksum = excluded.checksum, applied_at = pg_catalog.now();

-- name: forget_code_checksum
do $$
begin
  if pg_catalog.to_regclass('allocator.code_version') is not null then
    delete from allocator.code_version;
  end if;
end
$$;

-- name: routines_named
select p.oid::regprocedure::text from pg_catalog.pg_proc p
 where p.pronamespace = 'allocator'::regnamespace and p.proname = %s order by 1;

-- name: migration_lock
select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('allocator migrate'));

-- name: import_bookings
select allocator.import_bookings(%s::bigint, %s::jsonb, %s::text);

-- name: find_slots
select start from allocator.find_slots(%s, %s, %s, %s);

-- name: book
select allocator.book(p_restaurant_id => %s, p_party_size => %s, p_start => %s, p_idempotency_key => %s);

-- name: set_service
select allocator.set_service(%s, %s, %s, %s::time, %s::time, %s);

-- name: modify_booking
select allocator.modify_booking(p_booking_id => %s, p_expected_version => %s, p_start => %s,
  p_party_size => %s, p_reason => 'guest change');

-- name: claim_mail
select * from allocator.claim_mail(%s, %s, %s);

-- name: mail_outcome
select allocator.mail_outcome(%s, %s, %s, %s, %s, %s);

-- name: shadow_report
select restaurant_id, decisions, agreements, agreement_rate, engine_seated, legacy_seated,
       engine_covers, legacy_covers, errors
  from allocator.shadow_report_between(now() - make_interval(secs => %s * 86400), now() + interval '1 second')
 order by restaurant_id;

-- name: metrics_worker_attempts
-- Assignment attempts made by each live worker (its name lease unexpired), one per attempt
-- however many rows it wrote: bounded by the workers running now.
select pg_catalog.substr(l.name, 8) as worker,
       pg_catalog.count(distinct (a.restaurant_id, a.booking_id, a.attempt)) filter (where a.id is not null)
  from allocator.leases l
  left join allocator.booking_assignment_attempts a on a.worker = pg_catalog.substr(l.name, 8)
 where l.name like 'worker:%' and l.expires_at > now()
 group by 1 order by 1;

-- name: floor
select label, zone, status, booking_id, party_size, late, frees_at, next_booking_id, next_at,
       next_party_size
  from allocator.floor_at(%s, %s);

-- name: restaurant_timezone
select timezone from allocator.restaurants where id = %s;

-- name: add_staff
select allocator.add_staff(%(login)s, %(display_name)s, %(password_hash)s, %(restaurant_ids)s) as staff;

-- name: set_staff_password
select allocator.set_staff_password(%(login)s, %(password_hash)s) as staff;

-- name: set_staff_restaurants
select allocator.set_staff_restaurants(%(login)s, %(restaurant_ids)s) as staff;

-- name: disable_staff
select allocator.disable_staff(%(login)s) as staff;

-- name: issue_staff_token
select allocator.issue_staff_token(%(login)s, %(digest)s, %(label)s, %(days)s) as token;

-- name: staff_members
select login, display_name, restaurant_ids, disabled, tokens from allocator.staff_members();

-- name: busiest_day
select (pg_catalog.lower(b.period) at time zone r.timezone)::date as day
  from allocator.bookings b join allocator.restaurants r on r.id = b.restaurant_id
 where b.restaurant_id = %(restaurant_id)s
 group by 1 order by pg_catalog.count(*) desc, 1 limit 1;
