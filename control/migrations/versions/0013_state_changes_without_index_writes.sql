-- Revision 0013: a booking's state changes without index writes.
--
-- A booking changes state several times in its first seconds (created, the engine's steps,
-- assigned, confirmed) and again on the evening (seated, finished). While an index names the
-- state column, each change writes a new entry into every index of bookings, the GiST index of
-- periods included; with none, it is a heap-only update. The open-bookings index goes: the one
-- open state people look for, manual review, is found through its reason, which a booking has
-- exactly while it is in that state. Pages keep a tenth free for the evening's updates.

update allocator.bookings set manual_review_reason = 'sent to manual review'
 where state = 'manual_review' and manual_review_reason is null;
update allocator.bookings set manual_review_reason = null
 where state <> 'manual_review' and manual_review_reason is not null;
alter table allocator.bookings
  add constraint bookings_review_reason check ((state = 'manual_review') = (manual_review_reason is not null));

drop index allocator.bookings_open_idx;
create index bookings_review_idx on allocator.bookings (restaurant_id) where manual_review_reason is not null;
comment on index allocator.bookings_review_idx is
  'The bookings in manual review (their reason is set exactly then), without naming the state: a change of state stays a heap-only update';

alter table allocator.bookings set (fillfactor = 90);

-- hold_booking_tables takes the states the engine walks through before assigned, so they are
-- written in the same transition_path: a new signature.
drop function if exists allocator.hold_booking_tables(allocator.bookings, bigint[], integer, text, text, integer,
  boolean, text, jsonb, text);

-- The queue kept two indexes on run_at; the one that also carries lease_expires_at serves
-- every claim, so each enqueue and each change of run_at writes one index entry fewer.
drop index allocator.assignment_queue_due_idx;

-- Allocations are inserted a set at a time (insert_allocations): one statement and one
-- subtransaction per hold instead of one per table.
drop function if exists allocator.insert_allocation(bigint, bigint, bigint, tstzrange, text, timestamptz, bigint);

-- candidates() counts each scored plan's attempts of the last 30 days (historical_success)
-- through this index, instead of aggregating every attempt of the restaurant in that time.
create index booking_assignment_attempts_sets_idx
  on allocator.booking_assignment_attempts (restaurant_id, table_ids, created_at) include (result)
  where table_ids is not null;
