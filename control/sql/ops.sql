-- Read side for operators and DBAs: history and attempts by booking, and two views.

create or replace function allocator.booking_history(p_booking_id bigint)
returns table (
  version integer, from_state text, to_state text, actor text, reason text,
  metadata jsonb, created_at timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant_id bigint := allocator.booking_restaurant(p_booking_id);
begin
  return query
    select h.version, h.from_state, h.to_state, h.actor, h.reason, h.metadata, h.created_at
      from allocator.booking_state_history h
     where h.restaurant_id = v_restaurant_id and h.booking_id = p_booking_id
     order by h.version, h.id;
end
$$;

comment on function allocator.booking_history(bigint) is
  'The state changes of a booking, oldest first: version, from, to, actor, reason, metadata, time';

create or replace function allocator.booking_attempts(p_booking_id bigint)
returns table (
  attempt integer, worker text, strategy text, table_ids bigint[], score numeric, result text,
  reason text, duration_ms numeric, created_at timestamptz
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant_id bigint := allocator.booking_restaurant(p_booking_id);
begin
  return query
    select a.attempt, a.worker, a.strategy, a.table_ids, a.score, a.result, a.reason, a.duration_ms, a.created_at
      from allocator.booking_assignment_attempts a
     where a.restaurant_id = v_restaurant_id and a.booking_id = p_booking_id
     order by a.id;
end
$$;

comment on function allocator.booking_attempts(bigint) is
  'The assignment attempts of a booking, oldest first: attempt, worker, strategy, tables, score, result, reason, duration';

-- Both views read as their caller (security_invoker): the row level security of each table,
-- in every branch of a UNION, is applied before any condition a query adds (a function that
-- leaks its arguments included). A barrier on a UNION ALL view alone would not be: the
-- planner flattens the branches and pushes such a condition into each of them.
create or replace view allocator.manual_review_queue with (security_invoker = true, security_barrier = true) as
select b.restaurant_id, b.id as booking_id, b.party_size,
       pg_catalog.lower(b.period) as starts_at, b.manual_review_reason as reason,
       b.assignment_attempts as attempts, b.version,
       since.at as in_review_since,
       allocator.now() - since.at as age
  from allocator.bookings b
  cross join lateral (
    select max(h.created_at) as at from allocator.booking_state_history h
     where h.restaurant_id = b.restaurant_id and h.booking_id = b.id and h.to_state = 'manual_review') since
 where b.state = 'manual_review'
   and b.manual_review_reason is not null;  -- the same bookings; lets bookings_review_idx find them

comment on view allocator.manual_review_queue is
  'Bookings waiting for a person: why, after how many attempts, since when (oldest first when ordered by in_review_since)';

create or replace view allocator.booking_timeline with (security_invoker = true, security_barrier = true) as
select h.restaurant_id, h.booking_id, h.created_at as at, 'state' as kind,
       pg_catalog.format('%s -> %s', coalesce(h.from_state, '-'), h.to_state) as what,
       h.actor, h.reason, h.metadata as details
  from allocator.booking_state_history h
union all
select a.restaurant_id, a.booking_id, a.created_at, 'attempt',
       pg_catalog.format('attempt %s %s: %s', a.attempt, coalesce(a.strategy, '-'), a.result),
       a.worker, a.reason,
       pg_catalog.jsonb_build_object('table_ids', a.table_ids, 'score', a.score, 'duration_ms', a.duration_ms)
  from allocator.booking_assignment_attempts a
union all
select h.restaurant_id, h.booking_id, h.created_at, 'hold',
       pg_catalog.format('hold %s on tables %s: %s', h.id, h.table_ids, h.status),
       h.actor, null,
       pg_catalog.jsonb_build_object('expires_at', h.expires_at, 'closed_at', h.closed_at)
  from allocator.holds h;

comment on view allocator.booking_timeline is
  'Everything that happened to each booking in time order: state changes, assignment attempts, holds (filter by booking_id, order by at)';


