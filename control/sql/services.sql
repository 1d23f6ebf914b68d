-- Service periods, pacing, slot search and the instant booking (docs/booking-flow.md).

create or replace function allocator.service_json(p_service allocator.services) returns jsonb
language sql
stable
as $$
  select pg_catalog.jsonb_build_object(
    'service_id', p_service.id, 'restaurant_id', p_service.restaurant_id, 'name', p_service.name,
    'days', p_service.days, 'opens', p_service.opens, 'last_seating', p_service.last_seating,
    'pacing_covers', p_service.pacing_covers, 'pacing_parties', p_service.pacing_parties,
    'turn_minutes', p_service.turn_minutes)
$$;

comment on function allocator.service_json(allocator.services) is 'A service period as JSON';

create or replace function allocator.set_service(
  p_restaurant_id bigint,
  p_name text,
  p_days integer[],
  p_opens time,
  p_last_seating time,
  p_pacing_covers integer default null,
  p_pacing_parties integer default null,
  p_turn_minutes jsonb default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_service allocator.services;
begin
  if p_name is null or pg_catalog.btrim(p_name) = '' then
    perform allocator.raise_error('invalid_argument', 'a service needs a name', null, 'for example lunch or dinner');
  end if;
  perform allocator.check_length('service name', p_name);
  if p_days is null or pg_catalog.array_ndims(p_days) is distinct from 1
     or pg_catalog.cardinality(p_days) not between 1 and 7
     or pg_catalog.array_position(p_days, null) is not null
     or exists (select 1 from pg_catalog.unnest(p_days) d where d not between 1 and 7)
     or (select pg_catalog.count(distinct d) from pg_catalog.unnest(p_days) d) <> pg_catalog.cardinality(p_days) then
    perform allocator.raise_error('invalid_argument', 'days must list weekdays from 1 (Monday) to 7 (Sunday), each once',
      pg_catalog.format('got %s', coalesce(p_days::text, 'NULL')));
  end if;
  if p_opens is null or p_last_seating is null or p_opens > p_last_seating then
    perform allocator.raise_error('invalid_argument',
      'a service needs an opening time and a last seating time no earlier than it',
      pg_catalog.format('got %s to %s', coalesce(p_opens::text, 'NULL'), coalesce(p_last_seating::text, 'NULL')),
      'a service that runs past midnight is two services, one on each day');
  end if;
  if p_pacing_covers is not null then
    perform allocator.check_argument('pacing covers per 15 minutes', p_pacing_covers, 1, 10000);
  end if;
  if p_pacing_parties is not null then
    perform allocator.check_argument('pacing parties per 15 minutes', p_pacing_parties, 1, 1000);
  end if;
  if p_turn_minutes is not null then
    perform allocator.check_turn_minutes(pg_catalog.format('turn_minutes of service %s', p_name), p_turn_minutes);
  end if;
  insert into allocator.services as s (restaurant_id, name, days, opens, last_seating, pacing_covers, pacing_parties,
                                       turn_minutes)
  values (v_restaurant.id, p_name,
          (select pg_catalog.array_agg(d::smallint order by d) from pg_catalog.unnest(p_days) d),
          p_opens, p_last_seating, p_pacing_covers, p_pacing_parties, p_turn_minutes)
  on conflict (restaurant_id, name) do update
     set days = excluded.days, opens = excluded.opens, last_seating = excluded.last_seating,
         pacing_covers = excluded.pacing_covers, pacing_parties = excluded.pacing_parties,
         turn_minutes = excluded.turn_minutes
  returning s.* into v_service;
  return allocator.service_json(v_service);
end
$$;

comment on function allocator.set_service(bigint, text, integer[], time, time, integer, integer, jsonb) is
  'Create or replace a named service period: weekdays (1 = Monday), opening and last seating times (local), optional pacing (covers and parties that may start per 15-minute slot) and optional turn times by party size (default: the restaurant''s turn_minutes setting)';

create or replace function allocator.remove_service(p_restaurant_id bigint, p_name text) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
begin
  perform allocator.check_length('service name', p_name);
  delete from allocator.services s where s.restaurant_id = v_restaurant.id and s.name = p_name;
  return found;
end
$$;

comment on function allocator.remove_service(bigint, text) is
  'Remove a service period by name; false if there was none (bookings already made are kept)';

-- A change of one local date's service (a closure, special hours): the date from today to
-- about two years ahead, and a reason.
create or replace function allocator.check_day_change(
  p_restaurant allocator.restaurants,
  p_what text,
  p_day date,
  p_reason text
) returns void
language plpgsql
stable
as $$
declare
  v_today date := (allocator.now() at time zone p_restaurant.timezone)::date;
begin
  if p_day is null or p_day not between v_today and v_today + 800 then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('%s must be from today (%s) to about two years ahead, got %s', p_what, v_today,
                        coalesce(p_day::text, 'NULL')));
  end if;
  if p_reason is null or pg_catalog.btrim(p_reason) = '' then
    perform allocator.raise_error('invalid_argument', pg_catalog.format('%s needs a reason', p_what));
  end if;
  perform allocator.check_length('reason', p_reason, 'reason_chars');
end
$$;

comment on function allocator.check_day_change(allocator.restaurants, text, date, text) is
  'Raise invalid_argument (RA001) unless the date is from today (local) to about two years ahead and a reason is given';

create or replace function allocator.close_day(p_restaurant_id bigint, p_day date, p_reason text) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
begin
  perform allocator.check_day_change(v_restaurant, 'a closed day', p_day, p_reason);
  insert into allocator.service_closures (restaurant_id, day, reason)
  values (v_restaurant.id, p_day, p_reason)
  on conflict (restaurant_id, day) do update set reason = excluded.reason;
  return true;
end
$$;

comment on function allocator.close_day(bigint, date, text) is
  'Close a day (local) whatever the service periods say: no slot is offered and book refuses it; bookings already made are kept';

create or replace function allocator.reopen_day(p_restaurant_id bigint, p_day date) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
begin
  delete from allocator.service_closures c where c.restaurant_id = v_restaurant.id and c.day = p_day;
  return found;
end
$$;

comment on function allocator.reopen_day(bigint, date) is 'Reopen a closed day; false if it was not closed';

-- The service of a restaurant by name, or not_found (RA002).
create or replace function allocator.require_service(p_restaurant allocator.restaurants, p_name text)
returns allocator.services
language plpgsql
stable
as $$
declare
  v_service allocator.services;
begin
  perform allocator.check_length('service name', p_name);
  select s.* into v_service from allocator.services s where s.restaurant_id = p_restaurant.id and s.name = p_name;
  if v_service.id is null then
    perform allocator.raise_error('not_found',
      pg_catalog.format('restaurant %s has no service named %s', p_restaurant.id, coalesce(p_name, 'NULL')),
      null, 'list them with select name from allocator.services');
  end if;
  return v_service;
end
$$;

comment on function allocator.require_service(allocator.restaurants, text) is
  'The restaurant''s service of that name; raises not_found (RA002) when there is none';

create or replace function allocator.set_special_day(
  p_restaurant_id bigint,
  p_day date,
  p_service text,
  p_opens time,
  p_last_seating time,
  p_reason text
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_service allocator.services := allocator.require_service(v_restaurant, p_service);
begin
  perform allocator.check_day_change(v_restaurant, 'a special day', p_day, p_reason);
  if (p_opens is null) <> (p_last_seating is null) or p_opens > p_last_seating then
    perform allocator.raise_error('invalid_argument',
      'a special day needs an opening time and a last seating time no earlier than it, or neither',
      pg_catalog.format('got %s to %s', coalesce(p_opens::text, 'NULL'), coalesce(p_last_seating::text, 'NULL')),
      'give neither when the service does not run that day');
  end if;
  insert into allocator.special_days (restaurant_id, day, service_id, opens, last_seating, reason)
  values (v_restaurant.id, p_day, v_service.id, p_opens, p_last_seating, p_reason)
  on conflict (restaurant_id, day, service_id) do update
     set opens = excluded.opens, last_seating = excluded.last_seating, reason = excluded.reason;
  return pg_catalog.jsonb_build_object('restaurant_id', v_restaurant.id, 'day', p_day, 'service', v_service.name,
    'opens', p_opens, 'last_seating', p_last_seating, 'reason', p_reason);
end
$$;

comment on function allocator.set_special_day(bigint, date, text, time, time, text) is
  'On one date (local), run a service from p_opens to p_last_seating whatever its weekdays, or not at all when both are NULL; bookings already made are kept';

create or replace function allocator.clear_special_day(p_restaurant_id bigint, p_day date, p_service text)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_service allocator.services := allocator.require_service(v_restaurant, p_service);
begin
  delete from allocator.special_days d
   where d.restaurant_id = v_restaurant.id and d.day = p_day and d.service_id = v_service.id;
  return found;
end
$$;

comment on function allocator.clear_special_day(bigint, date, text) is
  'The service runs on its weekly pattern again on that date; false if it had no special hours then';

-- The hours each service runs on each local date from p_from to p_to: its special hours
-- that day, else its weekly hours on its weekdays; nothing on closed days. The one
-- definition of when a restaurant serves, read by service_at and open_slots.
create or replace function allocator.service_hours(p_restaurant allocator.restaurants, p_from date, p_to date)
returns table (day date, service allocator.services, opens time, last_seating time)
language sql
stable
as $$
  select d.day::date, s, coalesce(x.opens, s.opens), coalesce(x.last_seating, s.last_seating)
    from allocator.services s
   cross join pg_catalog.generate_series(p_from::timestamp, p_to::timestamp, interval '1 day') d(day)
    left join allocator.special_days x
      on x.restaurant_id = s.restaurant_id and x.service_id = s.id and x.day = d.day::date
   where s.restaurant_id = p_restaurant.id
     and case when x.day is not null then x.opens is not null
              else extract(isodow from d.day)::smallint = any (s.days) end
     and not exists (select 1 from allocator.service_closures c
                      where c.restaurant_id = p_restaurant.id and c.day = d.day::date)
$$;

comment on function allocator.service_hours(allocator.restaurants, date, date) is
  'Each service''s opening and last seating on each local date from p_from to p_to: special hours that day, else its weekly hours on its weekdays; closed days have none';

-- How long a party of this size really stays: the median of the restaurant's finished
-- bookings of the last 90 days whose party shares its turn-time entry (seated to finished),
-- in the same service when one is given (started on its weekdays, within its hours), pulled
-- towards the turn_minutes setting as if the setting were 10 more observations. With no
-- history it is the setting; with much, the restaurant's own median.
create or replace function allocator.predicted_turn_minutes(
  p_restaurant allocator.restaurants,
  p_service allocator.services,
  p_party_size integer
) returns integer
language sql
stable
as $$
  with prior as (
    select allocator.turn_minutes(p_restaurant.settings, p_party_size)::numeric as minutes
  ), seen as (
    select pg_catalog.count(*) as n,
           pg_catalog.percentile_cont(0.5) within group (
             order by extract(epoch from b.finished_at - b.seated_at) / 60) as median
      from allocator.bookings b, prior
     where b.restaurant_id = p_restaurant.id and b.state = 'finished'
       and b.finished_at > allocator.now() - interval '90 days' and b.seated_at is not null
       and allocator.turn_minutes(p_restaurant.settings, b.party_size) = prior.minutes
       and (p_service.id is null
            or (extract(isodow from pg_catalog.lower(b.period) at time zone p_restaurant.timezone)::smallint = any (p_service.days)
                and (pg_catalog.lower(b.period) at time zone p_restaurant.timezone)::time
                    between p_service.opens and p_service.last_seating))
  )
  select least(720, greatest(15, pg_catalog.round(
           (10 * prior.minutes + seen.n * coalesce(seen.median::numeric, prior.minutes)) / (10 + seen.n))))::integer
    from prior, seen
$$;

comment on function allocator.predicted_turn_minutes(allocator.restaurants, allocator.services, integer) is
  'Learned turn time of a party: the median seated-to-finished minutes of the last 90 days'' finished bookings of its turn-time entry (in p_service''s weekdays and hours when given), shrunk towards the turn_minutes setting (worth 10 observations); 15 to 720';

-- The turn time of a party in a service: the service's own table, else the restaurant's.
create or replace function allocator.party_turn_minutes(
  p_restaurant allocator.restaurants,
  p_service allocator.services,
  p_party_size integer
) returns integer
language plpgsql
stable
as $$
begin
  return coalesce(
    case when p_service.turn_minutes is not null
         then allocator.turn_minutes(pg_catalog.jsonb_build_object('turn_minutes', p_service.turn_minutes), p_party_size) end,
    case when (p_restaurant.settings #>> '{floor,predicted_turns}')::boolean
         then allocator.predicted_turn_minutes(p_restaurant, p_service, p_party_size) end,
    allocator.turn_minutes(p_restaurant.settings, p_party_size));
end
$$;

comment on function allocator.party_turn_minutes(allocator.restaurants, allocator.services, integer) is
  'Turn time in minutes of a party in a service: the service''s own turn_minutes, else the learned turn time when floor.predicted_turns is on, else the restaurant''s setting (a NULL service: no service)';

-- The service period a local start time falls in (opening to last seating that day, special
-- hours included, on a day that is not closed); null if none.
create or replace function allocator.service_at(p_restaurant allocator.restaurants, p_start timestamptz)
returns allocator.services
language plpgsql
stable
set plan_cache_mode = force_generic_plan
as $$
declare
  v_local timestamp := p_start at time zone p_restaurant.timezone;
  v_service allocator.services;
begin
  select (h.service).* into v_service
    from allocator.service_hours(p_restaurant, v_local::date, v_local::date) h
   where v_local::time between h.opens and h.last_seating
   order by h.opens, (h.service).id
   limit 1;
  return v_service;
end
$$;

comment on function allocator.service_at(allocator.restaurants, timestamptz) is
  'The service period whose hours that day (opening to last seating, local; special hours included) contain p_start on an open day, or null';

-- Whether pacing lets a party start in the 15-minute slot (local grid) of p_start: the covers
-- and parties of the bookings that start in it and are not cancelled or failed, plus this one,
-- within the service's limits.
create or replace function allocator.pacing_allows(
  p_restaurant allocator.restaurants,
  p_service allocator.services,
  p_start timestamptz,
  p_party_size integer,
  p_exclude_booking bigint default null
) returns boolean
language plpgsql
stable
as $$
declare
  v_local timestamp := p_start at time zone p_restaurant.timezone;
  v_slot timestamptz;
  v_covers integer;
  v_parties integer;
begin
  if p_service.pacing_covers is null and p_service.pacing_parties is null then
    return true;
  end if;
  v_slot := (pg_catalog.date_trunc('hour', v_local)
             + pg_catalog.make_interval(mins => (extract(minute from v_local)::integer / 15) * 15))
            at time zone p_restaurant.timezone;
  select coalesce(sum(b.party_size), 0), pg_catalog.count(*) into v_covers, v_parties
    from allocator.bookings b
   where b.restaurant_id = p_restaurant.id
     and b.period && pg_catalog.tstzrange(v_slot, v_slot + interval '15 minutes', '[)')
     and pg_catalog.lower(b.period) >= v_slot and pg_catalog.lower(b.period) < v_slot + interval '15 minutes'
     and b.state not in ('cancelled', 'failed')
     and b.id is distinct from p_exclude_booking;
  return (p_service.pacing_covers is null or v_covers + p_party_size <= p_service.pacing_covers)
     and (p_service.pacing_parties is null or v_parties + 1 <= p_service.pacing_parties);
end
$$;

comment on function allocator.pacing_allows(allocator.restaurants, allocator.services, timestamptz, integer, bigint) is
  'Whether the covers and parties starting in the 15-minute slot of p_start (but p_exclude_booking), plus this party, stay within the service''s pacing';

-- The slot search without the argument checks: start times on each service's 15-minute grid
-- that day (special hours included) from p_from to p_to (and not in the past) where pacing
-- lets the party start and a free table or combination seats it for the service's turn time
-- (in p_zone_id when given). What availability() answers for each start, computed for all the
-- starts at once: the allocations and blocks of the whole range are read once, each start
-- keeps the tables they take over its turn plus the buffer, and a plan that fits the party
-- and avoids them makes the start open. One plan for every call (generic): the query is the
-- same whatever the restaurant, and planning it cost more than running it.
create or replace function allocator.open_slots(
  p_restaurant allocator.restaurants,
  p_party_size integer,
  p_from timestamptz,
  p_to timestamptz,
  p_zone_id bigint
) returns table (start timestamptz, service text)
language plpgsql
stable
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
  v_from timestamptz := greatest(p_from, allocator.now());
  v_buffer interval := pg_catalog.make_interval(mins => (p_restaurant.settings ->> 'buffer_minutes')::integer);
begin
  return query
  with grid as materialized (
    select distinct on (x.start) x.start, h.service
      from allocator.service_hours(p_restaurant, (v_from at time zone p_restaurant.timezone)::date,
                                   (p_to at time zone p_restaurant.timezone)::date) h
     cross join lateral pg_catalog.generate_series(h.day + h.opens, h.day + h.last_seating,
                                                    interval '15 minutes') t(local)
     cross join lateral (select t.local at time zone p_restaurant.timezone as start) x
     where x.start >= v_from and x.start <= p_to
     order by x.start, h.opens, (h.service).id
  ), turns as materialized (
    -- The party's turn time in each service, worked out once per service.
    select s.id, pg_catalog.make_interval(mins => allocator.party_turn_minutes(p_restaurant, s.service, p_party_size)) as turn
      from (select distinct on ((g.service).id) (g.service).id, g.service from grid g) s
  ), spans as materialized (
    select g.start, g.service, pg_catalog.tstzrange(g.start, g.start + t.turn + v_buffer, '[)') as span
      from grid g join turns t on t.id = (g.service).id
  ), reach as materialized (
    select pg_catalog.tstzrange(min(pg_catalog.lower(s.span)), max(pg_catalog.upper(s.span)), '[)') as span
      from spans s
  ), busy as materialized (
    select b.table_id, b.period
      from reach cross join lateral allocator.busy_tables(p_restaurant.id, reach.span, true) b
  ), plans as materialized (
    -- The active tables and the combinations that seat the party (all in p_zone_id when given).
    select array[t.id] as table_ids
      from allocator.tables t
     where t.restaurant_id = p_restaurant.id and t.active
       and t.min_capacity <= p_party_size and t.max_capacity >= p_party_size
       and (p_zone_id is null or t.zone_id = p_zone_id)
    union all
    select c.table_ids
      from allocator.table_combinations c
     where c.restaurant_id = p_restaurant.id
       and c.min_capacity <= p_party_size and c.max_capacity >= p_party_size
       and (p_zone_id is null
            or (select pg_catalog.array_agg(distinct t.zone_id) filter (where t.zone_id is not null)
                  from allocator.tables t where t.restaurant_id = p_restaurant.id and t.id = any (c.table_ids))
               = array[p_zone_id])
  )
  select s.start, (s.service).name
    from spans s
   cross join lateral (select coalesce(pg_catalog.array_agg(b.table_id), '{}') as ids
                         from busy b where b.period && s.span) taken
   where exists (select 1 from plans p where not (p.table_ids && taken.ids))
     and allocator.pacing_allows(p_restaurant, s.service, s.start, p_party_size)
   order by s.start;
end
$$;

comment on function allocator.open_slots(allocator.restaurants, integer, timestamptz, timestamptz, bigint) is
  'Start times on the services'' 15-minute grids between p_from and p_to where pacing and a free table or combination let the party start (the body of find_slots)';

-- A range of instants given by its ends: both finite, the start first.
create or replace function allocator.check_range(p_what text, p_from timestamptz, p_to timestamptz) returns void
language plpgsql
stable
as $$
begin
  if p_from is null or p_to is null or not pg_catalog.isfinite(p_from) or not pg_catalog.isfinite(p_to)
     or p_from >= p_to then
    perform allocator.raise_error('invalid_argument', pg_catalog.format('%s needs a start before its end', p_what),
      pg_catalog.format('got %s to %s', coalesce(p_from::text, 'NULL'), coalesce(p_to::text, 'NULL')));
  end if;
end
$$;

comment on function allocator.check_range(text, timestamptz, timestamptz) is
  'Raise invalid_argument (RA001) unless p_from and p_to are finite and p_from comes first';

create or replace function allocator.find_slots(
  p_restaurant_id bigint,
  p_party_size integer,
  p_from timestamptz,
  p_to timestamptz,
  p_zone text default null
) returns table (start timestamptz, service text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_zone bigint;
begin
  perform allocator.check_party_size(p_party_size);
  perform allocator.check_range('a search', p_from, p_to);
  if p_to - p_from > interval '7 days' then
    perform allocator.raise_error('invalid_argument', 'a search covers at most 7 days',
      pg_catalog.format('got %s to %s', p_from, p_to), 'search day by day, or a week at a time');
  end if;
  if p_to < allocator.now() - interval '1 day' or p_from > allocator.now() + interval '2 years' then
    perform allocator.raise_error('invalid_argument',
      'a search must be between now and two years ahead', pg_catalog.format('got %s to %s', p_from, p_to));
  end if;
  v_zone := allocator.zone_id(v_restaurant.id, p_zone);
  if not exists (select 1 from allocator.services s where s.restaurant_id = v_restaurant.id) then
    perform allocator.raise_error('outside_service',
      pg_catalog.format('restaurant %s has no service periods', v_restaurant.id), null,
      'add them with set_service');
  end if;
  if not allocator.party_fits_layout(v_restaurant.id, p_party_size) then
    perform allocator.raise_error('unavailable',
      pg_catalog.format('no table or combination of restaurant %s seats a party of %s', v_restaurant.id, p_party_size));
  end if;
  return query
    select o.start, o.service
      from allocator.open_slots(v_restaurant, p_party_size, p_from, p_to, v_zone) o;
end
$$;

comment on function allocator.find_slots(bigint, integer, timestamptz, timestamptz, text) is
  'The start times on the services'' 15-minute grids, from p_from to p_to (at most 7 days), at which the restaurant can seat the party now (free tables or combinations for its turn time, holds, pacing, service hours and closed days respected); read-only';

-- Up to three start times near p_start (within three hours, nearest first) at which the
-- party could be seated; an empty array when there is none.
create or replace function allocator.alternatives(
  p_restaurant allocator.restaurants,
  p_party_size integer,
  p_start timestamptz,
  p_zone_id bigint
) returns jsonb
language sql
stable
as $$
  select coalesce(pg_catalog.jsonb_agg(a.start order by a.distance, a.start), '[]'::jsonb)
    from (select o.start, abs(extract(epoch from o.start - p_start)) as distance
            from allocator.open_slots(p_restaurant, p_party_size, p_start - interval '3 hours',
                                      p_start + interval '3 hours', p_zone_id) o
           where o.start <> p_start
           order by 2, 1
           limit 3) a
$$;

comment on function allocator.alternatives(allocator.restaurants, integer, timestamptz, bigint) is
  'Up to three start times within three hours of p_start, nearest first, at which the party could be seated';

-- Whether a party may start at p_start: in a service (else outside_service, RA013, naming the
-- nearest time and its service), on a layout that can seat it (else unavailable, RA014), and
-- within the service's pacing (else unavailable with alternatives), not counting
-- p_exclude_booking (a booking being changed). Pacing is race-free: bookings of a paced
-- service are admitted one at a time (the service's row lock, which only the schema's
-- functions can take).
create or replace function allocator.admit(
  p_restaurant allocator.restaurants,
  p_party_size integer,
  p_start timestamptz,
  p_zone_id bigint,
  p_exclude_booking bigint
) returns allocator.services
language plpgsql
volatile
as $$
declare
  v_service allocator.services := allocator.service_at(p_restaurant, p_start);
  v_next timestamptz;
  v_next_service text;
begin
  if v_service.id is null then
    select o.start, o.service into v_next, v_next_service
      from allocator.open_slots(p_restaurant, p_party_size, p_start, p_start + interval '7 days', null) o
     limit 1;
    perform allocator.raise_error('outside_service',
      pg_catalog.format('restaurant %s does not take bookings at %s (%s local)', p_restaurant.id, p_start,
                        (p_start at time zone p_restaurant.timezone)::timestamp(0)),
      pg_catalog.jsonb_build_object('alternatives',
        case when v_next is null then '[]'::jsonb else pg_catalog.jsonb_build_array(v_next) end,
        'service', v_next_service)::text,
      case when v_next is null then 'no service has room for the party in the next 7 days'
           else pg_catalog.format('the nearest time it can seat the party is %s (%s local, %s)', v_next,
                                  (v_next at time zone p_restaurant.timezone)::timestamp(0), v_next_service) end);
  end if;
  if not allocator.party_fits_layout(p_restaurant.id, p_party_size) then
    perform allocator.raise_error('unavailable',
      pg_catalog.format('no table or combination of restaurant %s seats a party of %s', p_restaurant.id, p_party_size));
  end if;
  if v_service.pacing_covers is not null or v_service.pacing_parties is not null then
    perform 1 from allocator.services s
     where s.restaurant_id = p_restaurant.id and s.id = v_service.id for no key update;
    if not allocator.pacing_allows(p_restaurant, v_service, p_start, p_party_size, p_exclude_booking) then
      perform allocator.raise_error('unavailable',
        pg_catalog.format('the %s service of restaurant %s takes no more parties at %s (pacing)',
                          v_service.name, p_restaurant.id, (p_start at time zone p_restaurant.timezone)::timestamp(0)),
        pg_catalog.jsonb_build_object('alternatives',
          allocator.alternatives(p_restaurant, p_party_size, p_start, p_zone_id))::text,
        'offer the guest one of the alternatives');
    end if;
  end if;

  return v_service;
end
$$;

comment on function allocator.admit(allocator.restaurants, integer, timestamptz, bigint, bigint) is
  'Admission of a party at p_start: its service (raises outside_service, RA013, naming the nearest time), a layout that seats it and the service''s pacing without p_exclude_booking (raise unavailable, RA014, with alternatives); returns the service';

-- Hold the first of a created booking's best plans (p_first first when it is among them) whose
-- tables can be held: confirmed at once with p_confirm (created -> assigned -> confirmed), else
-- a hold of p_ttl_seconds. Waits for tables another transaction is writing: two callers for
-- the last table are answered one after the other. Returns the plan (table_ids, score,
-- strategy), or NULL when none could be held.
create or replace function allocator.hold_first_plan(
  p_booking allocator.bookings,
  p_actor text,
  p_first bigint[],
  p_ttl_seconds integer,
  p_confirm text
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_plan record;
begin
  for v_plan in
    select c.table_ids, c.score, c.strategy
      from allocator.candidates(p_booking) with ordinality
             as c (table_ids, table_count, min_capacity, max_capacity, score, strategy, scores, n)
     order by c.table_ids = p_first desc nulls last, c.n
     limit 5
  loop
    begin
      perform allocator.hold_booking_tables(p_booking, v_plan.table_ids, p_ttl_seconds, null, p_actor,
        p_booking.version, true, p_confirm, '{}', v_plan.strategy);
    exception when sqlstate 'RA003' then
      continue;
    end;
    return pg_catalog.jsonb_build_object('table_ids', v_plan.table_ids, 'score', v_plan.score,
      'strategy', v_plan.strategy);
  end loop;
  return null;
end
$$;

comment on function allocator.hold_first_plan(allocator.bookings, text, bigint[], integer, text) is
  'Hold (or with p_confirm, confirm) the first of a created booking''s top 5 plans whose tables can be held, p_first first; the plan, or NULL';

-- Seat a booking in state created now: created -> assigned -> confirmed with the first plan
-- whose tables can be held, p_first first when it is among the plans (a changed booking keeps
-- its tables when they still fit and are free), then the engine's best, then by moving
-- flexible bookings (seat_by_moving); unavailable (RA014) with alternatives when none can.
create or replace function allocator.seat_at_once(
  p_booking allocator.bookings,
  p_actor text,
  p_started timestamptz,
  p_first bigint[],
  p_zone_id bigint
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_plan jsonb := coalesce(allocator.hold_first_plan(p_booking, p_actor, p_first, null, 'booked'),
                           allocator.seat_by_moving(p_booking, p_actor));
  v_restaurant allocator.restaurants;
begin
  if v_plan is not null then
    perform allocator.record_attempt(p_booking, 1, 'book', v_plan ->> 'strategy',
      (select pg_catalog.array_agg(x::bigint) from pg_catalog.jsonb_array_elements_text(v_plan -> 'table_ids') x),
      (v_plan ->> 'score')::numeric, 'confirmed', null, p_started);
    perform allocator.assignment_event(p_booking, 'succeeded', 1, v_plan ->> 'strategy', null);
    return v_plan - 'score';
  end if;
  select r.* into v_restaurant from allocator.restaurants r where r.id = p_booking.restaurant_id;
  perform allocator.raise_error('unavailable',
    pg_catalog.format('restaurant %s has no table for a party of %s at %s', v_restaurant.id, p_booking.party_size,
                      (pg_catalog.lower(p_booking.period) at time zone v_restaurant.timezone)::timestamp(0)),
    pg_catalog.jsonb_build_object('alternatives',
      allocator.alternatives(v_restaurant, p_booking.party_size, pg_catalog.lower(p_booking.period), p_zone_id))::text,
    'offer the guest one of the alternatives');
  return null;
end
$$;

comment on function allocator.seat_at_once(allocator.bookings, text, timestamptz, bigint[], bigint) is
  'Seat a created booking now (created -> assigned -> confirmed) on p_first if it is among its plans, else on the best plan whose tables can be held; raises unavailable (RA014) with alternatives when none can';

create or replace function allocator.book(
  p_restaurant_id bigint,
  p_party_size integer,
  p_start timestamptz,
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
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_zone bigint;
  v_result jsonb;
  v_booking allocator.bookings;
  v_seated jsonb;
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_party_size(p_party_size);
  perform allocator.check_idempotency_key(p_idempotency_key);
  perform allocator.check_contact(p_guest_email, p_locale);
  if p_start is null or p_start not between allocator.now() - interval '1 hour' and allocator.now() + interval '2 years' then
    perform allocator.raise_error('invalid_argument', 'a booking starts between now and two years ahead',
      pg_catalog.format('got %s', coalesce(p_start::text, 'NULL')));
  end if;
  v_zone := allocator.zone_id(v_restaurant.id, p_preferred_zone);
  -- The same key again: the booking it made, whatever has happened to it since.
  if p_idempotency_key is not null and exists (
       select 1 from allocator.bookings b
        where b.restaurant_id = v_restaurant.id and b.idempotency_key = p_idempotency_key) then
    v_result := allocator.insert_booking(v_restaurant.id, p_party_size, p_start, null, p_idempotency_key,
      p_preferred_zone, p_metadata, p_actor, false, p_guest_email, p_locale);
    return v_result || pg_catalog.jsonb_build_object('table_ids',
      (select pg_catalog.array_agg(a.table_id order by a.table_id) from allocator.allocations a
        where a.restaurant_id = v_restaurant.id and a.booking_id = (v_result ->> 'booking_id')::bigint));
  end if;

  perform allocator.admit(v_restaurant, p_party_size, p_start, v_zone, null);

  v_result := allocator.insert_booking(v_restaurant.id, p_party_size, p_start, null, p_idempotency_key,
    p_preferred_zone, p_metadata, p_actor, false, p_guest_email, p_locale);
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_restaurant.id and b.id = (v_result ->> 'booking_id')::bigint;
  -- created -> assigned -> confirmed, as an application holding and confirming tables
  -- would, in this one transaction.
  v_seated := allocator.seat_at_once(v_booking, p_actor, v_started, null, v_zone);
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_restaurant.id and b.id = v_booking.id;
  return allocator.booking_json(v_booking)
    || pg_catalog.jsonb_build_object('created', true, 'table_ids', v_seated -> 'table_ids');
end
$$;

comment on function allocator.book(bigint, integer, timestamptz, text, text, jsonb, text, text, text) is
  'Book at once, in one transaction (with the guest''s e-mail address and locale for notifications when given): the booking is confirmed with its tables, or refused with outside_service (RA013) or unavailable (RA014) and a DETAIL {"alternatives": [up to three start times]}; nothing is written when refused. The same idempotency key returns the same booking';
