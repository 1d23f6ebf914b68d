-- Reverts revision 0012 (the code files are applied again by the next upgrade).
drop function if exists allocator.lock_staff(text);
drop table allocator.staff_tokens;
drop table allocator.staff_restaurants;
drop table allocator.staff;
alter table allocator.error_codes drop column http_status;
alter table allocator.bookings drop column starts_at;
-- The role stays: other databases of the cluster may use it.
