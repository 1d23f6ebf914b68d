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

-- One row per assignment attempt: one process_booking call that worked the booking (its
-- attempt number), with the result of the last row it recorded. An attempt whose plans all
-- lost their race records only conflicts: its outcome is 'conflicted'. Calls that put the
-- booking back without working on it (row_locked, rate_limited, circuit_open) record no
-- attempt; allocator.queue_deferrals shows those.
create or replace view allocator.attempt_outcomes with (security_invoker = true, security_barrier = true) as
select distinct on (a.restaurant_id, a.booking_id, a.attempt)
       a.restaurant_id, a.booking_id, a.attempt, a.created_at, a.worker, a.strategy,
       case a.result when 'conflict' then 'conflicted' else a.result end as outcome,
       a.reason,
       (a.metadata ->> 'lock_wait_ms')::numeric as lock_wait_ms
  from allocator.booking_assignment_attempts a
 order by a.restaurant_id, a.booking_id, a.attempt, a.id desc;

comment on view allocator.attempt_outcomes is
  'One row per assignment attempt (restaurant, booking, attempt number): the result of its last attempts row (conflict -> conflicted: every plan lost its race), its reason and the booking row lock wait in ms. Metrics count outcomes and lock waits here';

-- A retry: the engine put a booking it worked on back to assignment_pending.
create or replace view allocator.assignment_retries with (security_invoker = true, security_barrier = true) as
select h.restaurant_id, h.booking_id, h.reason, h.created_at
  from allocator.booking_state_history h
 where h.from_state = 'assignment_in_progress' and h.to_state = 'assignment_pending';

comment on view allocator.assignment_retries is
  'Every retry: a booking the engine worked on, put back to assignment_pending, with the reason (no_free_table, all_plans_conflicted, error)';

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
  ), outcomes as (
    select a.* from allocator.attempt_outcomes a
      join created c on c.restaurant_id = a.restaurant_id and c.booking_id = a.booking_id
  ), retries as (
    select h.restaurant_id, h.reason, pg_catalog.count(*) as n
      from allocator.assignment_retries h
      join created c on c.restaurant_id = h.restaurant_id and c.booking_id = h.booking_id
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
         (select pg_catalog.round((pg_catalog.percentile_cont(0.95) within group (order by a.lock_wait_ms))::numeric, 3)
            from outcomes a where a.restaurant_id = o.restaurant_id and a.lock_wait_ms is not null),
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



-- What the Prometheus exporter serves as counters: totals over every row the tables keep, so
-- they only grow (deleting a restaurant's rows looks like a counter reset, which rate() and
-- increase() handle). Known label values are listed with 0 before they first happen, so a
-- ratio has data from the first scrape. Each figure is defined here or in the view it counts.
create or replace view allocator.metric_totals with (security_invoker = true, security_barrier = true) as
select 'bookings_created'::text as metric, '{}'::jsonb as labels, pg_catalog.count(*)::numeric as value
  from allocator.confirmation_latency
union all
select 'assignment_attempts', pg_catalog.jsonb_build_object('outcome', coalesce(c.outcome, k.outcome)),
       coalesce(c.n, 0)
  from (select o.outcome, pg_catalog.count(*)::numeric as n from allocator.attempt_outcomes o group by o.outcome) c
  full join (values ('confirmed'), ('conflicted'), ('no_candidates'), ('error'), ('manual_review'), ('shadow')) k (outcome)
    on k.outcome = c.outcome
union all
select 'retries', pg_catalog.jsonb_build_object('reason', coalesce(c.reason, k.reason)), coalesce(c.n, 0)
  from (select coalesce(r.reason, '-') as reason, pg_catalog.count(*)::numeric as n
          from allocator.assignment_retries r group by 1) c
  full join (values ('no_free_table'), ('all_plans_conflicted'), ('error')) k (reason) on k.reason = c.reason
union all
select 'manual_reviews', '{}'::jsonb, pg_catalog.count(*)::numeric
  from allocator.booking_state_history h where h.to_state = 'manual_review'
union all
select 'state_transitions',
       pg_catalog.jsonb_build_object('from_state', coalesce(c.from_state, k.from_state),
                                     'to_state', coalesce(c.to_state, k.to_state)),
       coalesce(c.n, 0)
  from (select coalesce(h.from_state, 'none') as from_state, h.to_state, pg_catalog.count(*)::numeric as n
          from allocator.booking_state_history h group by 1, 2) c
  full join (select t.from_state, t.to_state from allocator.booking_transitions t
             union all select 'none', 'created') k
    on k.from_state = c.from_state and k.to_state = c.to_state
union all
select 'optimizer_runs', pg_catalog.jsonb_build_object('status', coalesce(c.status, k.status)), coalesce(c.n, 0)
  from (select r.status, pg_catalog.count(*)::numeric as n from allocator.optimizer_runs r group by r.status) c
  full join (values ('applied'), ('below_threshold'), ('stale'), ('conflict'), ('nothing_to_do')) k (status)
    on k.status = c.status
union all
select 'notifications', pg_catalog.jsonb_build_object('kind', coalesce(c.kind, k.kind)), coalesce(c.n, 0)
  from (select n.kind, pg_catalog.count(*)::numeric as n from allocator.notifications n group by n.kind) c
  full join (values ('confirmed'), ('manual_review'), ('table_offered')) k (kind) on k.kind = c.kind
union all
-- A notification of a kind the booking had been sent already (a second "confirmed").
select 'notifications_repeated', pg_catalog.jsonb_build_object('kind', coalesce(c.kind, k.kind)), coalesce(c.n, 0)
  from (select d.kind, pg_catalog.sum(d.n - 1)::numeric as n
          from (select n.kind, pg_catalog.count(*) as n from allocator.notifications n
                 group by n.restaurant_id, n.booking_id, n.kind) d
         group by d.kind) c
  full join (values ('confirmed'), ('manual_review'), ('table_offered')) k (kind) on k.kind = c.kind
union all
-- Calls that put a booking back without working on it, from their booking.assignment_aborted
-- events (attempts write no row for them).
select 'assignments_aborted', pg_catalog.jsonb_build_object('reason', coalesce(c.reason, k.reason)), coalesce(c.n, 0)
  from (select e.payload ->> 'reason' as reason, pg_catalog.count(*)::numeric as n from allocator.events e
         where e.topic = 'booking.assignment_aborted' group by 1) c
  full join (values ('row_locked'), ('rate_limited'), ('circuit_open')) k (reason) on k.reason = c.reason
union all
select 'mails_sent', pg_catalog.jsonb_build_object('kind', coalesce(c.kind, k.kind)), coalesce(c.n, 0)
  from (select n.kind, pg_catalog.count(*)::numeric as n from allocator.notifications n
         where n.status = 'sent' group by n.kind) c
  full join (values ('confirmed'), ('manual_review'), ('table_offered')) k (kind) on k.kind = c.kind;

comment on view allocator.metric_totals is
  'Counters for the metrics exporter (metric, labels, value): bookings created, assignment attempts by outcome, retries by reason, manual reviews, state transitions, optimizer runs by status, notifications, repeated notifications and mails sent by kind, aborted assignments by reason; totals over every row kept, known label values listed with 0';

-- Histograms for the exporter: per metric, the cumulative count of samples at or below each
-- bucket bound (le, the last one Infinity), with the number and sum of all samples, so that
-- Prometheus computes any percentile over any window with histogram_quantile. Samples:
-- created->confirmed latency (confirmation_latency), the booking row lock wait of each attempt
-- (attempt_outcomes), lease waits (lease_waits: global, so not shown to a tenant-restricted
-- login) and the optimizer's promised score improvement (optimizer_runs).
create or replace view allocator.metric_histograms with (security_invoker = true, security_barrier = true) as
with samples as (
  select 'assignment_latency_seconds'::text as metric, l.created_to_confirmed_ms / 1000.0 as v
    from allocator.confirmation_latency l where l.created_to_confirmed_ms is not null
  union all
  select 'lock_wait_seconds', o.lock_wait_ms / 1000.0
    from allocator.attempt_outcomes o where o.lock_wait_ms is not null
  union all
  select 'lease_wait_seconds', w.waited_ms / 1000.0
    from allocator.lease_waits w where not allocator.tenant_restricted()
  union all
  select 'optimizer_score_delta', r.improvement
    from allocator.optimizer_runs r where r.improvement is not null
), bounds as (
  select 'assignment_latency_seconds'::text as metric,
         pg_catalog.unnest('{0.01,0.025,0.05,0.1,0.25,0.5,1,2,3,5,10,30,60,300,Infinity}'::numeric[]) as le
  union all
  select 'lock_wait_seconds', pg_catalog.unnest('{0.001,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,5,Infinity}'::numeric[])
  union all
  select 'lease_wait_seconds', pg_catalog.unnest('{0.001,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,5,Infinity}'::numeric[])
  union all
  select 'optimizer_score_delta', pg_catalog.unnest('{0,0.05,0.1,0.2,0.3,0.5,1,Infinity}'::numeric[])
), totals as (
  select s.metric, pg_catalog.count(*) as samples, pg_catalog.sum(s.v) as total from samples s group by s.metric
)
select b.metric, b.le, pg_catalog.count(s.v) as bucket_count,
       coalesce(t.samples, 0) as sample_count, coalesce(t.total, 0) as sample_sum
  from bounds b
  left join samples s on s.metric = b.metric and s.v <= b.le
  left join totals t on t.metric = b.metric
 group by b.metric, b.le, t.samples, t.total;

comment on view allocator.metric_histograms is
  'Histograms for the metrics exporter: per metric and bucket bound le (the last is Infinity), the cumulative number of samples <= le, with the number and sum of all samples. Metrics: assignment_latency_seconds (created->confirmed), lock_wait_seconds (booking row lock wait per attempt), lease_wait_seconds, optimizer_score_delta';
