-- Mail delivery of customer notifications: a guest's contact on the booking, one
-- notification per event with its address and locale, and the claim -> committing -> sent
-- steps, with claims that run out going back to pending (never handed over) or in_doubt.
select plan(28);

select allocator.freeze_clock('2026-06-01 08:00+00');
select (allocator.import_layout('{"name": "Mail", "timezone": "Europe/Rome", "settings": {"locale": "it"},
  "tables": [{"label": "M1", "max_capacity": 4}]}') ->> 'restaurant_id')::bigint as r \gset
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-02 19:00+00', p_guest_email => 'not an address')$$, :r),
  'RA001', NULL, 'an e-mail address without @ is refused');
select throws_ok(format($$select allocator.create_booking(%s, 2, '2026-06-02 19:00+00', p_locale => 'english')$$, :r),
  'RA001', NULL, 'a locale that is not a language tag is refused');
select throws_ok(format($$select allocator.book(%s, 2, '2026-06-02 19:00+00', p_guest_email => repeat('a', 250) || '@x.org')$$, :r),
  'RA001', NULL, 'book checks the address too');
select throws_ok(format($$select allocator.update_settings(%s, '{"locale": "xx_YY"}')$$, :r), 'RA006', NULL,
  'a restaurant locale that is not a language tag');
select is((select count(*)::int from allocator.bookings where restaurant_id = :r), 0, 'nothing was written');

select (allocator.create_booking(:r, 2, '2026-06-02 19:00+00', p_guest_email => 'ada@example.org', p_locale => 'en')
  ->> 'booking_id')::bigint as b1 \gset
select (allocator.create_booking(:r, 2, '2026-06-02 21:30+00', p_guest_email => 'lina@example.org') ->> 'booking_id')::bigint as b2 \gset
select (allocator.create_booking(:r, 2, '2026-06-03 19:00+00') ->> 'booking_id')::bigint as b3 \gset
select is(allocator.process_booking(:b1, 'w') ->> 'outcome', 'confirmed', 'the first is confirmed');
select is(allocator.process_booking(:b2, 'w') ->> 'outcome', 'confirmed', 'the second');
select is(allocator.process_booking(:b3, 'w') ->> 'outcome', 'confirmed', 'the third');
-- The subscription starts after what was there before this file.
select count(*) from allocator.deliver_notifications(5000);
select is((select array_agg(status || ':' || coalesce(email, '-') || ':' || locale order by booking_id)
             from allocator.notifications where restaurant_id = :r),
  array['pending:ada@example.org:en', 'pending:lina@example.org:it', 'unmailed:-:it'],
  'one notification each: pending with the address and locale (else the restaurant''s), unmailed without an address');

select allocator.freeze_clock('2026-06-01 08:00:01+00');
select is((select count(*)::int from allocator.claim_mail('s1', 1, 10)), 1, 'a sender claims one');
select id as n1 from allocator.notifications where restaurant_id = :r and status = 'sending' \gset
select is((select claimed_by from allocator.notifications where restaurant_id = :r and id = :n1), 's1', 'as its own');
select is((select count(*)::int from allocator.claim_mail('s2', 10, 10)), 1, 'another sender gets the other pending one only');
select id as n2 from allocator.notifications where restaurant_id = :r and status = 'sending' and claimed_by = 's2' \gset
select ok(not allocator.mail_outcome(:r, :n1, 's2', 'committing', '<x@y>'), 'a sender cannot move another''s claim');
select ok(allocator.mail_outcome(:r, :n1, 's1', 'committing', '<m1@y>'), 's1 hands its message over');
select ok(allocator.mail_outcome(:r, :n1, 's1', 'sent'), 'and records the server''s answer');
select is((select status || ' ' || message_id || ' ' || (sent_at is not null)::text from allocator.notifications where restaurant_id = :r and id = :n1),
  'sent <m1@y> true', 'sent, with its Message-ID and time');

-- s2 dies while sending: when its claim runs out the notification is pending again.
select allocator.freeze_clock('2026-06-01 08:00:20+00');
select ok(not allocator.mail_outcome(:r, :n2, 's2', 'committing', '<m2@y>'), 'a claim that ran out cannot be handed over');
select is((select count(*)::int from allocator.claim_mail('s3', 10, 10)), 1, 'a claim that ran out while sending is claimed again');
select is((select attempts from allocator.notifications where restaurant_id = :r and id = :n2), 2, 'its second attempt');
select ok(allocator.mail_outcome(:r, :n2, 's3', 'committing', '<m2@y>'), 's3 hands it over');
-- s3 dies while committing: in doubt, never claimed again.
select allocator.freeze_clock('2026-06-01 08:00:40+00');
select is((select count(*)::int from allocator.claim_mail('s4', 10, 10)), 0, 'nothing to claim');
select is((select status from allocator.notifications where restaurant_id = :r and id = :n2), 'in_doubt',
  'a claim that ran out while committing leaves the notification in doubt');
select ok(allocator.mail_outcome(:r, :n2, 's3', 'sent'), 'its sender may still record the server''s answer');
select ok(not allocator.resend_mail(:r, :n2), 'a sent notification is not resent');
update allocator.notifications set status = 'in_doubt' where restaurant_id = :r and id = :n2;
select ok(allocator.resend_mail(:r, :n2, 'staff:ana'), 'an in-doubt one is resent by a person');
select is((select status from allocator.notifications where restaurant_id = :r and id = :n2), 'pending', 'pending again');
select throws_ok(format($$select allocator.mail_outcome(%s, %s, 's1', 'delivered')$$, :r, :n1), 'RA001', NULL,
  'an unknown outcome');
select throws_ok($$select * from allocator.claim_mail('s1', 0)$$, 'RA001', NULL, 'a claim of nothing');

select * from finish();
