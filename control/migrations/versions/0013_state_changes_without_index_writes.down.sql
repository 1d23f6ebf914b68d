-- Reverts revision 0013.
alter table allocator.bookings reset (fillfactor);
drop index allocator.bookings_review_idx;
alter table allocator.bookings drop constraint bookings_review_reason;
create index bookings_open_idx on allocator.bookings (restaurant_id, state)
  where state not in ('confirmed', 'failed', 'cancelled', 'seated', 'finished', 'no_show');
