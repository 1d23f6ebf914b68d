-- check_invariants finds each kind of violation it promises to find.
select plan(6);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Invariants", "tables": [{"label": "V1", "max_capacity": 2}, {"label": "V2", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as r \gset
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 60) ->> 'booking_id')::bigint as b \gset
select allocator.process_booking(:b, 'w') ->> 'outcome' as o \gset

select is((select count(*)::int from allocator.check_invariants() where restaurant_id = :r), 0,
  'a booking that went through the pipeline violates nothing');

-- Break things behind the functions' back, one kind at a time (superuser, rolled back).
update allocator.bookings set party_size = 9 where id = :b;
select is((select kind from allocator.check_invariants() where booking_id = :b), 'capacity', 'a party on tables too small');
update allocator.bookings set party_size = 2, version = version + 1 where id = :b;
select is((select kind from allocator.check_invariants() where booking_id = :b), 'history', 'a version the history does not know');
update allocator.bookings set version = version - 1 where id = :b;
delete from allocator.events where booking_id = :b and topic = 'booking.confirmed';
select is((select kind from allocator.check_invariants() where booking_id = :b), 'missing_event', 'a state change without its event');

select (allocator.create_booking(:r, 2, '2026-06-01 21:00+00', 60) ->> 'booking_id')::bigint as s \gset
delete from allocator.assignment_queue where booking_id = :s;
select is((select kind from allocator.check_invariants() where booking_id = :s), 'stuck', 'an open booking nobody will process');

alter table allocator.allocations drop constraint allocations_no_overlap;
insert into allocator.allocations (restaurant_id, booking_id, table_id, period, kind)
select restaurant_id, :s, table_id, period, 'confirmed' from allocator.allocations where booking_id = :b;
select is((select count(*)::int from allocator.check_invariants() where kind = 'overlapping_allocations' and restaurant_id = :r), 1,
  'overlapping allocations (were the constraint ever missing)');

select * from finish();
