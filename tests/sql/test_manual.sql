-- Manual actions: staff only, reason required, same history as automation; operator views.
select plan(28);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Manual", "settings": {"buffer_minutes": 0},
  "tables": [{"label": "N1", "max_capacity": 2}, {"label": "N2", "max_capacity": 4},
             {"label": "N3", "max_capacity": 2}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id =
     (select id from allocator.restaurants where name = 'Manual') $$;

select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b1 \gset
select allocator.transition(:b1, 1, 'manual_review', 'worker:w1', 'no table fits') is not null as x \gset
update allocator.bookings set assignment_attempts = 5 where id = :b1;

select is((select reason from allocator.manual_review_queue where booking_id = :b1), 'no table fits',
  'manual_review_queue shows the reason');
select is((select attempts from allocator.manual_review_queue where booking_id = :b1), 5, 'and the attempts');
select allocator.freeze_clock('2026-06-01 12:10+00');
select is((select age from allocator.manual_review_queue where booking_id = :b1), interval '10 minutes', 'and the age');

select throws_ok(format($$select allocator.requeue(%s, 'app', 'retry')$$, :b1), 'RA009', NULL,
  'requeue needs a staff actor');
select throws_ok(format($$select allocator.requeue(%s, 'staff:ann', '  ')$$, :b1), 'RA001', NULL,
  'requeue needs a reason');
select throws_ok(format($$select allocator.requeue(%s, 'waiter:ann', 'x')$$, :b1), 'RA001', NULL,
  'an unknown actor role is rejected');
select is(allocator.requeue(:b1, 'staff:ann', 'table freed up') ->> 'state', 'assignment_pending', 'staff can requeue');
select is((select assignment_attempts from allocator.bookings where id = :b1), 0, 'requeue resets the attempts');
select ok(exists (select 1 from allocator.assignment_queue where booking_id = :b1), 'and queues the booking');
select results_eq(format($$select actor, reason from allocator.booking_history(%s) order by version desc limit 1$$, :b1),
  $$ values ('staff:ann'::text, 'table freed up'::text) $$, 'the history records who and why');

-- manual_assign checks capacity; force_confirm does not
select (allocator.create_booking(:r, 3, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b2 \gset
select throws_ok(format($$select allocator.manual_assign(%s, array[%s], 'staff:ann', 'regular')$$, :b2, pg_temp.t('N1')),
  'RA011', NULL, 'manual_assign refuses a table too small');
select is(allocator.manual_assign(:b2, array[pg_temp.t('N2')], 'staff:ann', 'regular guest') ->> 'state', 'confirmed',
  'manual_assign confirms on the chosen table');
select throws_ok(format($$select allocator.manual_assign(%s, array[%s], 'staff:ann', 'x')$$, :b1, pg_temp.t('N2')),
  'RA003', NULL, 'manual_assign cannot double-book');
select is(allocator.force_confirm(:b1, 'staff:bob', 'squeeze in', array[pg_temp.t('N1')]) ->> 'state', 'confirmed',
  'force_confirm confirms on given tables');
select (allocator.create_booking(:r, 3, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b3 \gset
select is(allocator.force_confirm(:b3, 'staff:bob', 'birthday, extra chair', array[pg_temp.t('N3')]) ->> 'tables',
  format('[%s]', pg_temp.t('N3')), 'force_confirm may seat a party above the table''s capacity');
select (allocator.create_booking(:r, 2, '2026-06-01 21:00+00', 60) ->> 'booking_id')::bigint as b4 \gset
select (allocator.hold_tables(:b4, array[pg_temp.t('N1')]) ->> 'hold_id')::bigint as h4 \gset
select is(allocator.force_confirm(:b4, 'staff:bob', 'on its hold') ->> 'state', 'confirmed', 'force_confirm confirms a held booking');
-- Confirming a hold is one function, whoever calls it: the same hold, allocations and events.
select is((select status from allocator.holds where id = :h4), 'confirmed', 'its hold is confirmed');
select is((select array_agg(kind) from allocator.allocations where booking_id = :b4), array['confirmed'],
  'its held table is its confirmed seat');
select is((select array_agg(topic order by id) from allocator.events
            where booking_id = :b4 and topic in ('hold.confirmed', 'booking.confirmed')
              and coalesce((payload ->> 'hold_id')::bigint, :h4) = :h4),
  array['hold.confirmed', 'booking.confirmed'], 'force_confirm on a hold emits hold.confirmed, as confirm_hold does');
select is((select metadata from allocator.booking_state_history where booking_id = :b4 and to_state = 'confirmed'),
  jsonb_build_object('manual', 'force_confirm', 'hold_id', :h4, 'table_ids', array[pg_temp.t('N1')]),
  'the history says staff confirmed that hold on those tables');
select throws_ok(format($$select allocator.force_confirm(%s, 'staff:bob', 'again')$$, :b4), 'RA001', NULL,
  'a confirmed booking is moved only onto tables given');
select (allocator.create_booking(:r, 2, '2026-06-01 22:00+00', 60) ->> 'booking_id')::bigint as b5 \gset
select throws_ok(format($$select allocator.force_confirm(%s, 'staff:bob', 'no tables')$$, :b5), 'RA001', NULL,
  'force_confirm without a hold or tables is refused');

select ok((select count(*) from allocator.booking_timeline where booking_id = :b4) >= 3,
  'booking_timeline shows states and holds');
select is((select count(*)::int from allocator.booking_attempts(:b4)), 0, 'booking_attempts lists none before the engine ran');
select throws_ok($$select * from allocator.booking_history(987654321)$$, 'RA002', NULL, 'history of an unknown booking');

select throws_ok(format($$select allocator.decline_booking(%s, 'app', 'no')$$, :b5), 'RA009', NULL, 'declining needs staff');
select is(allocator.decline_booking(:b5, 'staff:ann', 'party of wolves') ->> 'state', 'failed', 'staff can decline a booking');
select throws_ok(format($$select allocator.decline_booking(%s, 'staff:ann', 'again')$$, :b5), 'RA005', NULL,
  'a failed booking cannot be declined again');

select * from finish();
