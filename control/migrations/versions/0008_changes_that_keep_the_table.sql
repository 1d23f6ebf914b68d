-- Revision 0008: a confirmed booking is changed in one transaction or not at all. Pacing can
-- leave out the booking being changed: pacing_allows gains an argument (a new signature).
drop function if exists allocator.pacing_allows(allocator.restaurants, allocator.services, timestamptz, integer);
