-- Allocations: a table can never be given twice for overlapping periods.
select plan(11);

select allocator.import_layout('{
  "name": "Alloc A", "timezone": "Europe/Paris",
  "tables": [{"label": "A1", "max_capacity": 4}, {"label": "A2", "max_capacity": 4}]
}'::jsonb);
select allocator.import_layout('{
  "name": "Alloc B", "timezone": "UTC",
  "tables": [{"label": "B1", "max_capacity": 4}]
}'::jsonb);

create function pg_temp.rid(p_name text) returns bigint language sql stable as
  $$ select id from allocator.restaurants where name = p_name $$;
create function pg_temp.tid(p_label text) returns bigint language sql stable as
  $$ select id from allocator.tables where label = p_label
       and restaurant_id in (pg_temp.rid('Alloc A'), pg_temp.rid('Alloc B')) $$;

insert into allocator.bookings (restaurant_id, party_size, period) values
  (pg_temp.rid('Alloc A'), 2, '[2026-06-01 19:00+00, 2026-06-01 21:00+00)'),
  (pg_temp.rid('Alloc A'), 2, '[2026-06-01 20:00+00, 2026-06-01 22:00+00)'),
  (pg_temp.rid('Alloc A'), 2, '[2026-06-01 21:00+00, 2026-06-01 23:00+00)'),
  (pg_temp.rid('Alloc B'), 2, '[2026-06-01 19:00+00, 2026-06-01 21:00+00)');
create function pg_temp.bid(p_n int) returns bigint language sql stable as
  $$ select id from allocator.bookings where restaurant_id in (pg_temp.rid('Alloc A'), pg_temp.rid('Alloc B'))
     order by id offset p_n - 1 limit 1 $$;

select lives_ok(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(1), array[pg_temp.tid('A1')],
       '[2026-06-01 19:00+00, 2026-06-01 21:00+00)', 'confirmed') $$,
  'first allocation of a table succeeds');

select throws_ok(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(2), array[pg_temp.tid('A1')],
       '[2026-06-01 20:00+00, 2026-06-01 22:00+00)', 'confirmed') $$,
  'RA003', NULL,
  'an overlapping allocation of the same table fails with the conflict error');

select throws_ok(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(2), array[pg_temp.tid('A1')],
       '[2026-06-01 20:00+00, 2026-06-01 22:00+00)', 'hold', '2026-06-01 18:00+00') $$,
  'RA003', NULL,
  'an overlapping hold conflicts with a confirmed allocation too');

select throws_ok(
  $$ insert into allocator.allocations (restaurant_id, booking_id, table_id, period, kind)
     values (pg_temp.rid('Alloc A'), pg_temp.bid(2), pg_temp.tid('A1'),
             '[2026-06-01 20:59+00, 2026-06-01 22:00+00)', 'confirmed') $$,
  '23P01', NULL,
  'even a direct insert cannot double-book: the exclusion constraint holds');

select lives_ok(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(3), array[pg_temp.tid('A1')],
       '[2026-06-01 21:00+00, 2026-06-01 23:00+00)', 'confirmed') $$,
  'a back-to-back period on the same table succeeds (ranges are half-open)');

select lives_ok(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(2), array[pg_temp.tid('A2')],
       '[2026-06-01 20:00+00, 2026-06-01 22:00+00)', 'confirmed') $$,
  'the same period on another table succeeds');

select lives_ok(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc B'), pg_temp.bid(4), array[pg_temp.tid('B1')],
       '[2026-06-01 19:00+00, 2026-06-01 21:00+00)', 'confirmed') $$,
  'another restaurant is unaffected');

select throws_ok(
  $$ insert into allocator.allocations (restaurant_id, booking_id, table_id, period, kind)
     values (pg_temp.rid('Alloc B'), pg_temp.bid(4), pg_temp.tid('A2'),
             '[2026-06-02 19:00+00, 2026-06-02 21:00+00)', 'confirmed') $$,
  '23503', NULL,
  'an allocation cannot use a table of another restaurant (composite foreign key)');

-- A set is written whole or not at all, and the error names the table that is taken.
select throws_like(
  $$ select allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(1), array[pg_temp.tid('A2'), pg_temp.tid('A1')],
       '[2026-06-02 11:00+00, 2026-06-02 12:00+00)', 'confirmed')
       + allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(2), array[pg_temp.tid('A2'), pg_temp.tid('A1')],
       '[2026-06-02 11:30+00, 2026-06-02 12:30+00)', 'confirmed') $$,
  format('table %s is already taken%%', least(pg_temp.tid('A1'), pg_temp.tid('A2'))),
  'a set that overlaps another raises the conflict for its first taken table');
select is(allocator.insert_allocations(pg_temp.rid('Alloc A'), pg_temp.bid(3), array[pg_temp.tid('A2'), pg_temp.tid('A1')],
       '[2026-06-03 11:00+00, 2026-06-03 12:00+00)', 'confirmed'), 2,
  'a free set gets one allocation per table');

select is(
  (select count(*)::int from allocator.allocations
    where restaurant_id in (pg_temp.rid('Alloc A'), pg_temp.rid('Alloc B'))),
  6,
  'exactly the non-overlapping allocations exist: the conflicting set left nothing behind');

select * from finish();
