-- Manual actions for the people who run the floor: requeue, force_confirm, manual_assign.
-- They go through the same transition function, so their history reads like automation's.

create or replace function allocator.require_staff(p_actor text, p_reason text) returns void
language plpgsql
stable
as $$
declare
  v_acting text := allocator.acting_staff();
begin
  if allocator.actor_role(p_actor) <> 'staff' then
    perform allocator.raise_error('not_permitted',
      pg_catalog.format('manual actions need a staff actor, got %s', p_actor), null,
      'pass p_actor => ''staff:<name>''');
  end if;
  -- The console acts for one signed-in member: it cannot record another one as the actor.
  if v_acting is not null and p_actor <> 'staff:' || v_acting then
    perform allocator.raise_error('not_permitted',
      pg_catalog.format('the console acts for staff:%s and cannot act as %s', v_acting, p_actor));
  end if;
  if p_reason is null or pg_catalog.btrim(p_reason) = '' then
    perform allocator.raise_error('invalid_argument', 'manual actions need a reason');
  end if;
  perform allocator.check_length('reason', p_reason, 'reason_chars');
end
$$;

comment on function allocator.require_staff(text, text) is
  'Raise unless the actor''s role is staff (the signed-in member, for the console) and a reason is given';

create or replace function allocator.requeue(
  p_booking_id bigint,
  p_actor text,
  p_reason text,
  p_expected_version integer default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
begin
  perform allocator.require_staff(p_actor, p_reason);
  if v_booking.state <> 'manual_review' then
    perform allocator.raise_error('invalid_transition',
      pg_catalog.format('booking %s is %s; only bookings in manual_review are requeued', p_booking_id, v_booking.state));
  end if;
  update allocator.bookings b set assignment_attempts = 0
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id and b.state = 'manual_review';
  v_booking := allocator.transition(p_booking_id, coalesce(p_expected_version, v_booking.version),
    'assignment_pending', p_actor, p_reason, '{"manual": "requeue"}'::jsonb);
  perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'requeued');
  return allocator.booking_json(v_booking);
end
$$;

comment on function allocator.requeue(bigint, text, text, integer) is
  'Staff: send a booking in manual_review back to the assignment queue with its attempts reset';

-- Allocates p_table_ids to the booking as confirmed seats and confirms it, dropping any
-- hold it had. Shared by force_confirm and manual_assign.
create or replace function allocator.confirm_on_tables(
  p_booking allocator.bookings,
  p_table_ids bigint[],
  p_check_capacity boolean,
  p_actor text,
  p_reason text,
  p_manual text
) returns allocator.bookings
language plpgsql
volatile
as $$
declare
  v_ids bigint[] := allocator.check_table_set(p_booking, p_table_ids, p_check_capacity);
  v_period tstzrange := allocator.blocked_period(p_booking);
begin
  perform allocator.free_booking_tables(p_booking, 'released');
  perform allocator.expire_holds_on(p_booking.restaurant_id, v_ids, v_period);
  perform allocator.lock_tables(p_booking.restaurant_id, v_ids);
  perform allocator.insert_allocations(p_booking.restaurant_id, p_booking.id, v_ids, v_period, 'confirmed');
  perform allocator.dequeue(p_booking.restaurant_id, p_booking.id);
  return allocator.transition(p_booking.id, p_booking.version, 'confirmed', p_actor, p_reason,
    pg_catalog.jsonb_build_object('manual', p_manual, 'table_ids', v_ids));
end
$$;

comment on function allocator.confirm_on_tables(allocator.bookings, bigint[], boolean, text, text, text) is
  'Allocate the tables to the booking as confirmed seats and confirm it (shared by the manual actions)';

create or replace function allocator.force_confirm(
  p_booking_id bigint,
  p_actor text,
  p_reason text,
  p_table_ids bigint[] default null
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
  v_hold allocator.holds;
begin
  perform allocator.require_staff(p_actor, p_reason);
  perform allocator.check_can_move(v_booking, 'confirmed', 'and cannot be confirmed');
  if p_table_ids is null then
    select h.* into v_hold from allocator.holds h
     where h.restaurant_id = v_booking.restaurant_id and h.booking_id = v_booking.id and h.status = 'active'
     for update;
    if not found then
      perform allocator.raise_error('invalid_argument',
        pg_catalog.format('booking %s holds no tables; give the tables to confirm it on', p_booking_id));
    end if;
    if v_hold.expires_at <= allocator.now() then
      perform allocator.raise_error('hold_not_active',
        pg_catalog.format('hold %s expired at %s', v_hold.id, v_hold.expires_at), null,
        'give the tables to confirm the booking on');
    end if;
    v_booking := allocator.confirm_hold_allocations(v_hold, v_booking, p_actor, p_reason,
      '{"manual": "force_confirm"}'::jsonb);
  else
    -- Staff may seat a party on tables that do not nominally fit it; overlaps stay impossible.
    v_booking := allocator.confirm_on_tables(v_booking, p_table_ids, false, p_actor, p_reason, 'force_confirm');
  end if;
  return allocator.booking_json(v_booking);
end
$$;

comment on function allocator.force_confirm(bigint, text, text, bigint[]) is
  'Staff: confirm a booking on its current hold, or on the given tables without the capacity check (overlaps are still impossible)';

create or replace function allocator.decline_booking(p_booking_id bigint, p_actor text, p_reason text) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
begin
  perform allocator.require_staff(p_actor, p_reason);
  perform allocator.check_can_move(v_booking, 'failed', 'and cannot be declined');
  perform allocator.free_booking_tables(v_booking, 'released');
  perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
  v_booking := allocator.transition(v_booking.id, v_booking.version, 'failed', p_actor, p_reason,
    '{"manual": "decline"}'::jsonb);
  return allocator.booking_json(v_booking);
end
$$;

comment on function allocator.decline_booking(bigint, text, text) is
  'Staff: decline a booking that cannot be served (from created or manual_review to failed), freeing anything it holds';

create or replace function allocator.manual_assign(
  p_booking_id bigint,
  p_table_ids bigint[],
  p_actor text,
  p_reason text
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
begin
  perform allocator.require_staff(p_actor, p_reason);
  if p_table_ids is null then
    perform allocator.raise_error('invalid_argument', 'table ids are required');
  end if;
  v_booking := allocator.confirm_on_tables(v_booking, p_table_ids, true, p_actor, p_reason, 'manual_assign');
  return allocator.booking_json(v_booking);
end
$$;

comment on function allocator.manual_assign(bigint, bigint[], text, text) is
  'Staff: seat a booking on the chosen tables (capacity and adjacency checked) and confirm it';



-- For callers whose action has no version argument (force_confirm, manual_assign,
-- decline_booking): lock the booking first in the same transaction, then act.
create or replace function allocator.expect_version(p_booking_id bigint, p_expected_version integer) returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking allocator.bookings := allocator.lock_booking(p_booking_id);
begin
  perform allocator.check_argument('expected version', p_expected_version, 1, 2147483647);
  perform allocator.check_version(v_booking, p_expected_version);
  return v_booking.version;
end
$$;

comment on function allocator.expect_version(bigint, integer) is
  'Lock a booking for the rest of the transaction and raise stale_version (RA004) unless it is at p_expected_version; its version';
