-- Staff accounts: who signs in to the console and the HTTP API, and which restaurants each
-- member sees. The service hashes passwords (argon2id) and tokens (SHA-256); the database
-- stores only the hashes. Operators manage accounts (allocator staff ...); the console's
-- login reads only what signing in needs.

create or replace function allocator.check_staff_login(p_login text) returns void
language plpgsql
immutable
as $$
begin
  if p_login is null or p_login !~ '^[a-z0-9][a-z0-9._@-]{0,63}$' then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('a staff login is 1 to 64 characters of a-z, 0-9 and . _ @ -, starting with a letter or digit; got %s',
                        coalesce(pg_catalog.quote_literal(pg_catalog.left(p_login, 80)), 'NULL')));
  end if;
end
$$;

comment on function allocator.check_staff_login(text) is
  'Raise invalid_argument (RA001) unless p_login is a well-formed staff login';

create or replace function allocator.check_password_hash(p_hash text) returns void
language plpgsql
immutable
as $$
begin
  if p_hash is null or p_hash !~ '^\$argon2id\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$' then
    perform allocator.raise_error('invalid_argument', 'the password must be given as an argon2id hash', null,
      'hash it with argon2 (allocator staff add and allocator staff password do)');
  end if;
end
$$;

comment on function allocator.check_password_hash(text) is
  'Raise invalid_argument (RA001) unless p_hash is an argon2id hash in its standard encoding';

-- The staff member's row, locked; not_found (RA002) when there is none.
create or replace function allocator.lock_staff(p_login text) returns allocator.staff
language plpgsql
volatile
as $$
declare
  v_staff allocator.staff;
begin
  perform allocator.check_staff_login(p_login);
  select s.* into v_staff from allocator.staff s where s.login = p_login for update;
  if not found then
    perform allocator.raise_error('not_found', pg_catalog.format('staff member %s does not exist', p_login));
  end if;
  return v_staff;
end
$$;

comment on function allocator.lock_staff(text) is
  'Lock a staff member''s row and return it; not_found (RA002) if there is none';

-- Checked restaurant ids: 1 to 1,000 distinct restaurants the caller may use.
create or replace function allocator.check_staff_restaurants(p_restaurant_ids bigint[]) returns bigint[]
language plpgsql
stable
as $$
declare
  v_ids bigint[];
  v_id bigint;
begin
  if p_restaurant_ids is null or pg_catalog.cardinality(p_restaurant_ids) not between 1 and 1000 then
    perform allocator.raise_error('invalid_argument', 'a staff member works for 1 to 1000 restaurants');
  end if;
  select pg_catalog.array_agg(distinct i order by i) into v_ids from pg_catalog.unnest(p_restaurant_ids) i;
  foreach v_id in array v_ids loop
    perform allocator.require_restaurant(v_id);
  end loop;
  return v_ids;
end
$$;

comment on function allocator.check_staff_restaurants(bigint[]) is
  'The distinct restaurant ids, sorted, after checking each exists and the caller may use it';

create or replace function allocator.staff_info(p_login text) returns jsonb
language sql
stable
as $$
  select pg_catalog.jsonb_build_object(
           'login', s.login, 'display_name', s.display_name,
           'restaurant_ids', coalesce((select pg_catalog.jsonb_agg(m.restaurant_id order by m.restaurant_id)
                                         from allocator.staff_restaurants m where m.login = s.login), '[]'),
           'password_changed_at', s.password_changed_at, 'disabled_at', s.disabled_at,
           'created_at', s.created_at)
    from allocator.staff s
   where s.login = p_login
$$;

comment on function allocator.staff_info(text) is
  'A staff member as JSON, without the password hash: login, name, restaurants, when the password changed, when disabled';

create or replace function allocator.add_staff(
  p_login text,
  p_display_name text,
  p_password_hash text,
  p_restaurant_ids bigint[]
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ids bigint[];
begin
  perform allocator.check_staff_login(p_login);
  if p_display_name is null or pg_catalog.length(pg_catalog.btrim(p_display_name)) not between 1 and 100 then
    perform allocator.raise_error('invalid_argument', 'a display name is 1 to 100 characters');
  end if;
  perform allocator.check_password_hash(p_password_hash);
  v_ids := allocator.check_staff_restaurants(p_restaurant_ids);
  insert into allocator.staff (login, display_name, password_hash)
  values (p_login, pg_catalog.btrim(p_display_name), p_password_hash)
  on conflict (login) do nothing;
  if not found then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('staff member %s already exists', p_login), null,
      'change the password or the restaurants of an existing member instead');
  end if;
  insert into allocator.staff_restaurants (restaurant_id, login)
  select i, p_login from pg_catalog.unnest(v_ids) i;
  return allocator.staff_info(p_login);
end
$$;

comment on function allocator.add_staff(text, text, text, bigint[]) is
  'Operators: add a staff member with an argon2id password hash and the restaurants they work for';

create or replace function allocator.set_staff_password(p_login text, p_password_hash text) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform allocator.lock_staff(p_login);
  perform allocator.check_password_hash(p_password_hash);
  -- A new password ends every session signed in with the old one.
  update allocator.staff s set password_hash = p_password_hash, password_changed_at = pg_catalog.clock_timestamp()
   where s.login = p_login;
  return allocator.staff_info(p_login);
end
$$;

comment on function allocator.set_staff_password(text, text) is
  'Operators: set a staff member''s password (argon2id hash); their open sessions end';

create or replace function allocator.set_staff_restaurants(p_login text, p_restaurant_ids bigint[]) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ids bigint[];
begin
  perform allocator.lock_staff(p_login);
  v_ids := allocator.check_staff_restaurants(p_restaurant_ids);
  delete from allocator.staff_restaurants m where m.login = p_login and m.restaurant_id <> all (v_ids);
  insert into allocator.staff_restaurants (restaurant_id, login)
  select i, p_login from pg_catalog.unnest(v_ids) i
  on conflict do nothing;
  return allocator.staff_info(p_login);
end
$$;

comment on function allocator.set_staff_restaurants(text, bigint[]) is
  'Operators: replace the restaurants a staff member works for (effective on their next request)';

create or replace function allocator.disable_staff(p_login text) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform allocator.lock_staff(p_login);
  update allocator.staff s set disabled_at = coalesce(s.disabled_at, pg_catalog.clock_timestamp())
   where s.login = p_login;
  update allocator.staff_tokens t set revoked_at = coalesce(t.revoked_at, pg_catalog.clock_timestamp())
   where t.login = p_login;
  return allocator.staff_info(p_login);
end
$$;

comment on function allocator.disable_staff(text) is
  'Operators: disable a staff member: their sessions and API tokens stop working at once';

create or replace function allocator.issue_staff_token(
  p_login text,
  p_token_sha256 bytea,
  p_label text,
  p_days integer default 90
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_staff allocator.staff := allocator.lock_staff(p_login);
  v_expires timestamptz;
begin
  if v_staff.disabled_at is not null then
    perform allocator.raise_error('not_permitted', pg_catalog.format('staff member %s is disabled', p_login));
  end if;
  if p_token_sha256 is null or pg_catalog.length(p_token_sha256) <> 32 then
    perform allocator.raise_error('invalid_argument', 'a token is given as its 32-byte SHA-256 digest');
  end if;
  if p_label is null or pg_catalog.length(p_label) not between 1 and 100 then
    perform allocator.raise_error('invalid_argument', 'a token label is 1 to 100 characters');
  end if;
  perform allocator.check_argument('days', p_days, 1, 366);
  v_expires := allocator.now() + pg_catalog.make_interval(days => p_days);
  insert into allocator.staff_tokens (token_sha256, login, label, expires_at)
  values (p_token_sha256, p_login, p_label, v_expires);
  return pg_catalog.jsonb_build_object('login', p_login, 'label', p_label, 'expires_at', v_expires);
end
$$;

comment on function allocator.issue_staff_token(text, bytea, text, integer) is
  'Operators: record an API token (its SHA-256) for a staff member, valid for p_days (1 to 366)';

create or replace function allocator.revoke_staff_token(p_token_sha256 bytea) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  update allocator.staff_tokens t set revoked_at = pg_catalog.clock_timestamp()
   where t.token_sha256 = p_token_sha256 and t.revoked_at is null;
  return found;
end
$$;

comment on function allocator.revoke_staff_token(bytea) is
  'Operators: revoke an API token by its SHA-256; whether one was revoked';

create or replace function allocator.staff_members()
returns table (login text, display_name text, restaurant_ids bigint[], disabled boolean, tokens integer)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.login, s.display_name,
         coalesce((select pg_catalog.array_agg(m.restaurant_id order by m.restaurant_id)
                     from allocator.staff_restaurants m where m.login = s.login), '{}'),
         s.disabled_at is not null,
         (select pg_catalog.count(*)::integer from allocator.staff_tokens t
           where t.login = s.login and t.revoked_at is null and t.expires_at > allocator.now())
    from allocator.staff s
   where not allocator.tenant_restricted()
   order by s.login
$$;

comment on function allocator.staff_members() is
  'Operators: every staff member: login, name, restaurants, disabled, live API tokens (empty for a tenant-restricted caller)';

-- What the console reads to sign a member in. Only the console's login may call these.
create or replace function allocator.staff_password_hash(p_login text) returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select s.password_hash from allocator.staff s where s.login = p_login and s.disabled_at is null
$$;

comment on function allocator.staff_password_hash(text) is
  'Console: the password hash of an enabled staff member, for signing in (NULL if unknown or disabled)';

create or replace function allocator.staff_session(p_login text) returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select allocator.staff_info(s.login) from allocator.staff s where s.login = p_login and s.disabled_at is null
$$;

comment on function allocator.staff_session(text) is
  'Console: an enabled staff member as JSON (name, restaurants, when the password changed), NULL if unknown or disabled';

create or replace function allocator.staff_for_token(p_token_sha256 bytea) returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select t.login
    from allocator.staff_tokens t
    join allocator.staff s on s.login = t.login
   where t.token_sha256 = p_token_sha256 and t.revoked_at is null
     and t.expires_at > allocator.now() and s.disabled_at is null
$$;

comment on function allocator.staff_for_token(bytea) is
  'Console: the login of the enabled staff member an API token (by SHA-256) belongs to, NULL if unknown, expired or revoked';
