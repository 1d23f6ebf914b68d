-- Revision 0003: engine permits and non-progress limits.

-- The engine's per-restaurant concurrency permits: slot rows locked FOR UPDATE SKIP LOCKED
-- for the length of one process_booking transaction. No role is granted anything on the
-- table beyond the blanket read of allocator_readonly, and locking a row needs UPDATE, so
-- only the engine's SECURITY DEFINER functions can hold a permit.
create table allocator.permits (
  restaurant_id bigint not null references allocator.restaurants (id) on delete cascade,
  slot integer not null check (slot between 1 and 64),
  primary key (restaurant_id, slot)
);

comment on table allocator.permits is
  'Concurrency permits of the assignment engine: slots 1 to flags.max_parallel per restaurant, each held by one process_booking transaction (a row lock, FOR UPDATE SKIP LOCKED)';

alter table allocator.permits enable row level security;

-- Slots for the restaurants that exist now; take_permit adds missing ones (new restaurants,
-- a raised flags.max_parallel).
insert into allocator.permits (restaurant_id, slot)
select r.id, s.slot
  from allocator.restaurants r
 cross join lateral pg_catalog.generate_series(
         1, coalesce((r.settings #>> '{flags,max_parallel}')::integer, 3)) as s (slot);

-- Non-progress outcomes of process_booking (rate_limited, lock_contention, circuit_open)
-- are counted on the booking's queue row; retry.max_deferrals of them send it to manual review.
alter table allocator.assignment_queue
  add column deferrals integer not null default 0 constraint assignment_queue_deferrals_check check (deferrals >= 0);

comment on column allocator.assignment_queue.deferrals is
  'How many times in a row process_booking put the booking back without working on it (rate_limited, lock_contention, circuit_open); reset when it is queued for any other reason';
