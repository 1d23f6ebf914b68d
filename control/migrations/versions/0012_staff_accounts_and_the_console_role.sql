-- Staff accounts for the console and the HTTP API, and the role of the service that acts for
-- them. The service logs in once (a member of allocator_console) and, in each transaction,
-- names the signed-in staff member in the setting allocator.acting_staff; tenancy then
-- restricts it to that member's restaurants. The setting means nothing to any other login,
-- so a tenant cannot widen its own tenancy by setting it.

do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'allocator_console') then
    create role allocator_console nologin;
  end if;
end
$$;

comment on role allocator_console is
  'The console and HTTP API service: acts for one staff member per transaction (setting allocator.acting_staff) and sees only that member''s restaurants; with no member named it sees none';

create table allocator.staff (
  login text primary key check (login ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
  display_name text not null check (pg_catalog.length(display_name) between 1 and 100),
  -- Only argon2id hashes are stored: a plain password cannot be written here by mistake.
  password_hash text not null check (password_hash ~ '^\$argon2id\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$'),
  created_at timestamptz not null default allocator.now(),
  password_changed_at timestamptz not null default allocator.now(),
  disabled_at timestamptz
);

comment on table allocator.staff is
  'People who sign in to the console or call the HTTP API: login, name, argon2id password hash; a disabled member can do nothing';

create table allocator.staff_restaurants (
  restaurant_id bigint not null references allocator.restaurants (id) on delete cascade,
  login text not null references allocator.staff (login) on delete cascade,
  primary key (restaurant_id, login)
);

create index staff_restaurants_login_idx on allocator.staff_restaurants (login, restaurant_id);

comment on table allocator.staff_restaurants is
  'Which restaurants each staff member sees and acts on';

create table allocator.staff_tokens (
  token_sha256 bytea primary key check (pg_catalog.length(token_sha256) = 32),
  login text not null references allocator.staff (login) on delete cascade,
  label text not null check (pg_catalog.length(label) between 1 and 100),
  created_at timestamptz not null default allocator.now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);

create index staff_tokens_login_idx on allocator.staff_tokens (login);

comment on table allocator.staff_tokens is
  'API tokens of staff members, by the SHA-256 of the token (the token itself is shown once and never stored)';

-- Row level security with no policy for the accounts and tokens: only the functions of
-- control/sql/staff.sql (owned by the schema owner) read them.
alter table allocator.staff enable row level security;
alter table allocator.staff_tokens enable row level security;
alter table allocator.staff_restaurants enable row level security;

-- The HTTP status each project error maps to, used by the HTTP API and its documentation.
alter table allocator.error_codes add column http_status integer
  check (http_status between 400 and 599);

update allocator.error_codes e set http_status = v.status
  from (values ('RA001', 422), ('RA002', 404), ('RA003', 409), ('RA004', 409), ('RA005', 409),
               ('RA006', 422), ('RA007', 422), ('RA008', 409), ('RA009', 403), ('RA010', 409),
               ('RA011', 422), ('RA012', 422), ('RA013', 422), ('RA014', 409)) as v (sqlstate, status)
 where e.sqlstate = v.sqlstate;

alter table allocator.error_codes alter column http_status set not null;

-- A booking's start as a column of its own, indexed by restaurant: the console's day views
-- read one day of a restaurant with a btree range scan. Under row level security a condition
-- on lower(period) (a function that is not leakproof) cannot reach an index; one on a plain
-- timestamptz column can.
alter table allocator.bookings add column starts_at timestamptz generated always as (pg_catalog.lower(period)) stored;

create index bookings_starts_idx on allocator.bookings (restaurant_id, starts_at);

comment on column allocator.bookings.starts_at is 'The start of the booking''s period (generated from period)';
