-- Row level security policies: a tenant-restricted login sees only its restaurants' rows.
-- Every allocator table with row level security enabled (a migration enables it) and a
-- restaurant_id column gets the same policy; restaurants itself is matched by its id. The
-- allowed ids are computed once per query (the scalar subqueries become InitPlans), so a
-- scan pays one array lookup per row and the comparison can use an index.
do $$
declare
  v_table text;
begin
  for v_table in
    select c.relname
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'allocator' and c.relkind = 'r' and c.relrowsecurity
       and exists (select 1 from pg_catalog.pg_attribute a
                    where a.attrelid = c.oid and a.attname = 'restaurant_id' and not a.attisdropped)
     order by c.relname
  loop
    execute pg_catalog.format('drop policy if exists tenant_isolation on allocator.%I', v_table);
    execute pg_catalog.format(
      'create policy tenant_isolation on allocator.%I using ((select allocator.tenant_ids()) is null'
      ' or restaurant_id = any ((select allocator.tenant_ids())::bigint[]))', v_table);
  end loop;
end
$$;

drop policy if exists tenant_isolation on allocator.restaurants;
create policy tenant_isolation on allocator.restaurants
  using ((select allocator.tenant_ids()) is null or id = any ((select allocator.tenant_ids())::bigint[]));
