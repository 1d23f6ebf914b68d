-- Revision 0007: the guest's contact and the delivery of customer notifications by mail.
-- A booking may carry the guest's e-mail address and locale (for the wording of messages).
-- A notification to mail goes pending -> sending (claimed by one sender) -> committing (the
-- message was handed over; only the server's answer is missing) -> sent; a sender that dies
-- while sending leaves a row that is safe to send again, one that dies while committing
-- leaves it in_doubt, never sent twice.
alter table allocator.bookings
  add column guest_email text constraint bookings_guest_email_check
    check (guest_email is null or (pg_catalog.length(guest_email) between 3 and 254 and guest_email ~ '^[^@\s<>]+@[^@\s<>]+$')),
  add column locale text constraint bookings_locale_check
    check (locale is null or locale ~ '^[a-z]{2,3}(-[A-Z]{2})?$');
comment on column allocator.bookings.guest_email is 'The guest''s e-mail address for customer notifications; NULL: none are mailed';
comment on column allocator.bookings.locale is 'The guest''s locale (en, it, pt-BR) for the wording of notifications; NULL: the restaurant''s locale setting';

alter table allocator.notifications
  add column email text,
  add column locale text not null default 'en',
  add column status text not null default 'unmailed'
    constraint notifications_status_check
    check (status in ('unmailed', 'pending', 'sending', 'committing', 'sent', 'failed', 'in_doubt')),
  add column message_id text,
  add column claimed_by text,
  add column claimed_until timestamptz,
  add column attempts integer not null default 0,
  add column retry_at timestamptz,
  add column sent_at timestamptz,
  add column last_error text constraint notifications_last_error_check check (pg_catalog.length(last_error) <= 2000);
comment on column allocator.notifications.status is
  'Mail delivery: unmailed (no address), pending, sending (claimed, message not yet handed over), committing (handed over, answer pending), sent, failed (refused for good), in_doubt (its sender died while committing: not sent again automatically)';

create index notifications_mail_idx on allocator.notifications (status, retry_at)
  where status in ('pending', 'sending', 'committing');

-- create_booking, book and insert_booking take the guest's contact: new signatures.
drop function if exists allocator.create_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text);
drop function if exists allocator.book(bigint, integer, timestamptz, text, text, jsonb, text);
drop function if exists allocator.insert_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text, boolean);
