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
-- a time; sets are kept sorted (the new id goes in at its place, found by width_bucket's
-- binary search), so UNION discards a set reached along another path. The recursion is read
-- lazily: it stops once one set more than combinations_per_restaurant is found, and then the
-- refresh raises invalid_layout, so the work stays bounded however dense the adjacency is.
-- Unchanged combinations keep their ids.
create or replace function allocator.refresh_table_combinations(p_restaurant_id bigint) returns integer
language plpgsql
volatile
strict
as $$
declare
  v_max integer;
  v_count integer;
  v_cap constant integer := allocator.limit_of('combinations_per_restaurant');
begin
  select (r.settings ->> 'max_combination_size')::integer into v_max
    from allocator.restaurants r where r.id = p_restaurant_id;
  if v_max is null then
    delete from allocator.table_combinations c where c.restaurant_id = p_restaurant_id;
    return 0;
  end if;

  with recursive eligible as materialized (
    select t.id, t.min_capacity, t.max_capacity
      from allocator.tables t
     where t.restaurant_id = p_restaurant_id and t.active and t.combinable
  ), edges as materialized (
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
    select g.ids[1:pg_catalog.width_bucket(d.dst, g.ids)] || d.dst
           || g.ids[pg_catalog.width_bucket(d.dst, g.ids) + 1:]
      from grown g
     cross join lateral pg_catalog.unnest(g.ids) as m(id)
      join edges d on d.src = m.id
     where pg_catalog.cardinality(g.ids) < v_max
       and not d.dst = any (g.ids)
  ), found as (
    select g.ids from grown g where pg_catalog.cardinality(g.ids) >= 2 limit v_cap + 1
  ), fresh as (
    select f.ids as table_ids, sum(e.min_capacity)::integer as min_capacity,
           sum(e.max_capacity)::integer as max_capacity
      from found f
     cross join lateral pg_catalog.unnest(f.ids) as m(id)
      join eligible e on e.id = m.id
     group by f.ids
  ), removed as (
    -- NOT IN over the fresh sets is one hashed look-up per stored combination.
    delete from allocator.table_combinations c
     where c.restaurant_id = p_restaurant_id
       and c.table_ids not in (select f.table_ids from fresh f)
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
  if v_count > v_cap then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('restaurant %s would have more than %s table combinations (max_combination_size %s)',
        p_restaurant_id, v_cap, v_max),
      null, 'lower max_combination_size, remove adjacent pairs or make some tables not combinable');
  end if;
  return v_count;
end
$$;

comment on function allocator.refresh_table_combinations(bigint) is
  'Recompute the restaurant''s table_combinations from its adjacency (connected sets of 2..max_combination_size active, combinable tables); returns how many there are';

-- The caps a write to tables or table_adjacency must keep (the combination cap is the
-- refresh's): at most tables_per_restaurant tables, labels of at most name_chars characters,
-- at most neighbours_per_table neighbours per table. Checked per restaurant after each
-- statement, so a statement of many rows is judged by its result. Deleting never breaks one.
create or replace function allocator.check_layout_limits(p_restaurant_id bigint, p_table text, p_operation text)
returns void
language plpgsql
stable
as $$
declare
  v_count integer;
  v_label text;
begin
  if p_operation = 'DELETE' then
    return;
  end if;
  if p_table = 'tables' then
    select pg_catalog.count(*)::integer into v_count from allocator.tables t where t.restaurant_id = p_restaurant_id;
    if p_operation = 'INSERT' and v_count > allocator.limit_of('tables_per_restaurant') then
      perform allocator.raise_error('invalid_layout',
        pg_catalog.format('restaurant %s would have %s tables; at most %s are allowed', p_restaurant_id, v_count,
          allocator.limit_of('tables_per_restaurant')));
    end if;
    select t.label into v_label from allocator.tables t
     where t.restaurant_id = p_restaurant_id and pg_catalog.length(t.label) > allocator.limit_of('name_chars')
     limit 1;
    perform allocator.check_length('table label', v_label);
  elsif p_table = 'table_adjacency' then
    select t.label, n.neighbours into v_label, v_count
      from (select x.id, pg_catalog.count(*)::integer as neighbours
              from (select a.table_a as id from allocator.table_adjacency a where a.restaurant_id = p_restaurant_id
                    union all
                    select a.table_b from allocator.table_adjacency a where a.restaurant_id = p_restaurant_id) x
             group by x.id) n
      join allocator.tables t on t.restaurant_id = p_restaurant_id and t.id = n.id
     where n.neighbours > allocator.limit_of('neighbours_per_table')
     order by n.neighbours desc, t.label
     limit 1;
    if v_label is not null then
      perform allocator.raise_error('invalid_layout',
        pg_catalog.format('table %s would have %s neighbours; at most %s are allowed', v_label, v_count,
          allocator.limit_of('neighbours_per_table')));
    end if;
  end if;
end
$$;

comment on function allocator.check_layout_limits(bigint, text, text) is
  'Raise invalid_layout (RA012) when a write to tables or table_adjacency left the restaurant with too many tables or a table with too many neighbours, invalid_argument (RA001) for a label too long';

-- Statement trigger on tables and table_adjacency: every restaurant whose layout the
-- statement touched is checked against the layout caps and gets its combinations recomputed
-- once.
create or replace function allocator.on_layout_change() returns trigger
language plpgsql
as $$
declare
  v_restaurant_id bigint;
begin
  for v_restaurant_id in select distinct c.restaurant_id from changed_rows c loop
    perform allocator.check_layout_limits(v_restaurant_id, tg_table_name, tg_op);
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
declare
  v_message text;
begin
  perform allocator.refresh_table_combinations(new.id);
  return null;
exception when sqlstate 'RA012' then
  -- The layout is as it was; the setting is what would break the cap.
  get stacked diagnostics v_message = message_text;
  perform allocator.raise_error('invalid_settings',
    pg_catalog.format('setting max_combination_size %s is too large for restaurant %s',
      new.settings ->> 'max_combination_size', new.id),
    v_message, 'keep max_combination_size lower, or remove adjacent pairs');
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
  v_tables jsonb;
  v_zones jsonb;
  v_adjacency jsonb;
  v_bad jsonb;
begin
  -- The document's shape first: nothing is written for a malformed one.
  if p_layout is null or pg_catalog.jsonb_typeof(p_layout) <> 'object' then
    perform allocator.raise_error('invalid_layout', 'layout must be a JSON object');
  end if;
  perform allocator.check_size('layout', p_layout, 'layout_bytes');
  v_tables := p_layout -> 'tables';
  v_zones := coalesce(nullif(p_layout -> 'zones', 'null'::jsonb), '[]'::jsonb);
  v_adjacency := coalesce(nullif(p_layout -> 'adjacency', 'null'::jsonb), '[]'::jsonb);
  if pg_catalog.jsonb_typeof(v_tables) is distinct from 'array'
     or pg_catalog.jsonb_array_length(v_tables) = 0 then
    perform allocator.raise_error('invalid_layout', 'layout needs a non-empty "tables" array');
  end if;
  if pg_catalog.jsonb_array_length(v_tables) > allocator.limit_of('tables_per_restaurant') then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('layout has %s tables; a restaurant has at most %s',
        pg_catalog.jsonb_array_length(v_tables), allocator.limit_of('tables_per_restaurant')));
  end if;
  if pg_catalog.jsonb_typeof(v_zones) <> 'array' then
    perform allocator.raise_error('invalid_layout', '"zones" must be an array of zones',
      pg_catalog.format('got %s', pg_catalog.jsonb_typeof(v_zones)), 'for example [{"name": "Terrace"}]');
  end if;
  if pg_catalog.jsonb_typeof(v_adjacency) <> 'array' then
    perform allocator.raise_error('invalid_layout', '"adjacency" must be an array of pairs of table labels',
      pg_catalog.format('got %s', pg_catalog.jsonb_typeof(v_adjacency)), 'for example [["T1", "T2"]]');
  end if;
  if pg_catalog.jsonb_typeof(p_layout -> 'name') not in ('string', 'null') then
    perform allocator.raise_error('invalid_argument', 'restaurant name must be a string',
      pg_catalog.format('got %s', pg_catalog.jsonb_typeof(p_layout -> 'name')));
  end if;
  if pg_catalog.jsonb_typeof(p_layout -> 'timezone') not in ('string', 'null') then
    perform allocator.raise_error('invalid_settings', 'time zone must be a string such as "Europe/Paris"',
      pg_catalog.format('got %s', pg_catalog.jsonb_typeof(p_layout -> 'timezone')));
  end if;

  select z into v_bad from pg_catalog.jsonb_array_elements(v_zones) as z
   where pg_catalog.jsonb_typeof(z) <> 'object' or pg_catalog.jsonb_typeof(z -> 'name') is distinct from 'string'
   limit 1;
  if v_bad is not null then
    perform allocator.raise_error('invalid_layout', 'invalid zone in layout',
      pg_catalog.format('got %s', pg_catalog.left(v_bad::text, 200)), 'each zone is an object with a unique, non-empty "name"');
  end if;
  perform allocator.check_length('zone name', z ->> 'name') from pg_catalog.jsonb_array_elements(v_zones) as z;

  select t into v_bad from pg_catalog.jsonb_array_elements(v_tables) as t
   where pg_catalog.jsonb_typeof(t) <> 'object'
      or pg_catalog.jsonb_typeof(t -> 'label') is distinct from 'string'
      or coalesce(pg_catalog.jsonb_typeof(t -> 'zone'), 'null') not in ('string', 'null')
      or not allocator.is_json_integer(t -> 'max_capacity', 1, 50)
      or (coalesce(pg_catalog.jsonb_typeof(t -> 'min_capacity'), 'null') <> 'null'
          and not allocator.is_json_integer(t -> 'min_capacity', 1, 50))
      or coalesce(pg_catalog.jsonb_typeof(t -> 'active'), 'null') not in ('boolean', 'null')
      or coalesce(pg_catalog.jsonb_typeof(t -> 'combinable'), 'null') not in ('boolean', 'null')
   limit 1;
  if v_bad is not null then
    perform allocator.raise_error('invalid_layout', 'invalid table in layout',
      pg_catalog.format('got %s', pg_catalog.left(v_bad::text, 200)),
      'each table is an object with a string "label", integer capacities 1 <= min_capacity <= max_capacity <= 50, and true or false for "active" and "combinable"');
  end if;
  perform allocator.check_length('table label', t ->> 'label') from pg_catalog.jsonb_array_elements(v_tables) as t;

  select p into v_bad from pg_catalog.jsonb_array_elements(v_adjacency) as p
   where case when pg_catalog.jsonb_typeof(p) <> 'array' then true
              when pg_catalog.jsonb_array_length(p) <> 2 then true
              else pg_catalog.jsonb_typeof(p -> 0) <> 'string' or pg_catalog.jsonb_typeof(p -> 1) <> 'string'
                   or p ->> 0 = p ->> 1
         end
   limit 1;
  if v_bad is not null then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('adjacency pair %s does not name two different tables of the layout',
        pg_catalog.left(v_bad::text, 200)),
      null, 'each pair is an array of two table labels, for example ["T1", "T2"]');
  end if;
  -- The neighbour cap, from the document: a dense layout is refused before anything is written.
  select n.label, n.neighbours into v_missing, v_count
    from (select x.label, pg_catalog.count(distinct x.other)::integer as neighbours
            from (select p ->> 0 as label, p ->> 1 as other from pg_catalog.jsonb_array_elements(v_adjacency) as p
                  union all
                  select p ->> 1, p ->> 0 from pg_catalog.jsonb_array_elements(v_adjacency) as p) x
           group by x.label) n
   where n.neighbours > allocator.limit_of('neighbours_per_table')
   order by n.neighbours desc, n.label
   limit 1;
  if v_missing is not null then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('table %s would have %s neighbours; at most %s are allowed', v_missing, v_count,
        allocator.limit_of('neighbours_per_table')));
  end if;

  insert into allocator.restaurants (name, timezone, settings)
  values (p_layout ->> 'name', coalesce(p_layout ->> 'timezone', 'UTC'),
          coalesce(p_layout -> 'settings', '{}'::jsonb))
  returning id into v_restaurant_id;

  begin
    insert into allocator.zones (restaurant_id, name)
    select v_restaurant_id, z ->> 'name'
      from pg_catalog.jsonb_array_elements(v_zones) as z;
  exception
    when not_null_violation or check_violation or unique_violation then
      perform allocator.raise_error('invalid_layout', 'invalid zone in layout', sqlerrm,
        'each zone needs a unique, non-empty name');
  end;

  select t ->> 'zone' into v_missing
    from pg_catalog.jsonb_array_elements(v_tables) as t
   where t ->> 'zone' is not null and not exists (
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
      from pg_catalog.jsonb_array_elements(v_tables) as t;
  exception
    when not_null_violation or check_violation or unique_violation or invalid_text_representation then
      perform allocator.raise_error('invalid_layout', 'invalid table in layout', sqlerrm,
        'each table needs a unique label and 1 <= min_capacity <= max_capacity <= 50');
  end;

  select p ->> 0 || ' / ' || (p ->> 1) into v_missing
    from pg_catalog.jsonb_array_elements(v_adjacency) as p
   where (select pg_catalog.count(*) from allocator.tables t
           where t.restaurant_id = v_restaurant_id and t.label in (p ->> 0, p ->> 1)) <> 2
   limit 1;
  if v_missing is not null then
    perform allocator.raise_error('invalid_layout',
      pg_catalog.format('adjacency pair %s does not name two different tables of the layout', v_missing));
  end if;

  insert into allocator.table_adjacency (restaurant_id, table_a, table_b)
  select distinct v_restaurant_id, least(a.id, b.id), greatest(a.id, b.id)
    from pg_catalog.jsonb_array_elements(v_adjacency) as p
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
create or replace view allocator.table_overview with (security_invoker = true, security_barrier = true) as
select t.restaurant_id, t.id as table_id, t.label, z.name as zone, t.min_capacity, t.max_capacity,
       t.active, t.combinable,
       (select pg_catalog.count(*) from allocator.table_adjacency a
         where a.restaurant_id = t.restaurant_id and t.id in (a.table_a, a.table_b)) as neighbours
  from allocator.tables t
  left join allocator.zones z on z.restaurant_id = t.restaurant_id and z.id = t.zone_id;

comment on view allocator.table_overview is 'Tables with their zone name and number of adjacent tables';

create or replace view allocator.combination_overview with (security_invoker = true, security_barrier = true) as
select c.restaurant_id, c.id as combination_id, c.table_count, c.min_capacity, c.max_capacity,
       (select pg_catalog.string_agg(t.label, '+' order by t.label)
          from allocator.tables t
         where t.restaurant_id = c.restaurant_id and t.id = any (c.table_ids)) as labels,
       c.table_ids
  from allocator.table_combinations c;

comment on view allocator.combination_overview is 'Table combinations with the labels of their tables';


