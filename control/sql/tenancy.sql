-- The staff member a console session acts for: the setting allocator.acting_staff, honoured
-- only when the login is a member of allocator_console (any login may set a custom setting;
-- for every other login it means nothing). NULL when the session is not the console's or
-- names nobody.
create or replace function allocator.acting_staff() returns text
language sql
stable
as $$
  select case when not coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false)
               and pg_catalog.pg_has_role(session_user, 'allocator_console', 'MEMBER')
              then nullif(pg_catalog.current_setting('allocator.acting_staff', true), '') end
$$;

comment on function allocator.acting_staff() is
  'The staff login a console session acts for (setting allocator.acting_staff, honoured only for members of allocator_console), else NULL';

create or replace function allocator.tenant_allows(p_restaurant_id bigint) returns boolean
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_staff text;
begin
  -- pg_has_role is true for superusers on every role; they are never restricted. PL/pgSQL:
  -- the query's plan is kept for the session (an SQL function's is made again in every
  -- transaction, and this one runs in every call that names a restaurant).
  if (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user) then
    return true;
  end if;
  if pg_catalog.pg_has_role(session_user, 'allocator_console', 'MEMBER') then
    -- The console sees the restaurants of the staff member it acts for, and nothing when it
    -- names nobody, or a member who is unknown or disabled.
    v_staff := nullif(pg_catalog.current_setting('allocator.acting_staff', true), '');
    return v_staff is not null
       and exists (select 1 from allocator.staff_restaurants m
                     join allocator.staff s on s.login = m.login
                    where m.login = v_staff and m.restaurant_id = p_restaurant_id
                      and s.disabled_at is null);
  end if;
  if not pg_catalog.pg_has_role(session_user, 'allocator_tenant', 'MEMBER') then
    return true;
  end if;
  return exists (select 1 from allocator.tenant_members m
                  where m.role_name = session_user and m.restaurant_id = p_restaurant_id);
end
$$;

comment on function allocator.tenant_allows(bigint) is
  'Whether the session may use restaurant p_restaurant_id: always, unless its login is a member of allocator_tenant (then the restaurants tenant_members lists) or of allocator_console (then those of the staff member it acts for)';

-- The restaurants this session may use, NULL when it is not restricted: what tenant_allows
-- answers, as one array. Row level security policies read it once per query, through a
-- scalar subquery (an InitPlan), instead of calling tenant_allows for every row.
create or replace function allocator.tenant_ids() returns bigint[]
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_staff text;
begin
  if (select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user) then
    return null;
  end if;
  if pg_catalog.pg_has_role(session_user, 'allocator_console', 'MEMBER') then
    v_staff := nullif(pg_catalog.current_setting('allocator.acting_staff', true), '');
    return coalesce((select pg_catalog.array_agg(m.restaurant_id order by m.restaurant_id)
                       from allocator.staff_restaurants m
                       join allocator.staff s on s.login = m.login
                      where m.login = v_staff and s.disabled_at is null), '{}');
  end if;
  if not pg_catalog.pg_has_role(session_user, 'allocator_tenant', 'MEMBER') then
    return null;
  end if;
  return coalesce((select pg_catalog.array_agg(m.restaurant_id order by m.restaurant_id)
                     from allocator.tenant_members m where m.role_name = session_user), '{}');
end
$$;

comment on function allocator.tenant_ids() is
  'The restaurant ids the session may use (those tenant_allows allows), or NULL when it is not restricted; read once per query by the row level security policies';

-- Whether tenant_allows can say no to this session: the operator functions that work across
-- restaurants (claiming, sweeping, reading events) ask once and filter only when it can.
create or replace function allocator.tenant_restricted() returns boolean
language sql
stable
as $$
  select not coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false)
     and (pg_catalog.pg_has_role(session_user, 'allocator_tenant', 'MEMBER')
          or pg_catalog.pg_has_role(session_user, 'allocator_console', 'MEMBER'))
$$;

comment on function allocator.tenant_restricted() is
  'Whether the session''s login role is tenant-restricted (a member of allocator_tenant or allocator_console that is not a superuser)';

-- Names shared by every caller (event subscribers, leases) are the tenant's own once
-- qualified by its login: a tenant cannot move another subscriber's cursor or take, extend
-- or release another process's lease. %I quotes the login, so no two logins share a prefix.
create or replace function allocator.tenant_scoped_name(p_name text) returns text
language sql
stable
as $$
  select case when allocator.tenant_restricted()
              then pg_catalog.format('tenant %I: %s', session_user, p_name)
              else p_name end
$$;

comment on function allocator.tenant_scoped_name(text) is
  'p_name as stored for this session: unchanged, or qualified by the login (tenant "role": name) for a tenant-restricted login';

-- Restaurants another tenant owns are reported as missing, so ids reveal nothing.
create or replace function allocator.require_restaurant(p_restaurant_id bigint) returns allocator.restaurants
language plpgsql
stable
as $$
declare
  v_restaurant allocator.restaurants;
begin
  if p_restaurant_id is null then
    perform allocator.raise_error('invalid_argument', 'restaurant id is required');
  end if;
  select r.* into v_restaurant from allocator.restaurants r where r.id = p_restaurant_id;
  if not found or not allocator.tenant_allows(p_restaurant_id) then
    perform allocator.raise_error('not_found',
      pg_catalog.format('restaurant %s does not exist', p_restaurant_id));
  end if;
  return v_restaurant;
end
$$;

comment on function allocator.require_restaurant(bigint) is
  'The restaurant row, or not_found (RA002) if it does not exist or the caller''s tenancy excludes it';

create or replace function allocator.booking_restaurant(p_booking_id bigint) returns bigint
language plpgsql
stable
as $$
declare
  v_restaurant_id bigint;
begin
  select b.restaurant_id into v_restaurant_id from allocator.bookings b where b.id = p_booking_id;
  if v_restaurant_id is null or not allocator.tenant_allows(v_restaurant_id) then
    perform allocator.raise_error('not_found', pg_catalog.format('booking %s does not exist', p_booking_id));
  end if;
  return v_restaurant_id;
end
$$;

comment on function allocator.booking_restaurant(bigint) is
  'The restaurant of a booking; not_found (RA002) if missing or another tenant''s';

create or replace function allocator.lock_booking(p_booking_id bigint) returns allocator.bookings
language plpgsql
volatile
as $$
declare
  v_booking allocator.bookings;
begin
  if p_booking_id is null then
    perform allocator.raise_error('invalid_argument', 'booking id is required');
  end if;
  select b.* into v_booking from allocator.bookings b where b.id = p_booking_id for update;
  if not found or not allocator.tenant_allows(v_booking.restaurant_id) then
    perform allocator.raise_error('not_found', pg_catalog.format('booking %s does not exist', p_booking_id));
  end if;
  return v_booking;
end
$$;

comment on function allocator.lock_booking(bigint) is
  'Lock a booking row for the rest of the transaction and return it; not_found (RA002) if missing or another tenant''s';


