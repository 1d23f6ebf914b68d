-- Rollout evidence: what shadow mode recorded, per restaurant. In shadow mode the engine's
-- decision is written beside the legacy planner's, and only the legacy one is applied
-- (docs/decisions.md#shadow-mode-records-the-engine-beside-the-legacy-planner).

create or replace function allocator.shadow_report_between(p_from timestamptz, p_to timestamptz)
returns table (
  restaurant_id bigint,
  decisions bigint,
  agreements bigint,
  agreement_rate numeric,
  engine_seated bigint,
  legacy_seated bigint,
  engine_covers bigint,
  legacy_covers bigint,
  errors bigint
)
language sql
stable
as $$
  with decided as (
    select a.restaurant_id, b.party_size,
           a.table_ids as engine_ids,
           (select pg_catalog.array_agg(x::bigint)
              from pg_catalog.jsonb_array_elements_text(
                     case when pg_catalog.jsonb_typeof(a.metadata -> 'legacy_table_ids') = 'array'
                          then a.metadata -> 'legacy_table_ids' end) x) as legacy_ids
      from allocator.booking_assignment_attempts a
      join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
     where a.result = 'shadow' and a.created_at >= p_from and a.created_at < p_to
       and allocator.tenant_allows(a.restaurant_id)
  ), shadow as (
    -- Agreement: the same set of tables, or no table from either.
    select d.*, coalesce(d.engine_ids, '{}') @> coalesce(d.legacy_ids, '{}')
                and coalesce(d.legacy_ids, '{}') @> coalesce(d.engine_ids, '{}') as agreed
      from decided d
  )
  select s.restaurant_id,
         pg_catalog.count(*),
         pg_catalog.count(*) filter (where s.agreed),
         pg_catalog.round(pg_catalog.count(*) filter (where s.agreed)::numeric / pg_catalog.count(*), 4),
         pg_catalog.count(*) filter (where s.engine_ids is not null),
         pg_catalog.count(*) filter (where s.legacy_ids is not null),
         coalesce(sum(s.party_size) filter (where s.engine_ids is not null), 0)::bigint,
         coalesce(sum(s.party_size) filter (where s.legacy_ids is not null), 0)::bigint,
         (select pg_catalog.count(*) from allocator.booking_assignment_attempts e
           where e.restaurant_id = s.restaurant_id and e.result = 'error'
             and e.created_at >= p_from and e.created_at < p_to)
    from shadow s
   group by s.restaurant_id
$$;

comment on function allocator.shadow_report_between(timestamptz, timestamptz) is
  'Shadow mode per restaurant for attempts in [p_from, p_to): decisions, how many the engine and the legacy planner agreed on (same tables, or both none), how many each would have seated and their covers, and the engine errors';

create or replace view allocator.shadow_report with (security_invoker = true, security_barrier = true) as
select * from allocator.shadow_report_between(allocator.now() - interval '7 days', allocator.now() + interval '1 second');

comment on view allocator.shadow_report is
  'allocator.shadow_report_between over the last 7 days';
