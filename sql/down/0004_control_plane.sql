-- Reverts revision 0004.
drop view if exists allocator.booking_state_counts, allocator.queue_status;
drop procedure if exists allocator.sweep(integer, text);
drop function if exists
  allocator.pipeline_report(bigint, timestamptz),
  allocator.release_claims(text),
  allocator.cron_plan(),
  allocator.run_due(integer, text),
  allocator.run_one(text),
  allocator.deliver_notifications(integer),
  allocator.read_events(text, integer);
drop table if exists allocator.notifications, allocator.subscriber_cursors;
