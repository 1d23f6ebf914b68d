-- The waitlist: quoted waits, offers when a fitting table frees (oldest fitting party first),
-- seating from an offer, lapsed offers and removals, and the guards of each.
select plan(31);

select allocator.freeze_clock('2026-06-01 19:00+00');
select (allocator.import_layout('{"name": "Waitlist", "settings": {"buffer_minutes": 0, "turn_minutes": {"8": 60}},
  "tables": [{"label": "T1", "max_capacity": 2, "combinable": false},
             {"label": "T2", "max_capacity": 4, "combinable": false}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id = (select id from allocator.restaurants where name = 'Waitlist') $$;
create function pg_temp.entry(p_id bigint) returns text language sql as
  $$ select w.status || coalesce(' ' || (select array_agg(a.table_id order by a.table_id) from allocator.allocations a
                                          where a.booking_id = w.booking_id)::text, '')
       from allocator.waitlist w where w.id = p_id $$;

select allocator.seat_walk_in(:r, 2) ->> 'booking_id' as a \gset
select allocator.seat_walk_in(:r, 4) ->> 'booking_id' as b \gset
select is((select array_agg(table_id order by table_id) from allocator.allocations where booking_id in (:a, :b)),
  array[pg_temp.t('T1'), pg_temp.t('T2')], 'both tables taken by walk-ins until 20:00');

-- Joining: quoted waits.
select allocator.join_waitlist(:r, 2, 'Ana 555-0101') as w1 \gset
select is(:'w1'::jsonb ->> 'status', 'waiting', 'a couple waits');
select is((:'w1'::jsonb ->> 'quoted_minutes')::int, 60, 'quoted an hour: both tables free at 20:00');
select allocator.join_waitlist(:r, 2, 'Bo 555-0102') as w2 \gset
select is((:'w2'::jsonb ->> 'quoted_minutes')::int, 60, 'the next couple too: the other table');
select allocator.join_waitlist(:r, 4, 'Cy 555-0103') as w3 \gset
select is((:'w3'::jsonb ->> 'ahead')::int, 2, 'a four has two fitting parties ahead');
select is((:'w3'::jsonb ->> 'quoted_minutes')::int, 120,
  'quoted two hours: the couples ahead take T1 and T2 at 20:00, the four get T2 after the couple''s turn');
select is((select contact from allocator.waitlist where id = (:'w1'::jsonb ->> 'waitlist_id')::bigint), 'Ana 555-0101',
  'the contact is kept');
select ok(not (:'w1'::jsonb ? 'contact'), 'but not returned');

-- Bad input changes nothing.
select throws_ok(format($$select allocator.join_waitlist(%s, 9, 'Dee')$$, :r), 'RA014', NULL, 'a party larger than any table');
select throws_ok(format($$select allocator.join_waitlist(%s, 2, ' ')$$, :r), 'RA001', NULL, 'no contact');
select throws_ok(format($$select allocator.join_waitlist(%s, 2, 'Dee', 'Garden')$$, :r), 'RA002', NULL, 'an unknown zone');
select is((select count(*)::int from allocator.waitlist where restaurant_id = :r), 3, 'three parties wait');

-- The couple at T1 leaves early: the first couple is offered it.
select allocator.freeze_clock('2026-06-01 19:40+00');
select allocator.finish_booking(:a) is not null as x \gset
select is(pg_temp.entry((:'w1'::jsonb ->> 'waitlist_id')::bigint), format('offered {%s}', pg_temp.t('T1')),
  'the first couple is offered T1');
select is(pg_temp.entry((:'w2'::jsonb ->> 'waitlist_id')::bigint), 'waiting', 'the second still waits');
select ok(exists (select 1 from allocator.events where topic = 'waitlist.offered'
                   and (payload ->> 'waitlist_id')::bigint = (:'w1'::jsonb ->> 'waitlist_id')::bigint), 'with an event');
select is((select kind || ' ' || (payload ->> 'party_size') from allocator.deliver_notifications(5000)
            where booking_id = (select booking_id from allocator.waitlist where id = (:'w1'::jsonb ->> 'waitlist_id')::bigint)),
  'table_offered 2', 'and a notification for the party');
select allocator.seat_from_waitlist(:r, (:'w1'::jsonb ->> 'waitlist_id')::bigint, 'staff:ana') as s1 \gset
select is(:'s1'::jsonb ->> 'state', 'seated', 'staff seat them on it');
select is(pg_temp.entry((:'w1'::jsonb ->> 'waitlist_id')::bigint), format('seated {%s}', pg_temp.t('T1')), 'the entry is seated');
select is((select (payload ->> 'waited_minutes')::int || '/' || (payload ->> 'quoted_minutes') from allocator.events
            where topic = 'waitlist.seated'), '40/60', 'waited 40 minutes, quoted 60: recorded for the quotes'' accuracy');

-- The four at T2 leave: the oldest fitting party (the second couple) is offered T2, not the four.
select allocator.freeze_clock('2026-06-01 19:45+00');
select allocator.finish_booking(:b) is not null as x \gset
select is(pg_temp.entry((:'w2'::jsonb ->> 'waitlist_id')::bigint), format('offered {%s}', pg_temp.t('T2')),
  'the second couple is offered T2');
select is(pg_temp.entry((:'w3'::jsonb ->> 'waitlist_id')::bigint), 'waiting', 'the four wait');
select ok(not exists (select 1 from allocator.availability(:r, '[2026-06-01 19:46+00, 2026-06-01 19:50+00)')),
  'the offered table is held: nobody else books it');

-- The offer lapses: the couple's entry expires and the four are offered the table.
select allocator.freeze_clock('2026-06-01 19:56+00');
select allocator.expire_holds() is not null as x \gset
select is(pg_temp.entry((:'w2'::jsonb ->> 'waitlist_id')::bigint), 'expired', 'an offer not taken in 10 minutes lapses');
select is((select state from allocator.bookings where id = (select booking_id from allocator.waitlist where id = (:'w2'::jsonb ->> 'waitlist_id')::bigint)),
  'cancelled', 'its booking was only the offer');
select is(allocator.offer_waitlists(), 1, 'the waitlist sweep offers the table again');
select is(pg_temp.entry((:'w3'::jsonb ->> 'waitlist_id')::bigint), format('offered {%s}', pg_temp.t('T2')), 'to the four');

-- Removed: the table is released.
select is(allocator.remove_from_waitlist(:r, (:'w3'::jsonb ->> 'waitlist_id')::bigint, 'staff:ana', 'left') ->> 'status', 'removed',
  'the four leave the waitlist');
select ok(exists (select 1 from allocator.availability(:r, '[2026-06-01 19:57+00, 2026-06-01 20:30+00)') where table_ids = array[pg_temp.t('T2')]),
  'T2 is free again');
select throws_ok(format('select allocator.seat_from_waitlist(%s, %s)', :r, (:'w3'::jsonb ->> 'waitlist_id')), 'RA005', NULL,
  'a removed party is not seated');
select throws_ok(format('select allocator.remove_from_waitlist(%s, -1)', :r), 'RA002', NULL, 'an unknown entry');
select is((select count(*)::int from allocator.check_invariants() where restaurant_id = :r), 0, 'every invariant holds');

select * from finish();
