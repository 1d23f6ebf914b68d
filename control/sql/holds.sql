-- Holds: reserve tables for a booking for a short time, then confirm or release them.

-- Ends one active hold as 'expired' or 'released': deletes its allocations and, when the
-- booking was waiting on it (state assigned), sends the booking back to the queue.
-- The caller has locked the booking, then the hold: that order everywhere avoids deadlocks.
create or replace function allocator.close_hold(p_hold allocator.holds, p_status text, p_actor text, p_reason text)
returns void
language plpgsql
volatile
as $$
declare
  v_booking allocator.bookings;
begin
  update allocator.holds h set status = p_status, closed_at = allocator.now()
   where h.restaurant_id = p_hold.restaurant_id and h.id = p_hold.id and h.status = 'active';
  if not found then
    return;
  end if;
  delete from allocator.allocations a
   where a.restaurant_id = p_hold.restaurant_id and a.hold_id = p_hold.id;
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = p_hold.restaurant_id and b.id = p_hold.booking_id;
  if v_booking.state = 'assigned' and v_booking.metadata ? 'waitlist_id' then
    -- A waitlist offer: the booking was only the offer, never queued.
    perform allocator.waitlist_offer_closed(v_booking, p_status, p_actor);
  elsif v_booking.state = 'assigned' then
    perform allocator.transition(v_booking.id, v_booking.version, 'assignment_pending', p_actor,
      p_reason, pg_catalog.jsonb_build_object('hold_id', p_hold.id, 'hold', p_status));
    perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'hold_' || p_status);
  end if;
  perform allocator.emit_event(p_hold.restaurant_id, 'hold.' || p_status, p_hold.booking_id,
    pg_catalog.jsonb_build_object('hold_id', p_hold.id, 'booking_id', p_hold.booking_id));
end
$$;

comment on function allocator.close_hold(allocator.holds, text, text, text) is
  'End an active hold as expired or released: free its tables and requeue a booking that was waiting on it (a waitlist offer''s booking is cancelled instead)';

create or replace function allocator.hold_json(p_hold allocator.holds) returns jsonb
language sql
stable
as $$
  select pg_catalog.jsonb_build_object(
    'hold_id', p_hold.id,
    'booking_id', p_hold.booking_id,
    'restaurant_id', p_hold.restaurant_id,
    'table_ids', pg_catalog.to_jsonb(p_hold.table_ids),
    'status', p_hold.status,
    'expires_at', p_hold.expires_at,
    'booking_version', (select b.version from allocator.bookings b
                         where b.restaurant_id = p_hold.restaurant_id and b.id = p_hold.booking_id))
$$;

comment on function allocator.hold_json(allocator.holds) is 'A hold as the jsonb the hold RPCs return';

-- Checks that p_table_ids can seat the booking together: all of its restaurant, active,
-- seating the party, and one table or a set joined by adjacency. Returns the sorted ids.
create or replace function allocator.check_table_set(
  p_booking allocator.bookings,
  p_table_ids bigint[],
  p_check_capacity boolean default true
) returns bigint[]
language plpgsql
stable
as $$
declare
  v_ids bigint[];
  v_found integer;
  v_min integer;
  v_max integer;
  v_all_combinable boolean;
  v_reached integer;
begin
  if p_table_ids is null or pg_catalog.cardinality(p_table_ids) = 0 then
    perform allocator.raise_error('invalid_argument', 'table ids must be a non-empty array without NULLs');
  end if;
  if pg_catalog.array_ndims(p_table_ids) <> 1 then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('table ids must be a one-dimensional array, got %s dimensions', pg_catalog.array_ndims(p_table_ids)));
  end if;
  if pg_catalog.cardinality(p_table_ids) > allocator.limit_of('tables_per_set') then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('at most %s tables can be held together', allocator.limit_of('tables_per_set')));
  end if;
  if pg_catalog.array_position(p_table_ids, null) is not null then
    perform allocator.raise_error('invalid_argument', 'table ids must be a non-empty array without NULLs');
  end if;
  v_ids := (select pg_catalog.array_agg(distinct x order by x) from pg_catalog.unnest(p_table_ids) as x);
  if pg_catalog.cardinality(v_ids) <> pg_catalog.cardinality(p_table_ids) then
    perform allocator.raise_error('invalid_argument', 'a table is listed twice');
  end if;

  select pg_catalog.count(*)::integer, sum(t.min_capacity)::integer, sum(t.max_capacity)::integer,
         bool_and(t.combinable)
    into v_found, v_min, v_max, v_all_combinable
    from allocator.tables t
   where t.restaurant_id = p_booking.restaurant_id and t.id = any (v_ids) and t.active;
  if v_found <> pg_catalog.cardinality(v_ids) then
    if exists (select 1 from allocator.tables t
                where t.id = any (v_ids) and t.restaurant_id <> p_booking.restaurant_id
                  and allocator.tenant_allows(t.restaurant_id)) then
      perform allocator.raise_error('cross_restaurant',
        pg_catalog.format('tables %s do not all belong to restaurant %s', v_ids, p_booking.restaurant_id));
    end if;
    perform allocator.raise_error('not_found',
      pg_catalog.format('some of tables %s do not exist or are inactive in restaurant %s', v_ids, p_booking.restaurant_id));
  end if;
  if p_check_capacity and p_booking.party_size not between v_min and v_max then
    perform allocator.raise_error('capacity_mismatch',
      pg_catalog.format('tables %s seat %s to %s, the party is %s', v_ids, v_min, v_max, p_booking.party_size));
  end if;
  if pg_catalog.cardinality(v_ids) > 1 and not exists (
       select 1 from allocator.table_combinations c
        where c.restaurant_id = p_booking.restaurant_id and c.table_ids = v_ids) then
    -- Not a listed combination (it may be larger than max_combination_size): the tables
    -- must still be combinable and connected through adjacency.
    with recursive reach(id) as (
      select v_ids[1]
      union
      select case when a.table_a = r.id then a.table_b else a.table_a end
        from reach r
        join allocator.table_adjacency a
          on a.restaurant_id = p_booking.restaurant_id and r.id in (a.table_a, a.table_b)
       where a.table_a = any (v_ids) and a.table_b = any (v_ids)
    )
    select pg_catalog.count(*)::integer into v_reached from reach;
    if not v_all_combinable or v_reached <> pg_catalog.cardinality(v_ids) then
      perform allocator.raise_error('invalid_argument',
        pg_catalog.format('tables %s are not a combination: they must be combinable and adjacent', v_ids));
    end if;
  end if;
  return v_ids;
end
$$;

comment on function allocator.check_table_set(allocator.bookings, bigint[], boolean) is
  'Validate a set of tables for a booking (same restaurant, active, capacity, adjacency) and return it sorted';

-- The period tables are blocked for: the booking plus the restaurant's buffer for clearing.
create or replace function allocator.blocked_period(p_booking allocator.bookings) returns tstzrange
language plpgsql
stable
as $$
begin
  return (select pg_catalog.tstzrange(pg_catalog.lower(p_booking.period),
                   pg_catalog.upper(p_booking.period)
                     + pg_catalog.make_interval(mins => (r.settings ->> 'buffer_minutes')::integer), '[)')
            from allocator.restaurants r where r.id = p_booking.restaurant_id);
end
$$;

comment on function allocator.blocked_period(allocator.bookings) is
  'The booking''s period extended by the restaurant''s buffer_minutes: how long its tables are taken';

-- Expires one hold if it is still active and past its expiry: locks its booking, then the
-- hold. With p_skip_locked a busy booking is left for later instead of waited for.
create or replace function allocator.expire_hold(
  p_restaurant_id bigint,
  p_hold_id bigint,
  p_booking_id bigint,
  p_skip_locked boolean
) returns boolean
language plpgsql
volatile
as $$
declare
  v_hold allocator.holds;
begin
  if p_skip_locked then
    perform 1 from allocator.bookings b
      where b.restaurant_id = p_restaurant_id and b.id = p_booking_id for update skip locked;
  else
    perform 1 from allocator.bookings b
      where b.restaurant_id = p_restaurant_id and b.id = p_booking_id for update;
  end if;
  if not found then
    return false;
  end if;
  select h.* into v_hold from allocator.holds h
   where h.restaurant_id = p_restaurant_id and h.id = p_hold_id for update;
  if v_hold.status <> 'active' or v_hold.expires_at > allocator.now() then
    return false;
  end if;
  perform allocator.close_hold(v_hold, 'expired', 'system:sweeper', 'hold expired');
  return true;
end
$$;

comment on function allocator.expire_hold(bigint, bigint, bigint, boolean) is
  'Expire one hold if it is active and past expires_at (locking booking, then hold); returns whether it did';

-- Expired holds on these tables are closed first, so an expired hold never blocks a new one
-- even before the sweeper runs.
create or replace function allocator.expire_holds_on(p_restaurant_id bigint, p_table_ids bigint[], p_period tstzrange)
returns integer
language plpgsql
volatile
as $$
declare
  v_count integer := 0;
begin
  select pg_catalog.count(*) filter (where allocator.expire_hold(h.restaurant_id, h.id, h.booking_id, false))
    into v_count
    from (select h.restaurant_id, h.id, h.booking_id from allocator.holds h
           where h.restaurant_id = p_restaurant_id and h.status = 'active'
             and h.expires_at <= allocator.now()
             and h.table_ids && p_table_ids and h.period && p_period
           order by h.id) h;
  return v_count;
end
$$;

comment on function allocator.expire_holds_on(bigint, bigint[], tstzrange) is
  'Close the expired holds on the given tables that overlap p_period; returns how many';

-- Holds tables for a booking the caller has locked: hold_tables for applications (waiting for
-- tables another transaction is writing), process_booking for its plans (p_wait false: such a
-- plan is a conflict at once, and the engine tries the next). With p_confirm (the reason of
-- the confirmation) the hold is confirmed in the same step, as confirm_hold would: the same
-- rows (a hold closed as confirmed, confirmed allocations, the events hold.created and
-- hold.confirmed, the states assigned then confirmed), written once each, and the result is
-- just {"hold_id": ...}. p_path_before names states the booking moves through first (with
-- p_reasons_before): they are written in the same transition_path as assigned, with
-- p_attempts as its attempt count.
create or replace function allocator.hold_booking_tables(
  p_booking allocator.bookings,
  p_table_ids bigint[],
  p_ttl_seconds integer,
  p_idempotency_key text,
  p_actor text,
  p_expected_version integer,
  p_wait boolean,
  p_confirm text default null,
  p_confirm_metadata jsonb default '{}'::jsonb,
  p_strategy text default null,
  p_path_before text[] default '{}',
  p_reasons_before text[] default '{}',
  p_attempts integer default null
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_booking allocator.bookings := p_booking;
  v_before integer := coalesce(pg_catalog.cardinality(p_path_before), 0);
  v_at allocator.bookings := p_booking;
  v_ttl integer;
  v_ids bigint[];
  v_period tstzrange;
  v_hold allocator.holds;
  v_kind text := case when p_confirm is null then 'hold' else 'confirmed' end;
begin
  perform allocator.actor_role(p_actor);
  v_ids := allocator.check_table_set(v_booking, p_table_ids);
  perform allocator.check_idempotency_key(p_idempotency_key);
  if p_idempotency_key is not null then
    select h.* into v_hold from allocator.holds h
     where h.restaurant_id = v_booking.restaurant_id and h.idempotency_key = p_idempotency_key;
    if found then
      perform allocator.check_idempotency_key(p_idempotency_key, 'hold', v_hold.id,
        v_hold.booking_id = v_booking.id and v_hold.table_ids = v_ids);
      return allocator.hold_json(v_hold) || '{"created": false}'::jsonb;
    end if;
  end if;

  v_ttl := coalesce(p_ttl_seconds, (select (r.settings ->> 'hold_ttl_seconds')::integer
                                       from allocator.restaurants r where r.id = v_booking.restaurant_id));
  perform allocator.check_argument('hold TTL (seconds)', v_ttl, 1, 3600);
  perform allocator.check_version(v_booking, p_expected_version);
  -- The states the caller walks through first are written with assigned (and confirmed), in
  -- one transition_path: the move to assigned is checked from the last of them.
  if v_before > 0 then
    v_at.state := p_path_before[v_before];
  end if;
  perform allocator.check_can_move(v_at, 'assigned',
    'and is not waiting for tables',
    case when v_at.state = 'assigned' then 'release its current hold first' end);
  v_period := allocator.blocked_period(v_booking);

  perform allocator.expire_holds_on(v_booking.restaurant_id, v_ids, v_period);
  perform allocator.lock_tables(v_booking.restaurant_id, v_ids, p_wait);

  insert into allocator.holds (restaurant_id, booking_id, table_ids, period, status, expires_at,
                               idempotency_key, actor, closed_at)
  values (v_booking.restaurant_id, v_booking.id, v_ids, v_period,
          case when p_confirm is null then 'active' else 'confirmed' end,
          allocator.now() + pg_catalog.make_interval(secs => v_ttl), p_idempotency_key, p_actor,
          case when p_confirm is not null then allocator.now() end)
  returning * into v_hold;
  perform allocator.insert_allocations(v_booking.restaurant_id, v_booking.id, v_ids, v_period,
    v_kind, case when p_confirm is null then v_hold.expires_at end, v_hold.id);
  if p_confirm is null then
    perform allocator.emit_event(v_booking.restaurant_id, 'hold.created', v_booking.id,
      pg_catalog.jsonb_build_object('hold_id', v_hold.id, 'booking_id', v_booking.id));
    perform allocator.transition_path(v_booking.id, v_booking.version, p_path_before || 'assigned'::text, p_actor,
      p_reasons_before || 'tables held'::text,
      pg_catalog.array_fill(null::jsonb, array[v_before])
        || pg_catalog.jsonb_build_object('hold_id', v_hold.id, 'table_ids', v_ids, 'expires_at', v_hold.expires_at),
      p_attempts, p_strategy);
    return allocator.hold_json(v_hold) || '{"created": true}'::jsonb;
  end if;
  insert into allocator.events (restaurant_id, topic, booking_id, payload)
  select v_booking.restaurant_id, t.topic, v_booking.id,
         pg_catalog.jsonb_build_object('hold_id', v_hold.id, 'booking_id', v_booking.id)
    from (values (1, 'hold.created'), (2, 'hold.confirmed')) t(n, topic)
   order by t.n;
  perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
  perform allocator.transition_path(v_booking.id, v_booking.version, p_path_before || array['assigned', 'confirmed'],
    p_actor, p_reasons_before || array['tables held', p_confirm],
    pg_catalog.array_fill(null::jsonb, array[v_before])
      || array[pg_catalog.jsonb_build_object('hold_id', v_hold.id, 'table_ids', v_ids, 'expires_at', v_hold.expires_at),
               pg_catalog.jsonb_build_object('hold_id', v_hold.id, 'table_ids', v_ids) || coalesce(p_confirm_metadata, '{}'::jsonb)],
    p_attempts, p_strategy);
  return pg_catalog.jsonb_build_object('hold_id', v_hold.id);
end
$$;

comment on function allocator.hold_booking_tables(allocator.bookings, bigint[], integer, text, text, integer, boolean, text, jsonb, text, text[], text[], integer) is
  'Hold tables for a booking the caller has locked (the body of hold_tables); with p_wait false, tables another transaction is writing raise conflict (RA003) at once instead of being waited for; with p_confirm, the hold is confirmed in the same step (and the booking''s assignment_strategy set to p_strategy); the states of p_path_before (reasons p_reasons_before) are walked first, in the same transition_path, with p_attempts as the attempt count';

create or replace function allocator.hold_tables(
  p_booking_id bigint,
  p_table_ids bigint[],
  p_ttl_seconds integer default null,
  p_idempotency_key text default null,
  p_actor text default 'app',
  p_expected_version integer default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return allocator.hold_booking_tables(allocator.lock_booking(p_booking_id), p_table_ids,
    p_ttl_seconds, p_idempotency_key, p_actor, p_expected_version, true);
end
$$;

comment on function allocator.hold_tables(bigint, bigint[], integer, text, text, integer) is
  'Hold tables for a booking for p_ttl_seconds (default: the restaurant''s hold_ttl_seconds); the booking becomes assigned. An overlapping hold or allocation raises conflict (RA003); the same idempotency key returns the same hold';

create or replace function allocator.lock_hold(p_hold_id bigint) returns allocator.holds
language plpgsql
volatile
as $$
declare
  v_hold allocator.holds;
  v_restaurant_id bigint;
begin
  if p_hold_id is null then
    perform allocator.raise_error('invalid_argument', 'hold id is required');
  end if;
  select h.restaurant_id into v_restaurant_id from allocator.holds h where h.id = p_hold_id;
  if v_restaurant_id is null or not allocator.tenant_allows(v_restaurant_id) then
    perform allocator.raise_error('not_found', pg_catalog.format('hold %s does not exist', p_hold_id));
  end if;
  -- Lock order everywhere: booking, then hold.
  perform allocator.lock_booking(b.id) from allocator.holds h
     join allocator.bookings b on b.restaurant_id = h.restaurant_id and b.id = h.booking_id
    where h.restaurant_id = v_restaurant_id and h.id = p_hold_id;
  select h.* into v_hold from allocator.holds h
   where h.restaurant_id = v_restaurant_id and h.id = p_hold_id for update;
  return v_hold;
end
$$;

comment on function allocator.lock_hold(bigint) is
  'Lock a hold and its booking (booking first) and return the hold; not_found (RA002) if missing';

-- Confirms an active hold the caller has locked (booking, then hold) and checked: its
-- allocations become the booking's confirmed seats, the hold is closed as confirmed (event
-- hold.confirmed), the booking leaves the queue and moves to confirmed. The one place a hold
-- is confirmed, for confirm_hold and force_confirm alike.
create or replace function allocator.confirm_hold_allocations(
  p_hold allocator.holds,
  p_booking allocator.bookings,
  p_actor text,
  p_reason text,
  p_metadata jsonb default '{}'::jsonb
) returns allocator.bookings
language plpgsql
volatile
as $$
begin
  update allocator.holds h set status = 'confirmed', closed_at = allocator.now()
   where h.restaurant_id = p_hold.restaurant_id and h.id = p_hold.id and h.status = 'active';
  if not found then
    perform allocator.raise_error('hold_not_active', pg_catalog.format('hold %s is not active', p_hold.id));
  end if;
  perform allocator.lock_tables(p_hold.restaurant_id, p_hold.table_ids);
  update allocator.allocations a set kind = 'confirmed', expires_at = null
   where a.restaurant_id = p_hold.restaurant_id and a.hold_id = p_hold.id;
  perform allocator.emit_event(p_hold.restaurant_id, 'hold.confirmed', p_booking.id,
    pg_catalog.jsonb_build_object('hold_id', p_hold.id, 'booking_id', p_booking.id));
  perform allocator.dequeue(p_booking.restaurant_id, p_booking.id);
  return allocator.transition(p_booking.id, p_booking.version, 'confirmed', p_actor, p_reason,
    pg_catalog.jsonb_build_object('hold_id', p_hold.id, 'table_ids', p_hold.table_ids) || coalesce(p_metadata, '{}'::jsonb));
end
$$;

comment on function allocator.confirm_hold_allocations(allocator.holds, allocator.bookings, text, text, jsonb) is
  'Confirm an active hold: its allocations become confirmed seats, the hold is closed as confirmed (event hold.confirmed), the booking is dequeued and confirmed with p_reason; shared by confirm_hold and force_confirm';

create or replace function allocator.confirm_hold(p_hold_id bigint, p_actor text default 'app') returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold allocator.holds := allocator.lock_hold(p_hold_id);
  v_booking allocator.bookings;
begin
  perform allocator.actor_role(p_actor);
  if v_hold.status = 'confirmed' then
    return allocator.hold_json(v_hold) || '{"changed": false}'::jsonb;
  end if;
  if v_hold.status <> 'active' or v_hold.expires_at <= allocator.now() then
    perform allocator.raise_error('hold_not_active',
      pg_catalog.format('hold %s is %s', p_hold_id,
        case when v_hold.status = 'active' then 'expired' else v_hold.status end),
      pg_catalog.format('expired at %s', v_hold.expires_at),
      'hold the tables again');
  end if;
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_hold.restaurant_id and b.id = v_hold.booking_id;
  perform allocator.confirm_hold_allocations(v_hold, v_booking, p_actor, 'hold confirmed');
  select h.* into v_hold from allocator.holds h where h.restaurant_id = v_hold.restaurant_id and h.id = v_hold.id;
  return allocator.hold_json(v_hold) || '{"changed": true}'::jsonb;
end
$$;

comment on function allocator.confirm_hold(bigint, text) is
  'Confirm an active hold: its tables become the booking''s allocation and the booking is confirmed; confirming twice changes nothing; an expired or released hold raises hold_not_active (RA010)';

create or replace function allocator.release_hold(p_hold_id bigint, p_actor text default 'app', p_reason text default null)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_hold allocator.holds := allocator.lock_hold(p_hold_id);
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_length('reason', p_reason, 'reason_chars');
  if v_hold.status = 'confirmed' then
    perform allocator.raise_error('hold_not_active',
      pg_catalog.format('hold %s is confirmed; cancel or modify the booking instead', p_hold_id));
  end if;
  if v_hold.status <> 'active' then
    return allocator.hold_json(v_hold) || '{"changed": false}'::jsonb;
  end if;
  perform allocator.close_hold(v_hold, 'released', p_actor, coalesce(p_reason, 'hold released'));
  select h.* into v_hold from allocator.holds h where h.restaurant_id = v_hold.restaurant_id and h.id = v_hold.id;
  return allocator.hold_json(v_hold) || '{"changed": true}'::jsonb;
end
$$;

comment on function allocator.release_hold(bigint, text, text) is
  'Release an active hold: its tables are freed and its booking goes back to the assignment queue; releasing twice changes nothing';

create or replace function allocator.expire_holds(p_limit integer default 1000) returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer;
  v_restricted boolean := allocator.tenant_restricted();
begin
  if p_limit is null or p_limit < 1 then
    perform allocator.raise_error('invalid_argument', 'limit must be at least 1');
  end if;
  select pg_catalog.count(*) filter (where allocator.expire_hold(h.restaurant_id, h.id, h.booking_id, true))
    into v_count
    from (select h.restaurant_id, h.id, h.booking_id from allocator.holds h
           where h.status = 'active' and h.expires_at <= allocator.now()
             and (not v_restricted or allocator.tenant_allows(h.restaurant_id))
           order by h.expires_at
           limit p_limit) h;
  return v_count;
end
$$;

comment on function allocator.expire_holds(integer) is
  'Sweeper: expire up to p_limit holds past their expiry (bookings another session has locked are left for the next run; a tenant-restricted login expires only its restaurants'' holds); returns how many';


