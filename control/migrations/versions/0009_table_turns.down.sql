-- Reverts revision 0009. Bookings in the new states go back to confirmed first.
drop function if exists allocator.seat_booking(bigint, integer, text, text);
drop function if exists allocator.finish_booking(bigint, integer, text, text);
drop function if exists allocator.mark_no_show(bigint, integer, text, text);
drop function if exists allocator.mark_no_shows(integer);
drop function if exists allocator.floor_booking(bigint, integer, text, text, text, text, text);
update allocator.bookings set state = 'confirmed' where state in ('seated', 'finished', 'no_show');
delete from allocator.booking_state_history where to_state in ('seated', 'finished', 'no_show');
delete from allocator.booking_transitions where to_state in ('seated', 'finished', 'no_show');
delete from allocator.booking_states where state in ('seated', 'finished', 'no_show');
alter table allocator.bookings drop column seated_at, drop column finished_at;
drop index allocator.bookings_open_idx;
create index bookings_open_idx on allocator.bookings (restaurant_id, state)
  where state not in ('confirmed', 'failed', 'cancelled');
