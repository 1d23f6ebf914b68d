-- The evening on the floor: seating a party, its leaving, and no-shows (docs/floor.md). A
-- confirmed booking is seated (the real start), then finished (the rest of its time is free at
-- once), or a no-show (its tables free; the sweep marks one after floor.no_show_minutes).

-- A booking's confirmed allocations end at p_end: the rest of their time is free. One that
-- would end before it starts is deleted (the party never used it). Returns how many changed.
create or replace function allocator.release_from(p_booking allocator.bookings, p_end timestamptz) returns integer
language plpgsql
volatile
as $$
declare
  v_count integer;
  v_deleted integer;
begin
  delete from allocator.allocations a
   where a.restaurant_id = p_booking.restaurant_id and a.booking_id = p_booking.id and a.kind = 'confirmed'
     and pg_catalog.lower(a.period) >= p_end;
  get diagnostics v_deleted = row_count;
  update allocator.allocations a
     set period = pg_catalog.tstzrange(pg_catalog.lower(a.period), p_end, '[)')
   where a.restaurant_id = p_booking.restaurant_id and a.booking_id = p_booking.id and a.kind = 'confirmed'
     and pg_catalog.upper(a.period) > p_end;
  get diagnostics v_count = row_count;
  return v_count + v_deleted;
end
$$;

comment on function allocator.release_from(allocator.bookings, timestamptz) is
  'End a booking''s confirmed allocations at p_end (deleting those that start at or after it): the rest of their time is free; returns how many changed';

-- The floor settings of a restaurant, with the defaults for keys stored before they existed.
create or replace function allocator.floor_setting(p_restaurant_id bigint, p_key text) returns integer
language sql
stable
as $$
  select coalesce((r.settings #>> array['floor', p_key])::integer,
                  (allocator.default_settings() #>> array['floor', p_key])::integer)
    from allocator.restaurants r where r.id = p_restaurant_id
$$;

comment on function allocator.floor_setting(bigint, text) is
  'A floor setting of the restaurant (floor.early_seating_minutes, floor.no_show_minutes), or its default';

-- The common start of a floor action: the booking locked, the actor and reason checked, the
-- version when given, and the move allowed from its state.
create or replace function allocator.floor_booking(
  p_booking_id bigint,
  p_expected_version integer,
  p_actor text,
  p_reason text,
  p_to_state text,
  p_refusal text,
  p_hint text default null
) returns allocator.bookings
language plpgsql
volatile
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_length('reason', p_reason, 'reason_chars');
  if p_expected_version is not null then
    perform allocator.check_version(v_booking, p_expected_version);
  end if;
  perform allocator.check_can_move(v_booking, p_to_state, p_refusal, p_hint);
  return v_booking;
end
$$;

comment on function allocator.floor_booking(bigint, integer, text, text, text, text, text) is
  'Lock a booking for a floor action and check the actor, reason, version (when given) and that it may move to p_to_state (RA005 worded with p_refusal)';

create or replace function allocator.seat_booking(
  p_booking_id bigint,
  p_expected_version integer default null,
  p_actor text default 'staff',
  p_reason text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.floor_booking(p_booking_id, p_expected_version, p_actor, p_reason,
    'seated', 'and cannot be seated', 'only a confirmed booking is seated');
  v_early integer;
  v_start timestamptz := pg_catalog.lower(v_booking.period);
begin
  v_early := allocator.floor_setting(v_booking.restaurant_id, 'early_seating_minutes');
  if allocator.now() < v_start - pg_catalog.make_interval(mins => v_early) then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('booking %s starts at %s: a party is seated at most %s minutes early', v_booking.id,
                        v_start, v_early),
      null, 'change floor.early_seating_minutes, or modify the booking to an earlier time');
  end if;
  if allocator.now() >= pg_catalog.upper(v_booking.period) then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('booking %s ended at %s', v_booking.id, pg_catalog.upper(v_booking.period)));
  end if;
  -- Seated early, the party takes its tables from now: only if nobody else has them.
  if allocator.now() < v_start then
    perform allocator.lock_tables(v_booking.restaurant_id,
      (select pg_catalog.array_agg(a.table_id) from allocator.allocations a
        where a.restaurant_id = v_booking.restaurant_id and a.booking_id = v_booking.id and a.kind = 'confirmed'),
      true);
    begin
      update allocator.allocations a
         set period = pg_catalog.tstzrange(allocator.now(), pg_catalog.upper(a.period), '[)')
       where a.restaurant_id = v_booking.restaurant_id and a.booking_id = v_booking.id and a.kind = 'confirmed';
    exception when exclusion_violation then
      perform allocator.raise_error('conflict',
        pg_catalog.format('a table of booking %s is still taken before %s', v_booking.id, v_start), null,
        'seat the party at its time, or at another table (manual_assign)');
    end;
  end if;
  update allocator.bookings b set seated_at = allocator.now()
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  v_booking := allocator.transition(v_booking.id, v_booking.version, 'seated', p_actor, coalesce(p_reason, 'seated'),
    pg_catalog.jsonb_build_object('seated_at', allocator.now(),
      'minutes_late', pg_catalog.round(extract(epoch from allocator.now() - v_start) / 60)));
  return allocator.booking_json(v_booking) || pg_catalog.jsonb_build_object('seated_at', v_booking.seated_at);
end
$$;

comment on function allocator.seat_booking(bigint, integer, text, text) is
  'Seat a confirmed booking''s party now (state seated, seated_at): from floor.early_seating_minutes before its start (its tables taken from now, conflict RA003 if another party still has one) to its end';

create or replace function allocator.finish_booking(
  p_booking_id bigint,
  p_expected_version integer default null,
  p_actor text default 'staff',
  p_reason text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.floor_booking(p_booking_id, p_expected_version, p_actor, p_reason,
    'finished', 'and cannot be finished', 'seat the party first');
  v_freed integer;
begin
  -- The tables are free once cleared: now plus the restaurant's buffer.
  v_freed := allocator.release_from(v_booking, allocator.now()
    + pg_catalog.make_interval(mins => (select (r.settings ->> 'buffer_minutes')::integer
                                          from allocator.restaurants r where r.id = v_booking.restaurant_id)));
  update allocator.bookings b set finished_at = allocator.now()
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  v_booking := allocator.transition(v_booking.id, v_booking.version, 'finished', p_actor, coalesce(p_reason, 'left'),
    pg_catalog.jsonb_build_object('finished_at', allocator.now(), 'freed_allocations', v_freed,
      'minutes_seated', pg_catalog.round(extract(epoch from allocator.now() - v_booking.seated_at) / 60)));
  return allocator.booking_json(v_booking) || pg_catalog.jsonb_build_object('freed_allocations', v_freed);
end
$$;

comment on function allocator.finish_booking(bigint, integer, text, text) is
  'The seated party has left (state finished, finished_at): its tables are free from now plus the buffer';

create or replace function allocator.mark_no_show(
  p_booking_id bigint,
  p_expected_version integer default null,
  p_actor text default 'staff',
  p_reason text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.floor_booking(p_booking_id, p_expected_version, p_actor, p_reason,
    'no_show', 'and cannot be a no-show');
  v_freed integer;
begin
  if allocator.now() < pg_catalog.lower(v_booking.period) then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('booking %s starts at %s: a party is a no-show only after its start', v_booking.id,
                        pg_catalog.lower(v_booking.period)));
  end if;
  v_freed := allocator.release_from(v_booking, allocator.now());
  update allocator.bookings b set finished_at = allocator.now()
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  v_booking := allocator.transition(v_booking.id, v_booking.version, 'no_show', p_actor, coalesce(p_reason, 'did not come'),
    pg_catalog.jsonb_build_object('freed_allocations', v_freed));
  return allocator.booking_json(v_booking) || pg_catalog.jsonb_build_object('freed_allocations', v_freed);
end
$$;

comment on function allocator.mark_no_show(bigint, integer, text, text) is
  'The party of a confirmed booking did not come (state no_show), from its start on: its tables are free from now';

-- The no-show sweep (pg_cron, every minute): confirmed bookings whose start is
-- floor.no_show_minutes past and whose party nobody seated. Skips bookings another session
-- holds; returns how many it marked.
create or replace function allocator.mark_no_shows(p_limit integer default 100) returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id bigint;
  v_count integer := 0;
begin
  perform allocator.check_argument('limit', p_limit, 1, 10000);
  for v_id in
    select b.id from allocator.bookings b
      join allocator.restaurants r on r.id = b.restaurant_id
     where b.state = 'confirmed'
       and pg_catalog.lower(b.period) + pg_catalog.make_interval(
             mins => coalesce((r.settings #>> '{floor,no_show_minutes}')::integer,
                              (allocator.default_settings() #>> '{floor,no_show_minutes}')::integer)) <= allocator.now()
       and allocator.tenant_allows(b.restaurant_id)
     order by b.id
     limit p_limit
     for update of b skip locked
  loop
    perform allocator.mark_no_show(v_id, null, 'system:no-show-sweep', 'not seated within floor.no_show_minutes');
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

comment on function allocator.mark_no_shows(integer) is
  'Mark as no_show up to p_limit confirmed bookings whose party was not seated within floor.no_show_minutes of the start (the pg_cron job allocator-no-shows, every minute); skips locked bookings';

-- Each table of a restaurant at an instant: what is on it, until when, and who is next.
create or replace function allocator.floor_at(p_restaurant_id bigint, p_at timestamptz default null)
returns table (
  table_id bigint,
  label text,
  zone text,
  status text,
  booking_id bigint,
  party_size integer,
  late boolean,
  frees_at timestamptz,
  next_booking_id bigint,
  next_at timestamptz,
  next_party_size integer
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_at timestamptz := coalesce(p_at, allocator.now());
begin
  if not pg_catalog.isfinite(v_at) then
    perform allocator.raise_error('invalid_argument', 'the floor is shown at a finite instant');
  end if;
  return query
  select t.id, t.label, z.name,
         case when not t.active then 'inactive'
              when cur.kind = 'hold' then 'held'
              when cur.state = 'seated' then 'seated'
              when cur.kind = 'confirmed' then 'booked'
              else 'free' end,
         cur.booking_id, cur.party_size,
         coalesce(cur.kind = 'confirmed' and cur.state = 'confirmed' and cur.starts < least(v_at, allocator.now()), false),
         cur.ends,
         nxt.booking_id, nxt.starts, nxt.party_size
    from allocator.tables t
    left join allocator.zones z on z.restaurant_id = t.restaurant_id and z.id = t.zone_id
    left join lateral (
      select a.kind, a.booking_id, b.party_size, b.state, pg_catalog.lower(b.period) as starts,
             pg_catalog.upper(a.period) as ends
        from allocator.allocations a
        join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
       where a.restaurant_id = t.restaurant_id and a.table_id = t.id and a.period @> v_at
         and (a.kind = 'confirmed' or a.expires_at > allocator.now())
       order by a.kind = 'confirmed' desc
       limit 1) cur on true
    left join lateral (
      select a.booking_id, b.party_size, pg_catalog.lower(a.period) as starts
        from allocator.allocations a
        join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
       where a.restaurant_id = t.restaurant_id and a.table_id = t.id and a.kind = 'confirmed'
         and pg_catalog.lower(a.period) > v_at
       order by pg_catalog.lower(a.period)
       limit 1) nxt on true
   where t.restaurant_id = v_restaurant.id
   order by t.label;
end
$$;

comment on function allocator.floor_at(bigint, timestamptz) is
  'Each table of the restaurant at p_at (default now): free, held, booked (late when its start has passed, by now and by p_at, and nobody seated the party), seated or inactive; the booking on it and when it frees; the next booking and when it starts';
