-- Catalog queries behind the generated reference of docs/api.md (control/apidocs.py), by
-- name. Each block starts with "-- name: <name>". %(roles)s is the list of role names the
-- reference is written for; roles that do not exist are left out.

-- name: routines
-- Every function and procedure of the schema, its source, and which of the roles may execute
-- it (directly or through role membership).
select p.oid::bigint as oid,
       p.proname::text as name,
       p.prokind::text as prokind,
       pg_catalog.pg_get_function_identity_arguments(p.oid) as identity_arguments,
       pg_catalog.pg_get_function_arguments(p.oid) as arguments,
       pg_catalog.pg_get_function_result(p.oid) as result,
       pg_catalog.obj_description(p.oid, 'pg_proc') as comment,
       p.provolatile::text as volatility,
       p.prosecdef as security_definer,
       l.lanname::text as language,
       coalesce(p.proconfig, '{}'::text[]) as config,
       case when p.prosqlbody is not null then pg_catalog.pg_get_function_sqlbody(p.oid)
            else p.prosrc end as source,
       array(select r.rolname::text
               from pg_catalog.pg_roles r
              where r.rolname::text = any (%(roles)s::text[])
                and pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')
              order by r.rolname) as roles,
       pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') as public
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_language l on l.oid = p.prolang
 where n.nspname = 'allocator' and p.prokind in ('f', 'p')
 order by p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid);

-- name: triggers
-- The schema's own triggers: table, the events they fire on, and their function.
select c.relname::text as table_name,
       (t.tgtype::integer & 4) <> 0 as on_insert,
       (t.tgtype::integer & 16) <> 0 as on_update,
       (t.tgtype::integer & 8) <> 0 as on_delete,
       t.tgfoid::bigint as function_oid
  from pg_catalog.pg_trigger t
  join pg_catalog.pg_class c on c.oid = t.tgrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'allocator' and not t.tgisinternal
 order by c.relname, t.tgname;

-- name: schema_ready
select pg_catalog.to_regclass('allocator.error_codes') is not null as ready;

-- name: error_codes
select e.sqlstate, e.name from allocator.error_codes e order by e.sqlstate;

-- name: views
-- The schema's views, their options and columns, and which of the roles may read them.
select c.relname::text as name,
       c.relkind::text as relkind,
       pg_catalog.obj_description(c.oid, 'pg_class') as comment,
       coalesce(c.reloptions, '{}'::text[]) as options,
       array(select pg_catalog.format('%%s %%s', pg_catalog.quote_ident(a.attname),
                                      pg_catalog.format_type(a.atttypid, a.atttypmod))
               from pg_catalog.pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
              order by a.attnum) as columns,
       array(select r.rolname::text
               from pg_catalog.pg_roles r
              where r.rolname::text = any (%(roles)s::text[])
                and pg_catalog.has_table_privilege(r.oid, c.oid, 'SELECT')
              order by r.rolname) as roles,
       pg_catalog.has_table_privilege('public', c.oid, 'SELECT') as public
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'allocator' and c.relkind in ('v', 'm')
 order by c.relname;
