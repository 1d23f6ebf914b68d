-- The waitlist (docs/floor.md): parties that could not be seated now, quoted a wait; when a
-- fitting table frees (a party leaves, a no-show, a cancellation, a lapsed offer, a block
-- removed) the first fitting party is offered it: a booking that holds the table for
-- floor.offer_minutes until staff seat the party, or is cancelled when the offer lapses.

create or replace function allocator.waitlist_json(p_entry allocator.waitlist) returns jsonb
language sql
stable
as $$
  select pg_catalog.jsonb_build_object('waitlist_id', p_entry.id, 'restaurant_id', p_entry.restaurant_id,
    'party_size', p_entry.party_size, 'status', p_entry.status, 'quoted_minutes', p_entry.quoted_minutes,
    'booking_id', p_entry.booking_id, 'offer_expires_at', p_entry.offer_expires_at,
    'created_at', p_entry.created_at)
$$;

comment on function allocator.waitlist_json(allocator.waitlist) is 'A waitlist entry as JSON (the contact is left out)';

-- The quoted wait of a party: each table is free from some moment (now, or when an
-- allocation or block on it ends, for a turn); the parties waiting ahead take, in order, the
-- fitting table free first, a turn each (their learned turn time and the buffer); the party
-- gets the first fitting table left. A party no single table seats waits for the first
-- combination (walk_in_free_at). Minutes from now, or NULL when nothing frees within 12 hours.
create or replace function allocator.waitlist_quote(
  p_restaurant allocator.restaurants,
  p_party_size integer,
  p_zone_id bigint,
  p_minutes integer
) returns integer
language plpgsql
stable
as $$
declare
  v_buffer interval := pg_catalog.make_interval(mins => (p_restaurant.settings ->> 'buffer_minutes')::integer);
  v_free jsonb := '{}'::jsonb;
  v_turns jsonb := '{}'::jsonb;
  v_service allocator.services := allocator.service_at(p_restaurant, allocator.now());
  v_ahead record;
  v_table record;
  v_pick text;
  v_at timestamptz;
begin
  -- When each table is free for a turn (availability: allocations, holds, blocks, buffer).
  for v_table in
    select t.id,
           (select min(m.at) from allocator.release_moments(p_restaurant.id, t.id) m (at)
             where exists (select 1 from allocator.availability(p_restaurant.id,
                             pg_catalog.tstzrange(m.at, m.at + pg_catalog.make_interval(mins => p_minutes), '[)')) a
                            where a.table_ids = array[t.id])) as at
      from allocator.tables t
     where t.restaurant_id = p_restaurant.id and t.active
  loop
    if v_table.at is not null then
      v_free := v_free || pg_catalog.jsonb_build_object(v_table.id::text, v_table.at);
    end if;
  end loop;
  -- The parties ahead, in order, each on the fitting table free first.
  for v_ahead in
    select w.party_size, w.zone_id from allocator.waitlist w
     where w.restaurant_id = p_restaurant.id and w.status = 'waiting'
     order by w.created_at, w.id
     limit 200
  loop
    select f.key into v_pick
      from pg_catalog.jsonb_each_text(v_free) f
      join allocator.tables t on t.restaurant_id = p_restaurant.id and t.id = f.key::bigint
     where v_ahead.party_size between t.min_capacity and t.max_capacity
       and (v_ahead.zone_id is null or t.zone_id = v_ahead.zone_id)
     order by f.value::timestamptz, t.id
     limit 1;
    if v_pick is not null then
      -- One learned turn time per party size, not one per party.
      if not v_turns ? v_ahead.party_size::text then
        v_turns := v_turns || pg_catalog.jsonb_build_object(v_ahead.party_size::text,
          allocator.predicted_turn_minutes(p_restaurant, v_service, v_ahead.party_size));
      end if;
      v_free := v_free || pg_catalog.jsonb_build_object(v_pick, (v_free ->> v_pick)::timestamptz
        + pg_catalog.make_interval(mins => (v_turns ->> v_ahead.party_size::text)::integer) + v_buffer);
    end if;
  end loop;
  select min(f.value::timestamptz) into v_at
    from pg_catalog.jsonb_each_text(v_free) f
    join allocator.tables t on t.restaurant_id = p_restaurant.id and t.id = f.key::bigint
   where p_party_size between t.min_capacity and t.max_capacity
     and (p_zone_id is null or t.zone_id = p_zone_id);
  if v_at is null and not exists (select 1 from allocator.tables t
                                   where t.restaurant_id = p_restaurant.id and t.active
                                     and p_party_size between t.min_capacity and t.max_capacity) then
    v_at := allocator.walk_in_free_at(p_restaurant.id, p_party_size, p_minutes, p_zone_id);
  end if;
  return pg_catalog.ceil(extract(epoch from v_at - allocator.now()) / 60)::integer;
end
$$;

comment on function allocator.waitlist_quote(allocator.restaurants, integer, bigint, integer) is
  'Quoted wait in minutes of a party joining the waitlist: the parties waiting ahead take, in order, the fitting table free first for a turn each; the party gets the first fitting table left (a combination for parties no table seats); NULL when nothing frees within 12 hours';

-- Offer freed tables to the waitlist: the waiting parties, oldest first (at most 20 a call),
-- each given a booking that holds the engine's best free plan now for floor.offer_minutes.
-- A party nothing fits keeps waiting. Returns how many were offered a table.
create or replace function allocator.offer_waitlist(p_restaurant_id bigint, p_actor text default 'system:waitlist')
returns integer
language plpgsql
volatile
as $$
declare
  v_restaurant allocator.restaurants;
  v_entry allocator.waitlist;
  v_booking allocator.bookings;
  v_plan jsonb;
  v_offer integer;
  v_count integer := 0;
  v_id bigint;
begin
  select r.* into v_restaurant from allocator.restaurants r where r.id = p_restaurant_id;
  v_offer := coalesce((v_restaurant.settings #>> '{floor,offer_minutes}')::integer,
                      (allocator.default_settings() #>> '{floor,offer_minutes}')::integer);
  for v_entry in
    select w.* from allocator.waitlist w
     where w.restaurant_id = p_restaurant_id and w.status = 'waiting'
     order by w.created_at, w.id
     limit 20
     for update skip locked
  loop
    begin
      v_id := (allocator.insert_booking(p_restaurant_id, v_entry.party_size, allocator.now(),
                 allocator.predicted_turn_minutes(v_restaurant, allocator.service_at(v_restaurant, allocator.now()),
                   v_entry.party_size), null,
                 (select z.name from allocator.zones z where z.restaurant_id = p_restaurant_id and z.id = v_entry.zone_id),
                 pg_catalog.jsonb_build_object('waitlist_id', v_entry.id), p_actor, false, null, null)
               ->> 'booking_id')::bigint;
      select b.* into v_booking from allocator.bookings b where b.restaurant_id = p_restaurant_id and b.id = v_id;
      v_plan := allocator.hold_first_plan(v_booking, p_actor, null, v_offer * 60, null);
      if v_plan is null then
        -- Nothing fits now: the booking made for the offer is undone with this block.
        raise sqlstate 'RA014';
      end if;
      update allocator.waitlist w
         set status = 'offered', booking_id = v_booking.id,
             offer_expires_at = allocator.now() + pg_catalog.make_interval(mins => v_offer)
       where w.restaurant_id = v_entry.restaurant_id and w.id = v_entry.id;
      perform allocator.emit_event(p_restaurant_id, 'waitlist.offered', v_booking.id,
        pg_catalog.jsonb_build_object('waitlist_id', v_entry.id, 'booking_id', v_booking.id,
          'party_size', v_entry.party_size, 'table_ids', v_plan -> 'table_ids',
          'expires_at', allocator.now() + pg_catalog.make_interval(mins => v_offer), 'actor', p_actor));
      v_count := v_count + 1;
    exception when sqlstate 'RA014' then
      null;
    end;
  end loop;
  return v_count;
end
$$;

comment on function allocator.offer_waitlist(bigint, text) is
  'Offer free tables to waiting parties, oldest first (at most 20): each gets a booking holding the best free plan for floor.offer_minutes (event waitlist.offered); returns how many';

create or replace function allocator.join_waitlist(
  p_restaurant_id bigint,
  p_party_size integer,
  p_contact text,
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
  v_ahead integer;
  v_entry allocator.waitlist;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_party_size(p_party_size);
  if p_contact is null or pg_catalog.btrim(p_contact) = '' or pg_catalog.length(p_contact) > 200 then
    perform allocator.raise_error('invalid_argument', 'a party on the waitlist needs a contact of 1 to 200 characters',
      null, 'a name and a phone number');
  end if;
  v_zone := allocator.zone_id(v_restaurant.id, p_zone);
  if not allocator.party_fits_layout(v_restaurant.id, p_party_size) then
    perform allocator.raise_error('unavailable',
      pg_catalog.format('no table or combination of restaurant %s seats a party of %s', v_restaurant.id, p_party_size));
  end if;
  -- Parties ahead that a table fitting this one would seat too.
  select pg_catalog.count(*) into v_ahead from allocator.waitlist w
   where w.restaurant_id = v_restaurant.id and w.status in ('waiting', 'offered')
     and exists (select 1 from allocator.tables t
                  where t.restaurant_id = v_restaurant.id and t.active
                    and p_party_size between t.min_capacity and t.max_capacity
                    and w.party_size between t.min_capacity and t.max_capacity);
  insert into allocator.waitlist as w (restaurant_id, party_size, contact, zone_id, quoted_minutes)
  values (v_restaurant.id, p_party_size, p_contact, v_zone,
          allocator.waitlist_quote(v_restaurant, p_party_size, v_zone,
            allocator.predicted_turn_minutes(v_restaurant, allocator.service_at(v_restaurant, allocator.now()),
              p_party_size)))
  returning w.* into v_entry;
  perform allocator.emit_event(v_restaurant.id, 'waitlist.joined', null,
    allocator.waitlist_json(v_entry) || pg_catalog.jsonb_build_object('actor', p_actor, 'ahead', v_ahead));
  perform allocator.offer_waitlist(v_restaurant.id);
  select w.* into v_entry from allocator.waitlist w where w.restaurant_id = v_restaurant.id and w.id = v_entry.id;
  return allocator.waitlist_json(v_entry) || pg_catalog.jsonb_build_object('ahead', v_ahead);
end
$$;

comment on function allocator.join_waitlist(bigint, integer, text, text, text) is
  'Put a party on the waitlist with a quoted wait (quoted_minutes: when a fitting table frees for its learned turn time, after the fitting parties ahead; NULL beyond 12 hours); offered a table at once if one is free';

-- The entry of a restaurant, locked; not_found (RA002) otherwise.
create or replace function allocator.lock_waitlist(p_restaurant_id bigint, p_id bigint) returns allocator.waitlist
language plpgsql
volatile
as $$
declare
  v_entry allocator.waitlist;
begin
  select w.* into v_entry from allocator.waitlist w
   where w.restaurant_id = p_restaurant_id and w.id = p_id and allocator.tenant_allows(w.restaurant_id)
   for update;
  if v_entry.id is null then
    perform allocator.raise_error('not_found',
      pg_catalog.format('waitlist entry %s of restaurant %s does not exist', coalesce(p_id::text, 'NULL'), p_restaurant_id));
  end if;
  return v_entry;
end
$$;

comment on function allocator.lock_waitlist(bigint, bigint) is
  'Lock a waitlist entry of the restaurant; not_found (RA002) if there is none';

create or replace function allocator.seat_from_waitlist(p_restaurant_id bigint, p_waitlist_id bigint, p_actor text default 'staff')
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry allocator.waitlist := allocator.lock_waitlist(p_restaurant_id, p_waitlist_id);
  v_booking allocator.bookings;
  v_hold allocator.holds;
  v_result jsonb;
begin
  perform allocator.actor_role(p_actor);
  if v_entry.status <> 'offered' then
    perform allocator.raise_error('invalid_transition',
      pg_catalog.format('waitlist entry %s is %s, not offered a table', v_entry.id, v_entry.status), null,
      'a waiting party is seated with seat_walk_in when a table is free');
  end if;
  v_booking := allocator.lock_booking(v_entry.booking_id);
  select h.* into v_hold from allocator.holds h
   where h.restaurant_id = v_booking.restaurant_id and h.booking_id = v_booking.id and h.status = 'active'
     and h.expires_at > allocator.now();
  if v_hold.id is null then
    perform allocator.raise_error('invalid_transition',
      pg_catalog.format('the offer to waitlist entry %s has lapsed', v_entry.id));
  end if;
  perform allocator.confirm_hold_allocations(v_hold, v_booking, p_actor, 'seated from the waitlist');
  v_result := allocator.seat_booking(v_booking.id, null, p_actor, 'seated from the waitlist');
  update allocator.waitlist w
     set status = 'seated', closed_at = allocator.now(), closed_by = p_actor
   where w.restaurant_id = v_entry.restaurant_id and w.id = v_entry.id;
  perform allocator.emit_event(v_entry.restaurant_id, 'waitlist.seated', v_booking.id,
    pg_catalog.jsonb_build_object('waitlist_id', v_entry.id, 'booking_id', v_booking.id, 'actor', p_actor,
      'waited_minutes', pg_catalog.round(extract(epoch from allocator.now() - v_entry.created_at) / 60),
      'quoted_minutes', v_entry.quoted_minutes));
  return v_result || pg_catalog.jsonb_build_object('waitlist_id', v_entry.id);
end
$$;

comment on function allocator.seat_from_waitlist(bigint, bigint, text) is
  'Seat an offered waitlist party on the table held for it (its booking confirmed and seated; event waitlist.seated with the wait and the quote); RA005 when the entry is not offered or the offer lapsed';

create or replace function allocator.remove_from_waitlist(
  p_restaurant_id bigint,
  p_waitlist_id bigint,
  p_actor text default 'staff',
  p_reason text default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_entry allocator.waitlist := allocator.lock_waitlist(p_restaurant_id, p_waitlist_id);
  v_hold allocator.holds;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_length('reason', p_reason, 'reason_chars');
  if v_entry.status not in ('waiting', 'offered') then
    perform allocator.raise_error('invalid_transition',
      pg_catalog.format('waitlist entry %s is %s already', v_entry.id, v_entry.status));
  end if;
  update allocator.waitlist w
     set status = 'removed', closed_at = allocator.now(), closed_by = p_actor, closed_reason = p_reason
   where w.restaurant_id = v_entry.restaurant_id and w.id = v_entry.id;
  if v_entry.booking_id is not null then
    perform allocator.lock_booking(v_entry.booking_id);
    for v_hold in select h.* from allocator.holds h
                   where h.restaurant_id = v_entry.restaurant_id and h.booking_id = v_entry.booking_id
                     and h.status = 'active' loop
      perform allocator.close_hold(v_hold, 'released', p_actor, 'removed from the waitlist');
    end loop;
  end if;
  perform allocator.emit_event(v_entry.restaurant_id, 'waitlist.removed', v_entry.booking_id,
    pg_catalog.jsonb_build_object('waitlist_id', v_entry.id, 'actor', p_actor, 'reason', p_reason));
  perform allocator.offer_waitlist(v_entry.restaurant_id);
  select w.* into v_entry from allocator.waitlist w where w.restaurant_id = p_restaurant_id and w.id = p_waitlist_id;
  return allocator.waitlist_json(v_entry);
end
$$;

comment on function allocator.remove_from_waitlist(bigint, bigint, text, text) is
  'Take a waiting or offered party off the waitlist (an offer''s table is released and offered to the next party); event waitlist.removed';

-- The waitlist sweep (pg_cron, every minute): offers what freed meanwhile, in every
-- restaurant with parties waiting (a lapsed offer's table among it).
create or replace function allocator.offer_waitlists(p_limit integer default 100) returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant bigint;
  v_count integer := 0;
begin
  perform allocator.check_argument('limit', p_limit, 1, 10000);
  for v_restaurant in
    select distinct w.restaurant_id from allocator.waitlist w
     where w.status = 'waiting' and allocator.tenant_allows(w.restaurant_id)
     order by 1 limit p_limit
  loop
    v_count := v_count + allocator.offer_waitlist(v_restaurant);
  end loop;
  return v_count;
end
$$;

comment on function allocator.offer_waitlists(integer) is
  'Offer freed tables to waiting parties in up to p_limit restaurants (the pg_cron job allocator-waitlist, every minute); returns how many offers were made';

-- A waitlist offer ended without the party seated: its booking (which was only the offer) is
-- cancelled, and the entry expired when the hold lapsed. Called by close_hold.
create or replace function allocator.waitlist_offer_closed(p_booking allocator.bookings, p_status text, p_actor text)
returns void
language plpgsql
volatile
as $$
begin
  perform allocator.transition(p_booking.id, p_booking.version, 'cancelled', p_actor,
    'waitlist offer ' || p_status, pg_catalog.jsonb_build_object('waitlist_id', p_booking.metadata -> 'waitlist_id'));
  update allocator.waitlist w
     set status = case p_status when 'expired' then 'expired' else 'removed' end,
         closed_at = allocator.now(), closed_by = p_actor,
         closed_reason = case p_status when 'expired' then 'the offer lapsed' else 'the offer was released' end
   where w.restaurant_id = p_booking.restaurant_id and w.id = (p_booking.metadata ->> 'waitlist_id')::bigint
     and w.status = 'offered';
  if found then
    perform allocator.emit_event(p_booking.restaurant_id,
      case p_status when 'expired' then 'waitlist.expired' else 'waitlist.removed' end, p_booking.id,
      pg_catalog.jsonb_build_object('waitlist_id', p_booking.metadata -> 'waitlist_id', 'actor', p_actor));
  end if;
end
$$;

comment on function allocator.waitlist_offer_closed(allocator.bookings, text, text) is
  'End a waitlist offer whose hold closed: cancel its booking; the entry, if still offered, expires (a lapsed offer, event waitlist.expired) or is removed (a released one, event waitlist.removed)';
