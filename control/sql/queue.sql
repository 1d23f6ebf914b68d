-- Putting a row back on the queue (any update that does not set the lease itself) ends the
-- lease, so a retry is claimable as soon as it is due.
create or replace function allocator.assignment_queue_end_lease() returns trigger
language plpgsql
as $$
begin
  if new.leased_by is not distinct from old.leased_by
     and new.lease_expires_at is not distinct from old.lease_expires_at then
    new.leased_by := null;
    new.lease_expires_at := null;
  end if;
  return new;
end
$$;

comment on function allocator.assignment_queue_end_lease() is
  'Trigger: an update of a queue row that does not touch its lease (a requeue) ends the lease';

create or replace trigger assignment_queue_end_lease
  before update on allocator.assignment_queue
  for each row execute function allocator.assignment_queue_end_lease();

create or replace function allocator.claim_due(p_worker text, p_limit integer default 10, p_lease_seconds integer default 30)
returns table (restaurant_id bigint, booking_id bigint, attempt integer, run_at timestamptz)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restricted boolean;
begin
  if p_worker is null or pg_catalog.btrim(p_worker) = '' then
    perform allocator.raise_error('invalid_argument', 'worker name is required');
  end if;
  perform allocator.check_length('worker name', p_worker);
  perform allocator.check_argument('limit', p_limit, 1, 1000);
  perform allocator.check_argument('lease (seconds)', p_lease_seconds, 1, 3600);
  v_restricted := allocator.tenant_restricted();
  return query
    with due as (
      select q.restaurant_id, q.booking_id
        from allocator.assignment_queue q
       where q.run_at <= allocator.now()
         and (q.lease_expires_at is null or q.lease_expires_at <= allocator.now())
         and (not v_restricted or allocator.tenant_allows(q.restaurant_id))
       order by q.run_at, q.booking_id
       limit p_limit
       for update skip locked
    )
    update allocator.assignment_queue q
       set leased_by = p_worker,
           lease_expires_at = allocator.now() + pg_catalog.make_interval(secs => p_lease_seconds)
      from due
     where q.restaurant_id = due.restaurant_id and q.booking_id = due.booking_id
    returning q.restaurant_id, q.booking_id, q.attempt, q.run_at;
end
$$;

comment on function allocator.claim_due(text, integer, integer) is
  'Lease up to p_limit due queue rows to p_worker for p_lease_seconds (FOR UPDATE SKIP LOCKED: concurrent workers never get the same row); a tenant-restricted login claims only its restaurants'' rows';

create or replace function allocator.lease_acquire(
  p_name text,
  p_owner text,
  p_ttl_seconds integer default 30,
  p_wait_ms integer default 0
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_lease allocator.leases;
  v_previous text;
  v_now timestamptz;
  v_name text;
begin
  if p_name is null or p_name = '' or p_owner is null or p_owner = '' then
    perform allocator.raise_error('invalid_argument', 'lease name and owner are required');
  end if;
  perform allocator.check_length('lease name', p_name);
  perform allocator.check_length('lease owner', p_owner);
  perform allocator.check_argument('lease TTL (seconds)', p_ttl_seconds, 1, 86400);
  perform allocator.check_argument('wait (ms)', p_wait_ms, 0, 600000);
  v_name := allocator.tenant_scoped_name(p_name);
  loop
    -- allocator.now() stands still within the transaction: while waiting, a lease must be
    -- able to expire, so the time moves on by the time waited.
    v_now := allocator.now() + (pg_catalog.clock_timestamp() - v_started);
    select l.owner into v_previous from allocator.leases l where l.name = v_name;
    insert into allocator.leases as l (name, owner, acquired_at, expires_at)
    values (v_name, p_owner, v_now, v_now + pg_catalog.make_interval(secs => p_ttl_seconds))
    on conflict (name) do update
       set owner = excluded.owner, expires_at = excluded.expires_at,
           acquired_at = case when l.owner = excluded.owner then l.acquired_at else excluded.acquired_at end,
           extended_at = null
     where l.owner = excluded.owner or l.expires_at <= v_now
    returning l.* into v_lease;
    exit when v_lease.name is not null
           or pg_catalog.clock_timestamp() >= v_started + pg_catalog.make_interval(secs => p_wait_ms / 1000.0);
    perform pg_catalog.pg_sleep(0.005);
  end loop;
  insert into allocator.lease_waits (name, owner, acquired, waited_ms, taken_over_from)
  values (v_name, p_owner, v_lease.name is not null,
          extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000,
          case when v_lease.name is not null and v_previous is distinct from p_owner then v_previous end);
  if v_lease.name is null then
    select l.* into v_lease from allocator.leases l where l.name = v_name;
    return pg_catalog.jsonb_build_object('acquired', false, 'name', p_name, 'owner', v_lease.owner,
                                         'expires_at', v_lease.expires_at);
  end if;
  return pg_catalog.jsonb_build_object('acquired', true, 'name', p_name, 'owner', p_owner,
    'expires_at', v_lease.expires_at, 'taken_over_from',
    case when v_previous is distinct from p_owner then v_previous end);
end
$$;

comment on function allocator.lease_acquire(text, text, integer, integer) is
  'Take the named lease for p_ttl_seconds if it is free, expired or already ours, waiting up to p_wait_ms; records the wait in lease_waits. A tenant-restricted login''s leases are its own (stored as tenant "login": name)';

create or replace function allocator.lease_extend(p_name text, p_owner text, p_ttl_seconds integer default 30) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform allocator.check_length('lease name', p_name);
  perform allocator.check_length('lease owner', p_owner);
  perform allocator.check_argument('lease TTL (seconds)', p_ttl_seconds, 1, 86400);
  -- Only the owner extends; a lease taken over by another owner stays theirs.
  update allocator.leases l
     set expires_at = allocator.now() + pg_catalog.make_interval(secs => p_ttl_seconds),
         extended_at = allocator.now()
   where l.name = allocator.tenant_scoped_name(p_name) and l.owner = p_owner;
  return found;
end
$$;

comment on function allocator.lease_extend(text, text, integer) is
  'Heartbeat: push the lease''s expiry p_ttl_seconds ahead if p_owner still holds it; false if it was taken over or released';

create or replace function allocator.lease_release(p_name text, p_owner text) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform allocator.check_length('lease name', p_name);
  perform allocator.check_length('lease owner', p_owner);
  delete from allocator.leases l where l.name = allocator.tenant_scoped_name(p_name) and l.owner = p_owner;
  return found;
end
$$;

comment on function allocator.lease_release(text, text) is 'Give the lease up if p_owner holds it; false otherwise';


