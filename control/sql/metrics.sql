-- Assignment metrics for dashboards and psql: over any window, and a view of the last day.

-- Created -> confirmed latency, defined once: from the booking's creation (its history row
-- from nothing to created) to its first confirmation. A booking that never was confirmed has
-- no latency; one that arrived confirmed (imported with its tables) never was created and is
-- not listed. It reads as its caller, so row level security applies through it.
create or replace view allocator.confirmation_latency with (security_invoker = true, security_barrier = true) as
select c.restaurant_id, c.booking_id, c.created_at, f.confirmed_at,
       extract(epoch from f.confirmed_at - c.created_at) * 1000 as created_to_confirmed_ms
  from allocator.booking_state_history c
  cross join lateral (
    select min(h.created_at) as confirmed_at from allocator.booking_state_history h
     where h.restaurant_id = c.restaurant_id and h.booking_id = c.booking_id and h.to_state = 'confirmed') f
 where c.from_state is null and c.to_state = 'created';

comment on view allocator.confirmation_latency is
  'Created->confirmed latency of every booking that started in created (not one imported already confirmed): its creation, its first confirmation, and the time between in ms (NULL until confirmed). assignment_metrics and pipeline_report read it; filter by restaurant_id and created_at';

create or replace function allocator.assignment_metrics_between(p_from timestamptz, p_to timestamptz)
returns table (
  restaurant_id bigint,
  bookings bigint,
  confirmed bigint,
  manual_review bigint,
  success_rate numeric,
  manual_review_rate numeric,
  created_to_confirmed_p50_ms numeric,
  created_to_confirmed_p95_ms numeric,
  retries_by_reason jsonb,
  lock_wait_p95_ms numeric,
  lease_wait_p95_ms numeric,
  success_by_strategy jsonb
)
language sql
stable
as $$
  with created as (
    select l.restaurant_id, l.booking_id, l.created_at, l.created_to_confirmed_ms
      from allocator.confirmation_latency l
     where l.created_at >= p_from and l.created_at < p_to
       and allocator.tenant_allows(l.restaurant_id)
  ), outcome as (
    select c.restaurant_id, c.booking_id, b.state, c.created_to_confirmed_ms as latency_ms
      from created c
      join allocator.bookings b on b.restaurant_id = c.restaurant_id and b.id = c.booking_id
  ), attempts as (
    select a.* from allocator.booking_assignment_attempts a
      join created c on c.restaurant_id = a.restaurant_id and c.booking_id = a.booking_id
  ), retries as (
    select h.restaurant_id, h.reason, pg_catalog.count(*) as n
      from allocator.booking_state_history h
      join created c on c.restaurant_id = h.restaurant_id and c.booking_id = h.booking_id
     where h.from_state = 'assignment_in_progress' and h.to_state = 'assignment_pending'
     group by h.restaurant_id, h.reason
  ), strategies as (
    select a.restaurant_id, a.strategy,
           pg_catalog.round(pg_catalog.count(*) filter (where a.result = 'confirmed')::numeric / pg_catalog.count(*), 4) as rate
      from attempts a where a.strategy is not null and a.result in ('confirmed', 'conflict')
     group by a.restaurant_id, a.strategy
  ), lease_p95 as (
    select pg_catalog.percentile_cont(0.95) within group (order by w.waited_ms) as p95
      from allocator.lease_waits w where w.created_at >= p_from and w.created_at < p_to
  )
  select o.restaurant_id,
         pg_catalog.count(*),
         pg_catalog.count(*) filter (where o.state = 'confirmed'),
         pg_catalog.count(*) filter (where o.state = 'manual_review'),
         pg_catalog.round(pg_catalog.count(*) filter (where o.state = 'confirmed')::numeric / pg_catalog.count(*), 4),
         pg_catalog.round(pg_catalog.count(*) filter (where o.state = 'manual_review')::numeric / pg_catalog.count(*), 4),
         pg_catalog.round((pg_catalog.percentile_cont(0.5) within group (order by o.latency_ms))::numeric, 3),
         pg_catalog.round((pg_catalog.percentile_cont(0.95) within group (order by o.latency_ms))::numeric, 3),
         coalesce((select pg_catalog.jsonb_object_agg(coalesce(r.reason, '-'), r.n) from retries r
                    where r.restaurant_id = o.restaurant_id), '{}'::jsonb),
         (select pg_catalog.round((pg_catalog.percentile_cont(0.95) within group (order by (a.metadata ->> 'lock_wait_ms')::numeric))::numeric, 3)
            from attempts a where a.restaurant_id = o.restaurant_id and a.metadata ? 'lock_wait_ms'),
         (select pg_catalog.round(l.p95::numeric, 3) from lease_p95 l),
         coalesce((select pg_catalog.jsonb_object_agg(s.strategy, s.rate) from strategies s
                    where s.restaurant_id = o.restaurant_id), '{}'::jsonb)
    from outcome o
   group by o.restaurant_id
$$;

comment on function allocator.assignment_metrics_between(timestamptz, timestamptz) is
  'Assignment metrics per restaurant for bookings created in [p_from, p_to): success and manual-review rates, created->confirmed P50/P95, retries by reason, lock and lease wait P95, success per strategy';

create or replace view allocator.assignment_metrics with (security_invoker = true, security_barrier = true) as
select * from allocator.assignment_metrics_between(allocator.now() - interval '24 hours', allocator.now() + interval '1 second');

comment on view allocator.assignment_metrics is
  'allocator.assignment_metrics_between over the last 24 hours';


