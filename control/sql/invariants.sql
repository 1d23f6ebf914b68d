-- The invariants that must hold at every commit, as a query tests and DBAs can run.

create or replace function allocator.check_invariants()
returns table (kind text, restaurant_id bigint, booking_id bigint, detail text)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  -- It reads every table as its owner: a tenant-restricted login gets its restaurants' rows only.
  select v.* from (
  -- Two allocations of one table overlapping (holds included): the exclusion constraint
  -- forbids it, so this is a check on the constraint itself.
  select 'overlapping_allocations', a.restaurant_id, a.booking_id,
         pg_catalog.format('table %s: allocations %s and %s overlap', a.table_id, a.id, b.id)
    from allocator.allocations a
    join allocator.allocations b
      on b.restaurant_id = a.restaurant_id and b.table_id = a.table_id and a.id < b.id and a.period && b.period
  union all
  -- Confirmed bookings must sit on tables that seat the party (a staff force_confirm may
  -- seat a party above capacity on purpose).
  select 'capacity', bk.restaurant_id, bk.id,
         pg_catalog.format('party of %s on tables seating %s to %s', bk.party_size, s.min_cap, s.max_cap)
    from allocator.bookings bk
    left join lateral (
      select sum(t.min_capacity) as min_cap, sum(t.max_capacity) as max_cap, pg_catalog.count(*) as n
        from allocator.allocations a
        join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
       where a.restaurant_id = bk.restaurant_id and a.booking_id = bk.id and a.kind = 'confirmed') s on true
   where bk.state = 'confirmed'
     and (s.n = 0 or bk.party_size not between s.min_cap and s.max_cap)
     and not exists (select 1 from allocator.booking_state_history h
                      where h.restaurant_id = bk.restaurant_id and h.booking_id = bk.id
                        and h.version = bk.version and h.metadata ->> 'manual' = 'force_confirm')
  union all
  -- History: versions 1..n without gaps, ending at the booking's state and version.
  select 'history', bk.restaurant_id, bk.id,
         pg_catalog.format('history has %s rows up to version %s ending in %s; booking is %s at version %s',
                           h.n, h.last_version, h.last_state, bk.state, bk.version)
    from allocator.bookings bk
    cross join lateral (
      select pg_catalog.count(*) as n, max(x.version) as last_version,
             (select y.to_state from allocator.booking_state_history y
               where y.restaurant_id = bk.restaurant_id and y.booking_id = bk.id
               order by y.version desc, y.id desc limit 1) as last_state,
             pg_catalog.count(distinct x.version) as distinct_versions, min(x.version) as first_version
        from allocator.booking_state_history x
       where x.restaurant_id = bk.restaurant_id and x.booking_id = bk.id) h
   where h.n = 0 or h.first_version <> 1 or h.distinct_versions <> h.n or h.last_version <> h.n
      or h.last_version <> bk.version or h.last_state is distinct from bk.state
  union all
  -- Bookings automation has not settled (neither terminal nor in manual review) must be on the
  -- queue, or held (assigned) by a live hold.
  select 'stuck', bk.restaurant_id, bk.id, pg_catalog.format('%s with no queue row and no active hold', bk.state)
    from allocator.bookings bk
   where bk.state in (select s.state from allocator.booking_states s where not allocator.is_settled(s.state))
     and not exists (select 1 from allocator.assignment_queue q
                      where q.restaurant_id = bk.restaurant_id and q.booking_id = bk.id)
     and not exists (select 1 from allocator.holds ho
                      where ho.restaurant_id = bk.restaurant_id and ho.booking_id = bk.id and ho.status = 'active')
  union all
  -- Nobody is seated, booked or held on a blocked or inactive table.
  select 'blocked_table', a.restaurant_id, a.booking_id,
         pg_catalog.format('allocation %s on table %s, %s', a.id, a.table_id,
                           case when not t.active then 'which is inactive' else 'which is blocked then' end)
    from allocator.allocations a
    join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
   where (a.kind = 'confirmed' or a.expires_at > allocator.now())
     and pg_catalog.upper(a.period) > allocator.now()
     and (not t.active
          or exists (select 1 from allocator.table_blocks k
                      where k.restaurant_id = a.restaurant_id and k.table_id = a.table_id and k.period && a.period))
  union all
  -- Every state change has its event.
  select 'missing_event', h.restaurant_id, h.booking_id,
         pg_catalog.format('no event for version %s (%s)', h.version, h.to_state)
    from allocator.booking_state_history h
   where not exists (select 1 from allocator.events e
                      where e.restaurant_id = h.restaurant_id and e.booking_id = h.booking_id
                        and e.topic = allocator.state_topic(h.from_state, h.to_state) and (e.payload ->> 'version')::integer = h.version)
  ) v
  where allocator.tenant_allows(v.restaurant_id)
$$;

comment on function allocator.check_invariants() is
  'Violations of what must always hold: overlapping allocations, confirmed parties on tables that do not fit, history gaps or mismatches, stuck bookings (not terminal, not queued, not held), allocations to come on blocked or inactive tables, state changes without an event. Empty means healthy. A tenant-restricted login sees its restaurants'' violations only';


