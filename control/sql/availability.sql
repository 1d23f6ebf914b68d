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

-- What takes a restaurant's tables away over p_span (a period with the buffer already added):
-- confirmed allocations, live holds unless p_include_holds is false, and blocks. A plain SQL
-- function, inlined into its callers' queries, so p_span stays an index condition.
create or replace function allocator.busy_tables(
  p_restaurant_id bigint,
  p_span tstzrange,
  p_include_holds boolean
) returns table (table_id bigint, period tstzrange, confirmed boolean)
language sql
stable
as $$
  select a.table_id, a.period, a.kind = 'confirmed'
    from allocator.allocations a
   where a.restaurant_id = p_restaurant_id and a.period && p_span
     and (a.kind = 'confirmed' or (p_include_holds and a.expires_at > allocator.now()))
  union all
  select k.table_id, k.period, false
    from allocator.table_blocks k
   where k.restaurant_id = p_restaurant_id and k.period && p_span
$$;

comment on function allocator.busy_tables(bigint, tstzrange, boolean) is
  'Tables taken over p_span (buffer included): confirmed allocations, live holds unless p_include_holds is false, and blocks; table, period, whether confirmed';

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
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
  v_settings jsonb;
  v_zone bigint;
  v_span tstzrange;
  v_w numeric[];
  v_limit integer := allocator.limit_of('scored_candidates');
begin
  -- PL/pgSQL, not SQL, and one generic plan: the plan is made once for the session, not at
  -- every call (a custom plan for each restaurant cost more than running it). The
  -- restaurant's settings are read once, so the overlap conditions below are index conditions
  -- on a known range, and every plan's score is arithmetic on its own row (no subquery per
  -- strategy).
  select r.settings,
         coalesce(p_booking.preferred_zone_id,
                  (select z.id from allocator.zones z
                    where z.restaurant_id = r.id and z.name = r.settings ->> 'preferred_zone'))
    into v_settings, v_zone
    from allocator.restaurants r where r.id = p_booking.restaurant_id;
  v_span := pg_catalog.tstzrange(pg_catalog.lower(p_booking.period),
    pg_catalog.upper(p_booking.period) + pg_catalog.make_interval(mins => (v_settings ->> 'buffer_minutes')::integer),
    '[)');
  v_w := array[(v_settings #>> '{strategy_weights,optimal_fit}')::numeric,
               (v_settings #>> '{strategy_weights,adjacency}')::numeric,
               (v_settings #>> '{strategy_weights,zone_preference}')::numeric,
               (v_settings #>> '{strategy_weights,load_balancing}')::numeric,
               (v_settings #>> '{strategy_weights,historical_success}')::numeric];
  return query
  with busy as materialized (
    -- What availability() leaves out over the period plus the buffer.
    select b.table_id, b.confirmed
      from allocator.busy_tables(p_booking.restaurant_id, v_span, p_include_holds) b
  ), busy_ids as materialized (
    select coalesce(pg_catalog.array_agg(b.table_id), '{}') as ids from busy b
  ), tabs as materialized (
    select t.id, t.min_capacity, t.max_capacity, t.zone_id, t.active
      from allocator.tables t where t.restaurant_id = p_booking.restaurant_id
  ), fitting as materialized (
    select u.table_ids, u.table_count, u.min_capacity, u.max_capacity
      from (select array[t.id] as table_ids, 1 as table_count, t.min_capacity, t.max_capacity
              from tabs t, busy_ids
             where t.active and not (t.id = any (busy_ids.ids))
            union all
            select c.table_ids, c.table_count, c.min_capacity, c.max_capacity
              from allocator.table_combinations c, busy_ids
             where c.restaurant_id = p_booking.restaurant_id and not (c.table_ids && busy_ids.ids)) u
     where u.min_capacity <= p_booking.party_size and u.max_capacity >= p_booking.party_size
     order by u.max_capacity, u.table_count, u.table_ids
     limit v_limit
  ), zones as materialized (
    -- Each zone with active tables: their seats, and the seats of its tables that confirmed
    -- allocations over the period take.
    select t.zone_id, sum(t.max_capacity) filter (where t.active)::numeric as seats,
           coalesce(sum(t.max_capacity * (select pg_catalog.count(*) from busy b
                                           where b.confirmed and b.table_id = t.id)), 0)::numeric as taken
      from tabs t where t.zone_id is not null
     group by t.zone_id
    having pg_catalog.bool_or(t.active)
  ), placed as materialized (
    -- The zones of the plans that are scored.
    select f.*,
           case when f.table_count = 1
                then coalesce((select array[t.zone_id] from tabs t
                                where t.id = f.table_ids[1] and t.zone_id is not null), '{}')
                else (select coalesce(pg_catalog.array_agg(distinct t.zone_id) filter (where t.zone_id is not null), '{}')
                        from tabs t where t.id = any (f.table_ids)) end as zone_ids
      from fitting f
  ), scored as materialized (
    -- Each strategy's score in [0, 1] (v1 .. v5), and weighted (p1 .. p5).
    select s.*, v_w[1] * s.v1 as p1, v_w[2] * s.v2 as p2, v_w[3] * s.v3 as p3, v_w[4] * s.v4 as p4,
           v_w[5] * s.v5 as p5
      from (select f.table_ids, f.table_count, f.min_capacity, f.max_capacity,
                   pg_catalog.round(p_booking.party_size::numeric / f.max_capacity, 6) as v1,
                   pg_catalog.round(1.0 / f.table_count, 6) as v2,
                   case when v_zone is not null and f.zone_ids = array[v_zone] then 1.0 else 0.0 end as v3,
                   pg_catalog.round(1 - coalesce((select sum(z.taken) / nullif(sum(z.seats), 0) from zones z
                                                   where z.zone_id = any (f.zone_ids)), 0), 6) as v4,
                   pg_catalog.round(coalesce((h.ok + 1)::numeric / (h.n + 2), 0.5), 6) as v5
              from placed f
              -- Each plan's own attempts (booking_assignment_attempts_sets_idx): the work grows
              -- with the attempts on the plans scored, not with all of the restaurant's.
              cross join lateral (
                select pg_catalog.count(*) filter (where a.result = 'confirmed') as ok, pg_catalog.count(*) as n
                  from allocator.booking_assignment_attempts a
                 where a.restaurant_id = p_booking.restaurant_id and a.table_ids = f.table_ids
                   and a.created_at > allocator.now() - interval '30 days'
                   and a.result in ('confirmed', 'conflict')) h) s
  ), ranked as (
    -- The weighted mean, and the strategy contributing most (ties: the earlier strategy).
    select s.*,
           pg_catalog.round((s.p1 + s.p2 + s.p3 + s.p4 + s.p5) / nullif(v_w[1] + v_w[2] + v_w[3] + v_w[4] + v_w[5], 0), 6)
             as score,
           case greatest(s.p1, s.p2, s.p3, s.p4, s.p5)
             when s.p1 then 'optimal_fit' when s.p2 then 'adjacency' when s.p3 then 'zone_preference'
             when s.p4 then 'load_balancing' else 'historical_success' end as strategy
      from scored s
  )
  select r.table_ids, r.table_count, r.min_capacity, r.max_capacity, coalesce(r.score, r.v1), r.strategy,
         pg_catalog.jsonb_build_object('optimal_fit', r.v1, 'adjacency', r.v2, 'zone_preference', r.v3,
           'load_balancing', r.v4, 'historical_success', r.v5)
    from ranked r
   order by coalesce(r.score, r.v1) desc, allocator.strategy_priority(r.strategy), r.table_ids;
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
language plpgsql
stable
as $$
begin
  return exists (select 1 from allocator.tables t
                  where t.restaurant_id = p_restaurant_id and t.active
                    and p_party_size between t.min_capacity and t.max_capacity)
      or exists (select 1 from allocator.table_combinations c
                  where c.restaurant_id = p_restaurant_id
                    and p_party_size between c.min_capacity and c.max_capacity);
end
$$;

comment on function allocator.party_fits_layout(bigint, integer) is
  'Whether some active table or combination of the restaurant can seat a party of this size';


