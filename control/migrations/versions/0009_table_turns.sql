-- Revision 0009: table turns. After confirmed, a party is seated (the real start), then
-- finished (its tables free at once), or a no-show (its tables free, by staff or by the sweep
-- after floor.no_show_minutes).
insert into allocator.booking_states (state, terminal, description) values
  ('seated', true, 'The party is at its tables'),
  ('finished', true, 'The party has left; the rest of its time is free'),
  ('no_show', true, 'The party did not come; its tables are free');

insert into allocator.booking_transitions (from_state, to_state, manual_only, description) values
  ('confirmed', 'seated', true, 'the party arrived and staff seated it'),
  ('seated', 'finished', true, 'the party left'),
  ('confirmed', 'no_show', false, 'the party did not come: marked by staff, or by the sweep after floor.no_show_minutes');

alter table allocator.bookings
  add column seated_at timestamptz,
  add column finished_at timestamptz;
comment on column allocator.bookings.seated_at is 'When staff seated the party (the real start)';
comment on column allocator.bookings.finished_at is 'When the party left (finished) or was marked a no-show';

-- The partial index of open bookings leaves out every terminal state, the new ones too.
drop index allocator.bookings_open_idx;
create index bookings_open_idx on allocator.bookings (restaurant_id, state)
  where state not in ('confirmed', 'failed', 'cancelled', 'seated', 'finished', 'no_show');
