-- Reverts revision 0011 (the code files are applied again by the next upgrade).
drop function if exists allocator.join_waitlist(bigint, integer, text, text, text);
drop function if exists allocator.seat_from_waitlist(bigint, bigint, text);
drop function if exists allocator.remove_from_waitlist(bigint, bigint, text, text);
drop function if exists allocator.offer_waitlist(bigint, text);
drop function if exists allocator.waitlist_quote(allocator.restaurants, integer, bigint, integer);
drop function if exists allocator.waitlist_json(allocator.waitlist);
drop function if exists allocator.lock_waitlist(bigint, bigint);
drop function if exists allocator.offer_waitlists(integer);
drop function if exists allocator.predicted_turn_minutes(allocator.restaurants, allocator.services, integer);
drop table allocator.waitlist;
delete from allocator.notifications where kind = 'table_offered';
alter table allocator.notifications drop constraint notifications_kind_check;
alter table allocator.notifications add constraint notifications_kind_check
  check (kind in ('confirmed', 'manual_review'));
