-- Importing a restaurant's existing bookings from another system (allocator import bookings).
-- A row is a booking with the other system's id; with tables it arrives confirmed on them,
-- without tables it arrives created and queued for the engine like any new booking.

-- A start with no UTC offset is the restaurant's local time, as a reservation book writes it.
create or replace function allocator.import_start(p_text text, p_timezone text) returns timestamptz
language plpgsql
stable
as $$
begin
  if p_text is null or pg_catalog.btrim(p_text) = '' then
    perform allocator.raise_error('invalid_argument', 'start is required');
  end if;
  if p_text ~ '(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)\s*$' then
    return p_text::timestamptz;
  end if;
  return p_text::timestamp at time zone p_timezone;
exception
  when invalid_datetime_format or datetime_field_overflow or invalid_text_representation then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('start %L is not a date and time', p_text), null,
      'write it as 2026-12-01 19:30 (restaurant time) or 2026-12-01T19:30:00+01:00');
    return null;
end
$$;

comment on function allocator.import_start(text, text) is
  'The start of an imported booking: an ISO timestamp, read in the restaurant''s time zone when it has no offset';

create or replace function allocator.import_integer(p_row jsonb, p_key text) returns integer
language plpgsql
immutable
as $$
declare
  v_text text := p_row ->> p_key;
begin
  if v_text is null or pg_catalog.btrim(v_text) = '' then
    return null;
  end if;
  if v_text !~ '^\s*[0-9]{1,6}\s*$' then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('%s must be a whole number, got %L', p_key, v_text));
  end if;
  return v_text::integer;
end
$$;

comment on function allocator.import_integer(jsonb, text) is
  'The whole number at p_key of an import row (null when absent), or invalid_argument (RA001)';

-- One row, inside the caller's subtransaction: a refused row raises and leaves nothing behind.
create or replace function allocator.import_booking_row(
  p_restaurant allocator.restaurants,
  p_row jsonb,
  p_actor text
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_external text := pg_catalog.btrim(p_row ->> 'external_id');
  v_party integer := allocator.import_integer(p_row, 'party_size');
  v_start timestamptz;
  v_period tstzrange;
  v_zone bigint;
  v_labels text[];
  v_ids bigint[];
  v_metadata jsonb := coalesce(p_row -> 'metadata', '{}'::jsonb);
  v_booking allocator.bookings;
begin
  if pg_catalog.jsonb_typeof(p_row) is distinct from 'object' then
    perform allocator.raise_error('invalid_argument', 'a row must be a JSON object');
  end if;
  if v_external is null or v_external = '' or pg_catalog.length(v_external) > allocator.limit_of('idempotency_key_chars') then
    perform allocator.raise_error('invalid_argument', pg_catalog.format('external_id must be 1 to %s characters',
      allocator.limit_of('idempotency_key_chars')));
  end if;
  if v_party is null then
    perform allocator.raise_error('invalid_argument', 'party_size is required');
  end if;
  perform allocator.check_party_size(v_party);
  if pg_catalog.jsonb_typeof(v_metadata) <> 'object' then
    perform allocator.raise_error('invalid_argument', 'metadata must be a JSON object');
  end if;
  perform allocator.check_size('metadata', v_metadata, 'metadata_bytes');
  perform allocator.check_length('start', p_row ->> 'start');
  v_start := allocator.import_start(p_row ->> 'start', p_restaurant.timezone);
  v_period := allocator.booking_period(p_restaurant, v_party, v_start,
    allocator.import_integer(p_row, 'duration_minutes'));
  v_zone := allocator.zone_id(p_restaurant.id, nullif(pg_catalog.btrim(p_row ->> 'zone'), ''));

  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = p_restaurant.id and b.external_id = v_external;
  if found then
    if (v_booking.party_size, v_booking.period) is distinct from (v_party, v_period) then
      perform allocator.raise_error('idempotency_mismatch',
        pg_catalog.format('external id %s was imported as booking %s with other details', v_external, v_booking.id),
        pg_catalog.format('existing: party %s at %s', v_booking.party_size, pg_catalog.lower(v_booking.period)),
        'change the booking with modify_booking, or import it under a new external id');
    end if;
    return pg_catalog.jsonb_build_object('status', 'existing', 'booking_id', v_booking.id);
  end if;

  if p_row ? 'tables' and pg_catalog.jsonb_typeof(p_row -> 'tables') <> 'null' then
    if pg_catalog.jsonb_typeof(p_row -> 'tables') <> 'array'
       or pg_catalog.jsonb_array_length(p_row -> 'tables') = 0 then
      perform allocator.raise_error('invalid_argument', 'tables must be a non-empty list of table labels');
    end if;
    if pg_catalog.jsonb_array_length(p_row -> 'tables') > allocator.limit_of('tables_per_set') then
      perform allocator.raise_error('invalid_argument',
        pg_catalog.format('at most %s tables can be held together', allocator.limit_of('tables_per_set')));
    end if;
    v_labels := array(select pg_catalog.jsonb_array_elements_text(p_row -> 'tables'));
    perform allocator.check_length('table label', l) from pg_catalog.unnest(v_labels) l;
    v_ids := array(select t.id from allocator.tables t
                    where t.restaurant_id = p_restaurant.id and t.label = any (v_labels) order by t.id);
    if pg_catalog.cardinality(v_ids) <> pg_catalog.cardinality(v_labels) then
      perform allocator.raise_error('not_found',
        pg_catalog.format('restaurant %s has no table %s', p_restaurant.id,
          (select pg_catalog.string_agg(l, ', ') from pg_catalog.unnest(v_labels) l
            where not exists (select 1 from allocator.tables t
                               where t.restaurant_id = p_restaurant.id and t.label = l))));
    end if;
  end if;

  insert into allocator.bookings
         (restaurant_id, party_size, period, state, preferred_zone_id, metadata, external_id)
  values (p_restaurant.id, v_party, v_period,
          case when v_ids is null then 'created' else 'confirmed' end, v_zone, v_metadata, v_external)
  returning * into v_booking;

  if v_ids is not null then
    -- The other system seated the party there: capacity is not second-guessed, overlaps are refused.
    v_ids := allocator.check_table_set(v_booking, v_ids, false);
    perform allocator.lock_tables(p_restaurant.id, v_ids);
    perform allocator.insert_allocations(p_restaurant.id, v_booking.id, v_ids,
      allocator.blocked_period(v_booking), 'confirmed');
  else
    perform allocator.enqueue(p_restaurant.id, v_booking.id, 'imported');
  end if;

  -- One history row, and an event of its own: the guest was told by the other system, so an
  -- import is not a new confirmation.
  insert into allocator.booking_state_history
         (restaurant_id, booking_id, from_state, to_state, version, actor, reason, metadata)
  values (p_restaurant.id, v_booking.id, null, v_booking.state, v_booking.version, p_actor, 'imported',
          pg_catalog.jsonb_build_object('external_id', v_external, 'party_size', v_party,
                                        'period', v_period, 'table_ids', v_ids));
  perform allocator.emit_event(p_restaurant.id, 'booking.imported', v_booking.id,
    pg_catalog.jsonb_build_object('booking_id', v_booking.id, 'external_id', v_external,
                                  'to', v_booking.state, 'version', v_booking.version, 'actor', p_actor));
  return pg_catalog.jsonb_build_object('status', 'imported', 'booking_id', v_booking.id,
                                       'state', v_booking.state);
end
$$;

comment on function allocator.import_booking_row(allocator.restaurants, jsonb, text) is
  'Import one booking row (see import_bookings); raises a project error when the row is refused';

create or replace function allocator.import_bookings(
  p_restaurant_id bigint,
  p_rows jsonb,
  p_actor text default 'staff:import'
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_row jsonb;
  v_index bigint;
  v_result jsonb;
  v_imported integer := 0;
  v_existing integer := 0;
  v_refused jsonb := '[]'::jsonb;
  v_state text;
  v_message text;
  v_detail text;
begin
  perform allocator.actor_role(p_actor);
  if p_rows is null or pg_catalog.jsonb_typeof(p_rows) <> 'array' then
    perform allocator.raise_error('invalid_argument', 'rows must be a JSON array of objects');
  end if;
  if pg_catalog.jsonb_array_length(p_rows) > allocator.limit_of('import_rows') then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('at most %s rows per call, got %s', allocator.limit_of('import_rows'),
        pg_catalog.jsonb_array_length(p_rows)),
      null, 'send the rows in batches of 500, in one transaction so that nothing is half-imported');
  end if;
  perform allocator.check_size('rows', p_rows, 'import_bytes');
  for v_row, v_index in select e.value, e.n from pg_catalog.jsonb_array_elements(p_rows) with ordinality e(value, n) loop
    begin
      v_result := allocator.import_booking_row(v_restaurant, v_row, p_actor);
      if v_result ->> 'status' = 'imported' then
        v_imported := v_imported + 1;
      else
        v_existing := v_existing + 1;
      end if;
    exception when others then
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
                              v_detail = pg_exception_detail;
      -- Project errors and malformed values refuse the row; anything else is not the row's fault.
      if v_state not like 'RA%' and v_state not like '22%' then
        raise;
      end if;
      v_refused := v_refused || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'row', v_index, 'external_id', v_row ->> 'external_id', 'sqlstate', v_state,
        'reason', v_message, 'detail', nullif(v_detail, '')));
    end;
  end loop;
  return pg_catalog.jsonb_build_object('imported', v_imported, 'existing', v_existing, 'refused', v_refused);
end
$$;

comment on function allocator.import_bookings(bigint, jsonb, text) is
  'Import up to 500 bookings of a restaurant from another system, idempotent by external_id: rows with tables arrive confirmed on them, others created and queued; a refused row (overlap, bad value) is reported with its reason and leaves nothing behind';
