-- Importing bookings from another system: confirmed on the given tables or queued, one
-- history row each, idempotent by external id, overlaps and bad values refused with a reason.
select plan(24);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Import", "timezone": "Europe/Rome", "settings": {"buffer_minutes": 0},
  "zones": [{"name": "Main"}],
  "tables": [{"label": "I1", "max_capacity": 2, "zone": "Main"}, {"label": "I2", "max_capacity": 4, "zone": "Main"},
             {"label": "I3", "max_capacity": 4, "zone": "Main"}],
  "adjacency": [["I2", "I3"]]}') ->> 'restaurant_id')::bigint as r \gset
select (allocator.import_layout('{"name": "Import other", "tables": [{"label": "I1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as other \gset

select allocator.import_bookings(:r, '[
  {"external_id": "ext-1", "party_size": 2, "start": "2026-06-02 19:00", "tables": ["I1"]},
  {"external_id": "ext-2", "party_size": "6", "start": "2026-06-02T19:00:00+00:00", "duration_minutes": 90,
   "tables": ["I2", "I3"], "metadata": {"guest": "Rossi"}},
  {"external_id": "ext-3", "party_size": 3, "start": "2026-06-02 21:00", "zone": "Main"}
]') as first \gset
select is(:'first'::jsonb - 'refused', '{"imported": 3, "existing": 0}', 'three rows imported');
select is(:'first'::jsonb -> 'refused', '[]', 'none refused');

select is((select state from allocator.bookings where restaurant_id = :r and external_id = 'ext-1'), 'confirmed',
  'a row with tables arrives confirmed');
select is((select lower(period) from allocator.bookings where restaurant_id = :r and external_id = 'ext-1'),
  '2026-06-02 17:00+00'::timestamptz, 'a start without offset is the restaurant''s local time');
select is((select array_agg(t.label order by t.label) from allocator.allocations a
             join allocator.tables t on t.restaurant_id = a.restaurant_id and t.id = a.table_id
             join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
            where b.external_id = 'ext-2' and b.restaurant_id = :r and a.kind = 'confirmed'),
  array['I2', 'I3'], 'on the tables given, as confirmed seats');
select is((select upper(period) - lower(period) from allocator.bookings where restaurant_id = :r and external_id = 'ext-2'),
  interval '90 minutes', 'for the duration given');
select is((select metadata ->> 'guest' from allocator.bookings where restaurant_id = :r and external_id = 'ext-2'),
  'Rossi', 'with its metadata');
select is((select state from allocator.bookings where restaurant_id = :r and external_id = 'ext-3'), 'created',
  'a row without tables arrives created');
select ok(exists (select 1 from allocator.assignment_queue q join allocator.bookings b
                   on b.restaurant_id = q.restaurant_id and b.id = q.booking_id
                   where b.external_id = 'ext-3' and b.restaurant_id = :r), 'and queued for the engine');
select is((select count(*)::int from allocator.booking_state_history h join allocator.bookings b
            on b.restaurant_id = h.restaurant_id and b.id = h.booking_id
           where b.restaurant_id = :r and b.external_id like 'ext-%' and h.from_state is null and h.reason = 'imported'),
  3, 'each booking has its history row');
select is((select count(*)::int from allocator.events where restaurant_id = :r and topic = 'booking.imported'), 3,
  'and a booking.imported event');
select is((select count(*)::int from allocator.events where restaurant_id = :r and topic = 'booking.confirmed'), 0,
  'not a new confirmation: the guest hears nothing twice');

-- Idempotent by external id.
select is(allocator.import_bookings(:r, '[{"external_id": "ext-1", "party_size": 2, "start": "2026-06-02 19:00", "tables": ["I1"]}]')
  - 'refused', '{"imported": 0, "existing": 1}', 'importing the same row again changes nothing');
select is((select count(*)::int from allocator.bookings where restaurant_id = :r), 3, 'still three bookings');
select is(allocator.import_bookings(:r, '[{"external_id": "ext-1", "party_size": 4, "start": "2026-06-02 19:00"}]')
  #>> '{refused,0,sqlstate}', 'RA008', 'the same external id with other details is refused');
select is(allocator.import_bookings(:other, '[{"external_id": "ext-1", "party_size": 2, "start": "2026-06-02 19:00"}]')
  ->> 'imported', '1', 'external ids are per restaurant');

-- Refusals: each row for itself, with its reason; nothing of a refused row stays.
select allocator.import_bookings(:r, '[
  {"external_id": "clash", "party_size": 2, "start": "2026-06-02 19:30", "tables": ["I1"]},
  {"external_id": "fine", "party_size": 2, "start": "2026-06-03 19:30", "tables": ["I1"]},
  {"external_id": "past", "party_size": 2, "start": "2026-05-01 19:30"},
  {"external_id": "nosuch", "party_size": 2, "start": "2026-06-03 12:00", "tables": ["Z9"]},
  {"external_id": "badtime", "party_size": 2, "start": "tomorrow-ish"},
  {"external_id": "", "party_size": 2, "start": "2026-06-03 12:00"},
  {"external_id": "party", "party_size": "two", "start": "2026-06-03 12:00"}
]') as mixed \gset
select is((select array_agg(e ->> 'external_id' || ':' || (e ->> 'sqlstate') order by (e ->> 'row')::int)
             from jsonb_array_elements(:'mixed'::jsonb -> 'refused') e),
  array['clash:RA003', 'past:RA001', 'nosuch:RA002', 'badtime:RA001', ':RA001', 'party:RA001'],
  'each refused row is reported with its SQLSTATE');
select ok((select e ->> 'detail' from jsonb_array_elements(:'mixed'::jsonb -> 'refused') e where e ->> 'external_id' = 'clash')
  like '%booking%', 'a double booking names the booking that holds the table');
select is((:'mixed'::jsonb -> 'refused' -> 0 ->> 'row')::int, 1, 'rows are numbered from 1');
select is(:'mixed'::jsonb ->> 'imported', '1', 'the good row is imported by this call');
select is((select count(*)::int from allocator.bookings where restaurant_id = :r and external_id in ('clash', 'past', 'nosuch')),
  0, 'a refused row leaves no booking behind');

-- Bad calls change nothing.
select throws_ok(format($$select allocator.import_bookings(%s, '{"external_id": "x"}')$$, :r), 'RA001', NULL,
  'rows must be an array');
select throws_ok(format($$select allocator.import_bookings(%s, (select jsonb_agg(jsonb_build_object('external_id', n)) from generate_series(1, 501) n))$$, :r),
  'RA001', NULL, 'at most 500 rows per call');
select throws_ok($$select allocator.import_bookings(-1, '[]')$$, 'RA002', NULL, 'an unknown restaurant');
