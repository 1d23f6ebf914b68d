-- Privileges and row level security for the control plane (revision 0004).

revoke execute on all functions in schema allocator from public;

grant execute on function
  allocator.read_events(text, integer),
  allocator.deliver_notifications(integer),
  allocator.run_due(integer, text),
  allocator.run_one(text),
  allocator.cron_plan(),
  allocator.release_claims(text),
  allocator.pipeline_report(bigint, timestamptz)
  to allocator_ops;

revoke execute on procedure allocator.sweep(integer, text) from public;
grant execute on procedure allocator.sweep(integer, text) to allocator_ops;

grant select on allocator.subscriber_cursors, allocator.notifications, allocator.queue_status,
  allocator.booking_state_counts to allocator_readonly;

alter table allocator.notifications enable row level security;
drop policy if exists tenant_isolation on allocator.notifications;
create policy tenant_isolation on allocator.notifications using (allocator.tenant_allows(restaurant_id));
