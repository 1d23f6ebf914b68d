-- Extensions and the schema everything lives in.
create schema if not exists allocator;
comment on schema allocator is 'allocator: restaurant bookings assigned to tables; every object of the engine lives here';

-- btree_gist lets one exclusion constraint mix equality (restaurant, table) with range overlap.
create extension if not exists btree_gist;
-- PL/Python runs the day optimizer.
create extension if not exists plpython3u;

-- pg_cron can only be created in the database named by cron.database_name; elsewhere
-- (test databases, a DATABASE_URL without the library) schedules are simply unavailable.
do $$
begin
  if exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron')
     and pg_catalog.current_setting('cron.database_name', true) = pg_catalog.current_database()
  then
    create extension if not exists pg_cron;
  end if;
end
$$;
