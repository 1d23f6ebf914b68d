-- Events a subscriber has not seen, oldest first, limited to transactions older than every
-- running one (see events.xact). Advances the subscriber's cursor; a concurrent reader of
-- the same subscriber gets nothing rather than the same events.
create or replace function allocator.read_events(p_subscriber text, p_limit integer default 500)
returns setof allocator.events
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_last bigint;
  v_last_xact xid8;
begin
  if p_subscriber is null or p_subscriber = '' then
    perform allocator.raise_error('invalid_argument', 'subscriber name is required');
  end if;
  perform allocator.check_argument('limit', p_limit, 1, 10000);
  insert into allocator.subscriber_cursors (subscriber) values (p_subscriber) on conflict do nothing;
  select c.last_event_id, c.last_xact into v_last, v_last_xact from allocator.subscriber_cursors c
   where c.subscriber = p_subscriber for update skip locked;
  if not found then
    return;
  end if;
  return query
    with batch as (
      select e.* from allocator.events e
       where (e.xact, e.id) > (v_last_xact, v_last)
         and e.xact < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
       order by e.xact, e.id
       limit p_limit
    ), last as (
      select b.xact, b.id from batch b order by b.xact desc, b.id desc limit 1
    ), moved as (
      update allocator.subscriber_cursors c
         set last_xact = last.xact, last_event_id = last.id, updated_at = allocator.now()
        from last
       where c.subscriber = p_subscriber
      returning c.last_event_id
    )
    select b.* from batch b order by b.xact, b.id;
end
$$;

comment on function allocator.read_events(text, integer) is
  'Events after the subscriber''s cursor in (transaction, id) order, only from transactions older than every running one, so none is ever skipped; moves the cursor past them';

-- The notification handler: turns confirmed and manual_review events into notifications.
create or replace function allocator.deliver_notifications(p_limit integer default 500)
returns setof allocator.notifications
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  with events as (
    select e.* from allocator.read_events('notifications', p_limit) e
     where e.topic in ('booking.confirmed', 'booking.manual_review')
  )
  insert into allocator.notifications (restaurant_id, booking_id, event_id, kind, payload)
  select e.restaurant_id, e.booking_id, e.id, pg_catalog.substr(e.topic, 9),
         pg_catalog.jsonb_build_object(
           'booking_id', b.id, 'restaurant', r.name, 'party_size', b.party_size,
           'start', pg_catalog.lower(b.period), 'timezone', r.timezone,
           'kind', pg_catalog.substr(e.topic, 9),
           'tables', (select coalesce(pg_catalog.jsonb_agg(t.label order by t.label), '[]'::jsonb)
                        from allocator.allocations a join allocator.tables t
                          on t.restaurant_id = a.restaurant_id and t.id = a.table_id
                       where a.restaurant_id = b.restaurant_id and a.booking_id = b.id),
           'reason', b.manual_review_reason)
    from events e
    join allocator.bookings b on b.restaurant_id = e.restaurant_id and b.id = e.booking_id
    join allocator.restaurants r on r.id = e.restaurant_id
  on conflict (restaurant_id, event_id) do nothing
  returning *
$$;

comment on function allocator.deliver_notifications(integer) is
  'Notification subscriber: one notification per booking.confirmed or booking.manual_review event not yet read';

-- One step of the sweep that keeps the pipeline moving with no worker at all: claim one due
-- booking and process it in a subtransaction of its own. A failure is a warning: the
-- booking's 60-second lease runs out and it is claimed again later, and the sweep goes on.
create or replace function allocator.run_one(p_worker text default 'sweeper')
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking_id bigint;
begin
  select c.booking_id into v_booking_id from allocator.claim_due(p_worker, 1, 60) c;
  if v_booking_id is not null then
    begin
      perform allocator.process_booking(v_booking_id, p_worker);
    exception when others then
      raise warning 'run_due: booking % failed: % (%)', v_booking_id, sqlerrm, sqlstate;
    end;
  end if;
  return v_booking_id;
end
$$;

comment on function allocator.run_one(text) is
  'Claim one due booking and process it (a failure is a warning and leaves it leased for 60 s); returns its id, or null when nothing is due';

create or replace function allocator.run_due(p_limit integer default 100, p_worker text default 'sweeper')
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer := 0;
begin
  perform allocator.check_argument('limit', p_limit, 1, 1000);
  while v_count < p_limit loop
    exit when allocator.run_one(p_worker) is null;
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

comment on function allocator.run_due(integer, text) is
  'Claim and process up to p_limit due bookings one by one, all in the caller''s transaction; returns how many it took from the queue';

-- The scheduled sweep: run_one after run_one, committing after each, so that a booking's
-- locks and permit are held for its own processing only and every confirmation is visible
-- at once. A procedure with transaction control runs with the caller's rights and no SET
-- clause: CALL it as a role that may execute run_one (allocator_ops), outside a transaction
-- block. It calls nothing else, so that is all the rights it needs.
create or replace procedure allocator.sweep(p_limit integer default 500, p_worker text default 'sweeper')
language plpgsql
as $$
declare
  v_done integer := 0;
begin
  if p_limit is null or p_limit not between 1 and 100000 then
    raise exception using errcode = 'RA001',
      message = pg_catalog.format('limit must be from 1 to 100000, got %s', coalesce(p_limit::text, 'NULL'));
  end if;
  while v_done < p_limit loop
    exit when allocator.run_one(p_worker) is null;
    v_done := v_done + 1;
    commit;
  end loop;
  raise notice 'sweep: % bookings processed', v_done;
end
$$;

comment on procedure allocator.sweep(integer, text) is
  'Process up to p_limit due bookings, one transaction each (CALL it outside a transaction block; the pg_cron job runs it every minute)';

-- The pg_cron jobs the project wants, computed in the database: names, schedules (UTC),
-- commands. The nightly optimizer runs at the restaurant's pooling.cutoff (03:30 unless set)
-- in restaurant time, converted with today's UTC
-- offset (pg_cron knows only UTC, so the job shifts by an hour at DST changes until the
-- next `allocator schedule install`).
create or replace function allocator.cron_plan() returns table (jobname text, schedule text, command text)
language sql
stable
as $$
  select 'allocator-expire-holds', '* * * * *', 'select allocator.expire_holds()'
  union all
  select 'allocator-run-due', '* * * * *', 'call allocator.sweep(500)'
  union all
  select 'allocator-cleanup-cron-history', '17 3 * * *',
         'delete from cron.job_run_details where end_time < now() - interval ''7 days'''
  union all
  select pg_catalog.format('allocator-optimize-%s', r.id),
         pg_catalog.format('%s %s * * *',
           extract(minute from u.at)::integer, extract(hour from u.at)::integer),
         pg_catalog.format('select allocator.nightly_optimize(%s)', r.id)
    from allocator.restaurants r
    cross join lateral (
      select ((pg_catalog.date_trunc('day', allocator.now() at time zone r.timezone)
               + coalesce(r.settings #>> '{pooling,cutoff}',
                          allocator.default_settings() #>> '{pooling,cutoff}')::time)
               at time zone r.timezone) at time zone 'UTC' as at) u
   where pg_catalog.to_regprocedure('allocator.nightly_optimize(bigint)') is not null
$$;

comment on function allocator.cron_plan() is
  'The pg_cron jobs allocator needs (sweeps every minute, history cleanup, nightly optimizer per restaurant at its pooling.cutoff local time, 03:30 by default, in UTC)';

create or replace view allocator.queue_status as
select q.restaurant_id,
       pg_catalog.count(*) as queued,
       pg_catalog.count(*) filter (where q.run_at <= allocator.now()
                                     and (q.lease_expires_at is null or q.lease_expires_at <= allocator.now())) as due,
       pg_catalog.count(*) filter (where q.lease_expires_at > allocator.now()) as leased,
       pg_catalog.count(*) filter (where q.run_at > allocator.now()) as scheduled,
       pg_catalog.count(*) filter (where q.run_at > allocator.now() and q.reason = 'pooled') as pooled,
       pg_catalog.min(q.run_at) as oldest_run_at
  from allocator.assignment_queue q
 where allocator.tenant_allows(q.restaurant_id)
 group by q.restaurant_id;

comment on view allocator.queue_status is 'Queue depth per restaurant: queued, due now, leased to a worker, scheduled later (of which pooled: waiting for the day''s cut-off)';

create or replace view allocator.booking_state_counts as
select b.restaurant_id, b.state, pg_catalog.count(*) as bookings
  from allocator.bookings b
 where allocator.tenant_allows(b.restaurant_id)
 group by b.restaurant_id, b.state;

comment on view allocator.booking_state_counts is 'How many bookings each restaurant has in each state';

-- Gives back the queue rows a stopping worker claimed but did not process.
create or replace function allocator.release_claims(p_worker text) returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer;
begin
  update allocator.assignment_queue q set leased_by = null, lease_expires_at = null
   where q.leased_by = p_worker and q.lease_expires_at > allocator.now();
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function allocator.release_claims(text) is
  'Release the queue leases a worker still holds (on a clean shutdown), so other workers take them at once';

-- What a run of the pipeline did for one restaurant since p_since: outcomes, latency, and
-- the two things that must never happen (one booking worked by two sessions at once,
-- overlapping allocations).
create or replace function allocator.pipeline_report(p_restaurant_id bigint, p_since timestamptz) returns jsonb
language sql
stable
as $$
  with created as (
    select l.booking_id, l.created_at, l.created_to_confirmed_ms from allocator.confirmation_latency l
     where l.restaurant_id = p_restaurant_id and l.created_at >= p_since
  ), latency as (
    select c.created_to_confirmed_ms as ms from created c
  ), states as (
    select b.state, pg_catalog.count(*) as n from allocator.bookings b
      join created c on c.booking_id = b.id
     where b.restaurant_id = p_restaurant_id
     group by b.state
  )
  select pg_catalog.jsonb_build_object(
    'bookings', (select pg_catalog.count(*) from created),
    'states', coalesce((select pg_catalog.jsonb_object_agg(s.state, s.n) from states s), '{}'::jsonb),
    'confirmed', coalesce((select s.n from states s where s.state = 'confirmed'), 0),
    'manual_review', coalesce((select s.n from states s where s.state = 'manual_review'), 0),
    'failed', coalesce((select s.n from states s where s.state = 'failed'), 0),
    'latency_p50_ms', (select pg_catalog.round(pg_catalog.percentile_cont(0.5) within group (order by l.ms)::numeric, 1) from latency l),
    'latency_p95_ms', (select pg_catalog.round(pg_catalog.percentile_cont(0.95) within group (order by l.ms)::numeric, 1) from latency l),
    'latency_p99_ms', (select pg_catalog.round(pg_catalog.percentile_cont(0.99) within group (order by l.ms)::numeric, 1) from latency l),
    'attempts', (select pg_catalog.count(*) from allocator.booking_assignment_attempts a
                   join created c on c.booking_id = a.booking_id where a.restaurant_id = p_restaurant_id),
    'duplicate_processing', (
      select pg_catalog.count(distinct a.booking_id)
        from allocator.booking_assignment_attempts a
        join allocator.booking_assignment_attempts b
          on b.restaurant_id = a.restaurant_id and b.booking_id = a.booking_id and a.id < b.id
         and a.metadata ->> 'backend_pid' <> b.metadata ->> 'backend_pid'
         and pg_catalog.tstzrange((a.metadata ->> 'started_at')::timestamptz, (a.metadata ->> 'finished_at')::timestamptz, '[]')
          && pg_catalog.tstzrange((b.metadata ->> 'started_at')::timestamptz, (b.metadata ->> 'finished_at')::timestamptz, '[]')
        join created c on c.booking_id = a.booking_id
       where a.restaurant_id = p_restaurant_id),
    'overlapping_allocations', (
      select pg_catalog.count(*) from allocator.allocations a
        join allocator.allocations b
          on b.restaurant_id = a.restaurant_id and b.table_id = a.table_id and a.id < b.id and a.period && b.period
       where a.restaurant_id = p_restaurant_id))
$$;

comment on function allocator.pipeline_report(bigint, timestamptz) is
  'Outcome of the pipeline for bookings created since p_since: states, created->confirmed P50/P95/P99, attempts, duplicate processing and overlapping allocations (both must be 0)';


