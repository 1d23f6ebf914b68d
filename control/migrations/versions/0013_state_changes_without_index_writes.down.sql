-- Reverts revision 0013.
drop function if exists allocator.insert_allocations(bigint, bigint, bigint[], tstzrange, text, timestamptz, bigint);
drop function if exists allocator.hold_booking_tables(allocator.bookings, bigint[], integer, text, text, integer,
  boolean, text, jsonb, text, text[], text[], integer);
drop function if exists allocator.start_attempt(allocator.bookings, text[], text[], text, integer);
alter table allocator.bookings reset (fillfactor);
drop index allocator.bookings_review_idx;
alter table allocator.bookings drop constraint bookings_review_reason;
create index bookings_open_idx on allocator.bookings (restaurant_id, state)
  where state not in ('confirmed', 'failed', 'cancelled', 'seated', 'finished', 'no_show');
create index assignment_queue_due_idx on allocator.assignment_queue (run_at);
drop index allocator.booking_assignment_attempts_sets_idx;
