-- Queries of the console and the HTTP API, by name. Each block starts with "-- name: <name>".
-- They run as the console's login acting for the signed-in staff member: row level security
-- keeps every read to that member's restaurants, and every change goes through an RPC.

-- name: act_as
select pg_catalog.set_config('allocator.acting_staff', %(login)s, true);

-- name: whoami
select pg_catalog.pg_has_role(current_user, 'allocator_console', 'MEMBER') as console,
       coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false) as superuser,
       current_user as login;

-- name: error_statuses
select sqlstate, name, http_status from allocator.error_codes order by sqlstate;

-- name: staff_password_hash
select allocator.staff_password_hash(%(login)s) as hash;

-- name: staff_session
select allocator.staff_session(%(login)s) as staff;

-- name: staff_for_token
select allocator.staff_for_token(%(digest)s) as login;

-- name: restaurants
select r.id, r.name, r.timezone from allocator.restaurants r order by r.name, r.id;

-- name: zones
select z.restaurant_id, z.id, z.name from allocator.zones z
 where %(restaurant_id)s::bigint is null or z.restaurant_id = %(restaurant_id)s
 order by z.name, z.restaurant_id;

-- name: states
select s.state, s.terminal, s.description from allocator.booking_states s;

-- name: board
-- The bookings of one local day (each restaurant's own), with counts per state and at most
-- %(per_state)s cards per state, earliest first. Each restaurant's day is read through the
-- index on (restaurant_id, starts_at): the day's bounds are computed first (materialized),
-- so the scan compares plain timestamps, which row level security lets reach the index.
with mine as materialized (
  select r.id, r.name, r.timezone,
         (%(day)s::date)::timestamp at time zone r.timezone as day_start,
         (%(day)s::date + 1)::timestamp at time zone r.timezone as day_end
    from allocator.restaurants r
   where %(restaurant_id)s::bigint is null or r.id = %(restaurant_id)s
), day as (
  select b.restaurant_id, b.id, b.state, b.party_size, b.starts_at, b.preferred_zone_id,
         b.assignment_attempts, b.manual_review_reason, b.version,
         m.name as restaurant, m.timezone
    from mine m
   cross join lateral (
     select b.* from allocator.bookings b
      where b.restaurant_id = m.id and b.starts_at >= m.day_start and b.starts_at < m.day_end
     offset 0) b
   where (%(state)s::text is null or b.state = %(state)s)
     and (%(zone)s::text is null
          or exists (select 1 from allocator.zones z
                      where z.restaurant_id = b.restaurant_id and z.id = b.preferred_zone_id and z.name = %(zone)s)
          or exists (select 1 from allocator.allocations a
                       join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
                       join allocator.zones z on z.restaurant_id = t.restaurant_id and z.id = t.zone_id
                      where a.restaurant_id = b.restaurant_id and a.booking_id = b.id and z.name = %(zone)s))
), ranked as (
  select d.*, pg_catalog.count(*) over (partition by d.state) as in_state,
         pg_catalog.row_number() over (partition by d.state order by d.starts_at, d.id) as n
    from day d
)
select k.restaurant_id, k.id, k.state, k.party_size, k.restaurant,
       pg_catalog.to_char(k.starts_at at time zone k.timezone, 'HH24:MI') as starts,
       k.assignment_attempts as attempts, k.manual_review_reason as reason, k.version, k.in_state,
       (select pg_catalog.string_agg(t.label, '+' order by t.label)
          from allocator.allocations a
          join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
         where a.restaurant_id = k.restaurant_id and a.booking_id = k.id) as tables
  from ranked k
 where k.n <= %(per_state)s
 order by k.state, k.n;

-- name: review_queue
select q.restaurant_id, r.name as restaurant, q.booking_id, q.party_size,
       pg_catalog.to_char(q.starts_at at time zone r.timezone, 'YYYY-MM-DD HH24:MI') as starts,
       q.reason, q.attempts, q.version,
       extract(epoch from q.age)::bigint as age_seconds
  from allocator.manual_review_queue q
  join allocator.restaurants r on r.id = q.restaurant_id
 where %(restaurant_id)s::bigint is null or q.restaurant_id = %(restaurant_id)s
 order by q.in_review_since nulls first, q.booking_id
 limit %(limit)s;

-- name: booking
select b.restaurant_id, r.name as restaurant, r.timezone, b.id, b.state, b.party_size, b.version,
       pg_catalog.to_char(pg_catalog.lower(b.period) at time zone r.timezone, 'YYYY-MM-DD HH24:MI') as starts,
       pg_catalog.to_char(pg_catalog.upper(b.period) at time zone r.timezone, 'HH24:MI') as ends,
       pg_catalog.lower(b.period) as starts_at, pg_catalog.upper(b.period) as ends_at,
       b.assignment_attempts as attempts, b.manual_review_reason as reason, b.external_id,
       z.name as preferred_zone, b.created_at, b.updated_at,
       (select pg_catalog.string_agg(t.label, '+' order by t.label)
          from allocator.allocations a
          join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
         where a.restaurant_id = b.restaurant_id and a.booking_id = b.id) as tables
  from allocator.bookings b
  join allocator.restaurants r on r.id = b.restaurant_id
  left join allocator.zones z on z.restaurant_id = b.restaurant_id and z.id = b.preferred_zone_id
 where b.id = %(booking_id)s;

-- name: expect_version
select allocator.expect_version(%(booking_id)s, %(expected_version)s);

-- name: booking_timeline
select t.at, t.kind, t.what, t.actor, t.reason, t.details
  from allocator.booking_timeline t
 where t.restaurant_id = %(restaurant_id)s and t.booking_id = %(booking_id)s
union all
select e.created_at, 'event', e.topic, e.payload ->> 'actor', null, e.payload
  from allocator.events e
 where e.restaurant_id = %(restaurant_id)s and e.booking_id = %(booking_id)s
 order by 1, 2;

-- name: booking_attempts
select attempt, worker, strategy, table_ids, score, result, reason, duration_ms, created_at
  from allocator.booking_attempts(%(booking_id)s);

-- name: booking_history
select version, from_state, to_state, actor, reason, metadata, created_at
  from allocator.booking_history(%(booking_id)s);

-- name: table_choices
-- Tables that fit the party and are free for its time, best first (the engine's own plans).
select p.rank, p.table_ids, p.max_capacity, p.strategy,
       (select pg_catalog.string_agg(t.label, '+' order by t.label)
          from allocator.tables t
         where t.restaurant_id = %(restaurant_id)s and t.id = any (p.table_ids)) as labels
  from allocator.plan_booking(%(booking_id)s, %(limit)s) p
 order by p.rank;

-- name: floor_tables
select t.id, t.label, t.min_capacity, t.max_capacity, z.name as zone
  from allocator.tables t
  left join allocator.zones z on z.restaurant_id = t.restaurant_id and z.id = t.zone_id
 where t.restaurant_id = %(restaurant_id)s and t.active
 order by z.name nulls last, t.label;

-- name: floor_window
-- The day's serving window in local time: first opening to last seating plus the longest turn.
select pg_catalog.min(h.opens) as opens,
       pg_catalog.max(h.last_seating) as last_seating,
       pg_catalog.string_agg((h.service).name, ', ' order by h.opens) as services
  from allocator.restaurants r
 cross join lateral allocator.service_hours(r, %(day)s::date, %(day)s::date) h
 where r.id = %(restaurant_id)s;

-- name: floor_blocks
-- What occupies each table between two instants: allocations (held or confirmed, with their
-- booking), and blocks.
select a.table_id, 'booking' as kind, a.kind as status, a.booking_id, b.party_size, b.state,
       greatest(pg_catalog.lower(a.period), %(from)s::timestamptz) as starts_at,
       least(pg_catalog.upper(a.period), %(to)s::timestamptz) as ends_at,
       null::text as reason
  from allocator.allocations a
  join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
 where a.restaurant_id = %(restaurant_id)s
   and a.period && pg_catalog.tstzrange(%(from)s::timestamptz, %(to)s::timestamptz)
union all
select k.table_id, 'block', 'blocked', null, null, null,
       greatest(pg_catalog.lower(k.period), %(from)s::timestamptz),
       least(pg_catalog.upper(k.period), %(to)s::timestamptz),
       k.reason
  from allocator.table_blocks k
 where k.restaurant_id = %(restaurant_id)s
   and k.period && pg_catalog.tstzrange(%(from)s::timestamptz, %(to)s::timestamptz)
 order by 1, 7;

-- name: occupancy_week
-- Share of the restaurant's active tables taken in each 15 minutes of the serving hours of
-- the 7 local days from %(day)s. The week's allocations are read once, then counted by slot.
with r as (
  select r.* from allocator.restaurants r where r.id = %(restaurant_id)s
), hours as (
  select h.day, pg_catalog.min(h.opens) as opens, pg_catalog.max(h.last_seating) as last_seating
    from r cross join lateral allocator.service_hours(r, %(day)s::date, %(day)s::date + 6) h
   group by h.day
), slots as (
  select h.day, s.at::time as at,
         pg_catalog.tstzrange(s.at at time zone (select timezone from r),
                              (s.at + interval '15 minutes') at time zone (select timezone from r)) as span
    from hours h
   cross join lateral pg_catalog.generate_series(h.day + h.opens, h.day + h.last_seating, interval '15 minutes') s(at)
), taken as materialized (
  select a.table_id, a.period
    from allocator.allocations a
   where a.restaurant_id = %(restaurant_id)s
     and a.period && pg_catalog.tstzrange((select pg_catalog.min(pg_catalog.lower(span)) from slots),
                                          (select pg_catalog.max(pg_catalog.upper(span)) from slots))
), tables as (
  select pg_catalog.count(*) as n from allocator.tables t where t.restaurant_id = %(restaurant_id)s and t.active
)
select s.day, pg_catalog.to_char(s.at, 'HH24:MI') as slot,
       pg_catalog.round(100.0 * pg_catalog.count(distinct k.table_id)
                        / greatest((select n from tables), 1))::integer as percent
  from slots s
  left join taken k on k.period && s.span
 group by s.day, s.at
 order by s.day, s.at;

-- name: health_breakers
select b.restaurant_id, r.name as restaurant, b.state, b.failures, b.opened_at
  from allocator.breaker_status b join allocator.restaurants r on r.id = b.restaurant_id
 order by (b.state = 'closed'), r.name;

-- name: health_queue
select q.restaurant_id, r.name as restaurant, q.queued, q.due, q.leased, q.scheduled, q.pooled,
       extract(epoch from allocator.now() - q.oldest_due_at)::bigint as oldest_due_seconds
  from allocator.queue_status q join allocator.restaurants r on r.id = q.restaurant_id
 order by q.due desc, r.name;

-- name: health_workers
-- Workers seen on this member's restaurants in the last 15 minutes: attempts, and the queue
-- rows each holds a lease on now.
with recent as (
  select a.worker, pg_catalog.count(*) as attempts, pg_catalog.max(a.created_at) as last_seen
    from allocator.booking_assignment_attempts a
   where a.created_at > allocator.now() - interval '15 minutes' and a.worker is not null
   group by a.worker
), leases as (
  select q.leased_by as worker, pg_catalog.count(*) as leased, pg_catalog.max(q.lease_expires_at) as lease_until
    from allocator.assignment_queue q
   where q.lease_expires_at > allocator.now() and q.leased_by is not null
   group by q.leased_by
)
select coalesce(r.worker, l.worker) as worker, coalesce(r.attempts, 0) as attempts, r.last_seen,
       coalesce(l.leased, 0) as leased, l.lease_until
  from recent r full join leases l on l.worker = r.worker
 order by 1;

-- name: health_optimizer
select o.restaurant_id, r.name as restaurant, o.day, o.status, o.moved, o.seated, o.improvement,
       o.solve_ms, o.created_at
  from allocator.optimizer_runs o join allocator.restaurants r on r.id = o.restaurant_id
 order by o.created_at desc
 limit 10;

-- name: watermark
-- The newest event this member can see: a page re-reads its rows when it changes. The newest
-- of each of the member's restaurants, through the index on (restaurant_id, id).
select coalesce(pg_catalog.max(m.id), 0) as id
  from allocator.restaurants r
 cross join lateral (select e.id from allocator.events e
                      where e.restaurant_id = r.id order by e.id desc limit 1) m;

-- name: create_booking
select allocator.create_booking(p_restaurant_id => %(restaurant_id)s, p_party_size => %(party_size)s,
                                p_start => %(start)s, p_duration_minutes => %(duration_minutes)s,
                                p_idempotency_key => %(idempotency_key)s,
                                p_preferred_zone => %(preferred_zone)s,
                                p_actor => %(actor)s, p_guest_email => %(guest_email)s,
                                p_locale => %(locale)s) as booking;

-- name: book
select allocator.book(p_restaurant_id => %(restaurant_id)s, p_party_size => %(party_size)s,
                      p_start => %(start)s, p_idempotency_key => %(idempotency_key)s,
                      p_preferred_zone => %(preferred_zone)s, p_actor => %(actor)s,
                      p_guest_email => %(guest_email)s, p_locale => %(locale)s) as booking;

-- name: find_slots
select start, service from allocator.find_slots(%(restaurant_id)s, %(party_size)s, %(from)s, %(to)s, %(zone)s);

-- name: cancel_booking
select allocator.cancel_booking(%(booking_id)s, %(expected_version)s, %(actor)s, %(reason)s) as booking;

-- name: requeue
select allocator.requeue(%(booking_id)s, %(actor)s, %(reason)s, %(expected_version)s) as booking;

-- name: force_confirm
select allocator.force_confirm(%(booking_id)s, %(actor)s, %(reason)s, %(table_ids)s) as booking;

-- name: manual_assign
select allocator.manual_assign(%(booking_id)s, %(table_ids)s, %(actor)s, %(reason)s) as booking;

-- name: decline_booking
select allocator.decline_booking(%(booking_id)s, %(actor)s, %(reason)s) as booking;

-- name: seat_booking
select allocator.seat_booking(%(booking_id)s, %(expected_version)s, %(actor)s, %(reason)s) as booking;

-- name: finish_booking
select allocator.finish_booking(%(booking_id)s, %(expected_version)s, %(actor)s, %(reason)s) as booking;

-- name: mark_no_show
select allocator.mark_no_show(%(booking_id)s, %(expected_version)s, %(actor)s, %(reason)s) as booking;
