-- The floor layout: adjacency kept symmetric, combinations derived from it, and an
-- importer that builds a whole restaurant from one JSON document.

create or replace function allocator.table_adjacency_order() returns trigger
language plpgsql
as $$
declare
  v_low bigint;
begin
  if new.table_a = new.table_b then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('table %s cannot be adjacent to itself', new.table_a));
  end if;
  if new.table_a > new.table_b then
    v_low := new.table_b;
    new.table_b := new.table_a;
    new.table_a := v_low;
  end if;
  return new;
end
$$;

comment on function allocator.table_adjacency_order() is
  'Trigger: store an adjacent pair with the lower table id first, so (a, b) and (b, a) are one row';

create or replace trigger table_adjacency_order
  before insert or update on allocator.table_adjacency
  for each row execute function allocator.table_adjacency_order();

create or replace function allocator.sorted_ids(p_ids bigint[]) returns bigint[]
language sql
immutable
strict
parallel safe
as $$
  select pg_catalog.array_agg(x order by x) from pg_catalog.unnest(p_ids) as x
$$;

comment on function allocator.sorted_ids(bigint[]) is 'The ids in ascending order';

-- Enumerates connected sets of 2..N tables by growing each set with one adjacent table at
-- a time; sets are kept sorted, so UNION discards a set reached along another path.
-- Unchanged combinations keep their ids.
create or replace function allocator.refresh_table_combinations(p_restaurant_id bigint) returns integer
language plpgsql
volatile
strict
as $$
declare
  v_max integer;
  v_count integer;
begin
  select (r.settings ->> 'max_combination_size')::integer into v_max
    from allocator.restaurants r where r.id = p_restaurant_id;
  if v_max is null then
    delete from allocator.table_combinations c where c.restaurant_id = p_restaurant_id;
    return 0;
  end if;

  with recursive eligible as (
    select t.id, t.min_capacity, t.max_capacity
      from allocator.tables t
     where t.restaurant_id = p_restaurant_id and t.active and t.combinable
  ), edges as (
    select a.table_a as src, a.table_b as dst
      from allocator.table_adjacency a
     where a.restaurant_id = p_restaurant_id
       and a.table_a in (select e.id from eligible e) and a.table_b in (select e.id from eligible e)
    union all
    select a.table_b, a.table_a
      from allocator.table_adjacency a
     where a.restaurant_id = p_restaurant_id
       and a.table_a in (select e.id from eligible e) and a.table_b in (select e.id from eligible e)
  ), grown (ids) as (
    select array[e.id] from eligible e
    union
    select allocator.sorted_ids(g.ids || d.dst)
      from grown g
      join edges d on d.src = any (g.ids)
     where not d.dst = any (g.ids)
       and pg_catalog.cardinality(g.ids) < v_max
  ), fresh as (
    select g.ids as table_ids, sum(e.min_capacity)::integer as min_capacity,
           sum(e.max_capacity)::integer as max_capacity
      from grown g
      join eligible e on e.id = any (g.ids)
     where pg_catalog.cardinality(g.ids) >= 2
     group by g.ids
  ), removed as (
    delete from allocator.table_combinations c
     where c.restaurant_id = p_restaurant_id
       and not exists (select 1 from fresh f where f.table_ids = c.table_ids)
  )
  insert into allocator.table_combinations
         (restaurant_id, table_ids, table_count, min_capacity, max_capacity)
  select p_restaurant_id, f.table_ids, pg_catalog.cardinality(f.table_ids), f.min_capacity, f.max_capacity
    from fresh f
  on conflict (restaurant_id, table_ids) do update
     set min_capacity = excluded.min_capacity, max_capacity = excluded.max_capacity
   where (allocator.table_combinations.min_capacity, allocator.table_combinations.max_capacity)
         is distinct from (excluded.min_capacity, excluded.max_capacity);

  select pg_catalog.count(*)::integer into v_count
    from allocator.table_combinations c where c.restaurant_id = p_restaurant_id;
  return v_count;
end
$$;

comment on function allocator.refresh_table_combinations(bigint) is
  'Recompute the restaurant''s table_combinations from its adjacency (connected sets of 2..max_combination_size active, combinable tables); returns how many there are';

-- Statement trigger on tables and table_adjacency: every restaurant whose layout the
-- statement touched gets its combinations recomputed once.
create or replace function allocator.on_layout_change() returns trigger
language plpgsql
as $$
declare
  v_restaurant_id bigint;
begin
  for v_restaurant_id in select distinct c.restaurant_id from changed_rows c loop
    perform allocator.refresh_table_combinations(v_restaurant_id);
  end loop;
  return null;
end
$$;

comment on function allocator.on_layout_change() is
  'Trigger: recompute table combinations of every restaurant whose tables or adjacency changed';

create or replace trigger tables_layout_insert after insert on allocator.tables
  referencing new table as changed_rows
  for each statement execute function allocator.on_layout_change();

create or replace trigger tables_layout_update after update on allocator.tables
  referencing new table as changed_rows
  for each statement execute function allocator.on_layout_change();

create or replace trigger tables_layout_delete after delete on allocator.tables
  referencing old table as changed_rows
  for each statement execute function allocator.on_layout_change();

create or replace trigger table_adjacency_layout_insert after insert on allocator.table_adjacency
  referencing new table as changed_rows
  for each statement execute function allocator.on_layout_change();

create or replace trigger table_adjacency_layout_update after update on allocator.table_adjacency
  referencing new table as changed_rows
  for each statement execute function allocator.on_layout_change();

create or replace trigger table_adjacency_layout_delete after delete on allocator.table_adjacency
  referencing old table as changed_rows
  for each statement execute function allocator.on_layout_change();

create or replace function allocator.restaurants_settings_changed() returns trigger
language plpgsql
as $$
begin
  perform allocator.refresh_table_combinations(new.id);
  return null;
end
$$;

comment on function allocator.restaurants_settings_changed() is
  'Trigger: recompute combinations when a restaurant''s max_combination_size changes';

create or replace trigger restaurants_combination_size
  after update of settings on allocator.restaurants
  for each row
  when (old.settings -> 'max_combination_size' is distinct from new.settings -> 'max_combination_size')
  execute function allocator.restaurants_settings_changed();

-- Builds a restaurant from a layout document:
-- {"name": ..., "timezone": ..., "settings": {...},
--  "zones": [{"name": ...}],
--  "tables": [{"label": ..., "zone": ..., "min_capacity": 1, "max_capacity": 4,
--              "combinable": true, "active": true}],
--  "adjacency": [["T1", "T2"], ...]}
create or replace function allocator.import_layout(p_layout jsonb) returns jsonb
language plpgsql
volatile
as $$
declare
  v_restaurant_id bigint;
  v_missing text;
  v_count integer;
begin
  if p_layout is null or pg_catalog.jsonb_typeof(p_layout) <> 'object' then
    perform allocator.raise_error('invalid_layout', 'layout must be a JSON object');
  end if;
  if pg_catalog.jsonb_typeof(p_layout -> 'tables') is distinct from 'array'
     or pg_catalog.jsonb_array_length(p_layout -> 'tables') = 0 then
    perform allocator.raise_error('invalid_layout', 'layout needs a non-empty "tables" array');
  end if;

  insert into allocator.restaurants (name, timezone, settings)
  values (p_layout ->> 'name', coalesce(p_layout ->> 'timezone', 'UTC'),
          coalesce(p_layout -> 'settings', '{}'::jsonb))
  returning id into v_restaurant_id;

  begin
    insert into allocator.zones (restaurant_id, name)
    select v_restaurant_id, z ->> 'name'
      from pg_catalog.jsonb_array_elements(coalesce(p_layout -> 'zones', '[]'::jsonb)) as z;
  exception
    when not_null_violation or check_violation or unique_violation then
      perform allocator.raise_error('invalid_layout', 'invalid zone in layout', sqlerrm,
        'each zone needs a unique, non-empty name');
  end;

  select t ->> 'zone' into v_missing
    from pg_catalog.jsonb_array_elements(p_layout -> 'tables') as t
   where t ? 'zone' and not exists (
     select 1 from allocator.zones z where z.restaurant_id = v_restaurant_id and z.name = t ->> 'zone')
   limit 1;
  if v_missing is not null then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('table refers to unknown zone %s', v_missing), null,
      'declare every zone in the "zones" array');
  end if;

  begin
    insert into allocator.tables
           (restaurant_id, label, zone_id, min_capacity, max_capacity, active, combinable)
    select v_restaurant_id,
           t ->> 'label',
           (select z.id from allocator.zones z
             where z.restaurant_id = v_restaurant_id and z.name = t ->> 'zone'),
           coalesce((t ->> 'min_capacity')::integer, 1),
           (t ->> 'max_capacity')::integer,
           coalesce((t ->> 'active')::boolean, true),
           coalesce((t ->> 'combinable')::boolean, true)
      from pg_catalog.jsonb_array_elements(p_layout -> 'tables') as t;
  exception
    when not_null_violation or check_violation or unique_violation or invalid_text_representation then
      perform allocator.raise_error('invalid_layout', 'invalid table in layout', sqlerrm,
        'each table needs a unique label and 1 <= min_capacity <= max_capacity <= 50');
  end;

  select p ->> 0 || ' / ' || coalesce(p ->> 1, 'nothing') into v_missing
    from pg_catalog.jsonb_array_elements(coalesce(p_layout -> 'adjacency', '[]'::jsonb)) as p
   where pg_catalog.jsonb_typeof(p) <> 'array' or pg_catalog.jsonb_array_length(p) <> 2
      or (select pg_catalog.count(*) from allocator.tables t
           where t.restaurant_id = v_restaurant_id and t.label in (p ->> 0, p ->> 1)) <> 2
   limit 1;
  if v_missing is not null then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('adjacency pair %s does not name two different tables of the layout', v_missing));
  end if;

  insert into allocator.table_adjacency (restaurant_id, table_a, table_b)
  select distinct v_restaurant_id, least(a.id, b.id), greatest(a.id, b.id)
    from pg_catalog.jsonb_array_elements(coalesce(p_layout -> 'adjacency', '[]'::jsonb)) as p
    join allocator.tables a on a.restaurant_id = v_restaurant_id and a.label = p ->> 0
    join allocator.tables b on b.restaurant_id = v_restaurant_id and b.label = p ->> 1;

  select pg_catalog.count(*)::integer into v_count
    from allocator.table_combinations c where c.restaurant_id = v_restaurant_id;
  return pg_catalog.jsonb_build_object(
    'restaurant_id', v_restaurant_id,
    'zones', (select pg_catalog.count(*) from allocator.zones z where z.restaurant_id = v_restaurant_id),
    'tables', (select pg_catalog.count(*) from allocator.tables t where t.restaurant_id = v_restaurant_id),
    'adjacent_pairs', (select pg_catalog.count(*) from allocator.table_adjacency a
                        where a.restaurant_id = v_restaurant_id),
    'combinations', v_count);
end
$$;

comment on function allocator.import_layout(jsonb) is
  'Create a restaurant with its zones, tables and adjacency from one JSON document; returns the new ids and counts';

-- The layout views read as their caller, so row level security applies through them.
create or replace view allocator.table_overview with (security_invoker = true) as
select t.restaurant_id, t.id as table_id, t.label, z.name as zone, t.min_capacity, t.max_capacity,
       t.active, t.combinable,
       (select pg_catalog.count(*) from allocator.table_adjacency a
         where a.restaurant_id = t.restaurant_id and t.id in (a.table_a, a.table_b)) as neighbours
  from allocator.tables t
  left join allocator.zones z on z.restaurant_id = t.restaurant_id and z.id = t.zone_id;

comment on view allocator.table_overview is 'Tables with their zone name and number of adjacent tables';

create or replace view allocator.combination_overview with (security_invoker = true) as
select c.restaurant_id, c.id as combination_id, c.table_count, c.min_capacity, c.max_capacity,
       (select pg_catalog.string_agg(t.label, '+' order by t.label)
          from allocator.tables t
         where t.restaurant_id = c.restaurant_id and t.id = any (c.table_ids)) as labels,
       c.table_ids
  from allocator.table_combinations c;

comment on view allocator.combination_overview is 'Table combinations with the labels of their tables';


