-- Privileges and row level security for the assignment engine (revision 0003).

revoke execute on all functions in schema allocator from public;

grant execute on function
  allocator.plan_booking(bigint, integer),
  allocator.process_booking(bigint, text)
  to allocator_app, allocator_ops;

grant execute on function
  allocator.claim_due(text, integer, integer),
  allocator.lease_acquire(text, text, integer, integer),
  allocator.lease_extend(text, text, integer),
  allocator.lease_release(text, text),
  allocator.update_settings(bigint, jsonb),
  allocator.delete_restaurant(bigint)
  to allocator_ops;

grant select on allocator.circuit_breakers, allocator.leases, allocator.lease_waits,
  allocator.assignment_metrics to allocator_readonly;
grant execute on function allocator.assignment_metrics_between(timestamptz, timestamptz)
  to allocator_ops, allocator_readonly;

alter table allocator.circuit_breakers enable row level security;
drop policy if exists tenant_isolation on allocator.circuit_breakers;
create policy tenant_isolation on allocator.circuit_breakers using (allocator.tenant_allows(restaurant_id));

-- The layout views read as their caller, so row level security applies through them.
alter view allocator.table_overview set (security_invoker = true);
alter view allocator.combination_overview set (security_invoker = true);
