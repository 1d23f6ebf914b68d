-- Revision 0002: a booking imported from another system keeps that system's id, unique per
-- restaurant, so an import can run again without creating a booking twice.
alter table allocator.bookings
  add column external_id text
    constraint bookings_external_id_check check (pg_catalog.length(external_id) between 1 and 200),
  add constraint bookings_external_id_key unique (restaurant_id, external_id);
comment on column allocator.bookings.external_id is
  'The booking''s id in the system it was imported from (allocator import bookings); null for bookings made here';
