-- Reverts revision 0006. The functions that take a service row go first (the code files
-- are applied again by the next upgrade).
drop function if exists allocator.set_service(bigint, text, integer[], time, time, integer, integer, jsonb);
drop function if exists allocator.set_special_day(bigint, date, text, time, time, text);
drop function if exists allocator.clear_special_day(bigint, date, text);
drop function if exists allocator.service_hours(allocator.restaurants, date, date);
drop function if exists allocator.require_service(allocator.restaurants, text);
drop function if exists allocator.party_turn_minutes(allocator.restaurants, allocator.services, integer);
drop function if exists allocator.service_json(allocator.services);
drop function if exists allocator.service_at(allocator.restaurants, timestamptz);
drop function if exists allocator.pacing_allows(allocator.restaurants, allocator.services, timestamptz, integer);
drop function if exists allocator.record_state(bigint, bigint, text, text, integer, text, text, jsonb, boolean);
drop table allocator.special_days;
alter table allocator.services drop column turn_minutes;
