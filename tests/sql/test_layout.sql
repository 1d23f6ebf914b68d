-- Layout: symmetric adjacency, combinations derived from it and kept up to date.
select plan(16);

-- A chain L1-L2-L3-L4 plus an isolated L5 and a non-combinable L6 next to L4.
select allocator.import_layout('{
  "name": "Layout A", "timezone": "Europe/London", "settings": {"max_combination_size": 3},
  "zones": [{"name": "Main"}],
  "tables": [
    {"label": "L1", "zone": "Main", "max_capacity": 2},
    {"label": "L2", "zone": "Main", "max_capacity": 2},
    {"label": "L3", "zone": "Main", "max_capacity": 4},
    {"label": "L4", "zone": "Main", "min_capacity": 2, "max_capacity": 4},
    {"label": "L5", "zone": "Main", "max_capacity": 6},
    {"label": "L6", "zone": "Main", "max_capacity": 2, "combinable": false}
  ],
  "adjacency": [["L2", "L1"], ["L2", "L3"], ["L3", "L4"], ["L4", "L6"]]
}'::jsonb);
select allocator.import_layout('{
  "name": "Layout B", "timezone": "UTC",
  "tables": [{"label": "X1", "max_capacity": 2}, {"label": "X2", "max_capacity": 2}],
  "adjacency": [["X1", "X2"]]
}'::jsonb);

create function pg_temp.rid(p_name text) returns bigint language sql stable as
  $$ select id from allocator.restaurants where name = p_name $$;
create function pg_temp.tid(p_label text) returns bigint language sql stable as
  $$ select id from allocator.tables where label = p_label
       and restaurant_id in (pg_temp.rid('Layout A'), pg_temp.rid('Layout B')) $$;
create function pg_temp.combos(p_name text) returns setof text language sql stable as
  $$ select labels from allocator.combination_overview where restaurant_id = pg_temp.rid(p_name) $$;

select is(
  (select count(*)::int from allocator.table_adjacency
    where restaurant_id = pg_temp.rid('Layout A') and table_a = pg_temp.tid('L1') and table_b = pg_temp.tid('L2')),
  1, 'a pair given as (L2, L1) is stored once, lower id first');

select throws_ok(
  format('insert into allocator.table_adjacency values (%s, %s, %s)',
         pg_temp.rid('Layout A'), pg_temp.tid('L2'), pg_temp.tid('L1')),
  '23505', NULL, 'the reverse of a stored pair is the same pair (symmetric)');

select throws_ok(
  format('insert into allocator.table_adjacency values (%s, %s, %s)',
         pg_temp.rid('Layout A'), pg_temp.tid('L5'), pg_temp.tid('L5')),
  'RA012', NULL, 'a table cannot be adjacent to itself');

select throws_ok(
  format('insert into allocator.table_adjacency values (%s, %s, %s)',
         pg_temp.rid('Layout A'), pg_temp.tid('L5'), pg_temp.tid('X1')),
  '23503', NULL, 'adjacency across restaurants is impossible');

select bag_eq(
  $$ select * from pg_temp.combos('Layout A') $$,
  $$ values ('L1+L2'), ('L2+L3'), ('L3+L4'), ('L1+L2+L3'), ('L2+L3+L4') $$,
  'combinations are the connected sets of 2..3 combinable tables');

select is(
  (select max_capacity from allocator.combination_overview
    where restaurant_id = pg_temp.rid('Layout A') and labels = 'L2+L3+L4'),
  10, 'a combination seats the sum of its tables');

select is(
  (select count(*)::int from allocator.table_combinations c
    where exists (select 1 from unnest(c.table_ids) t(id)
                   where not exists (select 1 from allocator.tables x
                                      where x.restaurant_id = c.restaurant_id and x.id = t.id))),
  0, 'no combination anywhere names a table of another restaurant');

-- Every combination is connected: growing from its first table along adjacency within
-- the combination reaches all of its tables.
select is(
  (select count(*)::int from allocator.table_combinations c
    where (with recursive reach(id) as (
             select c.table_ids[1]
             union
             select case when a.table_a = r.id then a.table_b else a.table_a end
               from reach r join allocator.table_adjacency a
                 on a.restaurant_id = c.restaurant_id and r.id in (a.table_a, a.table_b)
              where a.table_a = any (c.table_ids) and a.table_b = any (c.table_ids))
           select count(*) from reach) <> c.table_count),
  0, 'no combination anywhere contains non-adjacent (disconnected) tables');

select bag_eq($$ select * from pg_temp.combos('Layout B') $$, $$ values ('X1+X2') $$,
  'each restaurant has its own combinations');

create temporary table kept as
  select id from allocator.table_combinations
   where restaurant_id = pg_temp.rid('Layout A') and table_ids = allocator.sorted_ids(array[pg_temp.tid('L1'), pg_temp.tid('L2')]);

update allocator.tables set active = false where id = pg_temp.tid('L3');
select bag_eq($$ select * from pg_temp.combos('Layout A') $$, $$ values ('L1+L2') $$,
  'deactivating a table removes the combinations that use it');

select is(
  (select id from allocator.table_combinations
    where restaurant_id = pg_temp.rid('Layout A') and table_ids = allocator.sorted_ids(array[pg_temp.tid('L1'), pg_temp.tid('L2')])),
  (select id from kept), 'an unchanged combination keeps its id');

update allocator.tables set active = true where id = pg_temp.tid('L3');
insert into allocator.table_adjacency values (pg_temp.rid('Layout A'), pg_temp.tid('L4'), pg_temp.tid('L5'));
select ok('L3+L4+L5' in (select * from pg_temp.combos('Layout A')),
  'adding adjacency adds the combinations it makes possible');

delete from allocator.table_adjacency
 where restaurant_id = pg_temp.rid('Layout A') and table_a = least(pg_temp.tid('L2'), pg_temp.tid('L3'))
   and table_b = greatest(pg_temp.tid('L2'), pg_temp.tid('L3'));
select bag_eq($$ select * from pg_temp.combos('Layout A') $$,
  $$ values ('L1+L2'), ('L3+L4'), ('L4+L5'), ('L3+L4+L5') $$,
  'removing adjacency removes the combinations across it');

update allocator.restaurants set settings = settings || '{"max_combination_size": 2}'
 where id = pg_temp.rid('Layout A');
select bag_eq($$ select * from pg_temp.combos('Layout A') $$,
  $$ values ('L1+L2'), ('L3+L4'), ('L4+L5') $$,
  'lowering max_combination_size recomputes the combinations');

select throws_ok(
  $$ select allocator.import_layout('{"name": "Bad", "tables": [{"label": "Z1", "max_capacity": 2}],
       "adjacency": [["Z1", "Nope"]]}'::jsonb) $$,
  'RA012', NULL, 'adjacency naming an unknown table is rejected');

select throws_ok(
  $$ select allocator.import_layout('{"name": "Bad", "tables": [{"label": "Z1", "min_capacity": 5, "max_capacity": 2}]}'::jsonb) $$,
  'RA012', NULL, 'a table whose min capacity exceeds its max is rejected');

select * from finish();
