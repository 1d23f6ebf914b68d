-- Holds: hold, confirm, release, expire; conflicts, idempotency, bad input.
select plan(39);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Holds", "settings": {"buffer_minutes": 0},
  "tables": [{"label": "H1", "max_capacity": 2}, {"label": "H2", "max_capacity": 4},
             {"label": "H3", "max_capacity": 4}, {"label": "H4", "max_capacity": 2},
             {"label": "H5", "max_capacity": 2}],
  "adjacency": [["H2", "H3"]]}') ->> 'restaurant_id')::bigint as r \gset
select (allocator.import_layout('{"name": "Holds other", "tables": [{"label": "O1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as other \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id in
     (select id from allocator.restaurants where name like 'Holds%') $$;

select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 120) ->> 'booking_id')::bigint as b1 \gset
select (allocator.create_booking(:r, 2, '2026-06-01 20:00+00', 120) ->> 'booking_id')::bigint as b2 \gset
select (allocator.create_booking(:r, 7, '2026-06-01 19:00+00', 120) ->> 'booking_id')::bigint as b3 \gset

select allocator.hold_tables(:b1, array[pg_temp.t('H1')], 60, 'hold-1') as h1 \gset
select (:'h1'::jsonb ->> 'hold_id')::bigint as h1id \gset
select is(:'h1'::jsonb ->> 'status', 'active', 'a hold is active');
select is((:'h1'::jsonb ->> 'expires_at')::timestamptz, '2026-06-01 12:01+00', 'it expires after its TTL');
select is((select state from allocator.bookings where id = :b1), 'assigned', 'the booking is assigned while held');
select is((select count(*)::int from allocator.allocations where booking_id = :b1 and kind = 'hold'), 1,
  'one hold allocation per table');

select is((allocator.hold_tables(:b1, array[pg_temp.t('H1')], 60, 'hold-1') ->> 'hold_id')::bigint, :h1id::bigint,
  'the same idempotency key returns the same hold');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s], 60, 'hold-1')$$, :b1, pg_temp.t('H4')),
  'RA008', format('idempotency key hold-1 was used for hold %s with other arguments', :h1id),
  'the same key for other tables is an error');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s], 60, 'hold-1')$$, :b2, pg_temp.t('H1')),
  'RA008', NULL, 'the same key for another booking is an error');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s], 60, repeat('k', 201))$$, :b2, pg_temp.t('H4')),
  'RA001', 'idempotency key must be 1 to 200 characters', 'a key of 201 characters is refused, as create_booking refuses it');

select throws_ok(format($$select allocator.hold_tables(%s, array[%s], 60)$$, :b2, pg_temp.t('H1')),
  'RA003', NULL, 'an overlapping hold on the same table fails with the conflict error');
select is((select state from allocator.bookings where id = :b2), 'created', 'the losing booking is unchanged');
select is((select count(*)::int from allocator.holds where booking_id = :b2), 0, 'and holds nothing');

-- Bad input
select throws_ok(format($$select allocator.hold_tables(%s, array[%s], 0)$$, :b2, pg_temp.t('H4')), 'RA001', NULL, 'TTL 0');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s], -5)$$, :b2, pg_temp.t('H4')), 'RA001', NULL, 'negative TTL');
select throws_ok(format($$select allocator.hold_tables(%s, array[]::bigint[])$$, :b2), 'RA001', NULL, 'no tables');
select throws_ok(format($$select allocator.hold_tables(%s, NULL)$$, :b2), 'RA001', NULL, 'NULL tables');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s, %s])$$, :b2, pg_temp.t('H4'), pg_temp.t('H4')),
  'RA001', NULL, 'a table listed twice');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s])$$, :b2, pg_temp.t('O1')),
  'RA007', NULL, 'a table of another restaurant');
select throws_ok(format($$select allocator.hold_tables(%s, array[987654321])$$, :b2), 'RA002', NULL, 'an unknown table');
select throws_ok($$select allocator.hold_tables(987654321, array[1])$$, 'RA002', NULL, 'an unknown booking');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s])$$, :b3, pg_temp.t('H2')),
  'RA011', NULL, 'a table too small for the party');
select throws_ok(format($$select allocator.hold_tables(%s, array[%s, %s])$$, :b2, pg_temp.t('H1'), pg_temp.t('H4')),
  'RA001', NULL, 'several tables that are not adjacent');
select lives_ok(format($$select allocator.hold_tables(%s, array[%s, %s], 60)$$, :b3, pg_temp.t('H3'), pg_temp.t('H2')),
  'a known combination seats a party no single table can');

-- confirm
select is(allocator.confirm_hold(:h1id) ->> 'status', 'confirmed', 'confirm_hold confirms');
select is((select state from allocator.bookings where id = :b1), 'confirmed', 'the booking is confirmed');
select is((select kind from allocator.allocations where booking_id = :b1), 'confirmed', 'its allocation is confirmed');
select is((allocator.confirm_hold(:h1id) ->> 'changed')::boolean, false, 'confirming twice changes nothing');
select is((select count(*)::int from allocator.booking_state_history where booking_id = :b1 and to_state = 'confirmed'), 1,
  'and writes one confirmation only');
select is((select array_agg(topic order by id) from allocator.events
            where booking_id = :b1 and topic in ('hold.confirmed', 'booking.confirmed')),
  array['hold.confirmed', 'booking.confirmed'], 'and one hold.confirmed event before booking.confirmed');
select is((select metadata from allocator.booking_state_history where booking_id = :b1 and to_state = 'confirmed'),
  jsonb_build_object('hold_id', :h1id, 'table_ids', array[pg_temp.t('H1')]), 'the history names the hold and its tables');

-- an expired hold never blocks, even before the sweep
select (allocator.hold_tables(:b2, array[pg_temp.t('H4')], 30) ->> 'hold_id')::bigint as h2id \gset
select (allocator.create_booking(:r, 2, '2026-06-01 20:30+00', 60) ->> 'booking_id')::bigint as b4 \gset
select throws_ok(format($$select allocator.hold_tables(%s, array[%s])$$, :b4, pg_temp.t('H4')),
  'RA003', NULL, 'a live hold blocks');
select allocator.freeze_clock('2026-06-01 12:00:31+00');
select lives_ok(format($$select allocator.hold_tables(%s, array[%s], 60)$$, :b4, pg_temp.t('H4')),
  'an expired hold does not block a new one before any sweep');
select is((select status from allocator.holds where id = :h2id), 'expired', 'the expired hold is closed');
select is((select state from allocator.bookings where id = :b2), 'assignment_pending', 'its booking goes back to the queue');
select throws_ok(format($$select allocator.confirm_hold(%s)$$, :h2id), 'RA010', NULL, 'an expired hold cannot be confirmed');

-- release and sweep
select (allocator.hold_tables(:b2, array[pg_temp.t('H5')], 60) is null) as dummy \gset
select throws_ok(format($$select allocator.hold_tables(%s, array[%s])$$, :b2, pg_temp.t('H5')),
  'RA005', NULL, 'a booking that already holds tables cannot hold more');
select allocator.freeze_clock('2026-06-01 12:30+00');
select is(allocator.expire_holds(), 3, 'the sweeper expires every overdue hold');
select is((select count(*)::int from allocator.allocations where kind = 'hold' and restaurant_id = :r), 0,
  'and frees their tables');
select (allocator.hold_tables(:b4, array[pg_temp.t('H4')], 60) ->> 'hold_id')::bigint as h4id \gset
select is(allocator.release_hold(:h4id) ->> 'status', 'released', 'release_hold releases');
select is((select count(*)::int from allocator.allocations where booking_id = :b4), 0, 'and frees the tables');

select * from finish();
