-- The evening on the floor: seating (early only onto a free table), finishing (the rest of
-- the time free at once), no-shows by staff and by the sweep, and the guards of each.
select plan(42);

select allocator.freeze_clock('2026-06-01 17:00+00');
select (allocator.import_layout('{"name": "Floor", "settings": {"buffer_minutes": 15, "turn_minutes": {"8": 120}},
  "tables": [{"label": "T1", "max_capacity": 4, "combinable": false},
             {"label": "T2", "max_capacity": 4, "combinable": false}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id = (select id from allocator.restaurants where name = 'Floor') $$;
create function pg_temp.confirmed(p_party int, p_at text) returns bigint language plpgsql as $$
declare v_id bigint;
begin
  v_id := (allocator.create_booking((select id from allocator.restaurants where name = 'Floor'), p_party, p_at::timestamptz)
           ->> 'booking_id')::bigint;
  perform allocator.process_booking(v_id, 'w');
  return v_id;
end $$;
create function pg_temp.until(p_booking bigint) returns timestamptz language sql as
  $$ select max(upper(period)) from allocator.allocations where booking_id = p_booking and kind = 'confirmed' $$;
create function pg_temp.free_at(p_table text, p_from text, p_to text) returns boolean language sql as
  $$ select exists (select 1 from allocator.availability((select id from allocator.restaurants where name = 'Floor'),
                      tstzrange(p_from::timestamptz, p_to::timestamptz, '[)'))
                     where table_ids = array[pg_temp.t(p_table)]) $$;

select pg_temp.confirmed(2, '2026-06-01 17:00+00') as p \gset
select pg_temp.confirmed(2, '2026-06-01 19:30+00') as a \gset
select is((select array_agg(table_id) from allocator.allocations where booking_id in (:p, :a)),
  array[pg_temp.t('T1'), pg_temp.t('T1')], 'two parties on T1: 17:00 and 19:30');

select allocator.freeze_clock('2026-06-01 17:05+00');
select is(allocator.seat_booking(:p, p_actor => 'staff:ana') ->> 'state', 'seated', 'the first party is seated');
select is((select seated_at from allocator.bookings where id = :p), '2026-06-01 17:05+00'::timestamptz, 'at the real start');
select is((select actor || ' ' || (metadata ->> 'minutes_late') from allocator.booking_state_history where booking_id = :p and to_state = 'seated'),
  'staff:ana 5', 'audited: who seated them, five minutes late');
select throws_ok(format('select allocator.seat_booking(%s)', :p), 'RA005', NULL, 'a seated party is not seated again');
select is((select row(status, booking_id = :p, frees_at, next_booking_id = :a, next_at)::text
             from allocator.floor_at(:r) where label = 'T1'),
  '(seated,t,"2026-06-01 19:15:00+00",t,"2026-06-01 19:30:00+00")',
  'the floor: T1 seated until 19:15 (with the buffer), the 19:30 party next');
select is((select status from allocator.floor_at(:r) where label = 'T2'), 'free', 'T2 free');

select allocator.freeze_clock('2026-06-01 18:20+00');
select throws_ok(format('select allocator.seat_booking(%s)', :a), 'RA001', NULL, 'more than an hour early');
select allocator.freeze_clock('2026-06-01 18:35+00');
select throws_ok(format('select allocator.seat_booking(%s)', :a), 'RA003', NULL, 'early, while T1 is still the first party''s');
select is((select state from allocator.bookings where id = :a), 'confirmed', 'refused: still confirmed');
select throws_ok(format('select allocator.finish_booking(%s)', :a), 'RA005', NULL, 'a party not seated cannot finish');

select allocator.freeze_clock('2026-06-01 18:40+00');
select ok(not pg_temp.free_at('T1', '2026-06-01 18:56+00', '2026-06-01 19:10+00'), 'before the first party leaves, T1 is taken until 19:15');
select is(allocator.finish_booking(:p, p_actor => 'staff:ana') ->> 'state', 'finished', 'the first party leaves at 18:40');
select is(pg_temp.until(:p), '2026-06-01 18:55+00'::timestamptz, 'its table is taken until cleared (15 minutes), no longer');
select ok(pg_temp.free_at('T1', '2026-06-01 18:56+00', '2026-06-01 19:10+00'), 'so T1 is free from 18:55');
select is((select finished_at from allocator.bookings where id = :p), '2026-06-01 18:40+00'::timestamptz, 'finished_at');
select throws_ok(format('select allocator.finish_booking(%s)', :p), 'RA005', NULL, 'finishing twice');

select allocator.freeze_clock('2026-06-01 18:56+00');
select is(allocator.seat_booking(:a) ->> 'state', 'seated', 'now the second party can be seated early');
select is((select min(lower(period)) from allocator.allocations where booking_id = :a), '2026-06-01 18:56+00'::timestamptz,
  'taking T1 from now');

-- No-shows.
select pg_temp.confirmed(2, '2026-06-01 20:00+00') as n \gset
select is((select array_agg(table_id) from allocator.allocations where booking_id = :n), array[pg_temp.t('T2')], 'a party at 20:00 on T2');
select throws_ok(format('select allocator.mark_no_show(%s)', :n), 'RA001', NULL, 'not a no-show before its start');
select allocator.freeze_clock('2026-06-01 20:10+00');
select is((select row(status, late, booking_id = :n)::text from allocator.floor_at(:r) where label = 'T2'),
  '(booked,t,t)', 'ten minutes after its start, nobody seated: booked and late');
select is(allocator.mark_no_shows(), 0, 'ten minutes late: the sweep waits (floor.no_show_minutes is 30)');
select allocator.freeze_clock('2026-06-01 20:31+00');
select is(allocator.mark_no_shows(), 1, 'thirty-one minutes late: the sweep marks it');
select is((select state || ' ' || (select actor from allocator.booking_state_history h where h.booking_id = b.id order by version desc limit 1)
             from allocator.bookings b where id = :n), 'no_show system:no-show-sweep', 'a no-show, by the sweep');
select is(pg_temp.until(:n), '2026-06-01 20:31+00'::timestamptz, 'T2 is free from now');
select pg_temp.confirmed(4, '2026-06-01 21:00+00') as m \gset
select allocator.freeze_clock('2026-06-01 21:10+00');
select is(allocator.mark_no_show(:m, p_actor => 'staff:luca', p_reason => 'called to cancel') ->> 'state', 'no_show',
  'staff mark a no-show');

-- Learned turn times and walk-ins (at 21:10: T1 has the party seated early until 21:45 with
-- its buffer; T2 was freed by the no-show).
select is(allocator.predicted_turn_minutes((select r from allocator.restaurants r where id = :r), null, 2), 118,
  'one party stayed 95 minutes: the setting (120, worth ten observations) pulled towards it');
select allocator.set_service(:r, 'early', '{1,2,3,4,5,6,7}', '16:00', '19:00') is not null as e \gset
select allocator.set_service(:r, 'late', '{1,2,3,4,5,6,7}', '22:00', '23:00') is not null as l \gset
select is(allocator.predicted_turn_minutes((select r from allocator.restaurants r where id = :r),
            (select s from allocator.services s where restaurant_id = :r and name = 'early'), 2), 118,
  'learned per service: the party started in the early service');
select is(allocator.predicted_turn_minutes((select r from allocator.restaurants r where id = :r),
            (select s from allocator.services s where restaurant_id = :r and name = 'late'), 2), 120,
  'the late service has no history: the setting');
select allocator.remove_service(:r, 'early') and allocator.remove_service(:r, 'late') as removed \gset
create function pg_temp.detail_of(p_sql text) returns jsonb language plpgsql as $$
declare v_detail text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_detail = pg_exception_detail;
  return v_detail::jsonb;
end $$;
select allocator.seat_walk_in(:r, 2, p_actor => 'staff:ana') as walk \gset
select is(:'walk'::jsonb ->> 'state', 'seated', 'a walk-in couple is seated at once');
select is((:'walk'::jsonb ->> 'turn_minutes')::int, 118, 'for the learned turn time');
select is((select array_agg(table_id) from allocator.allocations where booking_id = (:'walk'::jsonb ->> 'booking_id')::bigint),
  array[pg_temp.t('T2')], 'on the free table');
select count(*) as bookings_before from allocator.bookings where restaurant_id = :r \gset
select throws_ok(format('select allocator.seat_walk_in(%s, 4)', :r), 'RA014', NULL, 'four more: no table now');
select is(pg_temp.detail_of(format('select allocator.seat_walk_in(%s, 4)', :r)),
  jsonb_build_object('free_at', '2026-06-01 21:45+00'::timestamptz, 'quoted_wait_minutes', 35),
  'quoted: T1 frees at 21:45, in 35 minutes');
select is((select count(*) from allocator.bookings where restaurant_id = :r), :bookings_before::bigint, 'nothing written');
select allocator.update_settings(:r, '{"floor": {"predicted_turns": true}}') is not null as x \gset
select allocator.create_booking(:r, 2, '2026-06-03 19:00+00') ->> 'booking_id' as learned \gset
select is((select upper(period) - lower(period) from allocator.bookings where id = :learned), interval '118 minutes',
  'with floor.predicted_turns, a new booking lasts the learned turn time');

-- Bad input and guards.
select (allocator.create_booking(:r, 2, '2026-06-02 19:00+00') ->> 'booking_id')::bigint as c \gset
select allocator.cancel_booking(:c) is not null as x \gset
select throws_ok(format('select allocator.seat_booking(%s)', :c), 'RA005', NULL, 'a cancelled booking is not seated');
select throws_ok(format('select allocator.seat_booking(%s, 99)', :m), 'RA004', NULL, 'a stale version');
select throws_ok(format($$select allocator.update_settings(%s, '{"floor": {"no_show_minutes": 2}}')$$, :r), 'RA006', NULL,
  'a no-show grace under 5 minutes');
select ok(exists (select 1 from allocator.cron_plan() where jobname = 'allocator-no-shows'), 'the sweep is a pg_cron job');
select is((select count(*)::int from allocator.check_invariants() where restaurant_id = :r), 0, 'every invariant holds');

select * from finish();
