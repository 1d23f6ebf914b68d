-- Service periods, pacing, slot search and the instant booking: slots on each service's
-- 15-minute grid only, closed days and taken tables left out, book confirmed at once or
-- refused with alternatives, and every bad call refused with its SQLSTATE, writing nothing.
select plan(77);

select allocator.freeze_clock('2026-06-01 08:00+00');  -- a Monday, 10:00 in Rome
select (allocator.import_layout('{"name": "Service", "timezone": "Europe/Rome",
  "settings": {"buffer_minutes": 0, "turn_minutes": {"8": 120}},
  "zones": [{"name": "Inside"}, {"name": "Garden"}],
  "tables": [{"label": "S1", "max_capacity": 4, "zone": "Inside", "combinable": false},
             {"label": "S2", "max_capacity": 4, "zone": "Garden", "combinable": false}]}') ->> 'restaurant_id')::bigint as r \gset
select (allocator.import_layout('{"name": "No service", "tables": [{"label": "N1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as bare \gset

-- A helper: the DETAIL of the error a statement raises, as JSON.
create function pg_temp.detail_of(p_sql text) returns jsonb language plpgsql as $$
declare
  v_detail text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_detail = pg_exception_detail;
  return v_detail::jsonb;
end
$$;

-- Setting services.
select is((allocator.set_service(:r, 'lunch', '{5,1,2,3,4}', '12:00', '14:00')) ->> 'days', '[1, 2, 3, 4, 5]',
  'a service''s weekdays are kept sorted');
select lives_ok(format($$select allocator.set_service(%s, 'dinner', '{1,2,3,4,5,6}', '18:00', '21:00', 6, null)$$, :r),
  'a dinner service with pacing');
select is((select count(*)::integer from allocator.services where restaurant_id = :r), 2, 'two services');
select lives_ok(format($$select allocator.set_service(%s, 'dinner', '{1,2,3,4,5,6}', '18:00', '21:00', 6, null)$$, :r),
  'setting a service again replaces it');
select is((select count(*)::integer from allocator.services where restaurant_id = :r), 2, 'still two services');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{0}', '18:00', '21:00')$$, :r), 'RA001', NULL, 'weekday 0');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{8}', '18:00', '21:00')$$, :r), 'RA001', NULL, 'weekday 8');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{1,1}', '18:00', '21:00')$$, :r), 'RA001', NULL, 'a weekday twice');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{}', '18:00', '21:00')$$, :r), 'RA001', NULL, 'no weekday');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{{1},{2}}', '18:00', '21:00')$$, :r), 'RA001', NULL, 'a 2-D array');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{1}', '21:00', '18:00')$$, :r), 'RA001', NULL,
  'last seating before opening');
select throws_ok(format($$select allocator.set_service(%s, ' ', '{1}', '18:00', '21:00')$$, :r), 'RA001', NULL, 'a blank name');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{1}', '18:00', '21:00', 0)$$, :r), 'RA001', NULL, 'pacing 0');
select throws_ok($$select allocator.set_service(-1, 'x', '{1}', '18:00', '21:00')$$, 'RA002', NULL, 'an unknown restaurant');
select is((select count(*)::integer from allocator.services where restaurant_id = :r), 2, 'no refused call wrote a service');

-- Slots: Tuesday has lunch 12:00-14:00 (9 slots) and dinner 18:00-21:00 (13 slots), local.
select is((select count(*)::integer from allocator.find_slots(:r, 2, '2026-06-02 00:00+02', '2026-06-03 00:00+02')),
  22, 'every 15 minutes of both services');
select is((select min(start) from allocator.find_slots(:r, 2, '2026-06-02 00:00+02', '2026-06-03 00:00+02')),
  '2026-06-02 12:00+02'::timestamptz, 'from the opening of lunch');
select is((select max(start) from allocator.find_slots(:r, 2, '2026-06-02 00:00+02', '2026-06-03 00:00+02')),
  '2026-06-02 21:00+02'::timestamptz, 'to the last seating of dinner');
select is((select array_agg(distinct service order by service) from allocator.find_slots(:r, 2, '2026-06-02 00:00+02', '2026-06-03 00:00+02')),
  array['dinner', 'lunch'], 'named by service');
select is((select count(*)::integer from allocator.find_slots(:r, 2, '2026-06-06 00:00+02', '2026-06-07 00:00+02')),
  13, 'Saturday: dinner only');
select is((select count(*)::integer from allocator.find_slots(:r, 2, '2026-06-07 00:00+02', '2026-06-08 00:00+02')),
  0, 'Sunday: no service');
select ok(allocator.close_day(:r, '2026-06-03', 'private event'), 'a day is closed');
select is((select count(*)::integer from allocator.find_slots(:r, 2, '2026-06-03 00:00+02', '2026-06-04 00:00+02')),
  0, 'a closed day has no slot');
select is((select count(*)::integer from allocator.find_slots(:r, 2, '2026-06-01 00:00+02', '2026-06-02 00:00+02')),
  22, 'today: from now (10:00) on');
select is((select count(*)::integer from allocator.find_slots(:r, 2, '2026-06-02 00:00+02', '2026-06-03 00:00+02', 'Garden')),
  22, 'a zone with a free table');

-- Booking at once.
select allocator.book(:r, 4, '2026-06-02 19:00+02', 'guest-1', 'Garden') as first \gset
select is(:'first'::jsonb ->> 'state', 'confirmed', 'book confirms at once');
select is((:'first'::jsonb -> 'table_ids' ->> 0)::bigint,
  (select id from allocator.tables where restaurant_id = :r and label = 'S2'), 'on a table of the preferred zone');
select is((select array_agg(to_state order by version) from allocator.booking_state_history
            where restaurant_id = :r and booking_id = (:'first'::jsonb ->> 'booking_id')::bigint),
  array['created', 'assigned', 'confirmed'],
  'created, its tables held and confirmed in one transaction: one history row each');
select ok(not exists (select 1 from allocator.assignment_queue where restaurant_id = :r), 'never queued');
select is((allocator.book(:r, 4, '2026-06-02 19:00+02', 'guest-1', 'Garden')) ->> 'booking_id',
  :'first'::jsonb ->> 'booking_id', 'the same key returns the same booking');
select is((select count(*)::integer from allocator.find_slots(:r, 4, '2026-06-02 00:00+02', '2026-06-03 00:00+02', 'Garden')),
  10, 'the garden table is gone for the 12 dinner starts whose two hours overlap 19:00-21:00');

select allocator.book(:r, 2, '2026-06-02 19:00+02') ->> 'state' as second \gset
select is(:'second'::text, 'confirmed', 'the last table at 19:00 goes to the next guest (6 covers: the pacing limit)');
select throws_ok(format($$select allocator.book(%s, 2, '2026-06-02 19:00+02')$$, :r), 'RA014', NULL,
  'a third guest at 19:00 is refused');
select is(pg_temp.detail_of(format($$select allocator.book(%s, 2, '2026-06-02 19:00+02')$$, :r)) -> 'alternatives',
  '["2026-06-02T19:00:00+00:00"]'::jsonb,
  'with the nearest times, within three hours, at which a table is free (21:00 local)');
select is(allocator.book(:r, 4, '2026-06-02 12:30+02') ->> 'state', 'confirmed', 'lunch: one table');
select is(allocator.book(:r, 4, '2026-06-02 12:30+02') ->> 'state', 'confirmed', 'lunch: the other');
select is(pg_temp.detail_of(format($$select allocator.book(%s, 4, '2026-06-02 12:30+02')$$, :r)) -> 'alternatives',
  '[]'::jsonb, 'lunch full until its last seating: refused with no alternative');
select throws_ok(format($$select allocator.book(%s, 2, '2026-06-02 16:00+02')$$, :r), 'RA013', NULL,
  'a time between services');
select is(pg_temp.detail_of(format($$select allocator.book(%s, 2, '2026-06-02 16:00+02')$$, :r)) -> 'alternatives',
  '["2026-06-02T19:00:00+00:00"]'::jsonb, 'offered the next slot with a free table (21:00 local)');
select throws_ok(format($$select allocator.book(%s, 2, '2026-06-03 19:00+02')$$, :r), 'RA013', NULL, 'a closed day');
select throws_ok(format($$select allocator.book(%s, 9, '2026-06-04 19:00+02')$$, :r), 'RA014', NULL,
  'a party no table seats');

-- Pacing: 6 covers may start per 15 minutes at dinner.
select is(allocator.book(:r, 4, '2026-06-04 20:00+02') ->> 'state', 'confirmed', '4 covers at 20:00');
select throws_ok(format($$select allocator.book(%s, 4, '2026-06-04 20:10+02')$$, :r), 'RA014', NULL,
  '4 more in the same slot are refused by pacing');
select ok(not exists (select 1 from allocator.find_slots(:r, 4, '2026-06-04 00:00+02', '2026-06-05 00:00+02') s
                       where s.start = '2026-06-04 20:00+02'), 'and find_slots leaves 20:00 out for 4 more');

-- Searches refused.
select throws_ok(format($$select * from allocator.find_slots(%s, 2, '2026-06-03', '2026-06-02')$$, :r), 'RA001', NULL,
  'an inverted range');
select throws_ok(format($$select * from allocator.find_slots(%s, 2, '2026-06-02', '2026-06-10')$$, :r), 'RA001', NULL,
  'a range over 7 days');
select throws_ok(format($$select * from allocator.find_slots(%s, 2, '-infinity', 'infinity')$$, :r), 'RA001', NULL,
  'an infinite range');
select throws_ok(format($$select * from allocator.find_slots(%s, 2, '2026-06-02', '2026-06-03')$$, :bare), 'RA013', NULL,
  'a restaurant without service periods');

-- Turn times per service and special days, on a restaurant of one table.
select (allocator.import_layout('{"name": "Specials", "timezone": "Europe/Rome",
  "settings": {"buffer_minutes": 0, "turn_minutes": {"8": 120}},
  "tables": [{"label": "T1", "max_capacity": 4, "combinable": false}]}') ->> 'restaurant_id')::bigint as sp \gset
select is(allocator.set_service(:sp, 'dinner', '{1,2,3,4,5}', '18:00', '21:00', null, null, '{"2": 60, "8": 150}') -> 'turn_minutes',
  '{"2": 60, "8": 150}'::jsonb, 'a service with its own turn times');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{1}', '18:00', '21:00', null, null, '{"2": 5}')$$, :sp),
  'RA006', NULL, 'a turn time under 15 minutes');
select throws_ok(format($$select allocator.set_service(%s, 'x', '{1}', '18:00', '21:00', null, null, '[90]')$$, :sp),
  'RA006', NULL, 'turn times that are not an object');
select is((select count(*)::integer from allocator.services where restaurant_id = :sp), 1, 'no refused call wrote a service');
select allocator.book(:sp, 2, '2026-06-02 18:00+02') as early \gset
select is((select upper(period) - lower(period) from allocator.bookings
            where restaurant_id = :sp and id = (:'early'::jsonb ->> 'booking_id')::bigint),
  interval '60 minutes', 'book: a party of 2 at dinner takes the service''s 60 minutes');
select is(allocator.book(:sp, 2, '2026-06-02 20:00+02') ->> 'state', 'confirmed', 'a second party of 2 at 20:00');
select is((select array_agg(start order by start) from allocator.find_slots(:sp, 2, '2026-06-02 00:00+02', '2026-06-03 00:00+02')),
  array['2026-06-02 19:00+02', '2026-06-02 21:00+02']::timestamptz[],
  'find_slots counts the service''s turn time: one free hour between, and the last seating');
select allocator.create_booking(:sp, 4, '2026-06-03 20:00+02') ->> 'booking_id' as in_service \gset
select allocator.create_booking(:sp, 4, '2026-06-03 11:00+02') ->> 'booking_id' as off_service \gset
select is((select upper(period) - lower(period) from allocator.bookings where restaurant_id = :sp and id = :in_service),
  interval '150 minutes', 'create_booking at dinner: the service''s turn time for 4');
select is((select upper(period) - lower(period) from allocator.bookings where restaurant_id = :sp and id = :off_service),
  interval '120 minutes', 'create_booking outside any service: the restaurant''s turn time');

select is(allocator.set_special_day(:sp, '2026-06-06', 'dinner', '19:00', '20:00', 'wine dinner') ->> 'service', 'dinner',
  'a Saturday with special hours');
select is((select count(*)::integer from allocator.find_slots(:sp, 2, '2026-06-06 00:00+02', '2026-06-07 00:00+02')),
  5, 'the service runs that Saturday, 19:00 to 20:00 only');
select lives_ok(format($$select allocator.set_special_day(%s, '2026-06-04', 'dinner', '19:00', '19:30', 'short evening')$$, :sp),
  'shorter hours on a Thursday');
select is((select count(*)::integer from allocator.find_slots(:sp, 2, '2026-06-04 00:00+02', '2026-06-05 00:00+02')),
  3, 'three slots that Thursday');
select throws_ok(format($$select allocator.book(%s, 2, '2026-06-04 18:00+02')$$, :sp), 'RA013', NULL,
  'book at the usual opening of a shortened day');
select is(pg_temp.detail_of(format($$select allocator.book(%s, 2, '2026-06-04 18:00+02')$$, :sp)),
  '{"alternatives": ["2026-06-04T17:00:00+00:00"], "service": "dinner"}'::jsonb,
  'refused with the nearest time and its service');
select lives_ok(format($$select allocator.set_special_day(%s, '2026-06-05', 'dinner', null, null, 'private party')$$, :sp),
  'the service does not run on a Friday');
select is((select count(*)::integer from allocator.find_slots(:sp, 2, '2026-06-05 00:00+02', '2026-06-06 00:00+02')),
  0, 'no slot that Friday');
select throws_ok(format($$select allocator.book(%s, 2, '2026-06-05 19:00+02')$$, :sp), 'RA013', NULL, 'nor a booking');
select ok(allocator.clear_special_day(:sp, '2026-06-05', 'dinner'), 'the Friday is cleared');
select ok(not allocator.clear_special_day(:sp, '2026-06-05', 'dinner'), 'clearing it again finds nothing');
select is((select count(*)::integer from allocator.find_slots(:sp, 2, '2026-06-05 00:00+02', '2026-06-06 00:00+02')),
  13, 'the Friday runs its weekly hours again');
select ok(allocator.close_day(:sp, '2026-06-06', 'holiday'), 'closing the special Saturday');
select is((select count(*)::integer from allocator.find_slots(:sp, 2, '2026-06-06 00:00+02', '2026-06-07 00:00+02')),
  0, 'a closed day overrides special hours');
select throws_ok(format($$select allocator.set_special_day(%s, '2026-06-09', 'brunch', '10:00', '11:00', 'x')$$, :sp),
  'RA002', NULL, 'special hours for an unknown service');
select throws_ok(format($$select allocator.set_special_day(%s, '2026-06-09', 'dinner', '19:00', null, 'x')$$, :sp),
  'RA001', NULL, 'an opening without a last seating');
select throws_ok(format($$select allocator.set_special_day(%s, '2026-06-09', 'dinner', '20:00', '19:00', 'x')$$, :sp),
  'RA001', NULL, 'a last seating before the opening');
select throws_ok(format($$select allocator.set_special_day(%s, '2026-05-01', 'dinner', '19:00', '20:00', 'x')$$, :sp),
  'RA001', NULL, 'a day in the past');
select throws_ok(format($$select allocator.set_special_day(%s, '2026-06-09', 'dinner', '19:00', '20:00', ' ')$$, :sp),
  'RA001', NULL, 'no reason');
select is((select count(*)::integer from allocator.special_days where restaurant_id = :sp), 2,
  'no refused call wrote a special day');

select * from finish();
