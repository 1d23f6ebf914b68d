-- Reverts revision 0008 (the code files are applied again by the next upgrade).
drop function if exists allocator.pacing_allows(allocator.restaurants, allocator.services, timestamptz, integer, bigint);
drop function if exists allocator.admit(allocator.restaurants, integer, timestamptz, bigint, bigint);
drop function if exists allocator.seat_at_once(allocator.bookings, text, timestamptz, bigint[], bigint);
drop function if exists allocator.hold_first_plan(allocator.bookings, text, bigint[], integer, text);
