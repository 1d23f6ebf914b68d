-- The horizon of the outbox: every event of a transaction below it that will ever commit
-- has committed. It is the oldest transaction still running, leaving out those known to run
-- in another database (they write no event here): a long transaction elsewhere on the
-- cluster, or another database's CREATE DATABASE, does not hold the subscribers of this one
-- back. A running transaction whose database cannot be told (not visible to the caller in
-- pg_stat_activity, or a subtransaction) counts, so the horizon is never too far.
create or replace function allocator.events_horizon() returns xid8
language sql
stable
as $$
  with snap as (select pg_catalog.pg_current_snapshot() as s),
  here as (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
  select coalesce(
    (select min(x.x)
       from snap, pg_catalog.pg_snapshot_xip(snap.s) x(x)
      where not exists (select 1 from pg_catalog.pg_stat_activity a, here
                         where a.backend_xid = x.x::xid and a.datid is not null and a.datid <> here.oid)
        and not exists (select 1 from pg_catalog.pg_prepared_xacts p
                         where p.transaction = x.x::xid and p.database <> pg_catalog.current_database())),
    (select pg_catalog.pg_snapshot_xmax(snap.s) from snap))
$$;

comment on function allocator.events_horizon() is
  'The oldest transaction that may still commit events in this database (running here, or not known to run elsewhere); read_events and events tail read below it';

-- Events a subscriber has not seen, oldest first, limited to transactions below the horizon
-- (events_horizon; see events.xact). Advances the subscriber's cursor; a concurrent reader of
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
  v_subscriber text;
  v_restricted boolean;
begin
  if p_subscriber is null or p_subscriber = '' then
    perform allocator.raise_error('invalid_argument', 'subscriber name is required');
  end if;
  perform allocator.check_length('subscriber name', p_subscriber);
  perform allocator.check_argument('limit', p_limit, 1, 10000);
  -- A tenant-restricted login reads its restaurants' events through cursors of its own.
  v_restricted := allocator.tenant_restricted();
  v_subscriber := allocator.tenant_scoped_name(p_subscriber);
  insert into allocator.subscriber_cursors (subscriber) values (v_subscriber) on conflict do nothing;
  select c.last_event_id, c.last_xact into v_last, v_last_xact from allocator.subscriber_cursors c
   where c.subscriber = v_subscriber for update skip locked;
  if not found then
    return;
  end if;
  return query
    with batch as (
      select e.* from allocator.events e
       where (e.xact, e.id) > (v_last_xact, v_last)
         and e.xact < allocator.events_horizon()
         and (not v_restricted or allocator.tenant_allows(e.restaurant_id))
       order by e.xact, e.id
       limit p_limit
    ), last as (
      select b.xact, b.id from batch b order by b.xact desc, b.id desc limit 1
    ), moved as (
      update allocator.subscriber_cursors c
         set last_xact = last.xact, last_event_id = last.id, updated_at = allocator.now()
        from last
       where c.subscriber = v_subscriber
      returning c.last_event_id
    )
    select b.* from batch b order by b.xact, b.id;
end
$$;

comment on function allocator.read_events(text, integer) is
  'Events after the subscriber''s cursor in (transaction, id) order, only from transactions below the horizon (events_horizon: older than every one that may still commit here), so none is ever skipped; moves the cursor past them. A tenant-restricted login reads only its restaurants'' events, through cursors of its own';

-- The kind of customer notification an event makes: confirmed, manual_review, table_offered.
create or replace function allocator.notification_kind(p_topic text) returns text
language sql
immutable
as $$
  select case p_topic when 'waitlist.offered' then 'table_offered' else pg_catalog.substr(p_topic, 9) end
$$;

comment on function allocator.notification_kind(text) is
  'The notification kind of an event topic: booking.confirmed -> confirmed, booking.manual_review -> manual_review, waitlist.offered -> table_offered';

-- The notification handler: turns confirmed, manual_review and table-offered events into
-- notifications.
create or replace function allocator.deliver_notifications(p_limit integer default 500)
returns setof allocator.notifications
language sql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
  with events as (
    select e.* from allocator.read_events('notifications', p_limit) e
     where e.topic in ('booking.confirmed', 'booking.manual_review', 'waitlist.offered')
  )
  insert into allocator.notifications (restaurant_id, booking_id, event_id, kind, payload, email, locale, status)
  select e.restaurant_id, e.booking_id, e.id, allocator.notification_kind(e.topic),
         pg_catalog.jsonb_build_object(
           'booking_id', b.id, 'restaurant', r.name, 'party_size', b.party_size,
           'start', pg_catalog.lower(b.period), 'timezone', r.timezone,
           'locale', coalesce(b.locale, r.settings ->> 'locale', 'en'),
           'kind', allocator.notification_kind(e.topic),
           'offer_expires_at', e.payload -> 'expires_at',
           'tables', (select coalesce(pg_catalog.jsonb_agg(t.label order by t.label), '[]'::jsonb)
                        from allocator.allocations a join allocator.tables t
                          on t.restaurant_id = a.restaurant_id and t.id = a.table_id
                       where a.restaurant_id = b.restaurant_id and a.booking_id = b.id),
           'reason', b.manual_review_reason),
         b.guest_email, coalesce(b.locale, r.settings ->> 'locale', 'en'),
         case when b.guest_email is null then 'unmailed' else 'pending' end
    from events e
    join allocator.bookings b on b.restaurant_id = e.restaurant_id and b.id = e.booking_id
    join allocator.restaurants r on r.id = e.restaurant_id
  on conflict (restaurant_id, event_id) do nothing
  returning *
$$;

comment on function allocator.deliver_notifications(integer) is
  'Notification subscriber: one notification per booking.confirmed, booking.manual_review or waitlist.offered event not yet read (by a tenant-restricted login: of its restaurants, through its own cursor)';

-- One step of the sweep that keeps the pipeline moving with no worker at all: claim one due
-- booking and process it in a subtransaction of its own. A failure is a warning: the
-- booking's 60-second lease runs out and it is claimed again later, and the sweep goes on.
-- Nothing here waits on another session: claim_due and process_booking skip locked rows,
-- and any other lock wait (a table another session holds uncommitted) ends after
-- lock_timeout as a failed attempt, retried with backoff.
create or replace function allocator.run_one(p_worker text default 'sweeper')
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
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
-- commands. pg_cron knows only UTC, so no job runs at a restaurant's local time: the nightly
-- job ticks every minute and nightly_sweep plans each restaurant at its own cut-off.
create or replace function allocator.cron_plan() returns table (jobname text, schedule text, command text)
language sql
stable
as $$
  select 'allocator-expire-holds', '* * * * *', 'select allocator.expire_holds()'
  union all
  select 'allocator-run-due', '* * * * *', 'call allocator.sweep(500)'
  union all
  select 'allocator-no-shows', '* * * * *', 'select allocator.mark_no_shows()'
  union all
  select 'allocator-waitlist', '* * * * *', 'select allocator.offer_waitlists()'
  union all
  select 'allocator-cleanup-cron-history', '17 3 * * *',
         'delete from cron.job_run_details where end_time < now() - interval ''7 days'''
  union all
  -- One job for every restaurant: each restaurant's plan runs once per local day, at the
  -- first tick at or after its pooling.cutoff in its own time zone (run_nightly).
  select 'allocator-nightly', '* * * * *', 'call allocator.nightly_sweep()'
$$;

comment on function allocator.cron_plan() is
  'The pg_cron jobs allocator needs, schedules in UTC: hold expiry, queue sweep, no-show sweep and waitlist offers every minute, history cleanup daily, and the nightly job every minute (nightly_sweep plans each restaurant once a day at its local pooling.cutoff)';

-- The nightly plan. A restaurant's local day D is planned once, at the first tick at or
-- after its cut-off: D + pooling.cutoff read in the restaurant's time zone, the instant
-- pool_cutoff() gives the day's pool. PostgreSQL reads a local time the clocks skip with
-- the offset before the change (02:30 on a spring-forward night is 03:30 summer time) and
-- one that happens twice as its second occurrence (after the clocks went back).
create or replace function allocator.nightly_cutoff(p_timezone text, p_settings jsonb, p_day date)
returns timestamptz
language sql
stable
as $$
  select (p_day + coalesce(p_settings #>> '{pooling,cutoff}',
                           allocator.default_settings() #>> '{pooling,cutoff}')::time) at time zone p_timezone
$$;

comment on function allocator.nightly_cutoff(text, jsonb, date) is
  'The instant of a restaurant''s pooling.cutoff on local day p_day (a skipped local time read with the offset before the change, a repeated one as its second occurrence)';

-- Attempts at a day's plan before it is left to the fallback (nightly_plans.status failed).
create or replace function allocator.nightly_max_attempts() returns integer
language sql
immutable
parallel safe
as $$
  select 3
$$;

comment on function allocator.nightly_max_attempts() is
  'How many ticks try a failing nightly plan before its day is given up (3)';

-- PL/pgSQL, so that the code also installs on a revision before nightly_plans existed.
create or replace function allocator.nightly_due()
returns table (restaurant_id bigint, day date, cutoff_at timestamptz)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    select r.id, l.day, allocator.nightly_cutoff(r.timezone, r.settings, l.day)
      from allocator.restaurants r
      cross join lateral (select (allocator.now() at time zone r.timezone)::date as day) l
     where allocator.tenant_allows(r.id)
       and allocator.nightly_cutoff(r.timezone, r.settings, l.day) <= allocator.now()
       and not exists (select 1 from allocator.nightly_plans p
                        where p.restaurant_id = r.id and p.day = l.day
                          and (p.status = 'done' or p.attempts >= allocator.nightly_max_attempts()))
     order by 3, 1;
end
$$;

comment on function allocator.nightly_due() is
  'The restaurants whose current local day is due for its nightly plan: its pooling.cutoff has passed and the day is not planned yet (nor given up after failing); with the day and the cut-off''s instant, earliest cut-off first';

-- One restaurant's nightly plan, if due: replan_day for its local day, recorded in
-- nightly_plans so the day is never planned twice. Lock waits are bounded (lock_timeout):
-- a plan that cannot lock a booking fails, and the next tick tries again.
create or replace function allocator.run_nightly(p_restaurant_id bigint)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
set lock_timeout = '5s'
as $$
declare
  v_restaurant allocator.restaurants;
  v_day date;
  v_cutoff timestamptz;
  v_status text;
  v_attempts integer;
  v_result jsonb;
  v_error text;
  v_sqlstate text;
begin
  v_restaurant := allocator.require_restaurant(p_restaurant_id);
  v_day := (allocator.now() at time zone v_restaurant.timezone)::date;
  v_cutoff := allocator.nightly_cutoff(v_restaurant.timezone, v_restaurant.settings, v_day);
  v_result := pg_catalog.jsonb_build_object('ran', false, 'restaurant_id', p_restaurant_id,
    'day', v_day, 'cutoff_at', v_cutoff);
  if allocator.now() < v_cutoff then
    return v_result || '{"reason": "before_cutoff"}';
  end if;
  -- Another session planning this restaurant right now: never wait for it.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('allocator.nightly'),
       (p_restaurant_id % 2147483647)::integer) then
    return v_result || '{"reason": "busy"}';
  end if;
  select p.status, p.attempts into v_status, v_attempts from allocator.nightly_plans p
   where p.restaurant_id = p_restaurant_id and p.day = v_day;
  if v_status = 'done' then
    return v_result || '{"reason": "planned"}';
  elsif v_attempts >= allocator.nightly_max_attempts() then
    return v_result || '{"reason": "failed"}';
  end if;
  begin
    v_result := v_result || allocator.replan_day(p_restaurant_id, v_day)
                || pg_catalog.jsonb_build_object('ran', true, 'day', v_day);
  exception when others then
    get stacked diagnostics v_error = message_text, v_sqlstate = returned_sqlstate;
    insert into allocator.nightly_plans as p (restaurant_id, day, cutoff_at, ran_at, status, result)
    values (p_restaurant_id, v_day, v_cutoff, allocator.now(), 'failed',
            pg_catalog.jsonb_build_object('sqlstate', v_sqlstate, 'error', v_error))
    on conflict (restaurant_id, day) do update
       set ran_at = excluded.ran_at, attempts = p.attempts + 1, result = excluded.result;
    raise warning 'nightly plan of restaurant % for % failed: % (%)', p_restaurant_id, v_day, v_error, v_sqlstate;
    return v_result || pg_catalog.jsonb_build_object('reason', 'error', 'sqlstate', v_sqlstate, 'error', v_error);
  end;
  insert into allocator.nightly_plans as p (restaurant_id, day, cutoff_at, ran_at, status, result)
  values (p_restaurant_id, v_day, v_cutoff, allocator.now(), 'done', v_result)
  on conflict (restaurant_id, day) do update
     set ran_at = excluded.ran_at, status = 'done', attempts = p.attempts + 1, result = excluded.result;
  return v_result;
end
$$;

comment on function allocator.run_nightly(bigint) is
  'The restaurant''s nightly plan if due: once its local day''s pooling.cutoff has passed, replan_day for that day, once (recorded in nightly_plans; a failure is recorded and tried again, up to 3 times). Returns replan_day''s result with ran true, or ran false and a reason: before_cutoff, planned, failed, busy, error';

-- What the pg_cron job allocator-nightly calls every minute: run_nightly for each restaurant
-- that nightly_due() lists, committing after each, so one restaurant's plan holds its locks
-- for its own run only. Like sweep, it runs with the caller's rights and no SET clause: CALL
-- it as a role that may execute nightly_due and run_nightly (allocator_ops), outside a
-- transaction block.
create or replace procedure allocator.nightly_sweep(p_limit integer default 100)
language plpgsql
as $$
declare
  v_restaurant_id bigint;
  v_done integer := 0;
begin
  if p_limit is null or p_limit not between 1 and 100000 then
    raise exception using errcode = 'RA001',
      message = pg_catalog.format('limit must be from 1 to 100000, got %s', coalesce(p_limit::text, 'NULL'));
  end if;
  for v_restaurant_id in select d.restaurant_id from allocator.nightly_due() d limit p_limit loop
    begin
      perform allocator.run_nightly(v_restaurant_id);
    exception when others then
      -- A restaurant deleted meanwhile, say: the others are planned all the same.
      raise warning 'nightly_sweep: restaurant % failed: % (%)', v_restaurant_id, sqlerrm, sqlstate;
    end;
    v_done := v_done + 1;
    commit;
  end loop;
  if v_done > 0 then
    raise notice 'nightly_sweep: % restaurants planned', v_done;
  end if;
end
$$;

comment on procedure allocator.nightly_sweep(integer) is
  'Run the nightly plan of up to p_limit restaurants whose local cut-off has passed, one transaction each (CALL it outside a transaction block; the pg_cron job allocator-nightly runs it every minute)';

-- The views read as their caller (security_invoker), so the row level security of every table
-- they read applies, below any condition a query puts on them (security_barrier).
create or replace view allocator.queue_status with (security_invoker = true, security_barrier = true) as
select q.restaurant_id,
       pg_catalog.count(*) as queued,
       pg_catalog.count(*) filter (where q.run_at <= allocator.now()
                                     and (q.lease_expires_at is null or q.lease_expires_at <= allocator.now())) as due,
       pg_catalog.count(*) filter (where q.lease_expires_at > allocator.now()) as leased,
       pg_catalog.count(*) filter (where q.run_at > allocator.now()) as scheduled,
       pg_catalog.count(*) filter (where q.run_at > allocator.now() and q.reason = 'pooled') as pooled,
       pg_catalog.min(q.run_at) as oldest_run_at,
       pg_catalog.min(q.run_at) filter (where q.run_at <= allocator.now()
                                          and (q.lease_expires_at is null or q.lease_expires_at <= allocator.now())) as oldest_due_at
  from allocator.assignment_queue q
 group by q.restaurant_id;

comment on view allocator.queue_status is 'Queue depth per restaurant: queued, due now, leased to a worker, scheduled later (of which pooled: waiting for the day''s cut-off), the earliest run_at, and the run_at of the row due longest (NULL when none is due)';

-- Queue rows put back without being worked on (process_booking's row_locked, rate_limited,
-- circuit_open), by the reason of the last time: such calls record no attempt. A function,
-- not a view: a view would pin the column deferrals, which revision 0003's downgrade drops.
-- It reads as its caller, so row level security applies.
create or replace function allocator.queue_deferrals()
returns table (restaurant_id bigint, reason text, bookings bigint, deferrals bigint)
language sql
stable
as $$
  select q.restaurant_id, q.reason, pg_catalog.count(*), pg_catalog.sum(q.deferrals)::bigint
    from allocator.assignment_queue q
   where q.deferrals > 0
   group by q.restaurant_id, q.reason
$$;

comment on function allocator.queue_deferrals() is
  'Queue rows put back without being worked on (row_locked, rate_limited, circuit_open), per restaurant and reason of the last time: how many bookings, and their deferrals in a row';

-- Every restaurant's breaker; one that never failed has no row and is closed.
create or replace view allocator.breaker_status with (security_invoker = true, security_barrier = true) as
select r.id as restaurant_id, coalesce(b.state, 'closed') as state, coalesce(b.failures, 0) as failures, b.opened_at
  from allocator.restaurants r
  left join allocator.circuit_breakers b on b.restaurant_id = r.id;

comment on view allocator.breaker_status is 'The circuit breaker of every restaurant: closed, open or half_open, failures in a row, when it opened (a restaurant whose breaker never failed is closed)';

create or replace view allocator.booking_state_counts with (security_invoker = true, security_barrier = true) as
select b.restaurant_id, b.state, pg_catalog.count(*) as bookings
  from allocator.bookings b
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
  perform allocator.check_length('worker name', p_worker);
  update allocator.assignment_queue q set leased_by = null, lease_expires_at = null
   where q.leased_by = p_worker and q.lease_expires_at > allocator.now()
     and (not allocator.tenant_restricted() or allocator.tenant_allows(q.restaurant_id));
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function allocator.release_claims(text) is
  'Release the queue leases a worker still holds (on a clean shutdown), so other workers take them at once; a tenant-restricted login releases only its restaurants'' rows';

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


