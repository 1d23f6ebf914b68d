-- The project's own SQLSTATEs (class RA) and the one helper that raises them.

create table allocator.error_codes (
  sqlstate text primary key check (sqlstate ~ '^RA[0-9]{3}$'),
  name text not null unique check (name ~ '^[a-z_]+$'),
  meaning text not null
);
comment on table allocator.error_codes is
  'The SQLSTATEs raised by allocator functions, by name; docs/errors.md lists the same codes';

insert into allocator.error_codes (sqlstate, name, meaning) values
  ('RA001', 'invalid_argument', 'An argument is missing, out of range or malformed'),
  ('RA002', 'not_found', 'A referenced restaurant, booking, table, zone or hold does not exist'),
  ('RA003', 'conflict', 'A table is already held or allocated for an overlapping period'),
  ('RA004', 'stale_version', 'The expected version does not match the current version'),
  ('RA005', 'invalid_transition', 'The booking cannot move from its current state to the requested one'),
  ('RA006', 'invalid_settings', 'Restaurant settings or time zone are invalid'),
  ('RA007', 'cross_restaurant', 'Objects of different restaurants were mixed in one request'),
  ('RA008', 'idempotency_mismatch', 'An idempotency key was reused with different arguments'),
  ('RA009', 'not_permitted', 'The caller or actor may not perform this action'),
  ('RA010', 'hold_not_active', 'The hold has expired, was released or was already confirmed'),
  ('RA011', 'capacity_mismatch', 'The tables do not fit the party size'),
  ('RA012', 'invalid_layout', 'A floor layout (zones, tables, adjacency) is inconsistent');

create function allocator.raise_error(
  p_name text,
  p_message text,
  p_detail text default null,
  p_hint text default null
) returns void
language plpgsql
volatile
as $$
declare
  v_sqlstate text;
begin
  select e.sqlstate into v_sqlstate from allocator.error_codes e where e.name = p_name;
  if v_sqlstate is null then
    raise exception 'unknown allocator error name: %', p_name using errcode = 'XX000';
  end if;
  if p_detail is not null and p_hint is not null then
    raise exception using errcode = v_sqlstate, message = p_message, detail = p_detail, hint = p_hint;
  elsif p_detail is not null then
    raise exception using errcode = v_sqlstate, message = p_message, detail = p_detail;
  elsif p_hint is not null then
    raise exception using errcode = v_sqlstate, message = p_message, hint = p_hint;
  else
    raise exception using errcode = v_sqlstate, message = p_message;
  end if;
end
$$;
comment on function allocator.raise_error(text, text, text, text) is
  'Raise the allocator error named p_name (see allocator.error_codes) with a message, DETAIL and HINT';

create function allocator.check_argument(p_name text, p_value numeric, p_min numeric, p_max numeric)
returns void
language plpgsql
immutable
as $$
begin
  if p_value is null or p_value not between p_min and p_max then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('%s must be from %s to %s, got %s', p_name, p_min, p_max, coalesce(p_value::text, 'NULL')));
  end if;
end
$$;
comment on function allocator.check_argument(text, numeric, numeric, numeric) is
  'Raise invalid_argument (RA001) unless p_value is given and within [p_min, p_max]';
