-- House rules of the schema, checked over the catalog so new objects follow them too.
select plan(7);

select has_extension('btree_gist', 'btree_gist is installed');
select has_extension('plpython3u', 'plpython3u is installed');

-- Restaurant-owned tables lead every primary and unique key with restaurant_id.
select is(
  (select array_agg(format('%s.%s', c.conrelid::regclass, c.conname) order by 1)
     from pg_constraint c
     join pg_class t on t.oid = c.conrelid
     join pg_namespace n on n.oid = t.relnamespace
    where n.nspname = 'allocator' and c.contype in ('p', 'u', 'x')
      and t.relname not in ('restaurants', 'booking_states', 'booking_transitions', 'error_codes', 'leases', 'lease_waits', 'subscriber_cursors', 'plpy_modules', 'code_version', 'staff', 'staff_tokens')
      and (select attname from pg_attribute where attrelid = c.conrelid and attnum = c.conkey[1])
          <> 'restaurant_id'),
  NULL, 'every key of a restaurant-owned table starts with restaurant_id');

select is(
  (select array_agg(format('%s.%s', c.conrelid::regclass, c.conname) order by 1)
     from pg_constraint c
     join pg_class t on t.oid = c.conrelid
     join pg_namespace n on n.oid = t.relnamespace
     join pg_class r on r.oid = c.confrelid
    where n.nspname = 'allocator' and c.contype = 'f'
      and r.relname not in ('restaurants', 'booking_states', 'booking_transitions', 'error_codes', 'leases', 'lease_waits', 'subscriber_cursors', 'plpy_modules', 'staff')
      and not (select bool_or(attname = 'restaurant_id') from pg_attribute
                where attrelid = c.conrelid and attnum = any (c.conkey))),
  NULL, 'every foreign key between restaurant-owned tables includes restaurant_id');

select is(
  (select array_agg(p.oid::regprocedure::text order by 1)
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'allocator' and obj_description(p.oid, 'pg_proc') is null),
  NULL, 'every function in schema allocator has a comment');

select is(
  (select array_agg(c.relname::text order by 1)
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'allocator' and c.relkind in ('r', 'v', 'm')
      and obj_description(c.oid, 'pg_class') is null),
  NULL, 'every table and view in schema allocator has a comment');

select is(
  (select array_agg(p.oid::regprocedure::text order by 1)
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'allocator' and p.prosecdef
      and not exists (select 1 from unnest(p.proconfig) s where s like 'search_path=%')),
  NULL, 'every SECURITY DEFINER function pins search_path');

select * from finish();
