-- Availability and candidate plans: which tables and combinations are free for a period,
-- and how well each one suits a booking. Set-based queries, nothing written.

-- The allocations that take a restaurant's tables away from a booking over p_period (the
-- booking's own time; the restaurant's buffer is added, as it is when tables are held):
-- confirmed seats, and live holds unless p_include_holds is false. Expired holds never count.
-- The one overlap query of availability and candidates; a plain SQL function, inlined.
create or replace function allocator.taken_allocations(
  p_restaurant_id bigint,
  p_period tstzrange,
  p_include_holds boolean default true
) returns setof allocator.allocations
language sql
stable
as $$
  select a.*
    from allocator.restaurants r
    join allocator.allocations a
      on a.restaurant_id = r.id
     and a.period && pg_catalog.tstzrange(pg_catalog.lower(p_period),
          pg_catalog.upper(p_period) + pg_catalog.make_interval(mins => (r.settings ->> 'buffer_minutes')::integer),
          '[)')
   where r.id = p_restaurant_id
     and (a.kind = 'confirmed' or (p_include_holds and a.expires_at > allocator.now()))
$$;

comment on function allocator.taken_allocations(bigint, tstzrange, boolean) is
  'Allocations of the restaurant overlapping a booking period plus its buffer: confirmed ones, and live holds unless p_include_holds is false (expired holds never count)';

-- Free tables and combinations for a booking period. p_period is the booking's own time;
-- the restaurant's buffer is added, as it is when tables are held. Expired holds never
-- count; live holds count unless p_include_holds is false.
-- A plain SQL function so the planner inlines it and its plan shows in EXPLAIN.
create or replace function allocator.availability(
  p_restaurant_id bigint,
  p_period tstzrange,
  p_include_holds boolean default true
) returns table (
  kind text,
  table_ids bigint[],
  table_count integer,
  min_capacity integer,
  max_capacity integer,
  zone_ids bigint[]
)
language sql
stable
as $$
  with busy as (
    -- Tables taken by an allocation, or blocked, over the period plus the buffer.
    select pg_catalog.array_agg(distinct x.table_id) as ids
      from (select a.table_id from allocator.taken_allocations(p_restaurant_id, p_period, p_include_holds) a
            union all
            select k.table_id from allocator.restaurants r
              join allocator.table_blocks k on k.restaurant_id = r.id
             where r.id = p_restaurant_id
               and k.period && pg_catalog.tstzrange(pg_catalog.lower(p_period),
                    pg_catalog.upper(p_period) + pg_catalog.make_interval(mins => (r.settings ->> 'buffer_minutes')::integer),
                    '[)')) x
  ), free as (
    select t.id, t.min_capacity, t.max_capacity, t.zone_id
      from allocator.tables t, busy
     where t.restaurant_id = p_restaurant_id and t.active
       and not (t.id = any (coalesce(busy.ids, '{}')))
  )
  -- A combination's zones are read in the outer query, so a caller that does not ask for
  -- zone_ids (candidates() reads them for the plans it scores only) does not pay for them.
  select u.kind, u.table_ids, u.table_count, u.min_capacity, u.max_capacity,
         case when u.kind = 'table' then u.zone_ids
              else (select coalesce(pg_catalog.array_agg(distinct t.zone_id) filter (where t.zone_id is not null), '{}')
                      from allocator.tables t where t.restaurant_id = p_restaurant_id and t.id = any (u.table_ids))
         end
    from (select 'table' as kind, array[f.id] as table_ids, 1 as table_count, f.min_capacity, f.max_capacity,
                 case when f.zone_id is null then '{}'::bigint[] else array[f.zone_id] end as zone_ids
            from free f
          union all
          select 'combination', c.table_ids, c.table_count, c.min_capacity, c.max_capacity, null
            from allocator.table_combinations c, busy
           where c.restaurant_id = p_restaurant_id
             and not (c.table_ids && coalesce(busy.ids, '{}'))) u
$$;

comment on function allocator.availability(bigint, tstzrange, boolean) is
  'Free tables and combinations of a restaurant for a booking period (buffer added; allocated and blocked tables left out): kind, table ids, capacities, zones';

-- The strategies, in tie-break priority order.
create or replace function allocator.strategy_priority(p_strategy text) returns integer
language sql
immutable
parallel safe
as $$
  select pg_catalog.array_position(
    array['optimal_fit', 'adjacency', 'zone_preference', 'load_balancing', 'historical_success', 'legacy_first_fit'],
    p_strategy)
$$;

comment on function allocator.strategy_priority(text) is
  'Tie-break rank of a strategy: optimal_fit, adjacency, zone_preference, load_balancing, historical_success, legacy_first_fit';

-- Every free table or combination that fits the party, scored by each strategy in [0, 1]:
--   optimal_fit        party / seats (1 = no wasted seat)
--   adjacency          1 / number of tables (fewest tables)
--   zone_preference    1 if every table is in the preferred zone (booking's, else the restaurant's)
--   load_balancing     1 - share of the zones' seats already taken by overlapping confirmed bookings
--   historical_success (confirmed + 1) / (attempts + 2) over the last 30 days for that table set
-- The score is the weighted mean (strategy_weights); strategy is the one contributing most.
-- At most scored_candidates plans are scored (allocator.limits()): those with the fewest seats,
-- then the fewest tables, then the lowest ids, so the work per booking stays bounded
-- whatever the size of the layout.
create or replace function allocator.candidates(p_booking allocator.bookings, p_include_holds boolean default true)
returns table (
  table_ids bigint[],
  table_count integer,
  min_capacity integer,
  max_capacity integer,
  score numeric,
  strategy text,
  scores jsonb
)
language plpgsql
stable
as $$
#variable_conflict use_column
begin
  -- PL/pgSQL, not SQL: its plan is kept for the session instead of made at every call.
  return query
  with restaurant as (
    select r.settings -> 'strategy_weights' as w,
           coalesce(p_booking.preferred_zone_id,
                    (select z.id from allocator.zones z
                      where z.restaurant_id = r.id and z.name = r.settings ->> 'preferred_zone')) as zone_id
      from allocator.restaurants r where r.id = p_booking.restaurant_id
  ), fitting as (
    select a.table_ids, a.table_count, a.min_capacity, a.max_capacity
      from allocator.availability(p_booking.restaurant_id, p_booking.period, p_include_holds) a
     where a.min_capacity <= p_booking.party_size and a.max_capacity >= p_booking.party_size
     order by a.max_capacity, a.table_count, a.table_ids
     limit allocator.limit_of('scored_candidates')
  ), placed as (
    -- The zones of the plans that are scored, as availability() gives them; read after the
    -- limit, not for every free plan.
    select f.*,
           (select coalesce(pg_catalog.array_agg(distinct t.zone_id) filter (where t.zone_id is not null), '{}')
              from allocator.tables t
             where t.restaurant_id = p_booking.restaurant_id and t.id = any (f.table_ids)) as zone_ids
      from fitting f
  ), zone_seats as materialized (
    select t.zone_id, sum(t.max_capacity)::numeric as seats
      from allocator.tables t
     where t.restaurant_id = p_booking.restaurant_id and t.active and t.zone_id is not null
     group by t.zone_id
  ), zone_taken as materialized (
    select t.zone_id, sum(t.max_capacity)::numeric as seats
      from allocator.taken_allocations(p_booking.restaurant_id, p_booking.period, false) a
      join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
     where t.zone_id is not null
     group by t.zone_id
  ), history as materialized (
    select h.table_ids, pg_catalog.count(*) filter (where h.result = 'confirmed') as ok, pg_catalog.count(*) as n
      from allocator.booking_assignment_attempts h
     where h.restaurant_id = p_booking.restaurant_id
       and h.created_at > allocator.now() - interval '30 days'
       and h.table_ids is not null and h.result in ('confirmed', 'conflict')
     group by h.table_ids
  ), scored as materialized (
    select f.table_ids, f.table_count, f.min_capacity, f.max_capacity,
           pg_catalog.round(p_booking.party_size::numeric / f.max_capacity, 6) as optimal_fit,
           pg_catalog.round(1.0 / f.table_count, 6) as adjacency,
           case when restaurant.zone_id is not null and f.zone_ids = array[restaurant.zone_id] then 1.0 else 0.0 end
             as zone_preference,
           pg_catalog.round(1 - coalesce(
             (select sum(coalesce(zt.seats, 0)) / nullif(sum(zs.seats), 0)
                from zone_seats zs left join zone_taken zt on zt.zone_id = zs.zone_id
               where zs.zone_id = any (f.zone_ids)), 0), 6) as load_balancing,
           pg_catalog.round(coalesce((h.ok + 1)::numeric / (h.n + 2), 0.5), 6) as historical_success,
           restaurant.w
      from placed f
     cross join restaurant
      left join history h on h.table_ids = f.table_ids
  ), weighted as (
    select s.*,
           pg_catalog.jsonb_build_object(
             'optimal_fit', s.optimal_fit, 'adjacency', s.adjacency, 'zone_preference', s.zone_preference,
             'load_balancing', s.load_balancing, 'historical_success', s.historical_success) as scores,
           (select pg_catalog.round(sum((s.w ->> k)::numeric * v) / nullif(sum((s.w ->> k)::numeric), 0), 6)
              from (values ('optimal_fit', s.optimal_fit), ('adjacency', s.adjacency),
                           ('zone_preference', s.zone_preference), ('load_balancing', s.load_balancing),
                           ('historical_success', s.historical_success)) as x(k, v)) as score,
           (select x.k
              from (values ('optimal_fit', s.optimal_fit), ('adjacency', s.adjacency),
                           ('zone_preference', s.zone_preference), ('load_balancing', s.load_balancing),
                           ('historical_success', s.historical_success)) as x(k, v)
             order by (s.w ->> x.k)::numeric * x.v desc, allocator.strategy_priority(x.k)
             limit 1) as strategy
      from scored s
  )
  select w.table_ids, w.table_count, w.min_capacity, w.max_capacity, coalesce(w.score, w.optimal_fit),
         w.strategy, w.scores
    from weighted w
   order by coalesce(w.score, w.optimal_fit) desc, allocator.strategy_priority(w.strategy), w.table_ids;
end
$$;

comment on function allocator.candidates(allocator.bookings, boolean) is
  'The free tables and combinations that seat the booking''s party (at most scored_candidates of them, fewest seats first), scored by the five strategies and ranked (score, strategy priority, table ids)';

create or replace function allocator.plan_booking(p_booking_id bigint, p_limit integer default 5)
returns table (
  rank integer,
  table_ids bigint[],
  max_capacity integer,
  score numeric,
  strategy text,
  scores jsonb
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings;
begin
  perform allocator.check_argument('limit', p_limit, 1, 100);
  select b.* into v_booking from allocator.bookings b where b.id = p_booking_id;
  if not found or not allocator.tenant_allows(v_booking.restaurant_id) then
    perform allocator.raise_error('not_found', pg_catalog.format('booking %s does not exist', p_booking_id));
  end if;
  return query
    select (pg_catalog.row_number() over ())::integer, c.table_ids, c.max_capacity, c.score, c.strategy, c.scores
      from allocator.candidates(v_booking) c
     limit p_limit;
end
$$;

comment on function allocator.plan_booking(bigint, integer) is
  'The best plans for a booking, ranked, with each strategy''s score; writes nothing';

-- The baseline planner: the smallest free single table that seats the party, lowest id first.
create or replace function allocator.legacy_first_fit(p_booking allocator.bookings) returns bigint[]
language sql
stable
as $$
  select a.table_ids
    from allocator.availability(p_booking.restaurant_id, p_booking.period, true) a
   where a.kind = 'table' and a.min_capacity <= p_booking.party_size and a.max_capacity >= p_booking.party_size
   order by a.max_capacity, a.table_ids
   limit 1
$$;

comment on function allocator.legacy_first_fit(allocator.bookings) is
  'Baseline planner: the smallest free single table that fits the party (lowest id on ties), or NULL';

-- Whether any table or combination of the restaurant could seat the party at all.
create or replace function allocator.party_fits_layout(p_restaurant_id bigint, p_party_size integer) returns boolean
language sql
stable
as $$
  select exists (select 1 from allocator.tables t
                  where t.restaurant_id = p_restaurant_id and t.active
                    and p_party_size between t.min_capacity and t.max_capacity)
      or exists (select 1 from allocator.table_combinations c
                  where c.restaurant_id = p_restaurant_id
                    and p_party_size between c.min_capacity and c.max_capacity)
$$;

comment on function allocator.party_fits_layout(bigint, integer) is
  'Whether some active table or combination of the restaurant can seat a party of this size';


