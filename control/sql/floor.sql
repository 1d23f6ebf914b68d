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
  perform allocator.offer_waitlist(v_booking.restaurant_id);
  return allocator.booking_json(v_booking) || pg_catalog.jsonb_build_object('freed_allocations', v_freed);
end
$$;

comment on function allocator.finish_booking(bigint, integer, text, text) is
  'The seated party has left (state finished, finished_at): its tables are free from now plus the buffer, and offered to the waitlist';

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
  perform allocator.offer_waitlist(v_booking.restaurant_id);
  return allocator.booking_json(v_booking) || pg_catalog.jsonb_build_object('freed_allocations', v_freed);
end
$$;

comment on function allocator.mark_no_show(bigint, integer, text, text) is
  'The party of a confirmed booking did not come (state no_show), from its start on: its tables are free from now, and offered to the waitlist';

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

-- The moments tables may free within 12 hours: now, and the ends of live allocations and of
-- blocks (on p_table_id only, when given). Walk-in and waitlist quotes look only at these.
create or replace function allocator.release_moments(p_restaurant_id bigint, p_table_id bigint)
returns setof timestamptz
language sql
stable
as $$
  select allocator.now()
  union
  select pg_catalog.upper(a.period) from allocator.allocations a
   where a.restaurant_id = p_restaurant_id and (p_table_id is null or a.table_id = p_table_id)
     and pg_catalog.upper(a.period) > allocator.now()
     and pg_catalog.upper(a.period) < allocator.now() + interval '12 hours'
     and (a.kind = 'confirmed' or a.expires_at > allocator.now())
  union
  select pg_catalog.upper(k.period) from allocator.table_blocks k
   where k.restaurant_id = p_restaurant_id and (p_table_id is null or k.table_id = p_table_id)
     and pg_catalog.upper(k.period) > allocator.now()
     and pg_catalog.upper(k.period) < allocator.now() + interval '12 hours'
$$;

comment on function allocator.release_moments(bigint, bigint) is
  'Now, and the ends of the restaurant''s live allocations and blocks within 12 hours (of one table when p_table_id is given)';

-- When a party could sit: the first of the release moments at which a free table or
-- combination seats it for p_minutes (the engine's rules: availability, holds, blocks). NULL
-- if none within 12 hours.
create or replace function allocator.walk_in_free_at(
  p_restaurant_id bigint,
  p_party_size integer,
  p_minutes integer,
  p_zone_id bigint
) returns timestamptz
language sql
stable
as $$
  select t.at
    from allocator.release_moments(p_restaurant_id, null) t (at)
   where exists (select 1 from allocator.availability(p_restaurant_id,
                   pg_catalog.tstzrange(t.at, t.at + pg_catalog.make_interval(mins => p_minutes), '[)')) a
                  where p_party_size between a.min_capacity and a.max_capacity
                    and (p_zone_id is null or a.zone_ids = array[p_zone_id]))
   order by t.at
   limit 1
$$;

comment on function allocator.walk_in_free_at(bigint, integer, integer, bigint) is
  'The first instant from now (now, or when an allocation or block ends, within 12 hours) at which a free table or combination seats the party for p_minutes; NULL if none';

create or replace function allocator.seat_walk_in(
  p_restaurant_id bigint,
  p_party_size integer,
  p_zone text default null,
  p_actor text default 'staff'
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_zone bigint;
  v_minutes integer;
  v_booking allocator.bookings;
  v_seated jsonb;
  v_free_at timestamptz;
  v_id bigint;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_party_size(p_party_size);
  v_zone := allocator.zone_id(v_restaurant.id, p_zone);
  if not allocator.party_fits_layout(v_restaurant.id, p_party_size) then
    perform allocator.raise_error('unavailable',
      pg_catalog.format('no table or combination of restaurant %s seats a party of %s', v_restaurant.id, p_party_size));
  end if;
  v_minutes := allocator.predicted_turn_minutes(v_restaurant, allocator.service_at(v_restaurant, allocator.now()),
    p_party_size);
  v_id := (allocator.insert_booking(v_restaurant.id, p_party_size, allocator.now(), v_minutes, null, p_zone,
             '{"walk_in": true}', p_actor, false, null, null) ->> 'booking_id')::bigint;
  select b.* into v_booking from allocator.bookings b where b.restaurant_id = v_restaurant.id and b.id = v_id;
  begin
    v_seated := allocator.seat_at_once(v_booking, p_actor, pg_catalog.clock_timestamp(), null, v_zone);
  exception when sqlstate 'RA014' then
    -- No table now: say when one frees (nothing of the walk-in is kept).
    v_free_at := allocator.walk_in_free_at(v_restaurant.id, p_party_size, v_minutes, v_zone);
    perform allocator.raise_error('unavailable',
      pg_catalog.format('no table of restaurant %s seats a party of %s now', v_restaurant.id, p_party_size),
      pg_catalog.jsonb_build_object('free_at', v_free_at, 'quoted_wait_minutes',
        case when v_free_at is not null
             then pg_catalog.ceil(extract(epoch from v_free_at - allocator.now()) / 60)::integer end)::text,
      'quote the wait to the party');
  end;
  return allocator.seat_booking(v_booking.id, null, p_actor, 'walk-in')
    || pg_catalog.jsonb_build_object('table_ids', v_seated -> 'table_ids', 'turn_minutes', v_minutes);
end
$$;

comment on function allocator.seat_walk_in(bigint, integer, text, text) is
  'Seat a party that walks in now, for its learned turn time, on the engine''s best free plan (state seated at once); when no table is free, unavailable (RA014) with DETAIL {"free_at", "quoted_wait_minutes"} and nothing written';
