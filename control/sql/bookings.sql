-- Booking RPCs for application code: create, modify, cancel.

create or replace function allocator.booking_json(p_booking allocator.bookings) returns jsonb
language plpgsql
stable
as $$
begin
  -- PL/pgSQL, as the small functions the RPCs call on every booking: the plan of a SQL
  -- function that is not inlined is made again at every call.
  return pg_catalog.jsonb_build_object(
    'booking_id', p_booking.id,
    'restaurant_id', p_booking.restaurant_id,
    'state', p_booking.state,
    'version', p_booking.version,
    'party_size', p_booking.party_size,
    'start', pg_catalog.lower(p_booking.period),
    'end', pg_catalog.upper(p_booking.period),
    'preferred_zone_id', p_booking.preferred_zone_id,
    'manual_review_reason', p_booking.manual_review_reason,
    'tables', (select coalesce(pg_catalog.jsonb_agg(a.table_id order by a.table_id), '[]'::jsonb)
                 from allocator.allocations a
                where a.restaurant_id = p_booking.restaurant_id and a.booking_id = p_booking.id));
end
$$;

comment on function allocator.booking_json(allocator.bookings) is
  'A booking as the jsonb the RPCs return (ids, state, version, party, start, end, tables)';

create or replace function allocator.check_party_size(p_party_size integer) returns void
language plpgsql
immutable
as $$
begin
  perform allocator.check_argument('party size', p_party_size, 1, 100);
end
$$;

comment on function allocator.check_party_size(integer) is 'Raise invalid_argument unless 1 <= party size <= 100';

-- The idempotency-key rule of every RPC that takes one: a key is 1 to 200 characters, and a
-- key seen before must come with the arguments of the call that first used it. Called once to
-- check the key, and again with what the key found (p_object, p_object_id) and whether the
-- arguments are the same.
create or replace function allocator.check_idempotency_key(
  p_key text,
  p_object text default null,
  p_object_id bigint default null,
  p_same_arguments boolean default true,
  p_detail text default null,
  p_hint text default null
) returns void
language plpgsql
immutable
as $$
begin
  if p_key is not null and (pg_catalog.btrim(p_key) = ''
                            or pg_catalog.length(p_key) > allocator.limit_of('idempotency_key_chars')) then
    perform allocator.raise_error('invalid_argument', pg_catalog.format('idempotency key must be 1 to %s characters',
      allocator.limit_of('idempotency_key_chars')));
  end if;
  if p_key is not null and p_object_id is not null and not coalesce(p_same_arguments, false) then
    perform allocator.raise_error('idempotency_mismatch',
      pg_catalog.format('idempotency key %s was used for %s %s with other arguments', p_key, p_object, p_object_id),
      p_detail, p_hint);
  end if;
end
$$;

comment on function allocator.check_idempotency_key(text, text, bigint, boolean, text, text) is
  'Raise invalid_argument (RA001) unless the idempotency key is NULL or 1 to 200 characters; given the object the key already made, raise idempotency_mismatch (RA008) unless p_same_arguments';

-- The period a booking occupies: from p_start for p_duration_minutes, or the turn time for
-- the party size of the service it starts in (the restaurant's when the service has none, or
-- the start is in no service).
create or replace function allocator.booking_period(
  p_restaurant allocator.restaurants,
  p_party_size integer,
  p_start timestamptz,
  p_duration_minutes integer
) returns tstzrange
language plpgsql
stable
as $$
declare
  v_minutes integer := coalesce(p_duration_minutes,
    allocator.party_turn_minutes(p_restaurant, allocator.service_at(p_restaurant, p_start), p_party_size));
begin
  if p_start is null then
    perform allocator.raise_error('invalid_argument', 'start time is required');
  end if;
  if v_minutes not between 15 and 720 then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('duration must be from 15 to 720 minutes, got %s', v_minutes),
      null, 'omit the duration to use the restaurant''s turn time for the party size');
  end if;
  if p_start < allocator.now() - interval '1 hour' then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('start %s is in the past', p_start));
  end if;
  if p_start > allocator.now() + interval '2 years' then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('start %s is more than two years ahead', p_start));
  end if;
  return pg_catalog.tstzrange(p_start, p_start + pg_catalog.make_interval(mins => v_minutes), '[)');
end
$$;

comment on function allocator.booking_period(allocator.restaurants, integer, timestamptz, integer) is
  'Validate a start and duration (default: the turn time for the party in the service it starts in) and return the booking period';

create or replace function allocator.zone_id(p_restaurant_id bigint, p_zone text) returns bigint
language plpgsql
stable
as $$
declare
  v_id bigint;
begin
  if p_zone is null then
    return null;
  end if;
  perform allocator.check_length('zone name', p_zone);
  select z.id into v_id from allocator.zones z where z.restaurant_id = p_restaurant_id and z.name = p_zone;
  if v_id is null then
    perform allocator.raise_error('not_found',
      pg_catalog.format('restaurant %s has no zone %s', p_restaurant_id, p_zone));
  end if;
  return v_id;
end
$$;

comment on function allocator.zone_id(bigint, text) is 'The id of a zone by name; not_found (RA002) if the restaurant has none such';

-- Validates and inserts a booking (state created), or returns the one its idempotency key
-- already names; queued for the engine (create_booking) or not (book assigns it at once).
-- The guest's contact: an e-mail address (3 to 254 characters, one @, no spaces or angle
-- brackets) and a locale tag (en, it, pt-BR), each optional.
create or replace function allocator.check_contact(p_guest_email text, p_locale text) returns void
language plpgsql
immutable
as $$
begin
  if p_guest_email is not null
     and (pg_catalog.length(p_guest_email) not between 3 and 254 or p_guest_email !~ '^[^@\s<>]+@[^@\s<>]+$') then
    perform allocator.raise_error('invalid_argument', 'guest_email must be an e-mail address of at most 254 characters',
      pg_catalog.format('got %s', pg_catalog.left(p_guest_email, 300)));
  end if;
  if p_locale is not null and p_locale !~ '^[a-z]{2,3}(-[A-Z]{2})?$' then
    perform allocator.raise_error('invalid_argument', 'locale must be a language tag such as en, it or pt-BR',
      pg_catalog.format('got %s', pg_catalog.left(p_locale, 300)));
  end if;
end
$$;

comment on function allocator.check_contact(text, text) is
  'Raise invalid_argument (RA001) unless the guest''s e-mail address and locale are well formed (each may be NULL)';

create or replace function allocator.insert_booking(
  p_restaurant_id bigint,
  p_party_size integer,
  p_start timestamptz,
  p_duration_minutes integer,
  p_idempotency_key text,
  p_preferred_zone text,
  p_metadata jsonb,
  p_actor text,
  p_enqueue boolean,
  p_guest_email text,
  p_locale text
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_period tstzrange;
  v_zone bigint;
  v_booking allocator.bookings;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_party_size(p_party_size);
  v_period := allocator.booking_period(v_restaurant, p_party_size, p_start, p_duration_minutes);
  v_zone := allocator.zone_id(p_restaurant_id, p_preferred_zone);
  perform allocator.check_idempotency_key(p_idempotency_key);
  if p_metadata is null or pg_catalog.jsonb_typeof(p_metadata) <> 'object' then
    perform allocator.raise_error('invalid_argument', 'metadata must be a JSON object');
  end if;
  perform allocator.check_size('metadata', p_metadata, 'metadata_bytes');
  perform allocator.check_contact(p_guest_email, p_locale);

  insert into allocator.bookings
         (restaurant_id, party_size, period, idempotency_key, preferred_zone_id, metadata, guest_email, locale)
  values (p_restaurant_id, p_party_size, v_period, p_idempotency_key, v_zone, p_metadata, p_guest_email, p_locale)
  on conflict (restaurant_id, idempotency_key) do nothing
  returning * into v_booking;

  if not found then
    -- The key was used before (or by a concurrent call that committed first).
    select b.* into v_booking from allocator.bookings b
     where b.restaurant_id = p_restaurant_id and b.idempotency_key = p_idempotency_key;
    perform allocator.check_idempotency_key(p_idempotency_key, 'booking', v_booking.id,
      (v_booking.party_size, pg_catalog.lower(v_booking.period), v_booking.preferred_zone_id)
        is not distinct from (p_party_size, pg_catalog.lower(v_period), v_zone)
        and (p_duration_minutes is null or pg_catalog.upper(v_booking.period) = pg_catalog.upper(v_period)),
      pg_catalog.format('existing: party %s at %s', v_booking.party_size, pg_catalog.lower(v_booking.period)),
      'use a new key for a new booking, or modify_booking to change this one');
    return allocator.booking_json(v_booking) || '{"created": false}'::jsonb;
  end if;

  perform allocator.record_state(p_restaurant_id, v_booking.id, null, 'created', v_booking.version,
    p_actor, 'created', pg_catalog.jsonb_build_object('party_size', p_party_size, 'period', v_period), p_enqueue);
  if p_enqueue then
    perform allocator.enqueue(p_restaurant_id, v_booking.id, 'created');
  end if;
  return allocator.booking_json(v_booking) || '{"created": true}'::jsonb;
end
$$;

comment on function allocator.insert_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text, boolean, text, text) is
  'Validate and insert a booking in state created (queued when p_enqueue), or return the booking its idempotency key names; the body of create_booking and book';

create or replace function allocator.create_booking(
  p_restaurant_id bigint,
  p_party_size integer,
  p_start timestamptz,
  p_duration_minutes integer default null,
  p_idempotency_key text default null,
  p_preferred_zone text default null,
  p_metadata jsonb default '{}'::jsonb,
  p_actor text default 'app',
  p_guest_email text default null,
  p_locale text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return allocator.insert_booking(p_restaurant_id, p_party_size, p_start, p_duration_minutes,
    p_idempotency_key, p_preferred_zone, p_metadata, p_actor, true, p_guest_email, p_locale);
end
$$;

comment on function allocator.create_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text, text, text) is
  'Create a booking (state created, queued for assignment), with the guest''s e-mail address and locale for notifications when given. Duration defaults to the turn time for the party; the same idempotency key with the same arguments returns the same booking, with other arguments raises idempotency_mismatch (RA008)';

-- Frees everything a booking holds: active holds are released and every allocation
-- (held or confirmed) is deleted.
create or replace function allocator.free_booking_tables(p_booking allocator.bookings, p_hold_status text) returns integer
language plpgsql
volatile
as $$
declare
  v_count integer;
  v_hold_id bigint;
begin
  for v_hold_id in
    update allocator.holds h
       set status = p_hold_status, closed_at = allocator.now()
     where h.restaurant_id = p_booking.restaurant_id and h.booking_id = p_booking.id and h.status = 'active'
    returning h.id
  loop
    perform allocator.emit_event(p_booking.restaurant_id, 'hold.' || p_hold_status, p_booking.id,
      pg_catalog.jsonb_build_object('hold_id', v_hold_id, 'booking_id', p_booking.id));
  end loop;
  delete from allocator.allocations a
   where a.restaurant_id = p_booking.restaurant_id and a.booking_id = p_booking.id;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function allocator.free_booking_tables(allocator.bookings, text) is
  'Release a booking''s active holds (as p_hold_status) and delete all its allocations; returns how many';

create or replace function allocator.modify_booking(
  p_booking_id bigint,
  p_expected_version integer,
  p_start timestamptz default null,
  p_duration_minutes integer default null,
  p_party_size integer default null,
  p_actor text default 'app',
  p_reason text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
  v_restaurant allocator.restaurants;
  v_party integer := coalesce(p_party_size, v_booking.party_size);
  v_period tstzrange;
  v_freed integer;
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_confirmed boolean := v_booking.state = 'confirmed';
  v_tables bigint[];
  v_seated jsonb;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_length('reason', p_reason, 'reason_chars');
  if p_expected_version is null then
    perform allocator.raise_error('invalid_argument', 'expected version is required');
  end if;
  perform allocator.check_version(v_booking, p_expected_version);
  if p_start is null and p_duration_minutes is null and p_party_size is null then
    perform allocator.raise_error('invalid_argument', 'nothing to modify',
      null, 'give a new start, duration or party size');
  end if;
  perform allocator.check_party_size(v_party);
  select r.* into v_restaurant from allocator.restaurants r where r.id = v_booking.restaurant_id;
  v_period := allocator.booking_period(v_restaurant, v_party,
    coalesce(p_start, pg_catalog.lower(v_booking.period)),
    coalesce(p_duration_minutes,
             case when p_party_size is null
                  then (extract(epoch from pg_catalog.upper(v_booking.period) - pg_catalog.lower(v_booking.period)) / 60)::integer
             end));
  perform allocator.check_can_move(v_booking, 'created', 'and can no longer be modified');
  if v_confirmed then
    -- A confirmed guest keeps the booking unless the change can be honoured now: it is
    -- admitted like a new booking (service, pacing without itself), seated on its own tables
    -- when they still fit and are free, else on others, else refused and nothing changes.
    if exists (select 1 from allocator.services s where s.restaurant_id = v_restaurant.id) then
      perform allocator.admit(v_restaurant, v_party, pg_catalog.lower(v_period), v_booking.preferred_zone_id,
        v_booking.id);
    end if;
    select pg_catalog.array_agg(a.table_id order by a.table_id) into v_tables
      from allocator.allocations a
     where a.restaurant_id = v_booking.restaurant_id and a.booking_id = v_booking.id and a.kind = 'confirmed';
  end if;

  v_freed := allocator.free_booking_tables(v_booking, 'released');
  update allocator.bookings b
     set party_size = v_party, period = v_period, assignment_attempts = 0
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  v_booking := allocator.transition(p_booking_id, p_expected_version, 'created', p_actor,
    coalesce(p_reason, 'modified'),
    pg_catalog.jsonb_build_object('party_size', v_party, 'period', v_period, 'freed_allocations', v_freed));
  if v_confirmed then
    v_seated := allocator.seat_at_once(v_booking, p_actor, v_started, v_tables, v_booking.preferred_zone_id);
    select b.* into v_booking from allocator.bookings b
     where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
    return allocator.booking_json(v_booking)
      || pg_catalog.jsonb_build_object('table_ids', v_seated -> 'table_ids',
                                       'kept_tables', v_seated -> 'table_ids' = pg_catalog.to_jsonb(v_tables));
  end if;
  perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'modified');
  return allocator.booking_json(v_booking);
end
$$;

comment on function allocator.modify_booking(bigint, integer, timestamptz, integer, integer, text, text) is
  'Change a booking''s start, duration or party size at p_expected_version. A confirmed booking is changed in one transaction or not at all: admitted at the new time (service hours and pacing when the restaurant has services), kept on its tables when they still fit and are free (kept_tables), else moved to others, else refused with unavailable (RA014) or outside_service (RA013) and alternatives, the booking unchanged. Any other booking drops its holds and allocations, returns to created and is queued again';

create or replace function allocator.cancel_booking(
  p_booking_id bigint,
  p_expected_version integer default null,
  p_actor text default 'app',
  p_reason text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
  v_freed integer;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_length('reason', p_reason, 'reason_chars');
  if v_booking.state = 'cancelled' then
    return allocator.booking_json(v_booking) || '{"changed": false}'::jsonb;
  end if;
  perform allocator.check_version(v_booking, p_expected_version);
  perform allocator.check_can_move(v_booking, 'cancelled', 'and cannot be cancelled');
  v_freed := allocator.free_booking_tables(v_booking, 'released');
  perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  -- A waitlist offer's booking is cancelled with its hold.
  if v_booking.state <> 'cancelled' then
    v_booking := allocator.transition(p_booking_id, v_booking.version, 'cancelled', p_actor,
      coalesce(p_reason, 'cancelled'), pg_catalog.jsonb_build_object('freed_allocations', v_freed));
  end if;
  if v_freed > 0 then
    perform allocator.offer_waitlist(v_booking.restaurant_id);
  end if;
  return allocator.booking_json(v_booking) || '{"changed": true}'::jsonb;
end
$$;

comment on function allocator.cancel_booking(bigint, integer, text, text) is
  'Cancel a booking and free its tables (offered to the waitlist); cancelling a cancelled booking changes nothing';


