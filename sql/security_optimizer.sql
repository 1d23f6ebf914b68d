-- Privileges and row level security for the optimizer (revision 0005).

revoke execute on all functions in schema allocator from public;

grant execute on function
  allocator.optimize_day(bigint, date, integer),
  allocator.apply_optimal_assignment(bigint, date, jsonb, numeric, text),
  allocator.replan_day(bigint, date),
  allocator.nightly_optimize(bigint)
  to allocator_ops;

grant select on allocator.optimizer_runs, allocator.plpy_modules to allocator_readonly;

alter table allocator.optimizer_runs enable row level security;
drop policy if exists tenant_isolation on allocator.optimizer_runs;
create policy tenant_isolation on allocator.optimizer_runs using (allocator.tenant_allows(restaurant_id));
