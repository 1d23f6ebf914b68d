-- Reverts revision 0007 (the code files are applied again by the next upgrade).
drop function if exists allocator.create_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text, text, text);
drop function if exists allocator.book(bigint, integer, timestamptz, text, text, jsonb, text, text, text);
drop function if exists allocator.insert_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text, boolean, text, text);
drop view if exists allocator.mail_status;
drop view if exists allocator.metric_totals;
drop index allocator.notifications_mail_idx;
alter table allocator.notifications
  drop column email, drop column locale, drop column status, drop column message_id, drop column claimed_by,
  drop column claimed_until, drop column attempts, drop column retry_at, drop column sent_at, drop column last_error;
alter table allocator.bookings drop column guest_email, drop column locale;
