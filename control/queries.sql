-- Queries the control plane runs, by name. Each block starts with "-- name: <name>".

-- name: restaurant_by_name
select id from allocator.restaurants where name = %(name)s order by id;

-- name: delete_restaurant
delete from allocator.restaurants where id = %(restaurant_id)s;

-- name: import_layout
select allocator.import_layout(%(layout)s::jsonb);

-- name: restaurant
select id, name, timezone, settings from allocator.restaurants where id = %(restaurant_id)s;

-- name: layout_tables
select zone, label, min_capacity, max_capacity, combinable, active, neighbours
  from allocator.table_overview
 where restaurant_id = %(restaurant_id)s
 order by zone nulls last, label;

-- name: layout_combinations
select table_count, labels, min_capacity, max_capacity
  from allocator.combination_overview
 where restaurant_id = %(restaurant_id)s
 order by table_count, max_capacity, labels;
