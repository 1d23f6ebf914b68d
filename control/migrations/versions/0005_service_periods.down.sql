-- Reverts revision 0005. The functions that take a service row go first (the code files
-- are applied again by the next upgrade).
drop function if exists allocator.service_json(allocator.services);
drop function if exists allocator.service_at(allocator.restaurants, timestamptz);
drop function if exists allocator.pacing_allows(allocator.restaurants, allocator.services, timestamptz, integer);
drop table allocator.service_closures;
drop table allocator.services;
delete from allocator.error_codes where sqlstate in ('RA013', 'RA014');
