-- Reverts revision 0003.
drop view if exists allocator.assignment_metrics;
drop function if exists
  allocator.assignment_metrics_between(timestamptz, timestamptz),
  allocator.process_booking(bigint, text),
  allocator.retry_or_review(allocator.bookings, jsonb, integer, text, text),
  allocator.outcome(text, text, integer, integer, text, bigint[], bigint),
  allocator.record_attempt(allocator.bookings, integer, text, text, bigint[], numeric, text, text, timestamptz, jsonb),
  allocator.in_rollout(bigint, integer),
  allocator.take_permit(bigint, integer),
  allocator.backoff_ms(jsonb, bigint, integer),
  allocator.breaker_record(bigint, boolean),
  allocator.breaker_allow(bigint),
  allocator.lease_release(text, text),
  allocator.lease_extend(text, text, integer),
  allocator.lease_acquire(text, text, integer, integer),
  allocator.claim_due(text, integer, integer),
  allocator.party_fits_layout(bigint, integer),
  allocator.legacy_first_fit(allocator.bookings),
  allocator.plan_booking(bigint, integer),
  allocator.candidates(allocator.bookings, boolean),
  allocator.strategy_priority(text),
  allocator.availability(bigint, tstzrange, boolean),
  allocator.update_settings(bigint, jsonb),
  allocator.delete_restaurant(bigint);
drop table if exists allocator.circuit_breakers, allocator.lease_waits, allocator.leases;
drop trigger if exists assignment_queue_end_lease on allocator.assignment_queue;
drop function if exists allocator.assignment_queue_end_lease();
drop index if exists allocator.assignment_queue_claimable_idx;
alter table allocator.assignment_queue drop column if exists leased_by, drop column if exists lease_expires_at;
-- Revision 0002's security.sql did not make the layout views read as their caller.
alter view allocator.table_overview reset (security_invoker);
alter view allocator.combination_overview reset (security_invoker);
