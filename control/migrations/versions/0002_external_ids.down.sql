-- Reverts revision 0002.
alter table allocator.bookings drop column if exists external_id;
