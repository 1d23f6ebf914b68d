-- Blocked tables: nobody is seated on them during the block; a block over confirmed bookings
-- seats them elsewhere or sends them to manual review (table_blocked), in one transaction;
-- refused over a seated party or another block; the invariants flag any allocation on a
-- blocked or inactive table.
select plan(20);

select allocator.freeze_clock('2026-06-01 17:00+00');
select (allocator.import_layout('{"name": "Blocks", "settings": {"buffer_minutes": 0, "turn_minutes": {"8": 120}},
  "tables": [{"label": "T1", "max_capacity": 4, "combinable": false},
             {"label": "T2", "max_capacity": 4, "combinable": false},
             {"label": "T3", "max_capacity": 2, "combinable": false}]}') ->> 'restaurant_id')::bigint as r \gset
select (allocator.import_layout('{"name": "Elsewhere", "tables": [{"label": "X1", "max_capacity": 4}]}') ->> 'restaurant_id')::bigint as other \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id = (select id from allocator.restaurants where name = 'Blocks') $$;
create function pg_temp.confirmed(p_party int, p_at text) returns bigint language plpgsql as $$
declare v_id bigint;
begin
  v_id := (allocator.create_booking((select id from allocator.restaurants where name = 'Blocks'), p_party, p_at::timestamptz)
           ->> 'booking_id')::bigint;
  perform allocator.process_booking(v_id, 'w');
  return v_id;
end $$;
create function pg_temp.tables_of(p_booking bigint) returns bigint[] language sql as
  $$ select array_agg(table_id order by table_id) from allocator.allocations where booking_id = p_booking and kind = 'confirmed' $$;

select pg_temp.confirmed(4, '2026-06-01 19:00+00') as b1 \gset
select pg_temp.confirmed(4, '2026-06-01 19:00+00') as b2 \gset
select pg_temp.confirmed(2, '2026-06-01 21:30+00') as b5 \gset
select is(pg_temp.tables_of(:b1) || pg_temp.tables_of(:b2) || pg_temp.tables_of(:b5),
  array[pg_temp.t('T1'), pg_temp.t('T2'), pg_temp.t('T3')], 'three parties: T1 and T2 at 19:00, T3 at 21:30');

-- Bad blocks change nothing.
select throws_ok(format($$select allocator.block_tables(%s, array[%s], '2026-06-01 23:00+00', '2026-06-01 18:00+00', 'x')$$, :r, pg_temp.t('T1')),
  'RA001', NULL, 'an inverted range');
select throws_ok(format($$select allocator.block_tables(%s, array[%s], '2026-06-01 18:00+00', '2026-06-01 23:00+00', ' ')$$, :r, pg_temp.t('T1')),
  'RA001', NULL, 'no reason');
select throws_ok(format($$select allocator.block_tables(%s, array[(select id from allocator.tables where restaurant_id = %s)], '2026-06-01 18:00+00', '2026-06-01 23:00+00', 'x')$$, :r, :other),
  'RA002', NULL, 'another restaurant''s table');
select throws_ok(format($$select allocator.block_tables(%s, array[%s], '2026-06-01 18:00+00', '2026-09-30 23:00+00', 'x')$$, :r, pg_temp.t('T1')),
  'RA001', NULL, 'longer than 90 days');
select is((select count(*)::int from allocator.table_blocks where restaurant_id = :r), 0, 'no block written');

-- A block over T1 from 18:00: the party on it has nowhere to go.
select allocator.block_tables(:r, array[pg_temp.t('T1')], '2026-06-01 18:00+00', '2026-06-01 23:00+00', 'leaking pipe', 'staff:ana') as blocked \gset
select is(:'blocked'::jsonb -> 'manual_review', jsonb_build_array(:b1), 'the party on T1 goes to manual review');
select is((select state || ' / ' || manual_review_reason from allocator.bookings where id = :b1), 'manual_review / table_blocked',
  'with reason table_blocked');
select is(pg_temp.tables_of(:b1), null, 'and no table');
select ok(not exists (select 1 from allocator.availability(:r, '[2026-06-01 21:00+00, 2026-06-01 22:00+00)') where pg_temp.t('T1') = any (table_ids)),
  'T1 is not free during the block');
select throws_ok(format($$select allocator.manual_assign(%s, array[%s], 'staff:ana', 'try T1')$$, :b1, pg_temp.t('T1')),
  'RA003', NULL, 'staff cannot seat anyone on it either');

-- A block over T3 at 21:00: the couple moves to T2, free from 21:00.
select allocator.block_tables(:r, array[pg_temp.t('T3')], '2026-06-01 21:00+00', '2026-06-01 22:00+00', 'private tasting') as moved \gset
select is(:'moved'::jsonb -> 'reseated' -> 0 ->> 'booking_id', :'b5', 'the couple is seated elsewhere');
select is(pg_temp.tables_of(:b5), array[pg_temp.t('T2')], 'on T2');
select is((select state from allocator.bookings where id = :b5), 'confirmed', 'still confirmed');
select throws_ok(format($$select allocator.block_tables(%s, array[%s], '2026-06-01 21:30+00', '2026-06-01 23:30+00', 'x')$$, :r, pg_temp.t('T3')),
  'RA003', NULL, 'a block over another block');

-- A seated party is never blocked away.
select allocator.freeze_clock('2026-06-01 19:05+00');
select allocator.seat_booking(:b2) is not null as s \gset
select throws_ok(format($$select allocator.block_tables(%s, array[%s], '2026-06-01 19:30+00', '2026-06-01 20:00+00', 'x')$$, :r, pg_temp.t('T2')),
  'RA003', NULL, 'a table with a seated party');
select is((select count(*)::int from allocator.check_invariants() where restaurant_id = :r), 0, 'every invariant holds');

select is(allocator.unblock_tables(:r, (select array_agg(id) from allocator.table_blocks where restaurant_id = :r and table_id = pg_temp.t('T1'))), 1,
  'the block of T1 is removed');
select ok(exists (select 1 from allocator.availability(:r, '[2026-06-01 21:00+00, 2026-06-01 22:00+00)') where table_ids = array[pg_temp.t('T1')]),
  'T1 is free again');
update allocator.tables set active = false where id = pg_temp.t('T2');
select is((select array_agg(kind) from allocator.check_invariants() where restaurant_id = :r), array['blocked_table', 'blocked_table'],
  'parties still to come on a table made inactive are flagged');

select * from finish();
