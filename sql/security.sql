-- Roles, privileges and row level security for the booking lifecycle. Each later
-- security_*.sql file revokes PUBLIC's EXECUTE on and grants what its revision adds.
--   allocator_app       application code: the booking RPCs, read access under tenancy
--   allocator_ops       operators: everything the app can do, manual actions, sweepers, views
--   allocator_readonly  dashboards and DBAs: read every table and view

do $$
declare
  v_role text;
begin
  foreach v_role in array array['allocator_readonly', 'allocator_app', 'allocator_ops'] loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
      execute pg_catalog.format('create role %I nologin', v_role);
    end if;
  end loop;
end
$$;
comment on role allocator_app is 'Application code: executes the booking RPCs; cannot write tables directly';
comment on role allocator_ops is 'Operators: the booking RPCs, manual actions, sweepers and every view';
comment on role allocator_readonly is 'Read-only access to every allocator table and view';
grant allocator_readonly to allocator_ops;

revoke all on schema allocator from public;
grant usage on schema allocator to allocator_app, allocator_ops, allocator_readonly;

revoke all on all tables in schema allocator from public;
-- New functions are executable by PUBLIC; every security_*.sql revokes that again for
-- the functions its revision adds (per-schema default privileges can only add rights).
revoke execute on all functions in schema allocator from public;

grant select on all tables in schema allocator to allocator_readonly;
grant select on allocator.restaurants, allocator.zones, allocator.tables, allocator.table_adjacency,
  allocator.table_combinations, allocator.booking_states, allocator.booking_transitions,
  allocator.bookings, allocator.allocations, allocator.holds, allocator.error_codes,
  allocator.table_overview, allocator.combination_overview
  to allocator_app;

-- Functions the views and policies call run with the caller's rights.
grant execute on function allocator.now(), allocator.clock_override(text), allocator.tenant_allows(bigint)
  to allocator_app, allocator_ops, allocator_readonly;

grant execute on function
  allocator.create_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text),
  allocator.modify_booking(bigint, integer, timestamptz, integer, integer, text, text),
  allocator.cancel_booking(bigint, integer, text, text),
  allocator.hold_tables(bigint, bigint[], integer, text, text, integer),
  allocator.confirm_hold(bigint, text),
  allocator.release_hold(bigint, text, text),
  allocator.booking_history(bigint),
  allocator.booking_attempts(bigint)
  to allocator_app, allocator_ops;

grant execute on function
  allocator.requeue(bigint, text, text, integer),
  allocator.force_confirm(bigint, text, text, bigint[]),
  allocator.manual_assign(bigint, bigint[], text, text),
  allocator.decline_booking(bigint, text, text),
  allocator.expire_holds(integer)
  to allocator_ops;

-- Row level security: a tenant-restricted login sees only its restaurants' rows. The
-- owner (who runs migrations and owns the SECURITY DEFINER functions) is not subject to it;
-- those functions check tenancy themselves.
do $$
declare
  v_table text;
begin
  foreach v_table in array array['zones', 'tables', 'table_adjacency', 'table_combinations',
      'bookings', 'allocations', 'holds', 'booking_state_history', 'events', 'assignment_queue',
      'booking_assignment_attempts', 'tenant_members'] loop
    execute pg_catalog.format('alter table allocator.%I enable row level security', v_table);
    execute pg_catalog.format('drop policy if exists tenant_isolation on allocator.%I', v_table);
    execute pg_catalog.format(
      'create policy tenant_isolation on allocator.%I using (allocator.tenant_allows(restaurant_id))', v_table);
  end loop;
end
$$;
alter table allocator.restaurants enable row level security;
drop policy if exists tenant_isolation on allocator.restaurants;
create policy tenant_isolation on allocator.restaurants using (allocator.tenant_allows(id));
