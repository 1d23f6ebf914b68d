create or replace function allocator.raise_error(
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

create or replace function allocator.check_argument(p_name text, p_value numeric, p_min numeric, p_max numeric)
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


-- The bounds on what callers send and on a restaurant's layout, in one place
-- (docs/reliability.md, "Input limits"; docs/schema.md, "Layout limits").
create or replace function allocator.limits() returns jsonb
language sql
immutable
parallel safe
as $$
  select '{
    "tables_per_restaurant": 200,
    "neighbours_per_table": 8,
    "combination_size": 6,
    "combinations_per_restaurant": 10000,
    "scored_candidates": 500,
    "tables_per_set": 10,
    "name_chars": 200,
    "actor_chars": 256,
    "idempotency_key_chars": 200,
    "reason_chars": 2000,
    "metadata_bytes": 16384,
    "settings_bytes": 16384,
    "layout_bytes": 1048576,
    "import_rows": 500,
    "import_bytes": 10485760,
    "plan_bytes": 4194304
  }'::jsonb
$$;

comment on function allocator.limits() is
  'The limits on layouts (tables, neighbours, combination size, combinations, scored plans) and on the text and JSON callers send (characters, bytes of JSON text)';

-- A misspelt limit name is a bug: it raises XX000 rather than passing every value.
create or replace function allocator.limit_of(p_name text) returns integer
language plpgsql
immutable
parallel safe
as $$
declare
  v_limit integer := (allocator.limits() ->> p_name)::integer;
begin
  if v_limit is null then
    raise exception 'unknown allocator limit: %', p_name using errcode = 'XX000';
  end if;
  return v_limit;
end
$$;

comment on function allocator.limit_of(text) is 'One limit of allocator.limits() by name';

-- NULL passes: whether a value is required is the caller's check.
create or replace function allocator.check_length(p_what text, p_value text, p_limit text default 'name_chars')
returns void
language plpgsql
immutable
as $$
declare
  v_max integer := allocator.limit_of(p_limit);
begin
  if pg_catalog.length(p_value) > v_max then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('%s must be at most %s characters, got %s', p_what, v_max, pg_catalog.length(p_value)));
  end if;
end
$$;

comment on function allocator.check_length(text, text, text) is
  'Raise invalid_argument (RA001) when the text is longer than the named limit (characters)';

create or replace function allocator.check_size(p_what text, p_value jsonb, p_limit text) returns void
language plpgsql
immutable
as $$
declare
  v_max integer := allocator.limit_of(p_limit);
  v_size bigint;
begin
  if p_value is null then
    return;
  end if;
  v_size := pg_catalog.octet_length(p_value::text);
  if v_size > v_max then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('%s must be at most %s bytes of JSON, got %s', p_what, v_max, v_size));
  end if;
end
$$;

comment on function allocator.check_size(text, jsonb, text) is
  'Raise invalid_argument (RA001) when the JSON text of the value is longer than the named limit (bytes)';

-- Whether a JSON value is an integer (no fraction, no exponent) within [p_min, p_max]: the
-- test to pass before a cast to integer or bigint, which would fail on 1e30 or "4".
create or replace function allocator.is_json_integer(p_value jsonb, p_min numeric, p_max numeric) returns boolean
language plpgsql
immutable
parallel safe
as $$
begin
  if p_value is null or pg_catalog.jsonb_typeof(p_value) <> 'number' or p_value::text !~ '^-?[0-9]{1,20}$' then
    return false;
  end if;
  return p_value::text::numeric between p_min and p_max;
end
$$;

comment on function allocator.is_json_integer(jsonb, numeric, numeric) is
  'Whether the JSON value is an integer number within [p_min, p_max] (so that it casts to integer or bigint)';
