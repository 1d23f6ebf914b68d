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


