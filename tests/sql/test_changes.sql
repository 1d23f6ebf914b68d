-- Changes that keep the table: modify_booking on a confirmed booking re-plans it in one
-- transaction (same tables if they still fit, else others, else refused with alternatives and
-- nothing changed); with service periods, the new time is admitted like a new booking, its
-- own covers left out of the pacing.
select plan(22);

select allocator.freeze_clock('2026-06-01 08:00+00');
select (allocator.import_layout('{"name": "Changes", "settings": {"buffer_minutes": 0, "turn_minutes": {"8": 120}},
  "tables": [{"label": "A", "max_capacity": 2, "combinable": false},
             {"label": "B", "max_capacity": 4, "combinable": false},
             {"label": "C", "max_capacity": 4, "combinable": false}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id = (select id from allocator.restaurants where name = 'Changes') $$;
create function pg_temp.confirmed(p_party int, p_at text) returns bigint language plpgsql as $$
declare v_id bigint;
begin
  v_id := (allocator.create_booking((select id from allocator.restaurants where name = 'Changes'), p_party, p_at::timestamptz)
           ->> 'booking_id')::bigint;
  perform allocator.process_booking(v_id, 'w');
  return v_id;
end $$;
create function pg_temp.tables_of(p_booking bigint) returns bigint[] language sql as
  $$ select array_agg(table_id order by table_id) from allocator.allocations where booking_id = p_booking and kind = 'confirmed' $$;

select pg_temp.confirmed(2, '2026-06-02 19:00+00') as x \gset
select is(pg_temp.tables_of(:x), array[pg_temp.t('A')], 'a couple on the 2-top');
select allocator.modify_booking(:x, 6, p_start => '2026-06-02 19:30+00') as later \gset
select is((:'later'::jsonb ->> 'kept_tables')::boolean, true, 'half an hour later: the same table');
select is(:'later'::jsonb ->> 'state', 'confirmed', 'still confirmed');
select is(pg_temp.tables_of(:x), array[pg_temp.t('A')], 'on the 2-top, at the new time');
select is((select lower(period) from allocator.bookings where id = :x), '2026-06-02 19:30+00'::timestamptz, 'the new time');
select ok(not exists (select 1 from allocator.assignment_queue where booking_id = :x), 'never queued');
select is((select array_agg(to_state order by version) from allocator.booking_state_history where booking_id = :x and version > 6),
  array['created', 'assigned', 'confirmed'], 'its history: changed, its tables held and confirmed, in one transaction');

select allocator.modify_booking(:x, 9, p_party_size => 3) as bigger \gset
select is((:'bigger'::jsonb ->> 'kept_tables')::boolean, false, 'three guests do not fit the 2-top');
select is(pg_temp.tables_of(:x), array[pg_temp.t('B')], 'they move to a 4-top');

select pg_temp.confirmed(4, '2026-06-02 19:30+00') as y \gset
select is(pg_temp.tables_of(:y), array[pg_temp.t('C')], 'another party takes the other 4-top');
select version as x_version from allocator.bookings where id = :x \gset
select throws_ok(format($$select allocator.modify_booking(%s, %s, p_party_size => 6)$$, :x, :x_version), 'RA014', NULL,
  'six guests: no table can take them');
select is(pg_temp.tables_of(:x), array[pg_temp.t('B')], 'the refused change leaves the table');
select is((select row(state, version, party_size)::text from allocator.bookings where id = :x), format('(confirmed,%s,3)', :x_version),
  'and the booking as it was');
select pg_temp.confirmed(4, '2026-06-02 22:00+00') as w \gset
select pg_temp.confirmed(4, '2026-06-02 22:00+00') as v \gset
select is(pg_temp.tables_of(:w) || pg_temp.tables_of(:v), array[pg_temp.t('B'), pg_temp.t('C')],
  'two parties of four at 22:00 take both 4-tops');
select throws_ok(format($$select allocator.modify_booking(%s, %s, p_start => '2026-06-02 21:00+00')$$, :y,
                        (select version from allocator.bookings where id = :y)), 'RA014', NULL,
  'moving the four at 19:30 to 21:00 would overlap both: refused');
select is(pg_temp.tables_of(:y), array[pg_temp.t('C')], 'they keep their table and time');

-- With service periods: admission at the new time, pacing without the booking itself.
select allocator.set_service(:r, 'dinner', '{1,2,3,4,5,6,7}', '18:00', '22:00', 6, null) is not null as s \gset
select version as y_version from allocator.bookings where id = :y \gset
select throws_ok(format($$select allocator.modify_booking(%s, %s, p_start => '2026-06-02 23:00+00')$$, :y, :y_version),
  'RA013', NULL, 'a new time outside the service');
select is(allocator.modify_booking(:y, :y_version, p_party_size => 3) ->> 'state', 'confirmed',
  'four to three at 19:30, beside the three already there: six covers, its own four not counted twice');
select is((select party_size from allocator.bookings where id = :y), 3, 'three now');
select is(pg_temp.tables_of(:y), array[pg_temp.t('C')], 'at the same table');
select throws_like(format($$select allocator.modify_booking(%s, %s, p_start => '2026-06-02 22:00+00')$$, :x,
                          (select version from allocator.bookings where id = :x)), '%pacing%',
  'three more at 22:00, where eight covers start already: refused by the pacing');
select is((select lower(period) from allocator.bookings where id = :x), '2026-06-02 19:30+00'::timestamptz, 'refused, unchanged');

select * from finish();
