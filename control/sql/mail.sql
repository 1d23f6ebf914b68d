-- Customer notifications by mail, delivered exactly once as far as a mail server allows
-- (docs/operations.md#notifications-by-mail). A notification with an address is pending; a
-- sender claims it (sending), says when the whole message but its final line is with the
-- server (committing), and records the server's answer (sent, or back to pending for a
-- retry, or failed). A sender that dies while sending leaves a row that is safe to send
-- again: the server drops a message that never ended. One that dies while committing leaves
-- it in_doubt: the server may have it, so it is never sent again without a person.

create or replace function allocator.claim_mail(
  p_sender text,
  p_limit integer default 20,
  p_lease_seconds integer default 60
) returns table (
  restaurant_id bigint,
  id bigint,
  booking_id bigint,
  event_id bigint,
  kind text,
  payload jsonb,
  email text,
  locale text,
  attempts integer
)
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  perform allocator.check_length('sender', p_sender);
  perform allocator.check_argument('limit', p_limit, 1, 1000);
  perform allocator.check_argument('lease seconds', p_lease_seconds, 1, 3600);
  -- Claims whose sender is gone: still sending, safe to send again; committing, in doubt.
  update allocator.notifications n
     set status = case n.status when 'sending' then 'pending' else 'in_doubt' end,
         claimed_until = null
    from (select x.restaurant_id, x.id from allocator.notifications x
           where x.status in ('sending', 'committing') and x.claimed_until < allocator.now()
             and allocator.tenant_allows(x.restaurant_id)
           for update skip locked) x
   where n.restaurant_id = x.restaurant_id and n.id = x.id;
  return query
  update allocator.notifications n
     set status = 'sending', claimed_by = p_sender,
         claimed_until = allocator.now() + pg_catalog.make_interval(secs => p_lease_seconds),
         attempts = n.attempts + 1
    from (select x.restaurant_id, x.id from allocator.notifications x
           where x.status = 'pending' and (x.retry_at is null or x.retry_at <= allocator.now())
             and allocator.tenant_allows(x.restaurant_id)
           order by x.id
           limit p_limit
           for update skip locked) c
   where n.restaurant_id = c.restaurant_id and n.id = c.id
  returning n.restaurant_id, n.id, n.booking_id, n.event_id, n.kind, n.payload, n.email, n.locale, n.attempts;
end
$$;

comment on function allocator.claim_mail(text, integer, integer) is
  'Claim up to p_limit pending mail notifications for p_sender for p_lease_seconds (status sending); first returns expired claims to pending (were sending) or in_doubt (were committing)';

create or replace function allocator.mail_outcome(
  p_restaurant_id bigint,
  p_id bigint,
  p_sender text,
  p_outcome text,
  p_message_id text default null,
  p_error text default null
) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row allocator.notifications;
begin
  if p_outcome is null or p_outcome not in ('committing', 'sent', 'retry', 'failed', 'in_doubt') then
    perform allocator.raise_error('invalid_argument',
      'a mail outcome is committing, sent, retry, failed or in_doubt', pg_catalog.format('got %s', coalesce(p_outcome, 'NULL')));
  end if;
  perform allocator.check_length('sender', p_sender);
  perform allocator.check_length('message id', p_message_id);
  select n.* into v_row from allocator.notifications n
   where n.restaurant_id = p_restaurant_id and n.id = p_id and allocator.tenant_allows(n.restaurant_id)
   for update;
  if v_row.id is null then
    perform allocator.raise_error('not_found', pg_catalog.format('notification %s of restaurant %s not found', p_id, p_restaurant_id));
  end if;
  -- Only the claim's own sender moves it, and only forward: committing needs a live claim
  -- (a sender whose claim ran out must not finish the message: another may have it now).
  if v_row.claimed_by is distinct from p_sender
     or (p_outcome = 'committing' and (v_row.status <> 'sending' or v_row.claimed_until <= allocator.now()))
     or (p_outcome <> 'committing' and v_row.status not in ('sending', 'committing', 'in_doubt'))
     or (p_outcome in ('retry', 'failed') and v_row.status = 'in_doubt') then
    return false;
  end if;
  update allocator.notifications n
     set status = case p_outcome when 'retry' then 'pending' else p_outcome end,
         message_id = coalesce(p_message_id, n.message_id),
         sent_at = case when p_outcome = 'sent' then allocator.now() end,
         retry_at = case when p_outcome = 'retry'
                         then allocator.now() + pg_catalog.make_interval(secs => least(3600, 2 ^ least(n.attempts, 12)))
                    end,
         claimed_until = case when p_outcome = 'committing' then n.claimed_until end,
         last_error = pg_catalog.left(coalesce(p_error, n.last_error), 2000)
   where n.restaurant_id = v_row.restaurant_id and n.id = v_row.id;
  return true;
end
$$;

comment on function allocator.mail_outcome(bigint, bigint, text, text, text, text) is
  'A sender records what became of a claimed mail notification: committing (all but the final line is with the server; false if the claim ran out: do not finish), sent, retry (the server refused for now: pending again after a backoff), failed (refused for good) or in_doubt (no answer after the final line); false if the claim is not the sender''s';

create or replace function allocator.resend_mail(p_restaurant_id bigint, p_id bigint, p_actor text default 'staff')
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform allocator.actor_role(p_actor);
  update allocator.notifications n
     set status = 'pending', retry_at = null, claimed_by = null, claimed_until = null,
         last_error = pg_catalog.left(pg_catalog.format('resent by %s after %s: %s', p_actor, n.status,
                                                         coalesce(n.last_error, '-')), 2000)
   where n.restaurant_id = p_restaurant_id and n.id = p_id and n.status in ('in_doubt', 'failed')
     and allocator.tenant_allows(n.restaurant_id);
  return found;
end
$$;

comment on function allocator.resend_mail(bigint, bigint, text) is
  'Send an in_doubt or failed mail notification again (a person checked that the guest did not get it); false if it is neither';

create or replace view allocator.mail_status with (security_invoker = true, security_barrier = true) as
select n.restaurant_id, n.status, pg_catalog.count(*) as notifications,
       pg_catalog.min(n.created_at) filter (where n.status in ('pending', 'sending', 'committing')) as oldest_unsent_at
  from allocator.notifications n
 where n.status <> 'unmailed'
 group by n.restaurant_id, n.status;

comment on view allocator.mail_status is
  'Mailed notifications per restaurant and status (pending, sending, committing, sent, failed, in_doubt), and since when the oldest not yet sent waits; allocator status and the metrics read it';
